"""Hub ingest throughput over HTTP, and the hub's memory over a long run.

    .venv/bin/python bench/hub_ingest.py [--records 100000] [--backend sqlite|postgresql|both]
    .venv/bin/python bench/hub_ingest.py --memory [--records 1000000] [--backend sqlite]
    .venv/bin/python bench/hub_ingest.py --hubs 2 --connections 4   # two hub processes, one database

What is measured: a real hub process (``uvicorn ggzy.hub.server:app``, one worker) and, in a second
process, a client sending batches of 1,000 simulated records (history, channel 2) on ``--connections``
keep-alive connections as fast as the hub answers. The bodies are serialised before the clock starts;
each request is signed when it is sent. Per record the hub does: HTTP, signature and nonce check,
JSON parsing, every validation rule, storage of the version, its head, link values and statistics,
the receipt and the audit entry, all in one durable transaction per batch (SQLite in WAL mode with
``synchronous=FULL``; PostgreSQL with its durable defaults).

Ceiling, in the same run and the same database: the rows the hub wrote to ``records`` (read back as
stored) inserted with ``executemany`` into a fresh table of the same definition, 1,000 rows per
committed transaction: the cost of storing the records alone, without HTTP, validation or the other
tables. Machines are noisy: compare the ratio.

``--hubs N`` runs N hub processes on the same database, each on its own port, and spreads the
connections over them evenly, as a load balancer would (the scale-out of issue 3). ``--workers N``
gives one hub N uvicorn workers instead; they share one listening socket, and the kernel hands a
new connection to whichever worker accepts first, so the keep-alive connections of a short run often
all end on one worker.

``--memory`` samples the hub's resident memory (VmRSS) every ``--sample-every`` records; after the
warm-up, max/min must stay within 20%.

Simulated records are cached in bench/.cache (one JSON Lines file per province and seed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, Index, MetaData, Table, UniqueConstraint, create_engine, insert, select, text
from sqlalchemy.engine import make_url

from ggzy.hub.app import MIGRATIONS
from ggzy.hub.models import records
from ggzy.hub.registry import add_node
from ggzy.security.keys import load_or_create_key
from ggzy.security.signing import sign_request
from ggzy.simulate import province_systems, simulate
from ggzy.store import make_engine
from ggzy.store.migrate import upgrade

CACHE = Path(__file__).parent / ".cache"
BATCH = 1_000
START = dt.datetime(2026, 9, 1, 8, 0)  # Asia/Shanghai, naive: a fixed month, so the cache stays valid
TRANSACTIONS = 1_000  # per stream: ~10,000–35,000 records depending on the province
PROVINCES = ("35", "44", "11", "51", "32", "33", "37", "31", "42", "43", "13", "41")
PATH = "/api/v1/channels/2/batches"
POSTGRES_URL = os.environ.get(
    "GGZY_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
GOALS = {"sqlite": 10_000, "postgresql": 5_000}


# --- simulated records, one stream per (province, seed), each sent by its own node ---


@dataclass(frozen=True)
class Stream:
    province: str
    seed: int

    @property
    def node_id(self) -> str:
        return f"bench-{self.province}-{self.seed}"

    @property
    def path(self) -> Path:
        return CACHE / f"hub-{self.province}-{self.seed}-{TRANSACTIONS}.jsonl"

    def ensure_cached(self) -> int:
        """Simulate the stream once; later runs read the file. Returns its number of records."""
        if not self.path.exists():
            CACHE.mkdir(exist_ok=True)
            partial = self.path.with_suffix(".part")
            with partial.open("w", encoding="utf-8") as out:
                for item in simulate(
                    self.province, seed=self.seed, transactions=TRANSACTIONS, start=START, category="history"
                ):
                    out.write(json.dumps(item.record, ensure_ascii=False) + "\n")
            partial.rename(self.path)
        with self.path.open(encoding="utf-8") as handle:
            return sum(1 for _ in handle)


def plan_streams(count: int, lanes: int) -> list[tuple[Stream, int]]:
    """Streams (and how many of their records to send) adding up to ``count`` records.

    At least ``lanes`` streams, so that every connection has a node of its own to send.
    """
    plan: list[tuple[Stream, int]] = []
    total, index = 0, 0
    share = -(-count // lanes)
    while total < count:
        # A seed of its own per stream: the simulator draws credit and entity identifiers (UUIDs,
        # national in scope) from the seed alone, and two nodes sending the same key are a conflict
        # the hub must resolve (E-EXCH-OWNER), not the independent traffic measured here.
        stream = Stream(PROVINCES[index % len(PROVINCES)], 1000 + index)
        available = stream.ensure_cached()
        take = min(available, share, count - total)
        plan.append((stream, take))
        total += take
        index += 1
    return plan


@dataclass(frozen=True)
class Batch:
    node_id: str
    key: bytes
    body: bytes
    records: int


def stream_batches(stream: Stream, take: int, key: bytes) -> Iterator[Batch]:
    """The stream's first ``take`` records as serialised batch bodies of BATCH records."""
    sent_at = dt.datetime.now(dt.UTC).isoformat()
    with stream.path.open(encoding="utf-8") as handle:
        chunk: list[str] = []
        number = 0
        for taken, line in enumerate(handle, start=1):
            if taken > take:
                break
            chunk.append(line.rstrip("\n"))
            if len(chunk) == BATCH or taken == take:
                batch_id = f"{stream.node_id}-{number:05d}"
                body = f'{{"batch_id":"{batch_id}","sent_at":"{sent_at}","records":[{",".join(chunk)}]}}'
                yield Batch(stream.node_id, key, body.encode(), len(chunk))
                chunk, number = [], number + 1


