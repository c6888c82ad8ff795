"""The tamper-evident audit log shared by hub and node (Art. 24).

Each entry carries ``entry_hash = MAC(key, prev_hash ‖ canonical(entry))``: altering an entry
breaks its own hash, removing or inserting one breaks the link of the next. Writers serialise on
the chain (an advisory lock on PostgreSQL, the single writer on SQLite), so the chain is a line.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from ggzy.security.crypto import Digest

__all__ = ["GENESIS", "AuditEntry", "AuditLog", "ChainBreak", "define_audit_table"]

GENESIS = "0" * 64
_ADVISORY_LOCK = 0x6767_7A79_6175_6474  # "ggzyaudt": one chain per database


def define_audit_table(metadata: MetaData) -> Table:
    return Table(
        "audit_log",
        metadata,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
        Column("at", DateTime(timezone=True), nullable=False, index=True),
        Column("account", String(128), nullable=False),
        Column("role", String(32), nullable=False),
        Column("source", String(64), nullable=False),
        Column("action", String(64), nullable=False, index=True),
        Column("object", String(512), nullable=False),
        Column("outcome", String(16), nullable=False),
        Column("request_id", String(64), nullable=False),
        Column("detail", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
        Column("prev_hash", String(64), nullable=False),
        Column("entry_hash", String(64), nullable=False),
    )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    action: str
    object: str
    outcome: str  # success | failure | refused
    account: str = "-"
    role: str = "-"
    source: str = "-"
    request_id: str = "-"
    detail: Mapping[str, Any] = field(default_factory=dict)
    at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class ChainBreak:
    entry_id: int
    reason: str  # altered | removed-or-inserted


def _canonical(row: Mapping[Any, Any]) -> bytes:
    at = row["at"]
    if isinstance(at, dt.datetime):
        at = (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).isoformat()
    fields = [
        str(row["id"]),
        str(at),
        row["account"],
        row["role"],
        row["source"],
        row["action"],
        row["object"],
        row["outcome"],
        row["request_id"],
        json.dumps(row["detail"], sort_keys=True, ensure_ascii=False, separators=(",", ":")),
    ]
    return "\x1f".join(fields).encode()


class AuditLog:
    """Append entries to, and verify, the chain in ``table`` with ``key``."""

    def __init__(self, table: Table, key: bytes, digest: Digest = Digest.SM3) -> None:
        self.table = table
        self.key = key
        self.digest = digest

    def _hash(self, prev_hash: str, row: Mapping[Any, Any]) -> str:
        return self.digest.mac_hex(self.key, prev_hash.encode() + b"\x1e" + _canonical(row))

    def append(self, connection: Connection, entry: AuditEntry) -> int:
        """Add ``entry`` inside the caller's transaction; returns its id."""
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})
        last = connection.execute(
            select(self.table.c.id, self.table.c.entry_hash).order_by(self.table.c.id.desc()).limit(1)
        ).first()
        prev_hash = last.entry_hash if last else GENESIS
        next_id = (last.id + 1) if last else 1
        row: dict[str, Any] = {
            "id": next_id,
            "at": (entry.at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC),
            "account": entry.account[:128],
            "role": entry.role[:32],
            "source": entry.source[:64],
            "action": entry.action[:64],
            "object": entry.object[:512],
            "outcome": entry.outcome[:16],
            "request_id": entry.request_id[:64],
            "detail": dict(entry.detail),
        }
        row["prev_hash"] = prev_hash
        row["entry_hash"] = self._hash(prev_hash, row)
        connection.execute(insert(self.table), row)
        return next_id

    def verify(self, connection: Connection) -> ChainBreak | None:
        """The first entry that was altered, removed or inserted, or None when the chain is whole."""
        prev_hash, prev_id = GENESIS, 0
        rows = connection.execute(select(self.table).order_by(self.table.c.id)).mappings()
        for row in rows:
            if row["id"] != prev_id + 1 or row["prev_hash"] != prev_hash:
                return ChainBreak(row["id"], "removed-or-inserted")
            if row["entry_hash"] != self._hash(prev_hash, row):
                return ChainBreak(row["id"], "altered")
            prev_hash, prev_id = row["entry_hash"], row["id"]
        return None
