"""INSERT … ON CONFLICT for SQLite and PostgreSQL alike (both speak the same clause)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["dialect_insert", "insert_ignore", "upsert"]


def dialect_insert(connection: Connection, table: Table) -> Any:
    module = postgresql if connection.dialect.name == "postgresql" else sqlite
    return module.insert(table)


def upsert(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    *,
    increment: Sequence[str] = (),
    replace: Sequence[str] = (),
) -> None:
    """Insert ``rows``; on a key conflict add the ``increment`` columns and overwrite ``replace``."""
    if not rows:
        return
    statement = dialect_insert(connection, table)
    changes = {name: table.c[name] + statement.excluded[name] for name in increment}
    changes.update({name: statement.excluded[name] for name in replace})
    connection.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=changes), list(rows))


def insert_ignore(
    connection: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> None:
    if not rows:
        return
    statement = dialect_insert(connection, table).on_conflict_do_nothing(index_elements=list(keys))
    connection.execute(statement, list(rows))
