"""Realtime latency through the node while channel 2 backfills a large history backlog (issue 4).

    .venv/bin/python bench/node_latency.py                     # 1,000,000 history records
    .venv/bin/python bench/node_latency.py --history 200000    # a quicker run

Set-up: a real hub process (``uvicorn ggzy.hub.server:app``, SQLite, one worker) and, in this
process, a node (SQLite outbox, ``NodeService``: channel-1 and channel-2 uploader threads, feedback
poller, latency watch), exactly as ``ggzy node run`` runs them. Province 35 is simulated: the
history backlog from one stream (dependency order), the realtime records from another (different
seed and year, so no realtime record shares a key with the backlog or waits for it; records that do
are expedited by the outbox, which tests/integration/node/test_uploader.py covers). The realtime
records are simulated before anything is timed and kept as JSON text, and the simulator's objects
are frozen out of the garbage collector: the province's systems are not part of the node's heap.

1. Baseline: realtime records are enqueued at ``--rate`` per second (50) for ``--baseline-seconds``,
   each published at the moment it is enqueued (as intake does), channel 2 idle.
2. Backfill: ``--history`` records are queued for channel 2 (not timed), the uploaders start, and
   channel 2 sends them as fast as the hub takes them (no rate limit) while realtime records keep
   arriving at ``--rate`` per second, until the backlog is empty (or ``--max-seconds``).

Reported per phase, from the outbox timestamps: publication → sent (batch formed) and publication →
accepted (receipt applied) for the realtime records, p50/p99/max, the worst minute's p99; channel 2's
throughput; how long intake's enqueue of one realtime record took; the garbage collector's pauses.
Goal: p99 publication → accepted ≤ 2 s with the backfill running.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from ggzy.hub.app import MIGRATIONS
from ggzy.hub.registry import NodeRecord, add_node
from ggzy.node.context import build_context
from ggzy.node.models import outbox
from ggzy.node.outbox import NewRecord, Outbox
from ggzy.node.service import NodeService
from ggzy.node.uploader import quantile, utc
from ggzy.runtime import settle_after_start
from ggzy.security.keys import load_or_create_key
from ggzy.settings import NodeSettings
from ggzy.simulate import province_systems, simulate
from ggzy.spec import load_spec
from ggzy.store import make_engine
from ggzy.store.migrate import upgrade

PROVINCE = "35"
SEED = 1
REALTIME_SEED = 2
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
SPEC = load_spec()
ENQUEUE_CHUNK = 20_000


# --- the hub process ---


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Hub:
    db_url: str
    key_dir: Path
    log: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        engine = make_engine(self.db_url)
        upgrade(engine, MIGRATIONS)
        engine.dispose()
        load_or_create_key(self.key_dir / "audit.key")
        env = {k: v for k, v in os.environ.items() if not k.startswith("GGZY_")}
        env |= {"GGZY_HUB__DB_URL": self.db_url, "GGZY_HUB__KEY_DIR": str(self.key_dir)}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "uvicorn", "ggzy.hub.server:app", "--port", str(self.port)),
                    *("--log-level", "warning", "--no-access-log"),
                ],
                env=env,
                cwd=self.log.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"hub did not start, see {self.log}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def register(db_url: str) -> NodeRecord:
    codes = sorted(
        {c for seed in (SEED, REALTIME_SEED) for c in province_systems(PROVINCE, seed).platform_codes}
    )
    engine = make_engine(db_url)
    with engine.begin() as connection:
        node = add_node(connection, "bench-35", PROVINCE, platform_codes=codes)
    engine.dispose()
    return node


# --- records ---


def stream(records: int, seed: int = SEED, days_ago: int = 40) -> Iterator[dict[str, Any]]:
    """A simulated stream in dependency order, dated over 30 days from ``days_ago`` days ago.

    Codes are serials per region and year: streams of different years never share a key.
    """
    today = dt.datetime.now(SHANGHAI).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    for item in simulate(
        PROVINCE,
        seed=seed,
        transactions=records // 30 + 100,
        start=today - dt.timedelta(days=days_ago),
        days=30,
        category="history",
    ):
        yield item.record


def new_record(envelope: dict[str, Any], realtime: bool) -> NewRecord:
    table = SPEC.tables[envelope["table"]]
    now = dt.datetime.now(dt.UTC)
    record = dict(envelope)
    published = None
    if realtime:
        record["category"] = "realtime"
        record["published_at"] = now.astimezone(SHANGHAI).isoformat(timespec="milliseconds")
        published = now
    return NewRecord(
        table,
        table.key_of(record["data"]),
        record,
        1 if realtime else 2,
        published_at=published,
        acquired_at=now,
    )


class Feeder(threading.Thread):
    """Enqueues realtime records at ``rate`` per second, one transaction each, and wakes channel 1."""

    def __init__(
        self, box: Outbox, source: Iterator[dict[str, Any]], rate: float, service: NodeService
    ) -> None:
        super().__init__(name="realtime-feeder", daemon=True)
        self.box, self.source, self.rate, self.service = box, source, rate, service
        self.stop_event = threading.Event()
        self.ids: list[int] = []
        self.enqueue_seconds: list[float] = []  # intake's durable enqueue of one record, under load
        self.late_starts = 0

    def run(self) -> None:
        started = time.monotonic()
        n = 0
        while not self.stop_event.is_set():
            due = started + n / self.rate
            pause = due - time.monotonic()
            if pause > 0:
                self.stop_event.wait(pause)
            elif pause < -0.5:
                self.late_starts += 1  # the enqueue itself fell behind (the store was busy)
            envelope = next(self.source, None)
            if envelope is None:
                return
            record = new_record(envelope, realtime=True)
            began = time.perf_counter()
            self.ids.extend(self.box.enqueue([record]))
            self.enqueue_seconds.append(time.perf_counter() - began)
            self.service.notify(1)
            n += 1


# --- measuring ---


@dataclass
class Latency:
    count: int
    decided: int
    rejected: int
    sent_p50: float
    sent_p99: float
    accepted_p50: float
    accepted_p99: float
    accepted_max: float

    def line(self, label: str) -> str:
        return (
            f"  {label:<34} n={self.count:>6,}  publish→sent p50 {self.sent_p50:6.3f} s  p99 {self.sent_p99:6.3f} s"
            f"   publish→accepted p50 {self.accepted_p50:6.3f} s  p99 {self.accepted_p99:6.3f} s"
            f"  max {self.accepted_max:6.3f} s  (rejected {self.rejected})"
        )


def measure(box: Outbox, ids: list[int]) -> Latency:
    to_sent: list[float] = []
    to_accepted: list[float] = []
    rejected = 0
    with box.engine.connect() as connection:
        for start in range(0, len(ids), 500):
            rows = connection.execute(
                select(outbox.c.state, outbox.c.published_at, outbox.c.sent_at, outbox.c.decided_at).where(
                    outbox.c.id.in_(ids[start : start + 500])
                )
            )
            for row in rows:
                if row.state == "rejected":
                    rejected += 1
                if row.decided_at is None:
                    continue
                published = utc(row.published_at)
                to_sent.append((utc(row.sent_at) - published).total_seconds())
                to_accepted.append((utc(row.decided_at) - published).total_seconds())
    return Latency(
        count=len(ids),
        decided=len(to_accepted),
        rejected=rejected,
        sent_p50=quantile(to_sent, 0.5) or 0.0,
        sent_p99=quantile(to_sent, 0.99) or 0.0,
        accepted_p50=quantile(to_accepted, 0.5) or 0.0,
        accepted_p99=quantile(to_accepted, 0.99) or 0.0,
        accepted_max=max(to_accepted, default=0.0),
    )


def waiting(box: Outbox, channel: int) -> int:
    with box.engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).where(
                    outbox.c.channel == channel, outbox.c.state.in_(("queued", "sent"))
                )
            ).scalar_one()
        )


def accepted_history(box: Outbox) -> int:
    with box.engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).where(outbox.c.channel == 2, outbox.c.state == "accepted")
            ).scalar_one()
        )


pauses: list[float] = []
_gc_started = [0.0]


def _gc_watch(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    else:
        pauses.append(time.perf_counter() - _gc_started[0])


gc.callbacks.append(_gc_watch)


def worst_minute(box: Outbox, ids: list[int]) -> float | None:
    """The highest per-minute p99 of publication → accepted: are the slow records clustered?"""
    by_minute: dict[int, list[float]] = {}
    with box.engine.connect() as connection:
        for start in range(0, len(ids), 500):
            rows = connection.execute(
                select(outbox.c.published_at, outbox.c.decided_at).where(
                    outbox.c.id.in_(ids[start : start + 500])
                )
            )
            for row in rows:
                if row.decided_at is not None:
                    published = utc(row.published_at)
                    minute = int(published.timestamp() // 60)
                    by_minute.setdefault(minute, []).append((utc(row.decided_at) - published).total_seconds())
    full = [values for values in by_minute.values() if len(values) >= 100]
    return max((quantile(values, 0.99) or 0.0 for values in full), default=None)


def run_phase(
    box: Outbox, service: NodeService, source: Iterator[dict[str, Any]], rate: float, until: Any
) -> tuple[Feeder, float]:
    """Start the service and the feeder; run until ``until()``; let the last realtime records land."""
    service.start()
    feeder = Feeder(box, source, rate, service)
    started = time.monotonic()
    feeder.start()
    while not until(time.monotonic() - started):
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    feeder.stop_event.set()
    feeder.join()
    deadline = time.monotonic() + 60
    while waiting(box, 1) and time.monotonic() < deadline:
        time.sleep(0.1)
    service.stop()
    return feeder, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--history", type=int, default=1_000_000, help="history backlog (records)")
    parser.add_argument("--rate", type=float, default=50.0, help="realtime records per second")
    parser.add_argument("--baseline-seconds", type=float, default=30.0)
    parser.add_argument("--max-seconds", type=float, default=3 * 3600.0, help="cap on the backfill phase")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument(
        "--work", type=Path, default=None, help="working directory (default: a temporary one)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="ggzy-node-latency-"))
    work.mkdir(parents=True, exist_ok=True)
    hub = Hub(f"sqlite:///{work / 'hub.db'}", work / "keys", work / "hub.log", free_port())
    print(
        f"work directory: {work}   load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    try:
        hub.start()
        node = register(hub.db_url)
        (work / "node.key").write_text(node.key)
        settings = NodeSettings(
            node_id=node.node_id,
            province=PROVINCE,
            hub_url=hub.url,
            key_file=work / "node.key",
            db_url=f"sqlite:///{work / 'outbox.db'}",
            batch_size=args.batch_size,
            channel2_rate=0,  # as fast as the hub takes them
        )
        ctx = build_context(settings)
        box = ctx.outbox
        # Realtime records: a stream of their own (last year's serials: no key of the backlog), made
        # before anything is timed and kept as JSON text, so that the simulator's objects neither
        # cost time nor lengthen the garbage collector's pauses in the node process being measured.
        pool_size = int(args.rate * (args.baseline_seconds + args.history / 400 + 300))
        print(f"0. simulating {pool_size:,} realtime records …")
        pool = [
            json.dumps(e, ensure_ascii=False)
            for e in itertools.islice(stream(pool_size, REALTIME_SEED, 400), pool_size)
        ]
        realtime = (json.loads(text) for text in pool)
        source = stream(args.history)

        print(f"1. baseline: realtime at {args.rate:g}/s for {args.baseline_seconds:g} s, channel 2 idle")
        baseline_feed, _ = run_phase(
            box, NodeService(ctx), realtime, args.rate, lambda elapsed: elapsed >= args.baseline_seconds
        )
        baseline = measure(box, baseline_feed.ids)
        print(baseline.line("without backfill"))

        print(f"2. queueing {args.history:,} history records for channel 2 (not timed) …")
        started = time.monotonic()
        queued = 0
        chunk: list[NewRecord] = []
        for envelope in source:
            chunk.append(new_record(envelope, realtime=False))
            if len(chunk) == ENQUEUE_CHUNK or queued + len(chunk) == args.history:
                box.enqueue(chunk)
                queued += len(chunk)
                chunk = []
                if queued == args.history:
                    break
        if chunk:
            box.enqueue(chunk)
            queued += len(chunk)
        del source, chunk
        # What is left (spec, pool, caches) is the node's long-lived heap, not garbage; from here on
        # the collector runs as under `ggzy node run`.
        settle_after_start()
        print(f"   queued in {time.monotonic() - started:.0f} s")
        pauses.clear()

        print(f"3. backfill: channel 2 as fast as the hub takes it, realtime at {args.rate:g}/s")
        before = accepted_history(box)
        backfill_feed, elapsed = run_phase(
            box,
            NodeService(ctx),
            realtime,
            args.rate,
            lambda elapsed: waiting(box, 2) == 0 or elapsed >= args.max_seconds,
        )
        sent = accepted_history(box) - before
        backfill = measure(box, backfill_feed.ids)
        print(baseline.line("without backfill"))
        print(backfill.line("with backfill"))
        print(
            f"  channel 2: {sent:,} history records accepted in {elapsed:.0f} s = {sent / elapsed:,.0f} records/s"
            f"; realtime enqueues that fell behind schedule: {backfill_feed.late_starts}"
        )
        for label, feed in (("without backfill", baseline_feed), ("with backfill", backfill_feed)):
            spent = feed.enqueue_seconds
            print(
                f"  enqueue of one realtime record {label}: p50 {quantile(spent, 0.5) or 0:.3f} s"
                f"  p99 {quantile(spent, 0.99) or 0:.3f} s  max {max(spent, default=0):.3f} s"
            )
        print(
            f"  garbage collector in the node process during the backfill: {len(pauses):,} collections,"
            f" longest pause {max(pauses, default=0) * 1000:.0f} ms"
        )
        worst = worst_minute(box, backfill_feed.ids)
        if worst is not None:
            print(f"  worst minute of the backfill: p99 publish→accepted {worst:.3f} s")
        verdict = "met" if backfill.accepted_p99 <= 2.0 and backfill.decided == backfill.count else "NOT met"
        print(f"  goal p99 publish→accepted ≤ 2 s with the backfill running: {verdict}")
        print(f"  load average at end: {os.getloadavg()[0]:.1f}")
        ctx.engine.dispose()
    finally:
        hub.stop()
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
