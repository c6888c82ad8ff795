"""The tamper-evident audit log shared by hub and node (Art. 24).

Each entry carries ``entry_hash = MAC(key, prev_hash ‖ canonical(entry))``: altering an entry
breaks its own hash, removing or inserting one breaks the link of the next. Writers serialise on
the chain (an advisory lock on PostgreSQL, the single writer on SQLite), so the chain is a line.

A chain alone cannot show that its *tail* was cut off: the shorter chain is still a valid chain.
So every ``checkpoint_every`` entries or ``checkpoint_minutes`` (whichever comes first) a
**checkpoint** row records the id and hash of the newest entry, signed with a second key (the
seal key, HMAC over the same digest) and chained to the checkpoint before it. Verification checks
that every checkpointed entry is still there with the same hash, so removing entries after a
checkpoint is found; what can go unnoticed is at most the entries written since the newest
checkpoint, which is why ``ggzy audit checkpoint`` can also be run on a timer.

Entries older than the retention period leave the database only through
:mod:`ggzy.security.audit_archive`; the archive row (signed) carries the hash of the last archived
entry, from which the verification of the remaining chain continues. Both keys live in files
outside the database (``audit.key``, ``audit-seal.key``). The migrations add triggers that refuse
UPDATE and DELETE on the audit tables, except a DELETE inside an archive transaction (which holds
a row in ``audit_purge_permits``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

from ggzy.security.crypto import Digest, constant_time_equal

if TYPE_CHECKING:
    from ggzy.security.audit_anchor import Anchor
    from ggzy.settings import AuditSettings

__all__ = [
    "GENESIS",
    "AuditActor",
    "AuditEntry",
    "AuditLog",
    "AuditReport",
    "AuditTables",
    "ChainBreak",
    "append_only_ddl",
    "define_audit_table",
    "define_audit_tables",
    "drop_append_only_ddl",
    "open_audit_log",
]

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
class AuditActor:
    """Who made a change, as its audit entry names them (a person at a page or a command line)."""

    account: str
    role: str
    source: str = "-"
    request_id: str = "-"

    def success(self, action: str, target: str, **detail: Any) -> AuditEntry:
        return AuditEntry(
            action=action,
            object=target,
            outcome="success",
            account=self.account,
            role=self.role,
            source=self.source,
            request_id=self.request_id,
            detail=detail,
        )


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where verification first failed. ``reason``: altered | removed | removed-or-inserted | truncated
    | checkpoint-altered | checkpoint-removed | archive-altered | archive-missing | anchor-truncated
    | anchor-mismatch (the last two against anchors kept off the host, ``ggzy.security.audit_anchor``)."""

    entry_id: int
    reason: str
    detail: str = ""

    @property
    def message_zh(self) -> str:
        n = self.entry_id
        return {
            "altered": f"第 {n} 条审计记录被篡改或伪造（内容与其校验值不符）",
            "removed": f"第 {n} 条之前有审计记录被删除（编号不连续）",
            "removed-or-inserted": f"第 {n} 条与前一条不衔接：其前有记录被删除或插入",
            "truncated": f"审计日志末尾被截断：签名检查点记录到第 {n} 条，现已缺失",
            "checkpoint-altered": f"记录到第 {n} 条的检查点签名无效或与记录不符（检查点被篡改）",
            "checkpoint-removed": f"记录到第 {n} 条的检查点之前有检查点被删除",
            "archive-altered": f"归档到第 {n} 条的归档记录签名无效（被篡改）",
            "archive-missing": f"第 {n} 条之前的审计记录既不在库中也无归档记录（被删除）",
            "anchor-truncated": f"异地锚点记录到第 {n} 条，本地审计日志已没有这一条（末尾或整个日志被删除）",
            "anchor-mismatch": f"第 {n} 条与异地锚点记录的校验值不符（记录被改写后重新签名）",
        }.get(self.reason, f"第 {n} 条：{self.reason}")


