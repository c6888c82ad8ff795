"""Database pull against a real SQLite and a real PostgreSQL source: every new or changed row exactly
once, across polls, restarts and a crash before the commit."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    select,
    update,
)

from ggzy.node.context import NodeContext, build_context
from ggzy.node.intake import Intake
from ggzy.node.intake.dbpull import DatabasePull
from ggzy.node.models import outbox
from ggzy.settings import NodeSettings, PullSource
from ggzy.simulate import simulate
from ggzy.spec import load_spec
from ggzy.store.database import writing

SPEC = load_spec()
T0 = dt.datetime(2026, 11, 27, 9, 0, 0)
_TEXT_FIELDS = [f.name for f in SPEC.tables["PROJECT"].fields if f.name != "CREATE_TIME"]


def province_table(metadata: MetaData) -> Table:
    """The province's own table: lower-case names (PostgreSQL folds them), native times, extra columns."""
    return Table(
        "province_project",
        metadata,
        *(Column(name.lower(), String(1000)) for name in _TEXT_FIELDS),
        Column("create_time", DateTime),
        Column("update_time", DateTime, nullable=False),
        Column("change_kind", String(8)),
        Column("internal_note", String(100)),
    )


@pytest.fixture
def ctx(node_db_url: str, tmp_path: Path) -> Iterator[NodeContext]:
    context = build_context(
        NodeSettings(db_url=node_db_url, key_file=tmp_path / "node.key"), key=b"\x07" * 32
    )
    yield context
    context.engine.dispose()


@pytest.fixture
def source(node_db_url: str, tmp_path: Path) -> Iterator[tuple[Engine, Table]]:
    """The province's database: a SQLite file, or (in the PostgreSQL run) a table in a fresh database."""
    url = f"sqlite:///{tmp_path / 'province.db'}" if node_db_url.startswith("sqlite") else node_db_url
    engine = create_engine(url)
    metadata = MetaData()
    table = province_table(metadata)
    metadata.create_all(engine)
    yield engine, table
    engine.dispose()


def project_rows(n: int, start: int, at: dt.datetime) -> list[dict[str, Any]]:
    template = next(
        s.record["data"] for s in simulate("35", seed=1, transactions=1) if s.record["table"] == "PROJECT"
    )
    rows = []
    for i in range(start, start + n):
        data = copy.deepcopy(template)
        data["PROJECT_CODE"] = data["PROJECT_CODE"][:-4] + f"{i:04d}"
        row = {name.lower(): data.get(name) for name in _TEXT_FIELDS}
        row.update(
            create_time=dt.datetime(2026, 11, 1, 8, 30) + dt.timedelta(minutes=i),
            update_time=at,
            internal_note="内部备注",
            change_kind=None,
        )
        rows.append(row)
    return rows


def pull_source(**options: Any) -> PullSource:
    return PullSource(
        name="projects",
        url="-",
        table="PROJECT",
        query="SELECT * FROM province_project WHERE update_time > :cursor ORDER BY update_time",
        **options,
    )


def puller(ctx: NodeContext, engine: Engine, **options: Any) -> DatabasePull:
    max_rows = options.pop("max_rows", 5000)
    intake = Intake(ctx, pseudonym_key=b"\x11" * 32)
    return DatabasePull(ctx, intake, pull_source(**options), engine=engine, max_rows=max_rows)


def outbox_rows(ctx: NodeContext) -> list[Any]:
    with ctx.engine.connect() as connection:
        return list(
            connection.execute(select(outbox.c.key, outbox.c.op, outbox.c.record).order_by(outbox.c.id))
        )


