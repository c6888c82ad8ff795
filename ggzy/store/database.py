"""Database engines for SQLite (embedded default) and PostgreSQL (production).

SQLite runs in WAL mode with ``synchronous=FULL`` so that a committed transaction survives a power
cut; PostgreSQL must not run with ``fsync`` or ``synchronous_commit`` off. Both are checked when a
service starts, and a store that could lose acknowledged data is refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool, QueuePool

__all__ = ["DurabilityError", "check_durability", "is_sqlite", "make_engine", "redact_url", "writing"]


class DurabilityError(RuntimeError):
    """The database is configured so that acknowledged data could be lost."""

    code = "E-STORE-DURABILITY"


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def redact_url(url: str | URL) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def make_engine(url: str | URL, *, pool_size: int = 5) -> Engine:
    """An engine with the durability settings this project relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # The driver's own transaction handling is switched off: transactions are begun explicitly
        # (BEGIN IMMEDIATE for writers) so that two processes never deadlock upgrading a read lock.
        # A file database keeps a few connections open: opening one costs the pragmas and a schema
        # read, and closing the last one checkpoints the whole WAL, on every request. The pool never
        # makes a caller wait (no overflow limit: SQLite itself serialises the writers).
        pooling: dict[str, Any] = (
            {"poolclass": QueuePool, "pool_size": pool_size, "max_overflow": -1}
            if database and database != ":memory:"
            else {"poolclass": NullPool}
        )
        engine = create_engine(
            parsed,
            connect_args={"check_same_thread": False, "isolation_level": None},
            json_serializer=compact_json,
            **pooling,
        )
        event.listen(engine, "connect", _sqlite_pragmas)

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
            connection.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(
        parsed, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, json_serializer=compact_json
    )


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes: on SQLite it takes the write lock at ``BEGIN IMMEDIATE``.

    A deferred transaction that reads before it writes fails at once with "database is locked"
    (the busy timeout cannot help) when another writer commits in between, e.g. the portal's
    projection or a people's session update racing an operator's change. Use this, not
    ``engine.begin()``, for every write.
    """
    with engine.connect() as plain:
        connection = plain.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            yield connection


def compact_json(value: Any) -> str:
    """JSON columns hold Chinese text as itself: \\u escapes would make every record several times larger."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def check_durability(engine: Engine) -> dict[str, str]:
    """Read the settings that decide whether a commit is durable; raise when one is unsafe."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            journal = str(connection.exec_driver_sql("PRAGMA journal_mode").scalar())
            synchronous = int(connection.exec_driver_sql("PRAGMA synchronous").scalar() or 0)
            found = {"journal_mode": journal, "synchronous": str(synchronous)}
            if journal.lower() != "wal" and engine.url.database not in (None, "", ":memory:"):
                raise DurabilityError(f"SQLite journal_mode is {journal}, WAL is required")
            if synchronous < 2:
                raise DurabilityError(f"SQLite synchronous={synchronous}, FULL (2) is required")
            return found
        if engine.dialect.name == "postgresql":
            found = {
                name: str(connection.execute(text(f"SHOW {name}")).scalar())
                for name in ("fsync", "synchronous_commit", "full_page_writes")
            }
            unsafe = [name for name, value in found.items() if value.lower() in ("off", "local")]
            if unsafe:
                raise DurabilityError(f"PostgreSQL settings lose committed data: {', '.join(unsafe)}")
            return found
        raise DurabilityError(f"unsupported database {engine.dialect.name}")
