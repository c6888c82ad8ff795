"""``insert_many`` stores what SQLAlchemy's own statements would, on both backends and on every path.

PostgreSQL has three paths (``COPY`` for plain inserts, one statement over column arrays for ``ON
CONFLICT``, ``executemany`` when a key repeats within the call); SQLite one. Each is compared with
the same rows written through SQLAlchemy's ``insert … on conflict``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    select,
)
from sqlalchemy.exc import IntegrityError

from ggzy.store import make_engine
from ggzy.store.bulk import insert_many
from ggzy.store.upsert import upsert

metadata = MetaData()
counters = Table(
    "counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("hits", Integer, nullable=False),
    Column("label", String(32)),
    Column("flag", Boolean, nullable=False),
    Column("at", DateTime(timezone=True)),
)
documents = Table(
    "documents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("body", JSON, nullable=False),
)

DAY = dt.date(2026, 11, 28)
AT = dt.datetime(2026, 11, 28, 1, 2, 3, tzinfo=dt.UTC)


def counter(name: str, hits: int, label: str | None = None, *, flag: bool = False) -> dict[str, Any]:
    return {"name": name, "day": DAY, "hits": hits, "label": label, "flag": flag, "at": AT}


def stored(engine: Any, table: Table) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(select(table).order_by(*table.primary_key.columns)).all()
    return [tuple(v.astimezone(dt.UTC) if isinstance(v, dt.datetime) else v for v in row) for row in rows]


@pytest.fixture
def engines(db_url: str) -> Any:
    """Two databases of one backend: ``insert_many`` writes one, SQLAlchemy's statements the other."""
    first = make_engine(db_url)
    metadata.create_all(first)
    with first.begin() as connection:
        connection.execute(counters.delete())
        connection.execute(documents.delete())
    yield first
    metadata.drop_all(first)
    first.dispose()


ROUNDS = [
    [counter("a", 1, "一"), counter("b", 2)],
    [counter("b", 5, "二", flag=True), counter("c", 7)],  # b exists: incremented, label replaced
    [counter("c", 1), counter("d", 1, "四"), counter("c", 2, "再")],  # c twice in one call
]


def test_upserts_add_and_replace_as_sqlalchemy_would(engines: Any) -> None:
    engine = engines
    for rows in ROUNDS:
        with engine.begin() as connection:
            insert_many(
                connection,
                counters,
                rows,
                conflict=["name", "day"],
                increment=["hits"],
                replace=["label", "flag"],
            )
    ours = stored(engine, counters)
    with engine.begin() as connection:
        connection.execute(counters.delete())
    for rows in ROUNDS:
        with engine.begin() as connection:
            for row in rows:  # one at a time: SQLAlchemy's statement refuses a key twice in one call
                upsert(
                    connection,
                    counters,
                    [row],
                    ["name", "day"],
                    increment=["hits"],
                    replace=["label", "flag"],
                )
    assert ours == stored(engine, counters)
    assert ours == [
        ("a", DAY, 1, "一", False, AT),
        ("b", DAY, 7, "二", True, AT),
        ("c", DAY, 10, "再", False, AT),
        ("d", DAY, 1, "四", False, AT),
    ]


def test_do_nothing_keeps_the_first_row(engines: Any) -> None:
    with engines.begin() as connection:
        insert_many(connection, counters, [counter("a", 1, "先")], conflict=["name", "day"])
        insert_many(connection, counters, [counter("a", 9, "后"), counter("b", 2)], conflict=["name", "day"])
    assert [(r[0], r[2], r[3]) for r in stored(engines, counters)] == [("a", 1, "先"), ("b", 2, None)]


def test_plain_inserts_and_json_columns(engines: Any) -> None:
    body = {"名称": "项目", "n": [1, 2]}
    with engines.begin() as connection:
        insert_many(connection, documents, [{"id": 1, "body": body}, {"id": 2, "body": {}}])
    assert stored(engines, documents) == [(1, body), (2, {})]
    with pytest.raises(IntegrityError), engines.begin() as connection:
        insert_many(connection, documents, [{"id": 1, "body": {}}])
    assert len(stored(engines, documents)) == 2  # the failed call stored nothing