def test_new_and_changed_rows_come_through_exactly_once(
    ctx: NodeContext, source: tuple[Engine, Table], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, table = source
    with writing(engine) as connection:
        connection.execute(insert(table), project_rows(5, 0, T0))
    pull = puller(ctx, engine)

    first = pull.poll_once()
    assert first.rows == 5 and {r.outcome for r in first.results} == {"accepted"}
    stored = outbox_rows(ctx)
    assert [r.op for r in stored] == ["insert"] * 5
    data = stored[0].record["data"]
    assert data["CREATE_TIME"] == "20261101083000"  # a native time in the spec's text form
    assert "INTERNAL_NOTE" not in data and "UPDATE_TIME" not in data and "internal_note" not in data
    assert data["PROJECT_CODE"].endswith("0000")
    assert pull.poll_once().rows == 0  # nothing new

    with writing(engine) as connection:
        connection.execute(insert(table), project_rows(2, 5, T0 + dt.timedelta(minutes=1)))
        connection.execute(
            update(table)
            .where(table.c.project_code == stored[2].key)
            .values(project_name="改名后的项目", update_time=T0 + dt.timedelta(minutes=2))
        )
    second = pull.poll_once()
    assert second.rows == 3
    changed = outbox_rows(ctx)[5:]
    assert [(r.op, r.key[-4:]) for r in changed] == [
        ("insert", "0005"),
        ("insert", "0006"),
        ("update", "0002"),
    ]
    assert changed[2].record["data"]["PROJECT_NAME"] == "改名后的项目"

    # A restart: the cursor is in the node's store, so nothing is read again.
    restarted_ctx = build_context(ctx.settings, key=b"\x07" * 32)
    try:
        assert puller(restarted_ctx, engine).poll_once().rows == 0

        # A crash before the commit: neither the records nor the cursor moved; the next poll retries.
        with writing(engine) as connection:
            connection.execute(insert(table), project_rows(1, 7, T0 + dt.timedelta(minutes=3)))
        crashing = puller(restarted_ctx, engine)

        def power_cut(*_: Any, **__: Any) -> Any:
            raise RuntimeError("power cut")

        monkeypatch.setattr(crashing.intake.ctx.outbox, "enqueue", power_cut)
        before = crashing.cursor()
        with pytest.raises(RuntimeError):
            crashing.poll_once()
        assert crashing.cursor() == before
        monkeypatch.undo()
        again = puller(restarted_ctx, engine).poll_once()
        assert again.rows == 1
    finally:
        restarted_ctx.engine.dispose()
    keys = [(r.key, r.op) for r in outbox_rows(ctx)]
    assert len(keys) == 9 and len(set(keys)) == 9  # 8 records + 1 update, none twice, none skipped


def test_a_run_of_equal_cursor_values_is_never_split(ctx: NodeContext, source: tuple[Engine, Table]) -> None:
    engine, table = source
    with writing(engine) as connection:
        connection.execute(insert(table), project_rows(3, 0, T0))
        connection.execute(insert(table), project_rows(2, 3, T0 + dt.timedelta(seconds=1)))
    pull = puller(ctx, engine, max_rows=2)
    first = pull.poll_once()
    assert (first.rows, first.more) == (3, True)  # asked for 2, took the whole run of 3 equal times
    second = pull.poll_once()
    assert (second.rows, second.more) == (2, True)
    assert pull.poll_once().rows == 0
    assert len({r.key for r in outbox_rows(ctx)}) == 5


def test_op_and_publication_time_columns(ctx: NodeContext, source: tuple[Engine, Table]) -> None:
    engine, table = source
    rows = project_rows(2, 0, T0)
    rows[1]["change_kind"] = "D"
    with writing(engine) as connection:
        connection.execute(insert(table), rows)
    pull = puller(ctx, engine, op_column="change_kind", published_column="create_time", category="history")
    result = pull.poll_once()
    assert [r.outcome for r in result.results] == ["accepted", "accepted"]
    stored = outbox_rows(ctx)
    assert [r.op for r in stored] == ["insert", "delete"]
    assert stored[0].record["published_at"] == "2026-11-01T08:30:00+08:00"
    assert {r.record["category"] for r in stored} == {"history"}
