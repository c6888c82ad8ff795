"""The audit log against someone who holds its host: anchors off the host find what the chain cannot.

Each attack passed verification before anchors existed (the first assertion of each test shows it
still passes without them): deleting every entry and checkpoint, deleting the tail after the newest
checkpoint, deleting the newest checkpoint and what follows, rewriting an entry and signing everything
again with the keys on the host. With the anchors (the hub's append-only file; a node's checkpoints
at the hub) each is reported broken.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from auditdb import drop_triggers, fill, make_log, migrated
from sqlalchemy import Engine, delete, select, update

from ggzy.hub.models import audit_log, audit_tables
from ggzy.security.audit import GENESIS, AuditLog
from ggzy.security.audit_anchor import Anchor, AnchorFile, AnchorSinks, newest_anchor
from ggzy.store.database import writing


@pytest.fixture
def sqlite_url(sqlite_templates: object, tmp_path: Path) -> str:
    """The attacks below on SQLite; emptying the log runs on PostgreSQL too (its triggers differ)."""
    return sqlite_templates.copy("hub", tmp_path / "hub.db")  # type: ignore[attr-defined]


def _anchored(engine: Engine, log: AuditLog, folder: Path) -> tuple[AnchorSinks, list[Anchor]]:
    """Seal the tail and anchor it in the off-host file, as the hub's service does every minute."""
    sinks = AnchorSinks("hub", AnchorFile(folder / "audit-anchors-hub.jsonl"))
    sinks.seal_and_export(engine, log)
    return sinks, sinks.anchors().anchors


def _check(engine: Engine, log: AuditLog, anchors: list[Anchor] | None = None) -> str | None:
    with engine.connect() as connection:
        problem = log.verify(connection, anchors or [])
    return problem.reason if problem else None


def test_emptying_the_log_and_its_checkpoints_is_found(hub_db_url: str, tmp_path: Path) -> None:
    engine, log = migrated(hub_db_url), make_log()
    fill(engine, log, 12)
    _sinks, anchors = _anchored(engine, log, tmp_path)
    drop_triggers(engine)
    with writing(engine) as connection:
        connection.execute(delete(audit_log))
        connection.execute(delete(audit_tables.checkpoints))
    assert _check(engine, log) is None  # what the chain alone says: an empty log is a whole log
    assert _check(engine, log, anchors) == "anchor-truncated"


def test_deleting_the_tail_after_the_newest_checkpoint_is_found(sqlite_url: str, tmp_path: Path) -> None:
    engine, log = migrated(sqlite_url), make_log(every=5)
    fill(engine, log, 13)  # checkpoints at 1, 6, 11; 12 and 13 after the newest
    _sinks, anchors = _anchored(engine, log, tmp_path)  # the service seals 13 and anchors it
    drop_triggers(engine)
    with writing(engine) as connection:
        connection.execute(delete(audit_log).where(audit_log.c.id > 11))
        connection.execute(
            delete(audit_tables.checkpoints).where(audit_tables.checkpoints.c.last_entry_id > 11)
        )
    assert _check(engine, log) is None
    assert _check(engine, log, anchors) == "anchor-truncated"


def test_deleting_the_newest_checkpoint_and_what_follows_is_found(sqlite_url: str, tmp_path: Path) -> None:
    engine, log = migrated(sqlite_url), make_log(every=5)
    fill(engine, log, 13)
    _sinks, anchors = _anchored(engine, log, tmp_path)
    drop_triggers(engine)
    with writing(engine) as connection:
        newest = (
            connection.execute(
                select(audit_tables.checkpoints.c.id).order_by(audit_tables.checkpoints.c.id.desc())
            )
            .scalars()
            .all()[:2]
        )
        connection.execute(delete(audit_tables.checkpoints).where(audit_tables.checkpoints.c.id.in_(newest)))
        connection.execute(delete(audit_log).where(audit_log.c.id >= 11))
    assert _check(engine, log) is None
    assert _check(engine, log, anchors) == "anchor-truncated"