@dataclass(frozen=True, slots=True)
class AuditReport:
    """What ``verify`` read: the entries present, checkpoints, archives, and the first break if any."""

    entries: int
    first_id: int | None
    last_id: int | None
    checkpoints: int
    archives: int
    archived_through: int
    problem: ChainBreak | None
    newest_checkpoint_at: dt.datetime | None = None
    unchecked_tail: int = 0  # entries after the newest checkpoint: not yet protected against truncation
    anchors: int = 0  # anchors kept off the host that were compared
    anchored_through: int = 0  # the newest entry an anchor vouches for


@dataclass(frozen=True, slots=True)
class AuditTables:
    log: Table
    checkpoints: Table
    archives: Table
    purge_permits: Table


_Id = BigInteger().with_variant(Integer(), "sqlite")
_Timestamp = DateTime(timezone=True)


def define_audit_tables(metadata: MetaData) -> AuditTables:
    """The chain, its signed checkpoints, the archive records, and the archive's delete permit."""
    log = define_audit_table(metadata)
    checkpoints = Table(
        "audit_checkpoints",
        metadata,
        Column("id", _Id, primary_key=True, autoincrement=False),
        Column("at", _Timestamp, nullable=False),
        Column("last_entry_id", BigInteger, nullable=False),
        Column("last_entry_hash", String(64), nullable=False),
        Column("prev_signature", String(64), nullable=False),
        Column("signature", String(64), nullable=False),
    )
    archives = Table(
        "audit_archives",
        metadata,
        Column("id", _Id, primary_key=True, autoincrement=False),
        Column("at", _Timestamp, nullable=False),
        Column("cutoff", _Timestamp, nullable=False),
        Column("first_entry_id", BigInteger, nullable=False),
        Column("last_entry_id", BigInteger, nullable=False),
        Column("entries", Integer, nullable=False),
        Column("tail_hash", String(64), nullable=False),
        Column("file_name", String(256), nullable=False),
        Column("file_digest", String(64), nullable=False),
        Column("signature", String(64), nullable=False),
    )
    purge_permits = Table(
        "audit_purge_permits",
        metadata,
        Column("archive_id", _Id, primary_key=True, autoincrement=False),
    )
    return AuditTables(log, checkpoints, archives, purge_permits)


_APPEND_ONLY_TABLES = ("audit_log", "audit_checkpoints", "audit_archives")
_REFUSAL = "E-AUDIT-APPEND-ONLY: the audit log is append-only"


def append_only_ddl(dialect: str) -> list[str]:
    """Triggers refusing UPDATE and DELETE on the audit tables (DELETE of entries only while archiving)."""
    if dialect == "postgresql":
        statements = [
            "CREATE OR REPLACE FUNCTION ggzy_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN "
            "IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_log' "
            "AND EXISTS (SELECT 1 FROM audit_purge_permits) THEN RETURN OLD; END IF; "
            f"RAISE EXCEPTION '{_REFUSAL}'; "
            "END $$"
        ]
        statements += [
            f"CREATE TRIGGER {name}_append_only BEFORE UPDATE OR DELETE ON {name} "
            "FOR EACH ROW EXECUTE FUNCTION ggzy_audit_append_only()"
            for name in _APPEND_ONLY_TABLES
        ]
        return statements
    statements = []
    for name in _APPEND_ONLY_TABLES:
        permit = " WHEN NOT EXISTS (SELECT 1 FROM audit_purge_permits)" if name == "audit_log" else ""
        statements.append(
            f"CREATE TRIGGER {name}_no_update BEFORE UPDATE ON {name} "
            f"BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END"
        )
        statements.append(
            f"CREATE TRIGGER {name}_no_delete BEFORE DELETE ON {name}{permit} "
            f"BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END"
        )
    return statements