# --- the hub process ---


@dataclass
class Hub:
    db_url: str
    work: Path
    workers: int = 1
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        environment = {k: v for k, v in os.environ.items() if not k.startswith("GGZY_")}
        environment |= {"GGZY_HUB__DB_URL": self.db_url, "GGZY_HUB__KEY_DIR": str(self.work / "keys")}
        with (self.work / "hub.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "uvicorn", "ggzy.hub.server:app", "--host", "127.0.0.1"),
                    *("--port", str(self.port), "--log-level", "warning", "--no-access-log"),
                    *(("--workers", str(self.workers)) if self.workers > 1 else ()),
                ],
                env=environment,
                cwd=self.work,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.work / "hub.log").read_text())
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise TimeoutError("the hub did not start")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def processes(self) -> list[int]:
        """The hub's processes, once every worker has started and loaded the application."""
        deadline = time.monotonic() + 60
        while len(process_tree(self.pid)) < self.workers + (self.workers > 1) and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.workers > 1:
            time.sleep(5)  # the workers import and build the validator after they appear
        return process_tree(self.pid)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def profiler(pid: int, folder: Path, backend: str) -> subprocess.Popen[bytes]:
    """py-spy sampling the hub while the client runs (``pip install py-spy``), folded stacks."""
    folder.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen(
        [
            *(str(spy), "record", "--pid", str(pid), "--format", "raw", "--rate", "200"),
            *("--output", str(folder / f"hub-{backend}.folded"), "--nonblocking"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the uvicorn workers)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").iterdir():
            children = (task / "children").read_text().split()
            pending.extend(int(child) for child in children)
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` (each read while it still runs)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def postgres_backends(url: str) -> list[int]:
    """Server processes serving the bench database (their CPU is part of the cost of storing)."""
    engine = create_engine(POSTGRES_URL)
    name = make_url(url).database
    with engine.connect() as connection:
        pids = connection.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = :name"), {"name": name}
        ).scalars()
        found = [int(pid) for pid in pids]
    engine.dispose()
    return found


# --- the client, in a second process ---


@dataclass
class ClientReport:
    records: int = 0
    accepted: int = 0
    rejected: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # the client process's own CPU (signing, HTTP, reading receipts)
    errors: list[str] = field(default_factory=list)
    rss_series: list[tuple[int, int]] = field(default_factory=list)  # (records sent, hub VmRSS KiB)


_ACCEPTED = re.compile(rb'"accepted":(\d+),"rejected":(\d+)')


def _send_all(
    base_url: str, batches: Iterator[Batch], report: ClientReport, lock: threading.Lock, on_progress: Any
) -> None:
    with httpx.Client(base_url=base_url, timeout=httpx.Timeout(300.0, connect=10.0)) as http:
        for batch in batches:
            headers = sign_request(batch.node_id, batch.key, "POST", PATH, batch.body).as_dict()
            headers["Content-Type"] = "application/json"
            response = http.post(PATH, content=batch.body, headers=headers)
            if response.status_code != 200:
                with lock:
                    report.errors.append(f"{response.status_code} {response.text[:300]}")
                return
            # The receipt's totals precede its per-record results: no need to parse it all.
            counts = _ACCEPTED.search(response.content[:600]) or _ACCEPTED.search(response.content)
            with lock:
                report.records += batch.records
                if counts:
                    report.accepted += int(counts.group(1))
                    report.rejected += int(counts.group(2))
                on_progress(report.records)


def run_client(
    base_urls: list[str],
    lanes: list[list[Batch]] | list[Iterator[Batch]],
    hub_pid: int,
    sample_every: int,
    result: Pipe,
) -> None:
    """Send every lane on its own connection (lane i to hub i mod n, as a load balancer spreading
    connections evenly would); report totals, time and the first hub's RSS series."""
    report = ClientReport()
    lock = threading.Lock()
    next_sample = [sample_every]

    def on_progress(sent: int) -> None:
        if sample_every and sent >= next_sample[0]:
            report.rss_series.append((sent, rss_kib(hub_pid)))
            next_sample[0] += sample_every

    threads = [
        threading.Thread(
            target=_send_all,
            args=(base_urls[index % len(base_urls)], iter(lane), report, lock, on_progress),
        )
        for index, lane in enumerate(lanes)
    ]
    started, cpu_started = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.seconds = time.perf_counter() - started
    report.cpu_seconds = time.process_time() - cpu_started
    result.send(report)


# --- databases ---


@dataclass
class Database:
    backend: str
    url: str
    drop: str | None = None  # PostgreSQL database to drop afterwards

    def close(self) -> None:
        if self.drop:
            admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{self.drop}" WITH (FORCE)'))
            admin.dispose()


def fresh_database(backend: str, work: Path) -> Database:
    if backend == "sqlite":
        return Database(backend, f"sqlite:///{work / 'hub.db'}")
    name = f"ggzy_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return Database(
        backend, make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False), name
    )


def prepare(database: Database, work: Path, plan: list[tuple[Stream, int]]) -> dict[str, bytes]:
    """Migrate, create the audit key, register one node per stream; the nodes' keys."""
    engine = make_engine(database.url)
    upgrade(engine, MIGRATIONS)
    load_or_create_key(work / "keys" / "audit.key")
    keys: dict[str, bytes] = {}
    with engine.begin() as connection:
        for stream, _ in plan:
            codes = list(province_systems(stream.province, stream.seed).platform_codes)
            node = add_node(connection, stream.node_id, stream.province, platform_codes=codes)
            keys[node.node_id] = bytes.fromhex(node.key)
    engine.dispose()
    return keys


def lanes_of(
    plan: list[tuple[Stream, int]], keys: dict[str, bytes], connections: int
) -> list[Iterator[Batch]]:
    """One lane per connection; each node's batches stay on one lane, in order."""
    assigned: list[list[tuple[Stream, int]]] = [[] for _ in range(connections)]
    for index, item in enumerate(plan):
        assigned[index % connections].append(item)

    def lane(items: list[tuple[Stream, int]]) -> Iterator[Batch]:
        for stream, take in items:
            yield from stream_batches(stream, take, keys[stream.node_id])

    return [lane(items) for items in assigned if items]


def ceiling(engine: Engine) -> tuple[int, float]:
    """executemany of the rows the hub stored into a fresh table like ``records``, 1,000 per commit."""
    clone = Table(
        "bench_ceiling_records",
        MetaData(),
        *(column._copy() for column in records.columns),
        UniqueConstraint("table_name", "key", "version", name="uq_bench_ceiling_version"),
        Index("ix_bench_ceiling_deal_code", "deal_code"),
        Index("ix_bench_ceiling_province_received", "province", "received_at"),
    )
    clone.drop(engine, checkfirst=True)
    clone.create(engine)
    columns = [column for column in records.columns if column.name != "id"]
    with engine.connect() as connection:
        rows = [dict(row) for row in connection.execute(select(*columns).order_by(records.c.id)).mappings()]
    started = time.perf_counter()
    for start in range(0, len(rows), BATCH):
        with engine.connect() as plain:
            connection = plain.execution_options(sqlite_begin="IMMEDIATE")
            with connection.begin():
                connection.execute(insert(clone), rows[start : start + BATCH])
    elapsed = time.perf_counter() - started
    clone.drop(engine)
    return len(rows), len(rows) / elapsed if elapsed else 0.0


# --- one run ---


def measure(
    backend: str,
    count: int,
    connections: int,
    memory: bool,
    sample_every: int,
    warmup: int,
    profile: Path | None,
    workers: int,
    hub_count: int,
) -> bool:
    plan = plan_streams(count, connections)
    with tempfile.TemporaryDirectory(prefix="ggzy-hub-bench-") as tmp:
        work = Path(tmp)
        database = fresh_database(backend, work)
        hubs = [Hub(database.url, work, workers) for _ in range(hub_count)]
        hub = hubs[0]
        try:
            keys = prepare(database, work, plan)
            lanes: list[list[Batch]] | list[Iterator[Batch]] = lanes_of(plan, keys, connections)
            if not memory:
                lanes = [list(lane) for lane in lanes]  # serialised before the clock starts
            for each in hubs:
                each.start()
            context = multiprocessing.get_context("fork")
            receiver, sender = context.Pipe(duplex=False)
            hub_pids = [pid for each in hubs for pid in each.processes()]
            cpu_before = cpu_seconds(hub_pids)
            client = context.Process(
                target=run_client,
                args=(
                    [each.base_url for each in hubs],
                    lanes,
                    hub.pid,
                    sample_every if memory else 0,
                    sender,
                ),
            )
            client.start()
            spy = profiler(hub.pid, profile, backend) if profile else None
            report: ClientReport = receiver.recv()
            client.join()
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
                spy.wait(timeout=60)
            hub_cpu = cpu_seconds(hub_pids) - cpu_before
            server_cpu = cpu_seconds(postgres_backends(database.url)) if backend == "postgresql" else 0.0
            for each in hubs:
                each.stop()
            if report.errors:
                print(f"  errors: {report.errors[:3]}")
                return False
            rate = report.records / report.seconds
            print(
                f"  hub ingest over HTTP ({connections} connections, {BATCH:,} records a batch): "
                f"{rate:>9,.0f} records/s"
            )
            print(
                f"    {report.records:,} records in {report.seconds:.1f} s: {report.accepted:,} accepted, "
                f"{report.rejected:,} rejected; hub CPU {hub_cpu:.1f} s "
                f"({hub_cpu / report.records * 1e6:.0f} µs a record"
                + (
                    f"; PostgreSQL backends {server_cpu / report.records * 1e6:.0f} µs a record)"
                    if backend == "postgresql"
                    else ")"
                )
            )
            print(
                f"    hub CPU busy {hub_cpu / report.seconds:.0%} of the wall time "
                f"({hub_count} hub process(es) of {hub.workers} worker(s)); "
                f"one core's worth of hub CPU takes ≈ {report.records / hub_cpu:,.0f} records/s"
            )
            # Hub, client and database share the machine's cores: at the goal rate, what all of them
            # may spend on one record before the cores alone rule the goal out.
            spent = (hub_cpu + server_cpu + report.cpu_seconds) / report.records * 1e6
            budget = (os.cpu_count() or 1) / GOALS[backend] * 1e6
            print(
                f"    client CPU {report.cpu_seconds / report.records * 1e6:.0f} µs a record; hub + client"
                + (" + PostgreSQL" if backend == "postgresql" else "")
                + f" {spent:.0f} µs a record, against {budget:.0f} µs of CPU a record that "
                f"{os.cpu_count()} cores have at {GOALS[backend]:,} records/s"
            )
            if memory:
                return memory_verdict(report, warmup)
            engine = make_engine(database.url)
            stored, ceiling_rate = ceiling(engine)
            engine.dispose()
            ratio = rate / ceiling_rate
            goal = GOALS[backend]
            print(
                f"  ceiling: executemany of the same {stored:,} rows into records: {ceiling_rate:>9,.0f} rows/s"
            )
            print(f"  ratio hub / ceiling: {ratio:.2f}")
            print(f"  goal ≥ {goal:,} records/s: {'met' if rate >= goal else 'NOT met'} ({rate:,.0f})")
            return rate >= goal
        finally:
            for each in hubs:
                each.stop()
            database.close()


def memory_verdict(report: ClientReport, warmup: int) -> bool:
    series = report.rss_series
    print(
        "    hub VmRSS (records sent → MiB): "
        + ", ".join(f"{n // 1000}k→{kib / 1024:.0f}" for n, kib in series)
    )
    steady = [kib for sent, kib in series if sent >= warmup]
    if len(steady) < 2:
        print("  not enough samples after the warm-up to judge")
        return False
    baseline, high, low = steady[0], max(steady), min(steady)
    print(
        f"  after warm-up ({warmup:,} records): first {baseline / 1024:.0f} MiB, min {low / 1024:.0f} MiB, "
        f"max {high / 1024:.0f} MiB; max/first {high / baseline:.2f}, max/min {high / low:.2f}"
    )
    flat = high / low <= 1.2
    print(f"  goal: resident memory flat within 20%: {'met' if flat else 'NOT met'}")
    return flat


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=None, help="default 100,000 (1,000,000 with --memory)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default=None)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes of each hub")
    parser.add_argument(
        "--hubs",
        type=int,
        default=1,
        help="hub processes on one database, each on its own port (scale-out behind a load balancer)",
    )
    parser.add_argument("--memory", action="store_true", help="sample the hub's RSS over a long run")
    parser.add_argument("--sample-every", type=int, default=50_000)
    parser.add_argument("--warmup", type=int, default=100_000, help="records before the first judged sample")
    parser.add_argument(
        "--profile", type=Path, help="folder for py-spy folded stacks of the hub (needs py-spy)"
    )
    args = parser.parse_args()
    count = args.records or (1_000_000 if args.memory else 100_000)
    backend = args.backend or ("sqlite" if args.memory else "both")
    backends = ("sqlite", "postgresql") if backend == "both" else (backend,)
    nodes = len(plan_streams(count, args.connections))
    print(
        f"hub ingest: {count:,} simulated records (history, channel 2), {nodes} nodes, {os.cpu_count()} CPUs"
    )
    results = []
    for name in backends:
        label = (
            "SQLite (WAL, synchronous=FULL)"
            if name == "sqlite"
            else "PostgreSQL (fsync, synchronous_commit on)"
        )
        print(f"\n{label}")
        results.append(
            measure(
                name,
                count,
                args.connections,
                args.memory,
                args.sample_every,
                args.warmup,
                args.profile,
                args.workers,
                args.hubs,
            )
        )
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
