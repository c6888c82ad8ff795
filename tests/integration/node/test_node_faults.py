"""The node against a hub that is down, dies mid-upload, answers 500 or times out.

Whatever the hub does, the node must keep every queued record, keep retrying without a tight loop
(jittered backoff, circuit breaker), and deliver everything exactly once and in order when the hub
is back: every version of a key after the one before it, every record after the records it needs.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from nodeproc import (
    HubProcess,
    as_realtime,
    hub_record_keys,
    new_records,
    node_settings,
    outbox_states,
    register,
    running_hub,
    simulated,
    wait_for,
)
from sqlalchemy import func, select

from ggzy.node.context import NodeContext, build_context
from ggzy.node.models import alerts, batches, link_attempts, outbox
from ggzy.node.service import NodeService
from ggzy.spec import load_spec

TRANSACTIONS = 12
SPEC = load_spec()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    work = tmp_path / "hub"
    work.mkdir()
    with running_hub(work, start=False) as process:  # its port is chosen, nobody listens yet
        yield process


def records_in_two_parts() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """History (the first two thirds) and realtime (the rest, depending on the history) of one stream."""
    stream = simulated(1, TRANSACTIONS)
    cut = len(stream) * 2 // 3
    return stream[:cut], as_realtime(stream[cut:])


def drained(ctx: NodeContext) -> bool:
    states = outbox_states(ctx)
    return not states.get("queued") and not states.get("sent")


def assert_delivered_once_in_order(ctx: NodeContext, hub_db_url: str, enqueued: int) -> None:
    states = outbox_states(ctx)
    rows = ctx.outbox.rows(limit=100_000)
    rejected = [(r.table_name, [f["code"] for f in r.findings or []]) for r in rows if r.state != "accepted"]
    assert states == {"accepted": enqueued}, rejected[:10]
    stored = hub_record_keys(hub_db_url)
    assert len(stored) == enqueued
    versions = Counter((table, key, version) for table, key, version, _ in stored)
    assert max(versions.values()) == 1, "a version stored twice"
    # order per key: the node's rows of a key (in intake order) hold versions 1, 2, …
    by_key: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
    for row in rows:
        by_key[(row.table_name, row.key)].append(row.hub_version)
    assert all(found == list(range(1, len(found) + 1)) for found in by_key.values())
    # order across keys: each record reached the hub after the records it links to (parent, earlier
    # stage), whatever their channels — checked here on the hub's storage order, not only through
    # the hub's own refusal of orphans
    position = {(table, key, version): n for n, (table, key, version, _) in enumerate(stored)}
    holders: defaultdict[tuple[str, str, str], list[int]] = defaultdict(list)
    for row in rows:
        for name, value in (row.record.get("data") or {}).items():
            holders[(row.table_name, name, value)].append(
                position[(row.table_name, row.key, row.hub_version)]
            )
    checked = 0
    for row in rows:
        table = SPEC.tables[row.table_name]
        data = row.record.get("data") or {}
        mine = position[(row.table_name, row.key, row.hub_version)]
        for link in table.parents + table.predecessors:
            for child_field, parent_field in link.fields.items():
                found = holders.get((link.table, parent_field, data.get(child_field)), [])
                if found:
                    assert min(found) < mine, f"{row.table_name} {row.key} overtook its {link.table}"
                    checked += 1
    assert checked > 10


def failed_attempts(ctx: NodeContext) -> int:
    with ctx.engine.connect() as connection:
        return int(connection.execute(select(func.count()).where(link_attempts.c.ok.is_(False))).scalar_one())


def test_hub_down_then_back_then_killed_mid_upload_nothing_lost_order_kept(
    hub: HubProcess, tmp_path: Path
) -> None:
    node = register(hub.db_url, "fj-01", [1])
    ctx = build_context(node_settings(tmp_path, hub.base_url, node, batch_size=50))
    history, realtime = records_in_two_parts()
    service = NodeService(ctx)
    try:
        ctx.outbox.enqueue(new_records(history[: len(history) // 2]))
        service.start()
        time.sleep(1.5)  # the hub refuses connections: nothing goes, nothing is lost
        ctx.outbox.enqueue(new_records(history[len(history) // 2 :]))  # intake goes on: the queue grows
        ctx.outbox.enqueue(new_records(realtime[: len(realtime) // 2], published_now=True))
        service.notify(1)
        time.sleep(1.0)
        depths = ctx.outbox.depths()
        assert depths.waiting(2) == len(history)
        assert depths.waiting(1) == len(realtime) // 2
        assert outbox_states(ctx).get("accepted") is None
        failures = failed_attempts(ctx)
        # about 2.5 s of outage: a handful of attempts per sender, not a tight loop (which would be thousands)
        assert 4 <= failures <= 60, failures
        assert all(u.breaker.times_opened >= 1 for u in service.uploaders.values())
        with ctx.engine.connect() as connection:
            down = connection.execute(select(alerts.c.message).where(alerts.c.kind == "hub")).scalars().all()
        assert any("E-NODE-HUB-DOWN" in message for message in down)

        hub.start()  # back: the queue drains
        wait_for(
            lambda: outbox_states(ctx).get("accepted", 0) > len(history) // 3, 30, message="upload resumed"
        )
        hub.kill()  # and dies again in the middle of it
        ctx.outbox.enqueue(new_records(realtime[len(realtime) // 2 :], published_now=True))
        service.notify(1)
        time.sleep(0.5)
        hub.start()
        wait_for(lambda: drained(ctx), 60, message="outbox drained")
    finally:
        assert service.stop(timeout=30)
        ctx.engine.dispose()
    assert_delivered_once_in_order(ctx, hub.db_url, len(history) + len(realtime))
    with ctx.engine.connect() as connection:
        still_open = connection.execute(
            select(alerts.c.message).where(alerts.c.kind == "hub", alerts.c.resolved_at.is_(None))
        ).all()
    assert still_open == []  # the outage alerts were settled when uploads went through again


@dataclass
class FlakyHub:
    """In front of the real hub: answers 500, or times out, or passes requests through."""

    mode: str = "500"
    calls: list[tuple[float, str, str]] = field(default_factory=list)  # (time, path, mode)
    forward: httpx.HTTPTransport = field(default_factory=httpx.HTTPTransport)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: httpx.Request) -> httpx.Response:
        mode = self.mode
        with self.lock:
            self.calls.append((time.monotonic(), request.url.path, mode))
        if mode == "500":
            return httpx.Response(500, text="Internal Server Error")
        if mode == "timeout":
            time.sleep(0.05)
            raise httpx.ReadTimeout("timed out waiting for the hub", request=request)
        return self.forward.handle_request(request)

    def uploads(self, channel: int, mode: str) -> list[float]:
        path = f"/api/v1/channels/{channel}/batches"
        return [at for at, p, m in self.calls if p == path and m == mode]


def test_hub_answering_500_or_timing_out_backs_off_opens_the_breaker_and_loses_nothing(
    hub: HubProcess, tmp_path: Path
) -> None:
    hub.start()
    node = register(hub.db_url, "fj-01", [1])
    flaky = FlakyHub()
    ctx = build_context(node_settings(tmp_path, hub.base_url, node, batch_size=50))
    history, realtime = records_in_two_parts()
    service = NodeService(
        ctx, client_factory=lambda: ctx.hub_client(transport=httpx.MockTransport(flaky.handle))
    )
    try:
        ctx.outbox.enqueue(new_records(history))
        ctx.outbox.enqueue(new_records(realtime, published_now=True))
        service.start()
        time.sleep(2.0)
        flaky.mode = "timeout"
        time.sleep(1.5)
        assert outbox_states(ctx).get("accepted") is None
        flaky.mode = "pass"
        wait_for(lambda: drained(ctx), 60, message="outbox drained")
    finally:
        assert service.stop(timeout=30)
        ctx.engine.dispose()
    for channel in (1, 2):
        for mode, seconds in (("500", 2.0), ("timeout", 1.5)):
            attempts = flaky.uploads(channel, mode)
            # backoff 0.05 s doubling to 0.5 s, breaker open 0.5 s after 3 failures: a few per second
            assert 1 <= len(attempts) <= 8 * seconds, (channel, mode, len(attempts))
        failing = sorted(flaky.uploads(channel, "500") + flaky.uploads(channel, "timeout"))
        gaps = [b - a for a, b in itertools.pairwise(failing)]
        assert min(gaps) >= 0.004, "a retry without any pause"
        assert max(gaps) >= 0.45, "the breaker never held the sender back for its open period"
        assert service.uploaders[channel].breaker.times_opened >= 1
    assert_delivered_once_in_order(ctx, hub.db_url, len(history) + len(realtime))
    with ctx.engine.connect() as connection:
        local_batches = connection.execute(select(func.count()).select_from(batches)).scalar_one()
        retried = connection.execute(select(func.count()).where(batches.c.attempts > 0)).scalar_one()
        sent_once = connection.execute(select(func.count()).where(outbox.c.attempts != 1)).scalar_one()
    stored_batches = {batch for _, _, _, batch in hub_record_keys(hub.db_url)}
    assert len(stored_batches) == local_batches  # every retry reused its batch id
    assert retried >= 2 and sent_once == 0  # the failed batches were retried, never re-formed