def drop_append_only_ddl(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS {name}_{kind} ON {name}"
            for name in _APPEND_ONLY_TABLES
            for kind in ("append_only", "no_truncate")  # no_truncate: hub migration 0011, node 0009
        ] + ["DROP FUNCTION IF EXISTS ggzy_audit_append_only()"]
    return [
        f"DROP TRIGGER IF EXISTS {name}_{kind}"
        for name in _APPEND_ONLY_TABLES
        for kind in ("no_update", "no_delete")
    ]


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
    """Append entries to, and verify, the chain in ``tables`` with ``key``.

    With a ``seal_key`` (and the checkpoint table, i.e. :class:`AuditTables`), appends write signed
    checkpoints every ``checkpoint_every`` entries or ``checkpoint_minutes``; without one, the log is
    a plain chain (as before checkpoints existed) and verification skips what needs the seal key.
    """

    def __init__(
        self,
        tables: Table | AuditTables,
        key: bytes,
        digest: Digest = Digest.SM3,
        *,
        seal_key: bytes | None = None,
        checkpoint_every: int = 100,
        checkpoint_minutes: float = 10.0,
    ) -> None:
        self.tables = tables if isinstance(tables, AuditTables) else None
        self.table = tables.log if isinstance(tables, AuditTables) else tables
        self.key = key
        self.digest = digest
        self.seal_key = seal_key
        self.checkpoint_every = max(1, checkpoint_every)
        self.checkpoint_interval = dt.timedelta(minutes=checkpoint_minutes)

    def _hash(self, prev_hash: str, row: Mapping[Any, Any]) -> str:
        return self.digest.mac_hex(self.key, prev_hash.encode() + b"\x1e" + _canonical(row))

    def seal(self, *parts: object) -> str:
        """The seal-key MAC of ``parts`` (checkpoints, archive records, archive files)."""
        if self.seal_key is None:
            raise RuntimeError("no audit seal key configured")
        return self.digest.mac_hex(self.seal_key, "\x1f".join(_text(p) for p in parts).encode())

    def append(self, connection: Connection, entry: AuditEntry) -> int:
        """Add ``entry`` inside the caller's transaction; returns its id."""
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})
        prev_id, prev_hash = self._tail(connection)
        next_id = prev_id + 1
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
        if self._sealing:
            newest = self._newest_checkpoint(connection)
            now = dt.datetime.now(dt.UTC)
            if (
                newest is None
                or next_id - newest.last_entry_id >= self.checkpoint_every
                or now - _aware(newest.at) >= self.checkpoint_interval
            ):
                self._write_checkpoint(connection, next_id, row["entry_hash"], newest, now)
        return next_id

    def unsealed(self, connection: Connection) -> bool:
        """Whether entries were written after the newest checkpoint (a read: no write lock taken)."""
        if not self._sealing:
            return False
        last_id, _hash = self._tail(connection)
        newest = self._newest_checkpoint(connection)
        return last_id > 0 and (newest is None or newest.last_entry_id < last_id)

    def seal_tail(self, connection: Connection) -> int | None:
        """A checkpoint of the tail when entries were written after the newest one (run by the
        services every ``checkpoint_minutes`` and by each node heartbeat); its id, or None."""
        if not self._sealing:
            return None
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})
        last_id, last_hash = self._tail(connection)
        newest = self._newest_checkpoint(connection)
        if last_id == 0 or (newest is not None and newest.last_entry_id >= last_id):
            return None
        return self._write_checkpoint(connection, last_id, last_hash, newest, dt.datetime.now(dt.UTC))

    def checkpoint(self, connection: Connection) -> int | None:
        """Seal the current tail now (run on a timer, so an idle log is sealed too); the checkpoint id."""
        if not self._sealing:
            return None
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})
        last_id, last_hash = self._tail(connection)
        if last_id == 0:
            return None
        newest = self._newest_checkpoint(connection)
        return self._write_checkpoint(connection, last_id, last_hash, newest, dt.datetime.now(dt.UTC))

    @property
    def _sealing(self) -> bool:
        return self.seal_key is not None and self.tables is not None

    def _tail(self, connection: Connection) -> tuple[int, str]:
        """The newest entry's id and hash; after an archive of everything, the archived tail."""
        last = connection.execute(
            select(self.table.c.id, self.table.c.entry_hash).order_by(self.table.c.id.desc()).limit(1)
        ).first()
        if last is not None:
            return int(last.id), str(last.entry_hash)
        if self.tables is not None:
            archived = connection.execute(
                select(self.tables.archives.c.last_entry_id, self.tables.archives.c.tail_hash)
                .order_by(self.tables.archives.c.id.desc())
                .limit(1)
            ).first()
            if archived is not None:
                return int(archived.last_entry_id), str(archived.tail_hash)
        return 0, GENESIS

    def _newest_checkpoint(self, connection: Connection) -> Any:
        assert self.tables is not None
        table = self.tables.checkpoints
        return connection.execute(select(table).order_by(table.c.id.desc()).limit(1)).first()

    def checkpoint_signature(self, row: Mapping[str, Any]) -> str:
        return self.seal(
            "checkpoint",
            row["id"],
            row["at"],
            row["last_entry_id"],
            row["last_entry_hash"],
            row["prev_signature"],
        )

    def _write_checkpoint(
        self, connection: Connection, last_id: int, last_hash: str, newest: Any, now: dt.datetime
    ) -> int:
        assert self.tables is not None
        row: dict[str, Any] = {
            "id": (newest.id + 1) if newest is not None else 1,
            "at": now.replace(microsecond=0),
            "last_entry_id": last_id,
            "last_entry_hash": last_hash,
            "prev_signature": newest.signature if newest is not None else GENESIS,
        }
        row["signature"] = self.checkpoint_signature(row)
        connection.execute(insert(self.tables.checkpoints), row)
        return int(row["id"])

    def archive_signature(self, row: Mapping[str, Any]) -> str:
        return self.seal(
            "archive",
            row["id"],
            row["at"],
            row["cutoff"],
            row["first_entry_id"],
            row["last_entry_id"],
            row["entries"],
            row["tail_hash"],
            row["file_name"],
            row["file_digest"],
        )

    def verify(self, connection: Connection, anchors: Sequence[Anchor] = ()) -> ChainBreak | None:
        """The first entry that was altered, removed or inserted, or None when the chain is whole."""
        return self.report(connection, anchors).problem

    def report(self, connection: Connection, anchors: Sequence[Anchor] = ()) -> AuditReport:
        """Read the whole chain, its archives and checkpoints; the first break, by entry id.

        ``anchors`` (checkpoints kept off the host) must each still be in the chain: a log shorter
        than an anchor, or an anchored entry with another hash, is broken however well it is signed.
        """
        problems: list[ChainBreak] = []
        prev_id, prev_hash = 0, GENESIS
        archives: list[Any] = []
        checkpoints: list[Any] = []
        if self.tables is not None:
            archives = list(
                connection.execute(select(self.tables.archives).order_by(self.tables.archives.c.id))
            )
            checkpoints = list(
                connection.execute(select(self.tables.checkpoints).order_by(self.tables.checkpoints.c.id))
            )
        for index, archive in enumerate(archives):
            if self.seal_key is not None and not constant_time_equal(
                archive.signature, self.archive_signature(archive._mapping)
            ):
                problems.append(ChainBreak(int(archive.last_entry_id), "archive-altered"))
            if archive.id != index + 1 or archive.first_entry_id != prev_id + 1:
                problems.append(ChainBreak(int(archive.first_entry_id), "archive-missing"))
            prev_id, prev_hash = int(archive.last_entry_id), str(archive.tail_hash)
        archived_through = prev_id
        expected: dict[int, str] = {}
        prev_signature = GENESIS
        for index, checkpoint in enumerate(checkpoints):
            if checkpoint.id != index + 1 or checkpoint.prev_signature != prev_signature:
                problems.append(ChainBreak(int(checkpoint.last_entry_id), "checkpoint-removed"))
            if self.seal_key is not None and not constant_time_equal(
                checkpoint.signature, self.checkpoint_signature(checkpoint._mapping)
            ):
                problems.append(ChainBreak(int(checkpoint.last_entry_id), "checkpoint-altered"))
            prev_signature = checkpoint.signature
            if checkpoint.last_entry_id > archived_through:
                expected[int(checkpoint.last_entry_id)] = str(checkpoint.last_entry_hash)
        entries, first_id = 0, None
        chain_ok = True
        anchored = {a.entry_id for a in anchors}
        present: dict[int, str] = {}
        for row in connection.execute(select(self.table).order_by(self.table.c.id)).mappings():
            entries += 1
            if row["id"] in anchored:
                present[int(row["id"])] = str(row["entry_hash"])
            first_id = first_id if first_id is not None else int(row["id"])
            if not chain_ok:
                prev_id = int(row["id"])
                continue
            if row["id"] != prev_id + 1:
                reason = "removed" if row["id"] > prev_id + 1 else "removed-or-inserted"
                if prev_id == archived_through and archived_through and row["id"] > prev_id + 1:
                    reason = "archive-missing"
                problems.append(ChainBreak(int(row["id"]), reason))
                chain_ok = False
            elif row["prev_hash"] != prev_hash:
                problems.append(ChainBreak(int(row["id"]), "removed-or-inserted"))
                chain_ok = False
            elif not constant_time_equal(row["entry_hash"], self._hash(prev_hash, row)):
                problems.append(ChainBreak(int(row["id"]), "altered"))
                chain_ok = False
            elif row["id"] in expected and not constant_time_equal(expected[row["id"]], row["entry_hash"]):
                problems.append(ChainBreak(int(row["id"]), "checkpoint-altered"))
                chain_ok = False
            prev_id, prev_hash = int(row["id"]), str(row["entry_hash"])
        last_id = prev_id if entries else None
        sealed_through = max(expected, default=0)
        if sealed_through > prev_id:
            problems.append(ChainBreak(prev_id + 1, "truncated", f"checkpoint covers entry {sealed_through}"))
        for anchor in anchors:
            if anchor.entry_id <= archived_through:
                continue  # archived away: the signed archive record vouches for it
            if anchor.entry_id > prev_id or anchor.entry_id not in present:
                problems.append(ChainBreak(anchor.entry_id, "anchor-truncated", f"anchor {anchor.sequence}"))
            elif not constant_time_equal(present[anchor.entry_id], anchor.entry_hash):
                problems.append(ChainBreak(anchor.entry_id, "anchor-mismatch", f"anchor {anchor.sequence}"))
        newest = checkpoints[-1] if checkpoints else None
        return AuditReport(
            entries=entries,
            first_id=first_id,
            last_id=last_id,
            checkpoints=len(checkpoints),
            archives=len(archives),
            archived_through=archived_through,
            problem=min(problems, key=lambda p: p.entry_id) if problems else None,
            newest_checkpoint_at=_aware(newest.at) if newest is not None else None,
            unchecked_tail=max(0, prev_id - max(sealed_through, archived_through)),
            anchors=len(anchors),
            anchored_through=max((a.entry_id for a in anchors), default=0),
        )


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _text(value: object) -> str:
    if isinstance(value, dt.datetime):
        return _aware(value).astimezone(dt.UTC).replace(microsecond=0).isoformat()
    return str(value)


def open_audit_log(
    tables: AuditTables, key_dir: Path, digest: Digest, settings: AuditSettings | None = None
) -> AuditLog:
    """The audit log of one database, with its two keys from ``key_dir`` (made the first time)."""
    from ggzy.security.keys import load_or_create_key

    if settings is None:
        from ggzy.settings import get_settings

        settings = get_settings().audit
    return AuditLog(
        tables,
        load_or_create_key(key_dir / "audit.key"),
        digest,
        seal_key=load_or_create_key(key_dir / "audit-seal.key"),
        checkpoint_every=settings.checkpoint_every,
        checkpoint_minutes=settings.checkpoint_minutes,
    )
