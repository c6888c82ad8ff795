"""Which database a command works on: the hub's or this node's, with its schema, keys and audit log.

The backup and audit commands work the same on both; what differs is gathered here, so the rest of
the code takes a :class:`Site` and never asks which one it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sqlalchemy import MetaData

from ggzy.backup.models import BackupTables
from ggzy.security.audit import AuditLog, AuditTables, open_audit_log
from ggzy.security.crypto import Digest
from ggzy.settings import AuditSettings, Settings

__all__ = ["Side", "Site", "site_for"]


class Side(StrEnum):
    HUB = "hub"
    NODE = "node"

    @property
    def label(self) -> str:
        return "国家平台" if self is Side.HUB else "交换前置节点"


@dataclass(frozen=True, slots=True)
class Site:
    side: Side
    db_url: str
    migrations: Path
    metadata: MetaData
    audit_tables: AuditTables
    backup_tables: BackupTables
    key_dir: Path
    digest: Digest
    audit_settings: AuditSettings

    def audit_log(self) -> AuditLog:
        return open_audit_log(self.audit_tables, self.key_dir, self.digest, self.audit_settings)

    def with_url(self, db_url: str) -> Site:
        from dataclasses import replace

        return replace(self, db_url=db_url)


def site_for(side: Side, settings: Settings, db_url: str | None = None) -> Site:
    if side is Side.HUB:
        from ggzy.hub import models as hub_models

        return Site(
            side=side,
            db_url=db_url or settings.hub.db_url,
            migrations=Path(hub_models.__file__).parent / "migrations",
            metadata=hub_models.metadata,
            audit_tables=hub_models.audit_tables,
            backup_tables=hub_models.backup_tables,
            key_dir=settings.hub.key_dir,
            digest=settings.hub.audit_digest,
            audit_settings=settings.audit,
        )
    from ggzy.node import models as node_models

    return Site(
        side=side,
        db_url=db_url or settings.node.db_url,
        migrations=Path(node_models.__file__).parent / "migrations",
        metadata=node_models.metadata,
        audit_tables=node_models.audit_tables,
        backup_tables=node_models.backup_tables,
        key_dir=settings.node.key_file.parent,
        digest=Digest.SM3,  # the node's chain is always SM3 (ggzy.node.context)
        audit_settings=settings.audit,
    )
