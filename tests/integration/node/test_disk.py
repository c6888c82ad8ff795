"""The disk guard: warn, clean only what the hub accepted long ago, refuse intake when full."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ggzy.node.context import NodeContext, build_context
from ggzy.node.disk import DISK_FULL, DiskGuard
from ggzy.node.models import alerts, audit_log, outbox
from ggzy.node.outbox import NewRecord
from ggzy.node.status import DiskUsage
from ggzy.settings import NodeSettings

TP = {"TENDER_PROJECT_CODE": "A3501002611010001001", "PROJECT_CODE": "A3501002611010001"}


class FakeVolume:
    """A volume whose usage the test sets."""

    def __init__(self) -> None:
        self.ratio = 0.5
        self.reads = 0

    def __call__(self, _path: Path) -> DiskUsage:
        self.reads += 1
        used = int(self.ratio * 10_000)
        return DiskUsage(10_000, used, 10_000 - used)


def node(db_url: str, tmp_path: Path) -> NodeContext:
    settings = NodeSettings(
        db_url=db_url, key_file=tmp_path / "node" / "node.key", disk_path=tmp_path, retention_days=30
    )
    return build_context(settings, key=b"k")


def rows_in_every_state(ctx: NodeContext, now: dt.datetime) -> dict[str, int]:
    """One row per outcome; the accepted ones decided long ago or just now."""
    spec = ctx.spec.tables["TENDER_PROJECT"]

    def new(n: int, held: bool = False) -> NewRecord:
        data = dict(TP, TENDER_PROJECT_CODE=f"A35010026110100010{n:02d}")
        record = {"table": "TENDER_PROJECT", "op": "insert", "category": "history", "data": data}
        return NewRecord(spec, spec.key_of(data), record, 2, held=held)

    ids: dict[str, int] = {}
    old = now - dt.timedelta(days=60)
    for name, outcome, decided in (
        ("old_accepted", "accepted", old),
        ("old_rejected", "rejected", old),
        ("new_accepted", "accepted", now),
    ):
        (ids[name],) = ctx.outbox.enqueue([new(len(ids))])
        batch = ctx.outbox.form_batch(2, 10)
        assert batch is not None and batch.ids == [ids[name]]
        ctx.outbox.apply_receipt(
            batch, {"results": [{"outcome": outcome, "version": 1, "findings": []}]}, now=decided
        )
    (ids["sent"],) = ctx.outbox.enqueue([new(len(ids))])
    assert ctx.outbox.form_batch(2, 10) is not None  # sent, never answered
    (ids["queued"],) = ctx.outbox.enqueue([new(len(ids))])
    (ids["held"],) = ctx.outbox.enqueue([new(len(ids), held=True)])
    return ids


def open_disk_alerts(ctx: NodeContext) -> list[Any]:
    with ctx.engine.connect() as connection:
        return connection.execute(
            select(alerts).where(alerts.c.kind == "disk", alerts.c.resolved_at.is_(None))
        ).all()


def test_thresholds_warn_clean_refuse_and_recover(node_db_url: str, tmp_path: Path) -> None:
    ctx = node(node_db_url, tmp_path)
    now = dt.datetime.now(dt.UTC)
    ids = rows_in_every_state(ctx, now)
    volume = FakeVolume()
    guard = DiskGuard(ctx, volume)

    check = guard.check(now)
    assert (check.level, check.purged) == ("ok", 0) and guard.allows_intake() == (True, "") and guard()
    assert open_disk_alerts(ctx) == []

    volume.ratio = 0.85
    assert guard.check(now).level == "warn"
    assert guard.check(now).level == "warn"  # the same state: still one alert
    (warning,) = open_disk_alerts(ctx)
    assert warning.level == "warning" and "85.0%" in warning.message
    assert guard() and guard.allows_intake()[0]

    volume.ratio = 0.92
    check = guard.check(now)
    assert (check.level, check.purged) == ("clean", 1)
    with ctx.engine.connect() as connection:
        left = dict(connection.execute(select(outbox.c.id, outbox.c.state)).all())
        purge = connection.execute(select(audit_log).where(audit_log.c.action == "disk.purge")).one()
    # only what the hub accepted more than retention_days ago is gone; nothing undecided, nothing rejected
    assert ids["old_accepted"] not in left
    assert {name for name, row_id in ids.items() if row_id in left} == {
        "old_rejected",
        "new_accepted",
        "sent",
        "queued",
        "held",
    }
    assert purge.detail["purged"] == 1
    (critical,) = open_disk_alerts(ctx)
    assert critical.level == "critical" and "已自动清理 1 条" in critical.message
    assert guard()

    volume.ratio = 0.96
    check = guard.check(now)
    assert (check.level, check.purged) == ("refuse", 0)
    allowed, message = guard.allows_intake()
    assert not allowed and not guard()
    assert DISK_FULL in message and "96.0%" in message and "95%" in message
    (refusing,) = open_disk_alerts(ctx)
    assert DISK_FULL in refusing.message

    volume.ratio = 0.40
    assert guard.check(now).level == "ok"
    assert open_disk_alerts(ctx) == [] and guard.allows_intake() == (True, "")


def test_intake_reads_the_volume_at_most_once_a_second(node_db_url: str, tmp_path: Path) -> None:
    ctx = node(node_db_url, tmp_path)
    volume = FakeVolume()
    clock = [100.0]
    guard = DiskGuard(ctx, volume, clock=lambda: clock[0])
    assert all(guard() for _ in range(50)) and volume.reads == 1
    volume.ratio = 0.99
    assert guard()  # still the fresh reading
    clock[0] += 1.5
    assert not guard() and volume.reads == 2


def test_an_unreadable_volume_does_not_stop_intake(node_db_url: str, tmp_path: Path) -> None:
    def broken(_path: Path) -> DiskUsage:
        raise OSError("device gone")

    allowed, message = DiskGuard(node(node_db_url, tmp_path), broken).allows_intake()
    assert allowed and "device gone" in message


def test_the_guard_fits_intake(node_db_url: str, tmp_path: Path) -> None:
    from ggzy.node.intake import Intake

    ctx = node(node_db_url, tmp_path)
    volume = FakeVolume()
    volume.ratio = 0.97
    intake = Intake(ctx, disk_guard=DiskGuard(ctx, volume), pseudonym_key=b"p" * 32)
    record = {"table": "TENDER_PROJECT", "op": "insert", "category": "history", "data": TP}
    (result,) = intake.accept([record], "push", "test")
    assert result.outcome == "refused" and result.code == DISK_FULL
    assert ctx.outbox.depths().by_channel_state == {}
