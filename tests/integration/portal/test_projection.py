"""The rejected-records projection follows the feed, re-reads late commits and never doubles a row."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import Table, func, insert, select

from ggzy.hub.app import build_state
from ggzy.hub.models import feed, portal_rejection_rules, portal_rejections
from ggzy.hub.portal.projection import REREAD_WINDOW, catch_up
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
