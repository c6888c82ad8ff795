"""Migration 0008 rebuilds the heads and link values on SQLite without their rowid, keeping every row."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, insert, select, text
from sqlalchemy.exc import IntegrityError

from ggzy.hub.app import MIGRATIONS
from ggzy.hub.models import record_heads, record_refs
from ggzy.store import make_engine
from ggzy.store.migrate import current_revision, upgrade

HEADS = [
    {
        "namespace": "prod",
        "table_name": "TENDER_PROJECT",
        "key": f"E3501000001{n:04d}",
        "version": n,
        "digest": f"v2{n:030d}",
        "node_id": "fj-01",
        "province": "35",
        "deleted": n == 2,
        "event_time": "20261101080000" if n != 3 else None,
        "acquired_day": dt.date(2026, 11, n),
    }
    for n in range(1, 4)
]
REFS = [
    {
        "namespace": "prod",
        "table_name": "TENDER_PROJECT",
        "field": "TENDER_PROJECT_CODE",
        "value": v,
        "key": v,
    }
    for v in ("E35010000010001", "项目编号二")
]


def rows(connection: Connection) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    heads = connection.execute(select(record_heads).order_by(record_heads.c.key)).all()
    refs = connection.execute(select(record_refs).order_by(record_refs.c.value)).all()
    return [tuple(r) for r in heads], [tuple(r) for r in refs]


def table_sql(connection: Connection, name: str) -> str:
    found = connection.execute(
        text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"), {"name": name}
    ).scalar_one()
    return str(found)


def test_heads_and_links_survive_the_rebuild_and_lose_their_rowid_on_sqlite(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, MIGRATIONS, "0007")
        with engine.begin() as connection:
            connection.execute(insert(record_heads), HEADS)
            connection.execute(insert(record_refs), REFS)
            before = rows(connection)
        upgrade(engine, MIGRATIONS, "0008")  # this revision, whatever later ones exist
        assert current_revision(engine) == "0008"
        with engine.connect() as connection:
            assert rows(connection) == before
            if engine.dialect.name == "sqlite":
                for name in ("record_heads", "record_refs"):
                    assert "WITHOUT ROWID" in table_sql(connection, name)
        with pytest.raises(IntegrityError), engine.begin() as connection:  # the key is still unique
            connection.execute(insert(record_heads), [HEADS[0]])
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["engine"] = engine  # as ggzy.store.migrate hands it to env.py
        command.downgrade(config, "0007")
        with engine.connect() as connection:
            assert rows(connection) == before
            if engine.dialect.name == "sqlite":
                assert "WITHOUT ROWID" not in table_sql(connection, "record_heads")
    finally:
        engine.dispose()
