"""The node's sending side: channels, priority, rate limit, refusals, latency alert, feedback feed.

The hub is a real process on SQLite (``nodeproc.running_hub``); the node's store runs on SQLite and
on PostgreSQL (``node_db_url``). Tests that only need the uploader's decisions use a fake client.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from nodeproc import (
    HubProcess,
    as_realtime,
    identity,
    new_records,
    node_settings,
    outbox_states,
    register,
    running_hub,
    simulated,
    wait_for,
)
from sqlalchemy import delete, select, tuple_

from ggzy.hub.feedback import push
from ggzy.hub.models import batches as hub_batches
from ggzy.hub.models import record_heads, record_refs, test_records
from ggzy.hub.models import records as hub_records
from ggzy.node.breaker import Backoff, CircuitBreaker, TokenBucket
from ggzy.node.context import NodeContext, build_context
from ggzy.node.feedback import FeedbackPoller
from ggzy.node.models import alerts, batches, link_attempts, outbox
from ggzy.node.outbox import NewRecord, Outbox
from ggzy.node.service import NodeService
from ggzy.node.uploader import ChannelUploader, LatencyWatch, latency_summary
from ggzy.protocol import HubClient, HubRefused, HubUnavailable
from ggzy.settings import NodeSettings
from ggzy.spec import load_spec
from ggzy.store import make_engine
from ggzy.store.database import writing

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
SPEC = load_spec()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """One hub process for the module (it takes seconds to start); each test has its own node."""
    with running_hub(tmp_path_factory.mktemp("hub")) as process:
        yield process


# Nodes sharing the hub need disjoint keys (the hub refuses a key another node owns). The
# simulator's codes are serials per region or drawn from the seed: each node gets its own province
# and its own seed.
_PROVINCES = ["35", "11", "31", "44", "32", "33", "37", "42", "43", "51", "50", "61", "21", "13"]
_NODES = itertools.count()


@dataclass
class Node:
    ctx: NodeContext
    node_id: str
    province: str
    seed: int

    def records(self, transactions: int, category: str = "history") -> list[dict[str, Any]]:
        return simulated(self.seed, transactions, category, province=self.province)


@contextmanager
def node_against(hub: HubProcess, tmp_path: Path, db_url: str, **options: Any) -> Iterator[Node]:
    number = next(_NODES)
    province, seed = _PROVINCES[number % len(_PROVINCES)], 100 + number
    record = register(hub.db_url, f"node-{number}", [seed], province=province)
    ctx = build_context(node_settings(tmp_path, hub.base_url, record, db_url=db_url, **options))
    try:
        yield Node(ctx, record.node_id, province, seed)
    finally:
        ctx.engine.dispose()


@contextmanager
def running(service: NodeService) -> Iterator[NodeService]:
    service.start()
    try:
        yield service
    finally:
        assert service.stop(timeout=30)


def rejections(ctx: NodeContext) -> list[tuple[str, str, list[str]]]:
    """What the hub refused, to explain a failed assertion."""
    rows = ctx.outbox.rows([outbox.c.state == "rejected"], limit=20)
    return [(row.table_name, row.category, [f["code"] for f in row.findings or []]) for row in rows]


def drained(ctx: NodeContext) -> bool:
    states = outbox_states(ctx)
    return not any(states.get(name) for name in ("queued", "sent"))


# --- against a real hub ---


def test_realtime_goes_on_channel_1_history_and_test_on_channel_2(
    hub: HubProcess, tmp_path: Path, node_db_url: str
) -> None:
    with node_against(hub, tmp_path, node_db_url) as node:
        ctx = node.ctx
        stream = node.records(5)
        history = new_records(stream[: len(stream) // 2])
        realtime = new_records(as_realtime(stream[len(stream) // 2 :]), published_now=True)
        test = new_records(node.records(2, "test"))  # the same keys again: test data is kept apart
        ctx.outbox.enqueue(history + realtime + test)
        with running(NodeService(ctx, feedback=False)):
            wait_for(lambda: drained(ctx), 60, message="outbox drained")
        with ctx.engine.connect() as connection:
            rows = connection.execute(
                select(outbox.c.category, outbox.c.state, batches.c.channel, outbox.c.batch_id).join(
                    batches, batches.c.batch_id == outbox.c.batch_id
                )
            ).all()
    assert {row.state for row in rows} == {"accepted"}, rejections(ctx)
    assert len(rows) == len(history) + len(realtime) + len(test)
    assert {(row.category, row.channel) for row in rows} == {("realtime", 1), ("history", 2), ("test", 2)}
    engine = make_engine(hub.db_url)
    try:
        with engine.connect() as connection:
            mine = node.node_id
            hub_channel = dict(
                connection.execute(
                    select(hub_batches.c.batch_id, hub_batches.c.channel).where(hub_batches.c.node_id == mine)
                ).all()
            )
            prod = connection.execute(select(hub_records.c.key).where(hub_records.c.node_id == mine)).all()
            tests = connection.execute(select(test_records.c.key).where(test_records.c.node_id == mine)).all()
    finally:
        engine.dispose()
    assert {row.batch_id: row.channel for row in rows} == {
        b: hub_channel[b] for b in {r.batch_id for r in rows}
    }
    assert len(prod) == len(history) + len(realtime)
    assert len(tests) == len(test)  # test data is kept apart at the hub


def test_channel_1_is_not_delayed_by_a_channel_2_backlog(
    hub: HubProcess, tmp_path: Path, node_db_url: str
) -> None:
    backlog = 20_000 if node_db_url.startswith("sqlite") else 5_000  # PostgreSQL enqueues row by row
    with node_against(hub, tmp_path, node_db_url, channel2_rate=0) as node:
        ctx = node.ctx
        stream = node.records(backlog // 33 + 15)
        history = new_records(stream[:backlog])
        for start in range(0, len(history), 5000):
            ctx.outbox.enqueue(history[start : start + 5000])
        assert len(history) == backlog
        service = NodeService(ctx, feedback=False)
        with running(service):
            wait_for(lambda: service.uploaders[2].stats.batches >= 2, 30, message="channel 2 busy")
            taken = {(r.table.name, r.key) for r in history}
            fresh = next(
                e
                for e in stream[backlog:]
                if e["table"] == "LEGAL_PERSON_BASE" and e["op"] == "insert" and identity(e) not in taken
            )  # a subject: it depends on nothing in the backlog
            subject = new_records(as_realtime([fresh]), published_now=True)
            [row_id] = ctx.outbox.enqueue(subject)
            service.notify(1)
            enqueued = time.monotonic()

            def accepted() -> bool:
                [row] = ctx.outbox.rows([outbox.c.id == row_id])
                return bool(row.state == "accepted")

            wait_for(accepted, 10, interval=0.01, message="realtime record accepted")
            waited = time.monotonic() - enqueued
            still_queued = ctx.outbox.depths().waiting(2)
        summary = latency_summary(ctx.engine, 1)
    assert still_queued > backlog / 2, "the backlog must still be there: channel 2 was busy throughout"
    assert waited < 2.0, f"the realtime record waited {waited:.2f} s behind the backlog"
    assert summary.count == 1 and summary.accepted_p99 is not None and summary.accepted_p99 < 2.5


def test_channel_2_keeps_to_its_rate(hub: HubProcess, tmp_path: Path, node_db_url: str) -> None:
    with node_against(hub, tmp_path, node_db_url, channel2_rate=100, batch_size=20) as node:
        ctx = node.ctx
        ctx.outbox.enqueue(new_records(node.records(15)[:400]))
        service = NodeService(ctx, feedback=False)
        started = time.monotonic()
        with running(service):
            wait_for(lambda: drained(ctx), 30, message="outbox drained")
            elapsed = time.monotonic() - started
        states = outbox_states(ctx)
    # a burst of 100 (+ one batch on a zero balance), then 280 at 100/s; unlimited: about half a second
    assert elapsed >= 2.7, f"400 records at 100/s took only {elapsed:.2f} s"
    assert elapsed < 8
    assert states == {"accepted": 400}, rejections(ctx)


def test_a_lost_receipt_is_recovered_from_the_feed(hub: HubProcess, tmp_path: Path, node_db_url: str) -> None:
    with node_against(hub, tmp_path, node_db_url) as node:
        ctx = node.ctx
        ctx.outbox.enqueue(new_records(node.records(2)))
        batch = ctx.outbox.form_batch(2, 500)
        assert batch is not None
        with ctx.hub_client() as client:
            receipt = client.upload(2, batch.batch_id, batch.records)  # stored; say the answer was lost
            assert [b.batch_id for b in ctx.outbox.unacknowledged(2)] == [batch.batch_id]
            poller = FeedbackPoller(ctx, client)
            result = poller.poll_once()
            assert result.receipts_applied == 1
            assert ctx.outbox.unacknowledged(2) == []
            assert outbox_states(ctx) == {"accepted": len(batch.ids)}
            versions = [row.hub_version for row in ctx.outbox.rows(limit=1000)]
            assert versions == [result["version"] for result in receipt["results"]]
            # the cursor survives a restart: a new poller reads nothing twice
            again = FeedbackPoller(ctx, client).poll_once()
            assert again.items == 0 and again.cursor == result.cursor > 0


def _forget_at_hub(hub_db_url: str, table: str, keys: Sequence[str]) -> None:
    """The hub loses records (a restore from an old backup): what a re-upload request repairs."""
    engine = make_engine(hub_db_url)
    try:
        with writing(engine) as connection:
            pairs = [(table, key) for key in keys]
            connection.execute(
                delete(hub_records).where(tuple_(hub_records.c.table_name, hub_records.c.key).in_(pairs))
            )
            connection.execute(
                delete(record_heads).where(tuple_(record_heads.c.table_name, record_heads.c.key).in_(pairs))
            )
            connection.execute(
                delete(record_refs).where(tuple_(record_refs.c.table_name, record_refs.c.key).in_(pairs))
            )
    finally:
        engine.dispose()


def test_reupload_requests_and_notices_from_the_hub_are_executed(
    hub: HubProcess, tmp_path: Path, node_db_url: str
) -> None:
    with node_against(hub, tmp_path, node_db_url) as node:
        ctx = node.ctx
        ctx.outbox.enqueue(new_records(node.records(3)))
        service = NodeService(ctx)
        with running(service):
            wait_for(lambda: drained(ctx), 60, message="outbox drained")
            subjects = ctx.outbox.rows([outbox.c.table_name == "LEGAL_PERSON_BASE"], limit=1000)
            versions = Counter(row.key for row in subjects)
            lost = sorted(key for key, n in versions.items() if n == 1)[:3]
            project_keys = {
                row.key for row in ctx.outbox.rows([outbox.c.table_name == "PROJECT"], limit=1000)
            }
            _forget_at_hub(hub.db_url, "LEGAL_PERSON_BASE", lost)
            hub_engine = make_engine(hub.db_url)
            try:
                push(
                    hub_engine,
                    node.node_id,
                    "reupload",
                    {"table": "LEGAL_PERSON_BASE", "keys": [*lost, "NO-SUCH-KEY"]},
                )
                push(hub_engine, node.node_id, "notice", {"message_zh": "今晚22点维护", "code": "N-MAINT"})
                today = dt.datetime.now(SHANGHAI).date().isoformat()
                push(hub_engine, node.node_id, "reupload", {"table": "PROJECT", "day": today})
            finally:
                hub_engine.dispose()

            def reuploads_decided() -> bool:
                again = ctx.outbox.rows([outbox.c.source == "reupload"], limit=1000)
                return len(again) == len(lost) + len(project_keys) and all(
                    row.state in ("accepted", "rejected") for row in again
                )

            wait_for(reuploads_decided, 30, message="re-uploads decided")
            time.sleep(1.0)  # more polls of the feed: nothing is executed twice
        again = ctx.outbox.rows([outbox.c.source == "reupload"], limit=1000)
        with ctx.engine.connect() as connection:
            notes = connection.execute(select(alerts.c.kind, alerts.c.level, alerts.c.message)).all()
    assert len(lost) == 3 and project_keys
    by_key = {(row.table_name, row.key): row for row in again}
    for key in lost:  # the hub had lost them: accepted again, the envelope unchanged
        row = by_key[("LEGAL_PERSON_BASE", key)]
        [original] = [r for r in subjects if r.key == key]
        assert row.state == "accepted" and row.record == original.record and row.channel == original.channel
    assert {key for (table, key) in by_key if table == "LEGAL_PERSON_BASE"} == set(lost)
    # the day request re-sent every project of today; the hub still had them: refused as duplicates
    assert {key for (table, key) in by_key if table == "PROJECT"} == project_keys
    assert all(by_key[("PROJECT", key)].state == "rejected" for key in project_keys)
    kinds = {(kind, level) for kind, level, _ in notes}
    assert ("notice", "info") in kinds
    assert any(kind == "reupload" and "NO-SUCH-KEY" in message for kind, _, message in notes)
    assert len(again) == len(lost) + len(project_keys)  # each request executed once, not per poll


# --- the uploader's own decisions, with a fake hub ---


class FakeHub:
    """Answers each upload from a script: a receipt, or an exception to raise."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[int, str, int]] = []

    def upload(self, channel: int, batch_id: str, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append((channel, batch_id, len(records)))
        answer = self.answers.pop(0) if self.answers else "accept"
        if isinstance(answer, Exception):
            raise answer
        outcome = "accepted" if answer == "accept" else "rejected"
        return {"results": [{"outcome": outcome, "version": 1, "findings": []} for _ in records]}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ctx(tmp_path: Path, node_db_url: str) -> Iterator[NodeContext]:
    settings = NodeSettings(
        node_id="fj-01", hub_url="http://127.0.0.1:9", key_file=tmp_path / "node.key", db_url=node_db_url
    )
    context = build_context(settings, key=b"k" * 32)
    yield context
    context.engine.dispose()


def uploader(
    ctx: NodeContext, channel: int, hub: FakeHub, clock: Clock, failures: int = 3
) -> ChannelUploader:
    return ChannelUploader(
        ctx,
        channel,
        hub,
        CircuitBreaker(failures, 30.0, clock),
        backoff=Backoff(1.0, 60.0, rand=lambda: 1.0),
        bucket=TokenBucket(0, clock=clock),
        clock=clock,
    )


def test_unavailable_hub_keeps_the_batch_backs_off_and_opens_the_breaker(ctx: NodeContext) -> None:
    ctx.outbox.enqueue(new_records(simulated(1, 1, "history")[:5]))
    clock = Clock()
    fake = FakeHub(*[HubUnavailable("connection refused")] * 3)
    sender = uploader(ctx, 2, fake, clock)
    waits = [sender.step() for _ in range(3)]
    assert [w.kind for w in waits] == ["unavailable"] * 3
    assert [w.wait for w in waits[:2]] == [1.0, 2.0]  # exponential
    assert waits[2].wait == pytest.approx(30.0)  # the breaker opened: wait for its trial
    assert sender.step().kind == "breaker_open" and len(fake.calls) == 3  # nothing sent while open
    clock.now += 30
    done = sender.step()
    assert done.kind == "sent" and done.accepted == 5
    assert len({batch_id for _, batch_id, _ in fake.calls}) == 1  # always the same batch id
    with ctx.engine.connect() as connection:
        attempts = connection.execute(select(link_attempts.c.ok)).scalars().all()
        hub_alerts = connection.execute(select(alerts.c.kind, alerts.c.resolved_at)).all()
    assert attempts == [False, False, False, True]
    assert [kind for kind, _ in hub_alerts] == ["hub"] and hub_alerts[0].resolved_at is not None


def test_a_refused_batch_raises_an_alert_and_is_kept_not_dropped(ctx: NodeContext) -> None:
    ctx.outbox.enqueue(new_records(simulated(1, 1, "history")[:4]))
    clock = Clock()
    refusal = HubRefused(403, "E-AUTH-NODE-SUSPENDED", "节点已暂停", "node suspended")
    fake = FakeHub(refusal, refusal)
    sender = uploader(ctx, 2, fake, clock)
    first, second = sender.step(), sender.step()
    assert (first.kind, second.kind) == ("refused", "refused")
    assert second.wait > first.wait > 0  # backs off
    assert sender.breaker.consecutive_failures == 0  # the hub answered: not an outage
    with ctx.engine.connect() as connection:
        open_alerts = connection.execute(select(alerts).where(alerts.c.resolved_at.is_(None))).all()
        batch = connection.execute(select(batches)).one()
    assert len(open_alerts) == 1 and "E-AUTH-NODE-SUSPENDED" in open_alerts[0].message
    assert batch.attempts == 2 and batch.acknowledged_at is None
    assert outbox_states(ctx) == {"sent": 4}
    assert sender.step().kind == "sent"  # the operator fixed it: the same batch goes through
    assert outbox_states(ctx) == {"accepted": 4}
    assert {batch_id for _, batch_id, _ in fake.calls} == {batch.batch_id}


def test_unacknowledged_batches_are_resent_first_after_a_restart(ctx: NodeContext) -> None:
    ctx.outbox.enqueue(new_records(simulated(1, 1, "history")[:6]))
    stranded = ctx.outbox.form_batch(2, 2)  # formed, then the process died
    assert stranded is not None
    fake = FakeHub()
    sender = uploader(ctx, 2, fake, Clock())
    sender.step()
    sender.step()
    assert fake.calls[0] == (2, stranded.batch_id, 2)
    assert fake.calls[1][1] != stranded.batch_id and fake.calls[1][2] == 4


def test_latency_alert_before_the_ten_minutes_are_up(ctx: NodeContext) -> None:
    now = dt.datetime.now(dt.UTC)
    [late] = new_records(
        simulated(2, 1, "realtime")[:1], published_now=True, now=now - dt.timedelta(minutes=9)
    )
    ctx.outbox.enqueue([late])
    clock = {"now": now}
    watch = LatencyWatch(ctx.engine, 480, now=lambda: clock["now"])
    count, age = watch.check()
    assert count == 1 and age is not None and 530 < age < 560
    clock["now"] = now + dt.timedelta(minutes=2)
    watch.check()
    with ctx.engine.connect() as connection:
        levels = connection.execute(select(alerts.c.level).where(alerts.c.kind == "latency")).scalars().all()
    assert levels == ["critical"]  # one alert for the condition, raised to critical in place
    assert watch.check() == (1, pytest.approx(11 * 60, abs=1))
    sender = uploader(ctx, 1, FakeHub(), Clock())
    assert sender.step().kind == "sent"
    assert watch.check() == (0, None)
    with ctx.engine.connect() as connection:
        still_open = connection.execute(select(alerts).where(alerts.c.resolved_at.is_(None))).all()
    assert still_open == []


def test_notify_wakes_channel_1_at_once(ctx: NodeContext) -> None:
    fake = FakeHub()
    sender = ChannelUploader(ctx, 1, fake, poll_seconds=30.0)  # it would otherwise sleep 30 s
    service_thread = threading.Thread(target=sender.run, daemon=True)
    service_thread.start()
    try:
        time.sleep(0.2)
        ctx.outbox.enqueue(new_records(simulated(2, 1, "realtime")[:1], published_now=True))
        sender.notify()
        wait_for(lambda: len(fake.calls) == 1, 2, interval=0.01, message="channel 1 woke up")
    finally:
        sender.stop()
        service_thread.join(5)
    assert not service_thread.is_alive()


def test_service_hooks_run_tasks_and_parts_and_stop_in_order(ctx: NodeContext) -> None:
    events: list[str] = []
    service = NodeService(
        ctx,
        feedback=False,
        latency_watch=False,
        client_factory=lambda: HubClient("http://127.0.0.1:9", "fj-01", b"k"),
    )
    task = service.add_task("tick", 0.05, lambda: events.append("tick"))
    service.add_part("intake", lambda: events.append("start"), lambda: events.append("stop"))
    service.start()
    wait_for(lambda: task.runs >= 3, 5, message="task ran")
    assert service.stop(timeout=10)
    assert events.count("start") == 1 and events.count("stop") == 1 and events.count("tick") >= 3
    after, runs = list(events), task.runs
    time.sleep(0.15)
    assert events == after
    assert task.runs == runs  # stopped for good


def _row(table: str, data: dict[str, str], channel: int) -> NewRecord:
    spec = SPEC.tables[table]
    category = "realtime" if channel == 1 else "history"
    return NewRecord(
        spec, spec.key_of(data), {"table": table, "op": "insert", "category": category, "data": data}, channel
    )


def test_an_expedited_parent_brings_its_own_parent_and_never_overtakes_it(ctx: NodeContext) -> None:
    project = _row("PROJECT", {"PROJECT_CODE": "A3501002611010001"}, 2)
    fillers = [_row("LEGAL_PERSON_BASE", {"LEGAL_CODE": f"L{n:03d}"}, 2) for n in range(10)]
    tender = _row("TENDER_PROJECT", {"TENDER_PROJECT_CODE": "T1", "PROJECT_CODE": "A3501002611010001"}, 2)
    section = _row("SECTION", {"BID_SECTION_CODE": "S1", "TENDER_PROJECT_CODE": "T1"}, 1)
    ids = ctx.outbox.enqueue([project, *fillers, tender, section])
    project_id, tender_id, section_id = ids[0], ids[-2], ids[-1]
    assert ctx.outbox.form_batch(1, 5) is None  # the realtime section waits for its tender project…
    first = ctx.outbox.form_batch(2, 2)  # …which jumps the backlog, bringing its project along, in order
    assert first is not None and first.ids == [project_id, tender_id]
    ctx.outbox.apply_receipt(first, {"results": [{"outcome": "accepted", "version": 1}] * 2})
    realtime = ctx.outbox.form_batch(1, 5)
    assert realtime is not None and realtime.ids == [section_id]


def test_a_batch_limit_never_separates_a_record_from_what_it_needs(ctx: NodeContext) -> None:
    project = _row("PROJECT", {"PROJECT_CODE": "A3501002611010001"}, 2)
    tender = _row("TENDER_PROJECT", {"TENDER_PROJECT_CODE": "T1", "PROJECT_CODE": "A3501002611010001"}, 2)
    section = _row("SECTION", {"BID_SECTION_CODE": "S1", "TENDER_PROJECT_CODE": "T1"}, 1)
    project_id, tender_id, _ = ctx.outbox.enqueue([project, tender, section])
    assert ctx.outbox.form_batch(1, 5) is None  # expedites the tender project and, at once, its project
    assert [row.expedite for row in ctx.outbox.rows()] == [True, True, False]
    one = ctx.outbox.form_batch(2, 1)  # room for one: the project (the tender project needs it first)
    assert one is not None and one.ids == [project_id]
    ctx.outbox.apply_receipt(one, {"results": [{"outcome": "accepted", "version": 1}]})
    two = ctx.outbox.form_batch(2, 1)
    assert two is not None and two.ids == [tender_id]


def test_node_run_refuses_to_start_without_config_or_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from ggzy.cli import app

    monkeypatch.setenv("GGZY_CONFIG", str(tmp_path / "none.toml"))  # restored afterwards: the command sets it
    runner = CliRunner()
    missing = runner.invoke(app, ["node", "run", "--config", str(tmp_path / "absent.toml")])
    assert missing.exit_code == 2 and "E-CONFIG-MISSING" in missing.output
    config = tmp_path / "node.toml"
    config.write_text(
        f'[node]\nkey_file = "{tmp_path / "no.key"}"\ndb_url = "sqlite:///{tmp_path / "outbox.db"}"\n',
        encoding="utf-8",
    )
    no_key = runner.invoke(app, ["node", "run", "--config", str(config)])
    assert no_key.exit_code == 4 and "E-NODE-KEY" in no_key.output
    config.write_text('[node]\nbatch_size = "many"\n', encoding="utf-8")
    invalid = runner.invoke(app, ["node", "run", "--config", str(config)])
    assert invalid.exit_code == 2 and "E-CONFIG-INVALID" in invalid.output


def test_a_batch_planned_while_intake_supersedes_a_row_is_planned_again(
    ctx: NodeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = ctx.outbox.enqueue(
        [
            _row("LEGAL_PERSON_BASE", {"LEGAL_CODE": "L1"}, 2),
            _row("LEGAL_PERSON_BASE", {"LEGAL_CODE": "L2"}, 2),
        ]
    )
    original = Outbox._select
    corrected: list[int] = []

    def select_then_correct(ready: Any, waits: Any, limit: int) -> list[Any]:
        chosen = original(ready, waits, limit)
        if not corrected:  # intake stores a correction of the first row between planning and taking
            fix = _row("LEGAL_PERSON_BASE", {"LEGAL_CODE": "L1", "LEGAL_NAME": "更正"}, 2)
            fix.corrects = first
            corrected.extend(ctx.outbox.enqueue([fix]))
        return chosen

    monkeypatch.setattr(Outbox, "_select", staticmethod(select_then_correct))
    batch = ctx.outbox.form_batch(2, 10)
    assert batch is not None and batch.ids == [second, *corrected]
    states = {row.id: row.state for row in ctx.outbox.rows()}
    assert states == {first: "superseded", second: "sent", corrected[0]: "sent"}


def test_channel_2_sizes_its_batches_to_the_hubs_pace(ctx: NodeContext) -> None:
    ctx.outbox.enqueue(new_records(simulated(1, 30)[:800]))
    clock = Clock()

    class SlowHub(FakeHub):
        def upload(self, channel: int, batch_id: str, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
            clock.now += 0.01 * len(records)  # 10 ms a record: 0.5 s buys 50 records
            return super().upload(channel, batch_id, records)

    fake = SlowHub()
    sender = ChannelUploader(ctx, 2, fake, bucket=TokenBucket(0, clock=clock), clock=clock, batch_size=500)
    for _ in range(4):
        assert sender.step().kind == "sent"
    sizes = [size for _, _, size in fake.calls]
    assert sizes[0] == 500 and sizes[1] == 50 and sizes[-1] == 50  # then it keeps to about 0.5 s a request
    realtime = ChannelUploader(ctx, 1, fake, clock=clock, batch_size=500)
    assert realtime.batch_limit() == 500  # channel 1 sends whatever is waiting
