"""Where the time of the last verified backup of a province comes from (a seam, Art. 21).

Backups themselves belong to ``ggzy.backup``. Operations only needs one fact per province: when a
backup was last verified as restorable. :class:`BackupSource` is that question; the default
:class:`HeartbeatBackupSource` reads the ``backup_verified_at`` a node reports in its heartbeat (the
node takes it from its ``node_state`` row ``backup.verified_at``, which the backup tooling writes).
Tests and other deployments pass any object with the same method.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from sqlalchemy import Connection, select

from ggzy.hub.models import node_heartbeats
from ggzy.hub.ops.periods import utc

__all__ = ["BackupSource", "HeartbeatBackupSource"]


class BackupSource(Protocol):
    def verified_at(self, connection: Connection, province: str, before: dt.datetime) -> dt.datetime | None:
        """When a backup of ``province`` was last verified, as known at ``before`` (None: never)."""
        ...


class HeartbeatBackupSource:
    """The newest ``backup_verified_at`` reported by a node of the province up to ``before``."""

    SCAN = 50  # the most recent beats carry it whenever the node knows it

    def verified_at(self, connection: Connection, province: str, before: dt.datetime) -> dt.datetime | None:
        rows = connection.execute(
            select(node_heartbeats.c.payload)
            .where(node_heartbeats.c.province == province, node_heartbeats.c.received_at <= before)
            .order_by(node_heartbeats.c.received_at.desc())
            .limit(self.SCAN)
        )
        found: list[dt.datetime] = []
        for (payload,) in rows:
            text = (payload or {}).get("backup_verified_at")
            if not text:
                continue
            try:
                found.append(utc(dt.datetime.fromisoformat(str(text))))
            except ValueError:
                continue
        return max(found) if found else None
