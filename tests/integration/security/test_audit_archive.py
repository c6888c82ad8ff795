"""Archiving past the retention period: signed file, digest in the chain, removal only after, early purge
refused, and verification continuing from the archived tail (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from auditdb import fill, make_log, migrated
from pydantic import ValidationError
from sqlalchemy import select

from ggzy.hub.models import audit_log, audit_tables
from ggzy.security.audit_archive import ArchiveRefused, archive_expired, verify_archive_file
from ggzy.settings import AuditSettings
from ggzy.store.database import writing

NOW = dt.datetime(2027, 6, 1, tzinfo=dt.UTC)
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_archive_then_verify_the_rest_and_the_file(hub_db_url: str, tmp_path: Path) -> None:
    engine, log = migrated(hub_db_url), make_log()
    fill(engine, log, 12, start=START)  # hours 0..11 of 2026-01-01
    before = START + dt.timedelta(hours=8)  # entries 1..8 are older
    result = archive_expired(engine, log, tmp_path, retention_days=366, before=before, now=NOW)
    assert result is not None and (result.first_id, result.last_id, result.entries) == (1, 8, 8)
    with engine.connect() as connection:
        ids = connection.execute(select(audit_log.c.id).order_by(audit_log.c.id)).scalars().all()
        report = log.report(connection)
        entry = connection.execute(select(audit_log).where(audit_log.c.action == "audit.archive")).one()
    assert ids == [9, 10, 11, 12, 13]  # 13: the archive entry itself, carrying the file's digest
    assert entry.detail["digest"] == result.digest and entry.detail["file"] == result.file.name
    assert report.problem is None and report.archived_through == 8
    assert verify_archive_file(result.file, log) is None
    lines = result.file.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines[1:]] == list(range(1, 9))
    fill(engine, log, 2, start=NOW)  # the chain goes on after the archive
    with engine.connect() as connection:
        assert log.verify(connection) is None


def test_a_changed_archive_file_is_found(hub_db_url: str, tmp_path: Path) -> None:
    engine, log = migrated(hub_db_url), make_log()
    fill(engine, log, 6, start=START)
    result = archive_expired(engine, log, tmp_path, retention_days=366, now=NOW)
    assert result is not None and result.entries == 6
    text = result.file.read_text(encoding="utf-8").replace("record:3", "record:X")
    result.file.write_text(text, encoding="utf-8")
    problem = verify_archive_file(result.file, log)
    assert problem is not None and problem.reason == "archive-altered"


def test_early_purge_is_refused_and_audited(hub_db_url: str, tmp_path: Path) -> None:
    engine, log = migrated(hub_db_url), make_log()
    fill(engine, log, 6, start=NOW - dt.timedelta(days=30))
    with pytest.raises(ArchiveRefused) as refused:
        archive_expired(engine, log, tmp_path, retention_days=366, before=NOW, now=NOW)
    assert refused.value.code == "E-AUDIT-EARLY-PURGE"
    with engine.connect() as connection:
        rows = connection.execute(select(audit_log).order_by(audit_log.c.id)).all()
    assert len(rows) == 7 and rows[-1].action == "audit.archive" and rows[-1].outcome == "refused"
    # Entries inside the retention period are never archived by default either.
    assert archive_expired(engine, log, tmp_path, retention_days=366, now=NOW) is None
    assert not list(tmp_path.glob("*.jsonl"))


def test_deleting_an_archive_record_is_found(hub_db_url: str, tmp_path: Path) -> None:
    from auditdb import drop_triggers
    from sqlalchemy import delete

    engine, log = migrated(hub_db_url), make_log()
    fill(engine, log, 6, start=START)
    assert archive_expired(engine, log, tmp_path, retention_days=366, now=NOW) is not None
    drop_triggers(engine)
    with writing(engine) as connection:
        connection.execute(delete(audit_tables.archives))
    with engine.connect() as connection:
        problem = log.verify(connection)
    assert problem is not None and problem.entry_id == 7


def test_retention_can_only_be_raised() -> None:
    assert AuditSettings(retention_days=400).retention_days == 400
    with pytest.raises(ValidationError, match="E-AUDIT-RETENTION"):
        AuditSettings(retention_days=365)
