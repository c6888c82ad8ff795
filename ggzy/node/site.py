"""This node's database as a backup and audit :class:`~ggzy.backup.site.Site`."""

from __future__ import annotations

from pathlib import Path

from ggzy.backup.site import Side, Site
from ggzy.node import models
from ggzy.protocol import HubClient
from ggzy.security.audit_anchor import AnchorSet
from ggzy.security.crypto import Digest
from ggzy.settings import NodeSettings, Settings

__all__ = ["hub_anchors", "node_site"]


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
        anchors=lambda after: hub_anchors(settings.node, after),
    )


def hub_anchors(settings: NodeSettings, after: int = 0, client: HubClient | None = None) -> AnchorSet:
    """The anchors the hub keeps of this node's audit chain (from its heartbeats)."""
    from ggzy.protocol import HubRefused, HubUnavailable
    from ggzy.security.audit_anchor import anchors_of
    from ggzy.security.signing import SignatureAlgorithm

    label = f"国家平台 {settings.hub_url}"
    try:
        if client is None:
            from ggzy.node.context import read_node_key

            key = read_node_key(settings.key_file)
            with HubClient(
                settings.hub_url, settings.node_id, key, algorithm=SignatureAlgorithm(settings.algorithm)
            ) as own:
                answer = own.audit_anchors(after)
        else:
            answer = client.audit_anchors(after)
        return AnchorSet(anchors_of(answer.get("anchors") or []), [label])
    except (HubUnavailable, HubRefused, OSError, ValueError, KeyError) as exc:
        return AnchorSet(unavailable=[f"{label}：{exc}"])
