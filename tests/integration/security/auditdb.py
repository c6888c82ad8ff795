"""A migrated hub database with an audit log that checkpoints every few entries, for the audit tests."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, text

from ggzy.hub.app import MIGRATIONS
from ggzy.hub.models import audit_tables
from ggzy.security.audit import AuditEntry, AuditLog, drop_append_only_ddl
from ggzy.security.crypto import Digest
from ggzy.store import make_engine
from ggzy.store.database import writing
from ggzy.store.migrate import upgrade

__all__ = ["drop_triggers", "fill", "make_log", "migrated"]


def migrated(db_url: str) -> Engine:
    engine = make_engine(db_url)
    upgrade(engine, MIGRATIONS)
    return engine


def make_log(every: int = 5) -> AuditLog:
    return AuditLog(
        audit_tables, b"k" * 32, Digest.SM3, seal_key=b"s" * 32, checkpoint_every=every, checkpoint_minutes=60
    )


def fill(engine: Engine, log: AuditLog, count: int, *, start: dt.datetime | None = None) -> None:
    start = start or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with writing(engine) as connection:
        for n in range(count):
            log.append(
                connection,
                AuditEntry(
                    action="signin" if n % 2 else "data.read",
                    object=f"record:{n}",
                    outcome="success" if n % 3 else "failure",
                    account=f"user{n % 4}",
                    role="operator",
                    source="10.0.0.1",
                    at=start + dt.timedelta(hours=n),
                ),
            )


def drop_triggers(engine: Engine) -> None:
    """What an intruder with DDL rights does first; the tests then tamper as they would."""
    with writing(engine) as connection:
        for statement in drop_append_only_ddl(engine.dialect.name):
            connection.execute(text(statement))
