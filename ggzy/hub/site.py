"""The hub's database as a backup and audit :class:`~ggzy.backup.site.Site`."""

from __future__ import annotations

from pathlib import Path

from ggzy.backup.site import Side, Site
from ggzy.hub import models
from ggzy.settings import Settings

__all__ = ["hub_site"]


def hub_site(settings: Settings, db_url: str | None = None) -> Site:
    from ggzy.hub.anchors import hub_sinks

    sinks = hub_sinks(settings.backup, settings.audit)
    return Site(
        side=Side.HUB,
        db_url=db_url or settings.hub.db_url,
        migrations=Path(models.__file__).parent / "migrations",
        metadata=models.metadata,
        audit_tables=models.audit_tables,
        backup_tables=models.backup_tables,
        key_dir=settings.hub.key_dir,
        digest=settings.hub.audit_digest,
        audit_settings=settings.audit,
        anchors=lambda _after: sinks.anchors(),
    )
