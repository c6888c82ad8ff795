"""The heartbeat: what the node reports arrives at the hub, row by row, with the right numbers."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from hubfixtures import province_records
from sqlalchemy import insert, select

from ggzy import __version__
from ggzy.hub.models import network_down, node_heartbeats
from ggzy.hub.ops.periods import utc
from ggzy.node.context import NodeContext, build_context
from ggzy.node.heartbeat import PlatformHealth, last_error, probe_platform, send_heartbeat
from ggzy.node.models import alerts, link_attempts
from ggzy.node.outbox import NewRecord
from ggzy.node.status import DiskUsage
from ggzy.protocol import HubClient, HubRefused
from ggzy.settings import NodeSettings
from ggzy.store.database import writing


def node_for(hub_fixture: Any, tmp_path: Path, **options: Any) -> NodeContext:
    settings = NodeSettings(
        node_id=hub_fixture.node.node_id,
        db_url=f"sqlite:///{tmp_path / 'node.db'}",
        key_file=tmp_path / "node" / "node.key",
        disk_path=tmp_path,
        **options,
    )
    return build_context(settings, key=bytes.fromhex(hub_fixture.node.key))


def fill_queues(ctx: NodeContext, acquired: dt.datetime) -> None:
    raws = province_records(transactions=1)[:4]
    items = []
    for index, raw in enumerate(raws):
        table = ctx.spec.tables[raw["table"]]
        channel = 1 if index == 0 else 2
        items.append(NewRecord(table, table.key_of(raw["data"]), raw, channel, acquired_at=acquired))
    ctx.outbox.enqueue(items)


def attempts(ctx: NodeContext, at: dt.datetime, outcomes: list[bool]) -> None:
    with writing(ctx.engine) as connection:
        for n, ok in enumerate(outcomes):
            connection.execute(
                insert(link_attempts), {"at": at + dt.timedelta(seconds=n), "ok": ok, "seconds": 0.1}
            )


def fake_usage(_path: Path) -> DiskUsage:
    return DiskUsage(total=1000, used=420, free=580)


def healthy(_url: str) -> PlatformHealth:
    return PlatformHealth(True, 12.5)


def test_a_heartbeat_is_stored_at_the_hub_with_the_nodes_numbers(hub: Any, tmp_path: Path) -> None:
    ctx = node_for(hub, tmp_path, platform_health_url="http://platform.invalid/health")
    now = dt.datetime.now(dt.UTC)
    fill_queues(ctx, now - dt.timedelta(seconds=90))
    attempts(ctx, now - dt.timedelta(seconds=20), [True, False, True, False, True])
    attempts(ctx, now - dt.timedelta(hours=2), [False])  # before the window: not counted

    result = send_heartbeat(ctx, hub.client, now=now, usage=fake_usage, probe=healthy)
    assert result.ok and result.error is None
    assert result.skew_seconds is not None and abs(result.skew_seconds) < 5
    with hub.state.engine.connect() as connection:
        row = connection.execute(select(node_heartbeats)).one()
    assert (row.node_id, row.province, row.version) == ("fj-01", "35", __version__)
    assert row.queue_depths == {"1": {"queued": 1}, "2": {"queued": 3}}
    assert (row.failed_attempts, row.total_attempts) == (2, 5)
    assert row.disk_used_ratio == pytest.approx(0.42)
    assert row.oldest_unsent_seconds == pytest.approx(90, abs=1)
    assert row.platform_ok is True and row.last_error is None
    assert row.payload["platform"]["latency_ms"] == 12.5 and row.payload["disk"]["free_bytes"] == 580
    gauge = hub.state.metrics.node_queue
    assert gauge.labels("fj-01", "1")._value.get() == 1 and gauge.labels("fj-01", "2")._value.get() == 3

    # the next beat counts only what happened since: the first beat's own successful attempt
    later = now + dt.timedelta(seconds=30)
    assert send_heartbeat(ctx, hub.client, now=later, usage=fake_usage, probe=healthy).ok
    with hub.state.engine.connect() as connection:
        rows = connection.execute(select(node_heartbeats).order_by(node_heartbeats.c.id)).all()
    assert len(rows) == 2 and (rows[1].failed_attempts, rows[1].total_attempts) == (0, 1)
    # Art. 13: the versions the national side manages travel with the beat and are kept once per change
    from ggzy.hub.ops.versions import version_history

    versions = rows[0].payload["versions"]
    assert versions["software"] == f"ggzy-exchange {__version__}" and versions["python"].startswith(
        "CPython 3."
    )
    assert versions["database"].startswith("SQLite 3.") and versions["os"]
    with hub.state.engine.connect() as connection:
        (kept,) = version_history(connection, node_id="fj-01")
    assert {k: kept[k] for k in versions} == versions


class _Down(httpx.BaseTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)


def test_a_failed_beat_is_noted_and_its_window_carried_over(hub: Any, tmp_path: Path) -> None:
    ctx = node_for(hub, tmp_path)
    now = dt.datetime.now(dt.UTC)
    attempts(ctx, now - dt.timedelta(seconds=10), [False, True])
    down = HubClient("http://testserver", "fj-01", bytes.fromhex(hub.node.key), transport=_Down())
    failed = send_heartbeat(ctx, down, now=now, usage=fake_usage)
    assert not failed.ok and failed.error is not None and "ConnectError" in failed.error
    assert failed.payload["platform"] == {"configured": False}
    assert last_error(ctx.engine) == failed.error

    later = now + dt.timedelta(seconds=30)
    assert send_heartbeat(ctx, hub.client, now=later, usage=fake_usage).ok
    with hub.state.engine.connect() as connection:
        row = connection.execute(select(node_heartbeats)).one()
    # the window of the lost beat is included: the 2 earlier attempts and the failed beat itself
    assert (row.failed_attempts, row.total_attempts) == (2, 3)
    assert row.platform_ok is None and "ConnectError" in row.last_error
    # … and when the link was down in it, over time (Art. 18): from each failed attempt to the next
    # that got through, the last one ended by this beat; the hub keeps them as network down time
    spans = [[dt.datetime.fromisoformat(t) for t in span] for span in row.payload["link"]["down"]]
    assert spans[0] == [now - dt.timedelta(seconds=10), now - dt.timedelta(seconds=9)]
    assert len(spans) == 2 and now < spans[1][0] < now + dt.timedelta(seconds=5) and spans[1][1] == later
    with hub.state.engine.connect() as connection:
        kept = connection.execute(
            select(network_down.c.direction, network_down.c.started_at, network_down.c.ended_at)
        ).all()
    # (within the beat's own window at the hub: ``later`` is the node's clock, ahead of the hub's here)
    received = utc(row.received_at)
    assert [(d, utc(s), utc(e)) for d, s, e in kept] == [
        ("node", *spans[0]),
        ("node", spans[1][0], min(spans[1][1], received)),
    ]


class _SkewedClient:
    def heartbeat(self, payload: dict[str, Any]) -> dict[str, Any]:
        ahead = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=200)
        return {"ok": True, "server_time": ahead.isoformat()}


def test_clock_skew_raises_one_alert(tmp_path: Path, hub: Any) -> None:
    ctx = node_for(hub, tmp_path)
    for _ in range(2):
        result = send_heartbeat(ctx, _SkewedClient(), usage=fake_usage)  # type: ignore[arg-type]
        assert result.skew_seconds is not None and result.skew_seconds == pytest.approx(200, abs=5)
    with ctx.engine.connect() as connection:
        found = connection.execute(select(alerts).where(alerts.c.kind == "clock")).all()
    assert len(found) == 1 and "+200" in found[0].message and found[0].resolved_at is None
    assert send_heartbeat(ctx, hub.client, usage=fake_usage).ok  # clocks agree again: resolved
    with ctx.engine.connect() as connection:
        assert (
            connection.execute(select(alerts.c.resolved_at).where(alerts.c.kind == "clock")).scalar()
            is not None
        )


def test_the_hub_refuses_malformed_and_unsigned_heartbeats(hub: Any) -> None:
    with pytest.raises(HubRefused) as refused:
        hub.client.heartbeat({"version": "", "queues": {}, "link": {"failed": 0, "total": 0}})
    assert refused.value.status == 400 and refused.value.code == "E-REQ-SHAPE"
    with pytest.raises(HubRefused) as negative:
        hub.client.heartbeat(
            {"version": "1", "queues": {"1": {"queued": -1}}, "link": {"failed": 0, "total": 0}}
        )
    assert negative.value.code == "E-REQ-SHAPE"
    body = json.dumps({"version": "1", "queues": {}, "link": {"failed": 0, "total": 0}})
    unsigned = hub.http.post("/api/v1/heartbeat", content=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    with hub.state.engine.connect() as connection:
        assert connection.execute(select(node_heartbeats)).all() == []


def test_probe_reports_an_unreachable_platform() -> None:
    health = probe_platform("http://127.0.0.1:9/health")  # the discard port: nothing listens
    assert not health.ok and health.error and health.latency_ms >= 0
