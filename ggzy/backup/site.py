"""Which database a command works on: the hub's or this node's, with its schema, keys and audit log.

The backup and audit commands work the same on both; what differs is gathered in a :class:`Site`, so
the rest of the code never asks which one it is. Each deployable builds its own (``ggzy.hub.site``,
``ggzy.node.site``): this layer knows neither, and the command line picks one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sqlalchemy import MetaData

from ggzy.backup.models import BackupTables
from ggzy.security.audit import AuditLog, AuditTables, open_audit_log
from ggzy.security.audit_anchor import AnchorSet
from ggzy.security.crypto import Digest
from ggzy.settings import AuditSettings

__all__ = ["Side", "Site"]


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
    # the anchors of this site's chain kept off its host (ggzy.security.audit_anchor); ``after``: the
    # newest entry already archived (anchors below it need no comparison)
    anchors: Callable[[int], AnchorSet] | None = None

    def audit_log(self) -> AuditLog:
        return open_audit_log(self.audit_tables, self.key_dir, self.digest, self.audit_settings)

    def with_url(self, db_url: str) -> Site:
        from dataclasses import replace

        return replace(self, db_url=db_url)
