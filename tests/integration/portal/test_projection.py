"""The rejected-records projection follows the feed, re-reads late commits and never doubles a row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sized
from pathlib import Path

from sqlalchemy import Table, event, func, insert, select

from ggzy.hub.app import build_state
from ggzy.hub.models import feed, portal_rejection_rules, portal_rejections
from ggzy.hub.portal.projection import BODIES_AT_ONCE, REREAD_WINDOW, catch_up
from ggzy.hub.registry import add_node
from ggzy.settings import HubSettings
from ggzy.store.database import writing


def receipt(batch: str, outcomes: list[str]) -> dict[str, object]:
    results = [
        {
            "index": i,
            "table": "PROJECT",
            "key": f"{batch}-{i}",
            "outcome": outcome,
            "findings": [{"code": "E-FIELD-REQUIRED", "severity": "error", "field": "X", "value": None}]
            if outcome == "rejected"
            else [],
        }
        for i, outcome in enumerate(outcomes)
    ]
    return {"batch_id": batch, "channel": 2, "results": results}


def test_catch_up_projects_rejections_once_and_picks_up_a_late_commit(
    hub_db_url: str, tmp_path: Path
) -> None:
    state = build_state(HubSettings(db_url=hub_db_url, key_dir=tmp_path / "keys"))
    now = dt.datetime(2026, 10, 30, 4, 0, tzinfo=dt.UTC)
    with writing(state.engine) as connection:
        add_node(connection, "n1", "35")
        for n in range(1, 4):
            connection.execute(
                insert(feed),
                {"id": n * 10, "node_id": "n1", "kind": "receipt", "batch_id": f"b{n}",
                 "body": receipt(f"b{n}", ["accepted", "rejected", "rejected"]), "created_at": now},
            )  # fmt: skip
    assert catch_up(state.engine) == 3

    def count(table: Table = portal_rejections) -> int:
        with state.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(table)).scalar_one())

    assert count() == 6 and count(portal_rejection_rules) == 6  # one error code each
    assert catch_up(state.engine) == 0 and count() == 6  # idempotent
    # A batch whose id was handed out earlier but committed after the catch-up (PostgreSQL sequences).
    assert 30 - REREAD_WINDOW < 15
    with writing(state.engine) as connection:
        connection.execute(
            insert(feed),
            {"id": 15, "node_id": "n1", "kind": "receipt", "batch_id": "late",
             "body": receipt("late", ["rejected"]), "created_at": now},
        )  # fmt: skip
        connection.execute(
            insert(feed),
            {"id": 40, "node_id": "n1", "kind": "receipt", "batch_id": "b4",
             "body": receipt("b4", ["rejected"]), "created_at": now},
        )  # fmt: skip
    catch_up(state.engine)
    assert count() == 8 and count(portal_rejection_rules) == 8
    with state.engine.connect() as connection:
        row = connection.execute(
            select(portal_rejections).where(portal_rejections.c.batch_id == "late")
        ).one()
    assert (row.province, row.rules, row.day) == ("35", " E-FIELD-REQUIRED ", dt.date(2026, 10, 30))
    state.engine.dispose()


def test_receipts_already_projected_are_not_parsed_again_and_bodies_are_read_a_few_at_a_time(
    hub_db_url: str, tmp_path: Path
) -> None:
    """Re-reading the window for late commits must not parse the window's receipts every round, and
    a round must not hold all of its receipts parsed at once (the hub's memory rose by ~150 MB)."""
    state = build_state(HubSettings(db_url=hub_db_url, key_dir=tmp_path / "keys"))
    now = dt.datetime(2026, 10, 30, 4, 0, tzinfo=dt.UTC)
    body_reads: list[int] = []

    def watch(_conn: object, _cursor: object, statement: str, parameters: Sized, *_: object) -> None:
        if "feed.body" in statement:
            body_reads.append(len(parameters))  # the receipts' ids (a tuple or a dict of them)

    def add_receipts(first: int, count: int) -> None:
        with writing(state.engine) as connection:
            for n in range(first, first + count):
                connection.execute(
                    insert(feed),
                    {"id": n, "node_id": "n1", "kind": "receipt", "batch_id": f"b{n}",
                     "body": receipt(f"b{n}", ["rejected", "accepted"]), "created_at": now},
                )  # fmt: skip

    with writing(state.engine) as connection:
        add_node(connection, "n1", "35")
    add_receipts(1, 3 * BODIES_AT_ONCE + 1)
    event.listen(state.engine, "before_cursor_execute", watch)
    assert catch_up(state.engine) == 3 * BODIES_AT_ONCE + 1
    assert sum(body_reads) == 3 * BODIES_AT_ONCE + 1  # each receipt parsed once ...
    assert max(body_reads) <= BODIES_AT_ONCE  # ... a few at a time

    body_reads.clear()
    add_receipts(100, 2)  # the earlier receipts are now in the re-read window
    assert catch_up(state.engine) == 2
    assert sum(body_reads) == 2
    with state.engine.connect() as connection:
        projected = connection.execute(select(func.count()).select_from(portal_rejections)).scalar_one()
        ruled = connection.execute(select(func.count()).select_from(portal_rejection_rules)).scalar_one()
    assert projected == ruled == 3 * BODIES_AT_ONCE + 3
    state.engine.dispose()
