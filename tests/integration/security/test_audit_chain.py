"""The audit chain finds every kind of tampering done directly in the database (SQLite and PostgreSQL).

Each test tampers the way an intruder with database access would (after dropping the append-only
triggers) and checks that verification names the first entry concerned. Removing the check named in
each test (entry MAC, id continuity, prev_hash link, checkpoint comparison, checkpoint signature)
makes that test fail.
"""

from __future__ import annotations

import pytest
from auditdb import drop_triggers, fill, make_log, migrated
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from ggzy.hub.models import audit_log, audit_tables
from ggzy.store.database import writing


def test_a_whole_chain_verifies(hub_db_url: str) -> None:
    engine, log = migrated(hub_db_url), make_log()
    fill(engine, log, 20)
    with engine.connect() as connection:
        report = log.report(connection)
    assert report.problem is None
    assert (report.entries, report.first_id, report.last_id) == (20, 1, 20)
    assert report.checkpoints == 4  # entries 1, 6, 11, 16
    assert report.unchecked_tail == 4


def test_altered_entry_is_found(hub_db_url: str) -> None:
    engine, log = migrated(hub_db_url), make_log()
    fill(engine, log, 20)
    drop_triggers(engine)
    with writing(engine) as connection:
        connection.execute(update(audit_log).where(audit_log.c.id == 7).values(outcome="success"))
    with engine.connect() as connection:
        problem = log.verify(connection)
    assert problem is not None and (problem.entry_id, problem.reason) == (7, "altered")
    assert "第 7 条" in problem.message_zh


def test_deleted_entry_is_found(hub_db_url: str) -> None:
    engine, log = migrated(hub_db_url), make_log()
    fill(engine, log, 20)
    drop_triggers(engine)
    with writing(engine) as connection:
        connection.execute(delete(audit_log).where(audit_log.c.id == 7))
    with engine.connect() as connection:
        problem = log.verify(connection)
    assert problem is not None and (problem.entry_id, problem.reason) == (8, "removed")


def test_deleted_and_renumbered_entry_is_found(hub_db_url: str) -> None:
    engine, log = migrated(hub_db_url), make_log()
    fill(engine, log, 20)
    drop_triggers(engine)
    with writing(engine) as connection:  # remove 7 and close the gap so ids stay contiguous
        connection.execute(delete(audit_log).where(audit_log.c.id == 7))
        connection.execute(update(audit_log).where(audit_log.c.id > 7).values(id=audit_log.c.id + 1000))
        connection.execute(update(audit_log).where(audit_log.c.id > 1000).values(id=audit_log.c.id - 1001))
    with engine.connect() as connection:
        problem = log.verify(connection)
    assert problem is not None and (problem.entry_id, problem.reason) == (7, "removed-or-inserted")


def test_inserted_entries_are_found(hub_db_url: str) -> None:
    engine, log = migrated(hub_db_url), make_log()
    fill(engine, log, 20)
    drop_triggers(engine)
    with writing(engine) as connection:
        genuine = dict(connection.execute(select(audit_log).where(audit_log.c.id == 10)).mappings().one())
        # In the middle: make room at 10, put a forged entry there linked to entry 9.
        connection.execute(update(audit_log).where(audit_log.c.id >= 10).values(id=audit_log.c.id + 1000))
        connection.execute(update(audit_log).where(audit_log.c.id > 1000).values(id=audit_log.c.id - 999))
        forged = genuine | {"object": "record:forged", "entry_hash": "f" * 64}
        connection.execute(insert(audit_log), forged)
    with engine.connect() as connection:
        problem = log.verify(connection)
    assert problem is not None and (problem.entry_id, problem.reason) == (10, "altered")


def test_entry_appended_without_the_key_is_found(hub_db_url: str) -> None:
    engine, log = migrated(hub_db_url), make_log()
    fill(engine, log, 20)
    with writing(engine) as connection:
        last = dict(connection.execute(select(audit_log).where(audit_log.c.id == 20)).mappings().one())
        connection.execute(
            insert(audit_log), last | {"id": 21, "prev_hash": last["entry_hash"], "entry_hash": "0" * 64}
        )
    with engine.connect() as connection:
        problem = log.verify(connection)
    assert problem is not None and (problem.entry_id, problem.reason) == (21, "altered")


def test_truncated_tail_is_found_back_to_the_newest_checkpoint(hub_db_url: str) -> None:
    engine, log = migrated(hub_db_url), make_log()
    fill(engine, log, 20)
    with writing(engine) as connection:
        log.checkpoint(connection)  # what the timer does: seal the tail even when idle
    drop_triggers(engine)
    with writing(engine) as connection:
        connection.execute(delete(audit_log).where(audit_log.c.id >= 18))
    with engine.connect() as connection:
        problem = log.verify(connection)
    assert problem is not None and (problem.entry_id, problem.reason) == (18, "truncated")


def test_forged_or_removed_checkpoints_are_found(hub_db_url: str) -> None:
    engine, log = migrated(hub_db_url), make_log()
    fill(engine, log, 20)
    checkpoints = audit_tables.checkpoints
    drop_triggers(engine)
    with writing(engine) as connection:  # move checkpoint 3 back, to hide a truncation behind it
        connection.execute(update(checkpoints).where(checkpoints.c.id == 3).values(last_entry_id=10))
    with engine.connect() as connection:
        problem = log.verify(connection)
    assert problem is not None and problem.reason == "checkpoint-altered"
    with writing(engine) as connection:
        connection.execute(delete(checkpoints).where(checkpoints.c.id == 3))
    with engine.connect() as connection:
        problem = log.verify(connection)
    assert problem is not None and problem.reason == "checkpoint-removed"


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET outcome = 'x'", "DELETE FROM audit_log"])
def test_the_database_refuses_update_and_delete(hub_db_url: str, statement: str) -> None:
    engine, log = migrated(hub_db_url), make_log()
    fill(engine, log, 3)
    with pytest.raises(DBAPIError, match="E-AUDIT-APPEND-ONLY"), writing(engine) as connection:
        connection.execute(text(statement))
    with pytest.raises(DBAPIError, match="E-AUDIT-APPEND-ONLY"), writing(engine) as connection:
        connection.execute(text("DELETE FROM audit_checkpoints"))
    with engine.connect() as connection:
        assert connection.execute(select(audit_log.c.id)).scalars().all() == [1, 2, 3]
