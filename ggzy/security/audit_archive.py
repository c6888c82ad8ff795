"""Archive audit entries past the retention period to a signed file, then (and only then) remove them.

The file is JSON lines: a header (range, the hash before the first entry, the hash of the last),
then one line per entry exactly as stored. Beside it, ``<file>.sig`` holds the file's digest and a
seal-key MAC over it. One transaction then appends an ``audit.archive`` entry carrying the digest to
the chain, writes the signed archive record (from which verification of the remaining chain
continues), and deletes the archived entries under a purge permit the append-only trigger accepts.
A cut-off inside the retention period is refused and the refusal is itself audited.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, text

from ggzy.security.audit import GENESIS, AuditEntry, AuditLog, ChainBreak
from ggzy.security.crypto import constant_time_equal
from ggzy.store.database import writing

__all__ = ["Actor", "ArchiveRefused", "ArchiveResult", "archive_expired", "verify_archive_file"]

FORMAT = "ggzy-audit-archive/1"
_ADVISORY_LOCK = 0x6767_7A79_6175_6474  # the audit chain's lock: archiving and appending exclude each other


class ArchiveRefused(Exception):
    def __init__(self, code: str, message_zh: str) -> None:
        super().__init__(f"{code}: {message_zh}")
        self.code = code
        self.message_zh = message_zh


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    archive_id: int
    file: Path
    entries: int
    first_id: int
    last_id: int
    digest: str


@dataclass(frozen=True, slots=True)
class Actor:
    account: str = "-"
    role: str = "-"
    source: str = "-"


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _entry_json(row: Mapping[str, Any]) -> dict[str, Any]:
    entry = dict(row)
    entry["at"] = _aware(entry["at"]).astimezone(dt.UTC).isoformat()
    return entry


def archive_expired(
    engine: Engine,
    log: AuditLog,
    directory: Path,
    *,
    retention_days: int,
    before: dt.datetime | None = None,
    now: dt.datetime | None = None,
    actor: Actor | None = None,
) -> ArchiveResult | None:
    """Archive the entries older than ``before`` (default: the retention limit); None if there are none."""
    assert log.tables is not None, "archiving needs the checkpoint and archive tables"
    tables = log.tables
    actor = actor or Actor()
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    limit = now - dt.timedelta(days=retention_days)
    cutoff = _aware(before).astimezone(dt.UTC) if before is not None else limit
    if cutoff > limit:
        _audit(engine, log, actor, "refused", {"cutoff": cutoff.isoformat(), "reason": "E-AUDIT-EARLY-PURGE"})
        raise ArchiveRefused(
            "E-AUDIT-EARLY-PURGE",
            f"拒绝提前清除：审计日志须保留 {retention_days} 天，只能归档 {limit:%Y-%m-%d %H:%M} (UTC) 之前的记录",
        )
    with engine.connect() as connection:
        problem = log.verify(connection)
    if problem is not None:
        _audit(engine, log, actor, "refused", {"reason": "E-AUDIT-CHAIN-BROKEN", "entry": problem.entry_id})
        raise ArchiveRefused("E-AUDIT-CHAIN-BROKEN", f"审计日志校验未通过，拒绝归档：{problem.message_zh}")
    with engine.connect() as plain:
        connection = plain.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})
            rows = list(_expired_prefix(connection, log, cutoff))
            if not rows:
                return None
            first, last = rows[0], rows[-1]
            directory.mkdir(parents=True, exist_ok=True)
            name = f"audit-{first['id']:012d}-{last['id']:012d}.jsonl"
            path = directory / name
            digest = _write_file(path, log, rows, cutoff)
            archive_id = (
                connection.execute(select(func.coalesce(func.max(tables.archives.c.id), 0))).scalar_one() + 1
            )
            log.append(
                connection,
                AuditEntry(
                    action="audit.archive",
                    object=f"audit:{first['id']}-{last['id']}",
                    outcome="success",
                    account=actor.account,
                    role=actor.role,
                    source=actor.source,
                    detail={
                        "file": name,
                        "digest": digest,
                        "entries": len(rows),
                        "tail_hash": last["entry_hash"],
                    },
                ),
            )
            record: dict[str, Any] = {
                "id": archive_id,
                "at": now.replace(microsecond=0),
                "cutoff": cutoff.replace(microsecond=0),
                "first_entry_id": first["id"],
                "last_entry_id": last["id"],
                "entries": len(rows),
                "tail_hash": last["entry_hash"],
                "file_name": name,
                "file_digest": digest,
            }
            record["signature"] = log.archive_signature(record)
            connection.execute(insert(tables.archives), record)
            connection.execute(insert(tables.purge_permits), {"archive_id": archive_id})
            connection.execute(delete(tables.log).where(tables.log.c.id <= last["id"]))
            connection.execute(delete(tables.purge_permits))
    return ArchiveResult(archive_id, path, len(rows), int(first["id"]), int(last["id"]), digest)


def _expired_prefix(connection: Connection, log: AuditLog, cutoff: dt.datetime) -> Iterator[dict[str, Any]]:
    """The oldest entries up to the first one at or after ``cutoff``: the chain is cut at one point."""
    for row in connection.execute(select(log.table).order_by(log.table.c.id)).mappings():
        if _aware(row["at"]) >= cutoff:
            return
        yield dict(row)


def _write_file(path: Path, log: AuditLog, rows: list[dict[str, Any]], cutoff: dt.datetime) -> str:
    header = {
        "format": FORMAT,
        "digest": log.digest.value,
        "first": rows[0]["id"],
        "last": rows[-1]["id"],
        "entries": len(rows),
        "prev_hash": rows[0]["prev_hash"],
        "tail_hash": rows[-1]["entry_hash"],
        "cutoff": cutoff.isoformat(),
    }
    lines = [json.dumps(header, ensure_ascii=False, sort_keys=True)]
    lines += [json.dumps(_entry_json(r), ensure_ascii=False, sort_keys=True) for r in rows]
    data = ("\n".join(lines) + "\n").encode()
    digest = log.digest.hash_hex(data)
    signature = {"file": path.name, "digest_algorithm": log.digest.value, "digest": digest}
    signature["signature"] = log.seal("archive-file", path.name, digest)
    _write_durably(path, data)
    _write_durably(path.with_name(path.name + ".sig"), json.dumps(signature, indent=1).encode())
    return digest


def _write_durably(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def verify_archive_file(path: Path, log: AuditLog) -> ChainBreak | None:
    """Check an archive file's signature and the chain inside it; the first problem or None."""
    data = path.read_bytes()
    signature = json.loads(path.with_name(path.name + ".sig").read_text(encoding="utf-8"))
    digest = log.digest.hash_hex(data)
    lines = data.decode().splitlines()
    header = json.loads(lines[0])
    first = int(header["first"])
    if not constant_time_equal(digest, signature["digest"]) or not constant_time_equal(
        signature["signature"], log.seal("archive-file", path.name, signature["digest"])
    ):
        return ChainBreak(first, "archive-altered", "file digest or signature does not match")
    prev_id, prev_hash = first - 1, str(header.get("prev_hash", GENESIS))
    for line in lines[1:]:
        row = json.loads(line)
        row["at"] = dt.datetime.fromisoformat(row["at"])
        if row["id"] != prev_id + 1 or row["prev_hash"] != prev_hash:
            return ChainBreak(int(row["id"]), "removed-or-inserted")
        if not constant_time_equal(row["entry_hash"], log._hash(prev_hash, row)):
            return ChainBreak(int(row["id"]), "altered")
        prev_id, prev_hash = int(row["id"]), str(row["entry_hash"])
    if prev_hash != header["tail_hash"] or prev_id != int(header["last"]):
        return ChainBreak(prev_id + 1, "truncated")
    return None


def _audit(engine: Engine, log: AuditLog, actor: Actor, outcome: str, detail: dict[str, Any]) -> None:
    with writing(engine) as connection:
        log.append(
            connection,
            AuditEntry(
                action="audit.archive",
                object="audit",
                outcome=outcome,
                account=actor.account,
                role=actor.role,
                source=actor.source,
                detail=detail,
            ),
        )