def test_rewriting_an_entry_and_signing_again_is_found(sqlite_url: str, tmp_path: Path) -> None:
    engine, log = migrated(sqlite_url), make_log(every=5)
    fill(engine, log, 13)
    _sinks, anchors = _anchored(engine, log, tmp_path)
    drop_triggers(engine)
    _rewrite(engine, log, entry=4, account="someone-else")
    assert _check(engine, log) is None  # re-signed with the keys on the host: the chain checks
    assert _check(engine, log, anchors) == "anchor-mismatch"


def _rewrite(engine: Engine, log: AuditLog, entry: int, account: str) -> None:
    """Change one entry, then recompute every later hash and every checkpoint with the host's keys."""
    checkpoints = audit_tables.checkpoints
    with writing(engine) as connection:
        connection.execute(update(audit_log).where(audit_log.c.id == entry).values(account=account))
        prev = GENESIS
        hashes: dict[int, str] = {}
        for row in connection.execute(select(audit_log).order_by(audit_log.c.id)).mappings().all():
            fresh = log._hash(prev, row)
            connection.execute(
                update(audit_log).where(audit_log.c.id == row["id"]).values(prev_hash=prev, entry_hash=fresh)
            )
            hashes[int(row["id"])] = prev = fresh
        previous = GENESIS
        for row in connection.execute(select(checkpoints).order_by(checkpoints.c.id)).mappings().all():
            values = dict(row) | {"last_entry_hash": hashes[row["last_entry_id"]], "prev_signature": previous}
            values["signature"] = log.checkpoint_signature(values)
            connection.execute(update(checkpoints).where(checkpoints.c.id == row["id"]).values(**values))
            previous = values["signature"]


def test_the_anchor_file_is_appended_once_per_checkpoint_and_kept_private(
    tmp_path: Path, sqlite_url: str
) -> None:
    import stat

    engine, log = migrated(sqlite_url), make_log(every=100)
    fill(engine, log, 3)
    sinks = AnchorSinks("hub", AnchorFile(tmp_path / "a.jsonl"))
    first = sinks.seal_and_export(engine, log)
    again = sinks.seal_and_export(engine, log)  # nothing new: no second checkpoint, no second line
    assert first == again and first is not None and first.entry_id == 3
    fill(engine, log, 2)
    sinks.seal_and_export(engine, log)
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    assert len(lines) == 2 and stat.S_IMODE((tmp_path / "a.jsonl").stat().st_mode) == 0o600
    assert [a.entry_id for a in sinks.anchors().anchors] == [3, 5]


def test_anchors_go_to_syslog_too(tmp_path: Path, sqlite_url: str) -> None:
    import socket

    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    try:
        engine, log = migrated(sqlite_url), make_log(every=100)
        fill(engine, log, 2)
        port = receiver.getsockname()[1]
        AnchorSinks("hub", None, f"udp://127.0.0.1:{port}").seal_and_export(engine, log)
        message = receiver.recv(4096).decode()
    finally:
        receiver.close()
    assert "ggzy-audit-anchor" in message and '"entry": 2' in message


def test_newest_anchor_is_the_newest_checkpoint(sqlite_url: str) -> None:
    engine, log = migrated(sqlite_url), make_log(every=5)
    fill(engine, log, 7)
    with engine.connect() as connection:
        anchor = newest_anchor(connection, log)
    assert anchor is not None and (anchor.sequence, anchor.entry_id) == (2, 6)
    assert anchor.at.tzinfo is not None and anchor.at <= dt.datetime.now(dt.UTC)


def test_the_auditors_page_shows_the_chain_and_the_anchors(hub_people: object) -> None:
    page = hub_people.client("auditor").get("/portal/audit?verify=true")  # type: ignore[attr-defined]
    assert page.status_code == 200
    assert 'id="chain-status"' in page.text and "审计链完整" in page.text
    assert (
        'id="anchor-status"' in page.text and "未配置异地锚点" in page.text
    )  # this test hub has no off-host dir
