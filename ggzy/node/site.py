"""This node's database as a backup and audit :class:`~ggzy.backup.site.Site`."""

from __future__ import annotations

from pathlib import Path

from ggzy.backup.site import Side, Site
from ggzy.node import models
from ggzy.security.crypto import Digest
from ggzy.settings import Settings

__all__ = ["node_site"]


def node_site(settings: Settings, db_url: str | None = None) -> Site:
    return Site(
        side=Side.NODE,
        db_url=db_url or settings.node.db_url,
        migrations=Path(models.__file__).parent / "migrations",
        metadata=models.metadata,
        audit_tables=models.audit_tables,
        backup_tables=models.backup_tables,
        key_dir=settings.node.key_file.parent,
        digest=Digest.SM3,  # the node's chain is always SM3 (ggzy.node.context)
        audit_settings=settings.audit,
    )
