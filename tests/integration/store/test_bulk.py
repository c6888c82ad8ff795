"""``insert_many`` stores what SQLAlchemy's own statements would, on both backends and on every path.

PostgreSQL has three paths (``COPY`` for plain inserts, one statement over column arrays for ``ON
CONFLICT``, ``executemany`` when a key repeats within the call); SQLite one. Each is compared with
the same rows written through SQLAlchemy's ``insert … on conflict``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError

from ggzy.store import bulk, make_engine
from ggzy.store.bulk import insert_many
from ggzy.store.database import JsonText, json_text
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
events = Table(
    "events",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("day", Date),
    Column("at", DateTime(timezone=True)),
    Column("flag", Boolean),
    Column("body", JSON().with_variant(JSONB(), "postgresql")),
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
        connection.execute(events.delete())
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


def test_json_documents_are_stored_as_the_text_sqlalchemy_would_store(engines: Any) -> None:
    # On SQLite a dict or list travels as UTF-8 bytes made text by a CAST; what orjson cannot write
    # (an integer beyond 64 bits) and what is not a dict or list take SQLAlchemy's serialiser.
    # A JsonText (serialised once already, e.g. a node's record) is stored as the text it holds.
    bodies: list[Any] = [
        {"名称": "项目", "n": [1, 2.5]},
        ["列表", None],
        {"big": 2**70},
        "文本",
        7,
        json_text({"已序列化": ["记录", 1]}),
    ]
    with engines.begin() as connection:
        insert_many(connection, documents, [{"id": i, "body": body} for i, body in enumerate(bodies)])
    expected = [json.loads(b.text) if isinstance(b, JsonText) else b for b in bodies]
    assert stored(engines, documents) == list(enumerate(expected))
    if engines.dialect.name != "sqlite":
        return
    with engines.begin() as connection:
        connection.execute(insert(documents), [{"id": 10 + i, "body": body} for i, body in enumerate(bodies)])
    with engines.connect() as connection:
        raw = connection.exec_driver_sql("SELECT id, typeof(body), body FROM documents ORDER BY id").all()
    ours, sqlalchemys = raw[: len(bodies)], raw[len(bodies) :]
    assert [row[1:] for row in ours] == [row[1:] for row in sqlalchemys]
    assert {row[1] for row in ours} == {"text", "integer"}  # JSON's NUMERIC affinity, as SQLAlchemy's


def test_datetimes_are_stored_as_the_text_sqlalchemy_would_store(engines: Any) -> None:
    moments = [
        AT,
        AT.replace(microsecond=120),
        dt.datetime(999, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        dt.datetime(2026, 11, 28, 23, 59, 59, 999999),  # naive
    ]
    rows = [{"id": i, "kind": "t", "at": at} for i, at in enumerate(moments)]
    with engines.begin() as connection:
        insert_many(connection, events, rows)
        connection.execute(insert(events), [row | {"id": 10 + row["id"]} for row in rows])
    with engines.connect() as connection:
        raw = connection.exec_driver_sql("SELECT id, CAST(at AS TEXT) FROM events ORDER BY id").all()
    assert [row[1] for row in raw[: len(rows)]] == [row[1] for row in raw[len(rows) :]]


def test_every_column_kind_round_trips_whichever_way_copy_goes(
    engines: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On PostgreSQL a plain insert is a binary COPY when every value is of its column's kind, and a
    # text COPY otherwise (here: a datetime without an offset); both must store the same values.
    binary_calls: list[bool] = []
    binary_rows = bulk._binary_rows

    def spy(copy: Any, values: Any) -> Any:
        result = binary_rows(copy, values)
        binary_calls.append(result is not None)
        return result

    monkeypatch.setattr(bulk, "_binary_rows", spy)
    body = {"名称": "测试", "金额": 12.5, "列表": [1, None, '\t引号"\\']}
    aware = [
        {"id": 1, "kind": "甲", "day": DAY, "at": AT, "flag": True, "body": body},
        {"id": 2, "kind": "乙\t换\n行", "day": None, "at": None, "flag": None, "body": None},
    ]
    naive = [{"id": 3, "kind": "丙", "day": DAY, "at": AT.replace(tzinfo=None), "flag": False, "body": {}}]
    with engines.begin() as connection:
        insert_many(connection, events, aware)
        insert_many(connection, events, naive)
    postgres = engines.dialect.name == "postgresql"
    assert binary_calls == ([True, False] if postgres else [])
    stored_rows = stored(engines, events)
    assert stored_rows[:2] == [
        (1, "甲", DAY, AT, True, body),
        (2, "乙\t换\n行", None, None, None, None),
    ]
    assert stored_rows[2][:3] == (3, "丙", DAY) and stored_rows[2][4:] == (False, {})
