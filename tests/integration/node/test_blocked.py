"""Per-key order stays strict, but waiting is never silent and never endless.

A record that needs a record held for correction is set aside and shown with what blocks it (status,
portal, doctor, one standing alert) instead of clogging its channel; a newer full version from the
source supersedes a held, never-sent version; the realtime latency alert is one open alert, updated
in place. Node store on SQLite and PostgreSQL; the hub is a fake that accepts everything sent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alembic import command
from nodeproc import identity, new_records, outbox_states, simulated
from rich.console import Console
from sqlalchemy import insert, select, text

from ggzy.interchange import write_jsonl
from ggzy.node.blocked import blocked_by_held
from ggzy.node.breaker import TokenBucket
from ggzy.node.context import MIGRATIONS, NodeContext
from ggzy.node.corrections import import_corrections
from ggzy.node.doctor import local_findings
from ggzy.node.intake import Intake
from ggzy.node.models import alerts, outbox
from ggzy.node.outbox import NewRecord
from ggzy.node.portal.queries import overview
from ggzy.node.status import render, snapshot
from ggzy.node.uploader import ChannelUploader, LatencyWatch
from ggzy.store import make_engine
from ggzy.store.database import writing
from ggzy.store.migrate import _config, current_revision, upgrade


class AcceptingHub:
    def __init__(self) -> None:
        self.stored: list[tuple[str, str, str]] = []  # (table, key, op) in storage order

    def upload(self, channel: int, batch_id: str, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        self.stored += [(*identity(record), record.get("op", "insert")) for record in records]
        return {"results": [{"outcome": "accepted", "version": 1, "findings": []} for _ in records]}


def drain(ctx: NodeContext, hub: AcceptingHub, channel: int, batch_size: int = 500) -> None:
    sender = ChannelUploader(ctx, channel, hub, bucket=TokenBucket(0), batch_size=batch_size)
    for _ in range(100):
        if sender.step().kind == "idle":
            return
    raise AssertionError("channel never idle")


def hold(record: NewRecord) -> NewRecord:
    record.held = True
    record.findings = [
        {"code": "E-FIELD-REQUIRED", "severity": "error", "message_zh": "缺少必填项“项目名称”"}
    ]
    return record


def a_project_and_what_needs_it() -> tuple[list[dict[str, Any]], int, list[int]]:
    """A stream, the position of its first project, and the positions of the records linking to it."""
    stream = simulated(2, 4)
    first = next(n for n, e in enumerate(stream) if e["table"] == "PROJECT")
    code = stream[first]["data"]["PROJECT_CODE"]
    needing = [n for n, e in enumerate(stream) if n > first and e["data"].get("PROJECT_CODE") == code]
    assert needing
    return stream, first, needing


def test_records_waiting_on_a_held_one_are_set_aside_shown_and_never_clog_the_channel(
    node_ctx: NodeContext, tmp_path: Path
) -> None:
    ctx = node_ctx
    stream, first, needing = a_project_and_what_needs_it()
    queued = new_records(stream)
    hold(queued[first])
    ctx.outbox.enqueue(queued)
    hub = AcceptingHub()
    # a batch of 2 looks at 4 candidates at a time: the waiting records used to fill that window for good
    drain(ctx, hub, 2, batch_size=2)
    states = outbox_states(ctx)
    waiting = states.get("blocked", 0)
    assert states["held"] == 1 and waiting >= len(needing)
    assert states["accepted"] == len(stream) - 1 - waiting  # everything else went
    (blocker,) = blocked_by_held(ctx.engine)
    assert (blocker.table, blocker.key) == identity(stream[first])
    assert blocker.waiting == waiting and blocker.code == "E-FIELD-REQUIRED"
    # shown: status, portal, doctor, one standing alert
    snap = snapshot(ctx)
    assert [b.held_id for b in snap.blocked] == [blocker.held_id]
    assert snap.queues[2]["blocked"] == waiting
    console = Console(width=200, record=True)
    console.print(render(snap))
    shown = console.export_text()
    assert "等待暂存记录更正" in shown and blocker.key in shown
    assert overview(ctx, dt.datetime.now(dt.UTC))["blocked"][0]["waiting"] == waiting
    found = {f.code: f for f in local_findings(ctx, dt.datetime.now(dt.UTC))}
    assert blocker.key in found["NODE-BLOCKED"].detail_zh
    LatencyWatch(ctx.engine, 480).check()
    with ctx.engine.connect() as connection:
        (alert,) = connection.execute(select(alerts).where(alerts.c.kind == "blocked")).all()
    assert "E-NODE-BLOCKED" in alert.message and alert.resolved_at is None
    # corrected: the waiting records go, after the correction (it stands where the held row stood)
    corrected = tmp_path / "fix.jsonl"
    write_jsonl([stream[first]], corrected)
    report = import_corrections(ctx, corrected)
    assert len(report.queued) == 1
    hub.stored.clear()
    drain(ctx, hub, 2)
    assert outbox_states(ctx) == {"accepted": len(stream), "superseded": 1}  # the correction in its place
    order = [(table, key) for table, key, _ in hub.stored]
    assert order[0] == identity(stream[first])  # the project before anything that needs it
    assert set(order[1:]) >= {identity(stream[n]) for n in needing}
    LatencyWatch(ctx.engine, 480).check()
    assert blocked_by_held(ctx.engine) == []
    with ctx.engine.connect() as connection:
        assert connection.execute(select(alerts.c.resolved_at).where(alerts.c.kind == "blocked")).scalar()


def test_a_newer_full_version_supersedes_a_held_never_sent_one(node_ctx: NodeContext) -> None:
    stream, first, _ = a_project_and_what_needs_it()
    project = stream[first]
    broken = {
        **project,
        "op": "insert",
        "data": {k: v for k, v in project["data"].items() if k != "PROJECT_NAME"},
    }
    newer = {**project, "op": "update", "category": "realtime"}  # the source sends it again, complete
    intake = Intake(node_ctx, pseudonym_key=b"\x11" * 32)
    (held,) = intake.accept([broken], "push", "first")
    assert held.outcome == "held"
    (fresh,) = intake.accept([newer], "push", "again")
    assert fresh.outcome == "accepted"
    rows = {row.id: row for row in node_ctx.outbox.rows(limit=10)}
    assert rows[held.id].state == "superseded"
    # the new version takes the held one's place: its operation (the hub does not hold the key) and
    # ``corrects``, so the hub sees an insert and nothing is sent twice
    assert rows[fresh.id].op == "insert" and rows[fresh.id].record["op"] == "insert"
    assert rows[fresh.id].corrects == held.id
    hub = AcceptingHub()
    drain(node_ctx, hub, 1)
    assert hub.stored == [(*identity(project), "insert")]
    # a held version followed by another version in the same call: the later one supersedes it
    results = intake.accept([broken, {**project, "op": "update"}], "push", "twice")
    assert [r.outcome for r in results] == ["held", "accepted"]
    rows = {row.id: row for row in node_ctx.outbox.rows(limit=20)}
    assert rows[results[0].id].state == "superseded" and rows[results[1].id].corrects == results[0].id


def test_a_delete_behind_a_held_version_waits_and_goes_after_its_correction(
    node_ctx: NodeContext, tmp_path: Path
) -> None:
    stream, first, _ = a_project_and_what_needs_it()
    project = stream[first]
    queued = new_records([project, {**project, "op": "delete"}])
    hold(queued[0])
    node_ctx.outbox.enqueue(queued)
    hub = AcceptingHub()
    drain(node_ctx, hub, 2)
    assert outbox_states(node_ctx) == {"held": 1, "blocked": 1}  # never a delete before its insert
    write_jsonl([project], tmp_path / "fix.jsonl")
    import_corrections(node_ctx, tmp_path / "fix.jsonl")
    drain(node_ctx, hub, 2)
    # the correction stands where the held insert stood: insert, then the delete (neither waits forever
    # on the other)
    assert hub.stored == [(*identity(project), "insert"), (*identity(project), "delete")]
    assert outbox_states(node_ctx) == {"accepted": 2, "superseded": 1}


def test_the_latency_alert_is_one_open_alert_updated_in_place(node_ctx: NodeContext) -> None:
    now = dt.datetime.now(dt.UTC)
    late = new_records(simulated(5, 1, "realtime")[:3], published_now=True, now=now - dt.timedelta(minutes=9))
    node_ctx.outbox.enqueue(late)
    clock = {"now": now}
    watch = LatencyWatch(node_ctx.engine, 480, now=lambda: clock["now"])
    for _ in range(24):  # two minutes of checks every 5 s, crossing the ten minutes
        watch.check()
        clock["now"] += dt.timedelta(seconds=5)
    with node_ctx.engine.connect() as connection:
        rows = connection.execute(select(alerts).where(alerts.c.kind == "latency")).all()
    assert len(rows) == 1, [r.message for r in rows]
    (alert,) = rows
    assert alert.level == "critical" and alert.resolved_at is None and alert.updated_at is not None
    assert "3条" in alert.message and "10分" in alert.message  # the latest count and age
    drain(node_ctx, AcceptingHub(), 1)
    watch.check()
    with node_ctx.engine.connect() as connection:
        assert connection.execute(select(alerts.c.resolved_at).where(alerts.c.id == alert.id)).scalar()


def test_migration_0007_goes_down_and_up_again(node_db_url: str) -> None:
    """Down: rows set aside go back to the queue, the new columns go; up again: the schema is whole."""
    engine = make_engine(node_db_url)
    try:
        with writing(engine) as connection:
            connection.execute(
                insert(outbox),
                {
                    "table_name": "PROJECT",
                    "key": "K",
                    "op": "insert",
                    "category": "history",
                    "channel": 2,
                    "record": {"table": "PROJECT", "data": {}},
                    "state": "blocked",
                    "blocked_by": 99,
                    "source": "push",
                    "acquired_at": dt.datetime.now(dt.UTC),
                },
            )
        command.downgrade(_config(MIGRATIONS, engine), "0006")
        assert current_revision(engine) == "0006"
        with engine.connect() as connection:
            assert connection.execute(text("SELECT state FROM outbox")).scalar() == "queued"
        upgrade(engine, MIGRATIONS, "0007")
        assert current_revision(engine) == "0007"
    finally:
        engine.dispose()
