"""Real hub processes for end-to-end tests: start, wait until healthy, kill, restart; retrying uploads.

The in-process ``hub`` fixture cannot show what happens when the process dies mid-batch or when two
processes serve one database; these helpers run ``uvicorn ggzy.hub.server:app`` as a child process
on a free port, exactly as ``ggzy hub serve`` does after migrating.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select

from ggzy.hub.app import MIGRATIONS
from ggzy.hub.models import audit_log, batches, feed, record_heads, records, stats_daily
from ggzy.hub.registry import NodeRecord, add_node
from ggzy.protocol import HubClient, HubUnavailable
from ggzy.security.audit import AuditLog
from ggzy.security.keys import load_or_create_key
from ggzy.settings import HubSettings
from ggzy.simulate import province_systems, simulate
from ggzy.store import make_engine
from ggzy.store.database import writing
from ggzy.store.migrate import upgrade

__all__ = [
    "Acknowledged",
    "HubProcess",
    "HubZygote",
    "RetryingUploader",
    "StoreSnapshot",
    "audit_of",
    "exactly_once_problems",
    "free_port",
    "node_records",
    "prepare_database",
    "register_node",
    "running_hubs",
]

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def prepare_database(db_url: str, key_dir: Path) -> None:
    """Migrate the database and create the audit key once, before any hub process starts.

    ``ggzy.hub.server`` does not migrate (``ggzy hub serve`` does it before the workers start), and
    two processes creating the audit key at the same moment would race.
    """
    engine = make_engine(db_url)
    try:
        upgrade(engine, MIGRATIONS)
    finally:
        engine.dispose()
    load_or_create_key(key_dir / "audit.key")


def register_node(db_url: str, node_id: str, province: str, seed: int) -> NodeRecord:
    """A node whose platform codes are those of the simulated province systems of ``seed``."""
    engine = make_engine(db_url)
    try:
        with writing(engine) as connection:
            codes = list(province_systems(province, seed).platform_codes)
            return add_node(connection, node_id, province, platform_codes=codes)
    finally:
        engine.dispose()


def node_records(
    province: str, seed: int, *, transactions: int, error_rate: float = 0.0, category: str = "history"
) -> list[dict[str, Any]]:
    """Simulated records of one province and seed, dated in the recent past (history, channel 2)."""
    start = dt.datetime.now(SHANGHAI).replace(tzinfo=None) - dt.timedelta(days=40)
    return [
        item.record
        for item in simulate(
            province,
            seed=seed,
            transactions=transactions,
            start=start,
            days=30,
            category=category,
            error_rate=error_rate,
        )
    ]


def audit_of(engine: Engine, key_dir: Path) -> AuditLog:
    """The audit log as the hub processes write it (same key file, default digest)."""
    settings = HubSettings(key_dir=key_dir)
    return AuditLog(audit_log, load_or_create_key(key_dir / "audit.key"), settings.audit_digest)


_ZYGOTE = r"""
import importlib, os, pkgutil, signal, sys
import ggzy
# everything a hub process imports, without building an app (ggzy.hub.server builds one on import)
for module in pkgutil.walk_packages(ggzy.__path__, "ggzy."):
    if module.name != "ggzy.hub.server" and ".migrations" not in module.name and "__main__" not in module.name:
        importlib.import_module(module.name)
import uvicorn, uvicorn.config, uvicorn.main, uvicorn.server, uvicorn.lifespan.on
import uvicorn.loops.auto, uvicorn.protocols.http.auto, uvicorn.protocols.websockets.auto
from ggzy.spec import load_spec
from ggzy.validation import Validator
Validator(load_spec())  # the spec and the compiled checks are kept by the forks
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the killed children
print("ready", flush=True)
for line in sys.stdin:
    if not line.startswith("start "):
        break
    port = int(line.split()[1])
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.close(0)
        log = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.dup2(log, 1)
        os.dup2(log, 2)
        try:  # what `uvicorn ggzy.hub.server:app --log-level warning --no-access-log` runs
            uvicorn.run(
                "ggzy.hub.server:app", host="127.0.0.1", port=port, log_level="warning", access_log=False
            )
        finally:
            os._exit(0)
    print(pid, flush=True)
"""


class Forked:
    """A hub forked by a :class:`HubZygote`: the part of ``Popen`` that :class:`HubProcess` uses.

    It is the zygote's child, not ours: it cannot be waited for, only watched until it is gone."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.returncode = -signal.SIGKILL  # how it ended is not ours to know; gone is gone
        return self.returncode

    def send_signal(self, signum: int) -> None:
        with suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"hub {self.pid}", timeout)
            time.sleep(0.005)
        assert self.returncode is not None
        return self.returncode


class HubZygote:
    """Starts hub processes by forking a process that has already imported everything and loaded the
    spec: a restart then costs building the app and binding the port, not seconds of imports, so a
    test can kill and restart the hub many times. Each hub is a process of its own that builds its
    app, engine and connections after the fork, from the same environment as the command."""

    def __init__(self, environment: dict[str, str], log_path: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE, str(log_path)],
            env=environment,
            cwd=log_path.parent,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.ready = False  # it imports while the first hub starts; the first fork waits for it

    def fork(self, port: int) -> Forked:
        assert self.process.stdin is not None and self.process.stdout is not None
        if not self.ready:
            answer = self.process.stdout.readline().strip()
            if answer != b"ready":
                raise RuntimeError(f"hub zygote failed to start: {answer!r}")
            self.ready = True
        self.process.stdin.write(f"start {port}\n".encode())
        self.process.stdin.flush()
        return Forked(int(self.process.stdout.readline()))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass
class HubProcess:
    """One ``uvicorn ggzy.hub.server:app`` child process; restarts keep the same port."""

    db_url: str
    key_dir: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | Forked | None = None
    starts: int = 0
    zygote: HubZygote | None = None  # when set, restarts (not the first start) are forked from it

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the hub process is not running"
        return self.process.pid

    def environment(self) -> dict[str, str]:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("GGZY_")}
        environment["GGZY_HUB__DB_URL"] = self.db_url
        environment["GGZY_HUB__KEY_DIR"] = str(self.key_dir)
        return environment

    def start(self, timeout: float = 30.0) -> None:
        self.spawn()
        self.wait_healthy(timeout)

    def spawn(self) -> None:
        """Start the process without waiting for it to answer (several hubs start side by side)."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n--- start {self.starts} ---\n".encode())
            log.flush()
            if self.zygote is not None and self.starts > 1:
                self.process = self.zygote.fork(self.port)
                return
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "ggzy.hub.server:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                env=self.environment(),
                cwd=self.log_path.parent,  # no stray ggzy.toml from the working tree
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"hub process exited during start-up:\n{self.log_tail()}")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/healthz", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.02)
        raise TimeoutError(f"hub not healthy within {timeout} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, open transactions die with the process."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM and wait; SIGKILL when it does not exit in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()

    def rss_kib(self) -> int:
        """Resident memory of the process (VmRSS), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS line")

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def running_hubs(
    db_url: str, work_dir: Path, count: int = 1, *, warm_restarts: bool = False
) -> Iterator[list[HubProcess]]:
    """``count`` hub processes on one (migrated) database; always killed on the way out.

    Each first start is the real command; with ``warm_restarts`` the restarts are forked from a
    :class:`HubZygote` (for tests that restart the hub many times)."""
    key_dir = work_dir / "keys"
    prepare_database(db_url, key_dir)
    hubs = [HubProcess(db_url, key_dir, work_dir / f"hub-{n}.log") for n in range(count)]
    try:
        for hub in hubs:
            if warm_restarts:
                hub.zygote = HubZygote(hub.environment(), hub.log_path)
            hub.spawn()
        for hub in hubs:
            hub.wait_healthy(60.0)
        yield hubs
    finally:
        for hub in hubs:
            hub.kill()
            if hub.zygote is not None:
                hub.zygote.close()


@dataclass(frozen=True)
class Acknowledged:
    """A receipt the hub acknowledged, and how many attempts it took."""

    batch_id: str
    records: list[dict[str, Any]]
    receipt: dict[str, Any]
    attempts: int


class RetryingUploader:
    """A node that resends the SAME batch id with the SAME records until it gets a receipt.

    Each failure (hub down, connection cut mid-request, 5xx) is followed by a jittered, growing pause
    and an attempt on the next hub in ``base_urls`` (as a load balancer would route it). A refusal
    (4xx) is not retried: it would not change. The total time per batch is bounded by ``deadline``.
    """

    def __init__(
        self,
        base_urls: Sequence[str],
        node: NodeRecord,
        *,
        deadline: float = 60.0,
        first_pause: float = 0.02,
        max_pause: float = 0.3,
        seed: int = 0,
        timeout: float = 30.0,
    ) -> None:
        self.node = node
        self.clients = [
            HubClient(url, node.node_id, bytes.fromhex(node.key), timeout=httpx.Timeout(timeout, connect=2.0))
            for url in base_urls
        ]
        self.deadline = deadline
        self.first_pause = first_pause
        self.max_pause = max_pause
        self.random = random.Random(seed)
        self.failures: list[str] = []

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def __enter__(self) -> RetryingUploader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def upload(
        self,
        batch_id: str,
        records: list[dict[str, Any]],
        *,
        channel: int = 2,
        via: int = 0,
        before_attempt: Callable[[int], None] | None = None,
    ) -> Acknowledged:
        """The receipt of ``batch_id``; ``via`` is the index of the hub tried first."""
        give_up = time.monotonic() + self.deadline
        pause = self.first_pause
        attempt = 0
        while True:
            client = self.clients[(via + attempt) % len(self.clients)]
            if before_attempt is not None:
                before_attempt(attempt)
            attempt += 1
            try:
                receipt = client.upload(channel, batch_id, records)
            except HubUnavailable as exc:
                self.failures.append(f"{batch_id}#{attempt}: {exc}")
                if time.monotonic() + pause > give_up:
                    raise TimeoutError(
                        f"batch {batch_id} not acknowledged after {attempt} attempts: {exc}"
                    ) from exc
                time.sleep(pause * self.random.uniform(0.5, 1.0))
                pause = min(pause * 2, self.max_pause)
                continue
            return Acknowledged(batch_id, records, receipt, attempt)


@dataclass
class StoreSnapshot:
    """What the hub database holds after a run, read directly (not through the API)."""

    record_rows: list[tuple[str, str, int, str, str]]  # table, key, version, node, batch
    heads: dict[tuple[str, str], int]
    batch_rows: list[tuple[str, str, int, dict[str, Any]]]  # node, batch, accepted, receipt
    stats: dict[str, int]
    feed_rows: list[tuple[int, str, str, str | None, dict[str, Any]]]  # id, node, kind, batch, body
    audit_uploads: int
    audit_break: Any

    @classmethod
    def read(cls, db_url: str, key_dir: Path) -> StoreSnapshot:
        engine = make_engine(db_url)
        try:
            with engine.connect() as connection:
                r, h, b, s, f = records.c, record_heads.c, batches.c, stats_daily.c, feed.c
                record_rows = [
                    (row.table_name, row.key, row.version, row.node_id, row.batch_id)
                    for row in connection.execute(
                        select(r.table_name, r.key, r.version, r.node_id, r.batch_id).order_by(r.id)
                    )
                ]
                heads = {
                    (row.table_name, row.key): row.version
                    for row in connection.execute(
                        select(h.table_name, h.key, h.version).where(h.namespace == "prod")
                    )
                }
                batch_rows = [
                    (row.node_id, row.batch_id, row.accepted, row.receipt)
                    for row in connection.execute(select(b.node_id, b.batch_id, b.accepted, b.receipt))
                ]
                totals = connection.execute(
                    select(func.sum(s.received), func.sum(s.accepted), func.sum(s.rejected))
                ).one()
                feed_rows = [
                    (row.id, row.node_id, row.kind, row.batch_id, row.body)
                    for row in connection.execute(
                        select(f.id, f.node_id, f.kind, f.batch_id, f.body).order_by(f.id)
                    )
                ]
                audit_uploads = connection.execute(
                    select(func.count()).where(audit_log.c.action == "upload.batch")
                ).scalar_one()
                audit_break = audit_of(engine, key_dir).verify(connection)
        finally:
            engine.dispose()
        stats = dict(zip(("received", "accepted", "rejected"), (int(v or 0) for v in totals), strict=True))
        return cls(record_rows, heads, batch_rows, stats, feed_rows, audit_uploads, audit_break)


def exactly_once_problems(snapshot: StoreSnapshot, acknowledged: Sequence[Acknowledged]) -> list[str]:
    """Every way the store disagrees with the receipts the nodes hold (empty when it agrees exactly)."""
    problems: list[str] = []
    versions = Counter((t, k, v) for t, k, v, _, _ in snapshot.record_rows)
    problems += [f"version stored {n} times: {tkv}" for tkv, n in versions.items() if n > 1]
    stored = {(t, k, v, node, batch) for t, k, v, node, batch in snapshot.record_rows}
    promised = {
        (result["table"], result["key"], result["version"], ack.receipt["node_id"], ack.batch_id)
        for ack in acknowledged
        for result in ack.receipt["results"]
        if result["outcome"] == "accepted"
    }
    accepted = sum(ack.receipt["accepted"] for ack in acknowledged)
    rejected = sum(ack.receipt["rejected"] for ack in acknowledged)
    received = sum(len(ack.records) for ack in acknowledged)
    if len(snapshot.record_rows) != accepted:
        problems.append(f"records rows {len(snapshot.record_rows)} != accepted in receipts {accepted}")
    problems += [f"acknowledged but not stored: {item}" for item in sorted(promised - stored)[:10]]
    problems += [f"stored but never acknowledged: {item}" for item in sorted(stored - promised)[:10]]
    problems += _batch_problems(snapshot, acknowledged)
    expected_stats = {"received": received, "accepted": accepted, "rejected": rejected}
    if snapshot.stats != expected_stats:
        problems.append(f"stats_daily sums {snapshot.stats} != receipts {expected_stats}")
    problems += _head_problems(snapshot)
    if snapshot.audit_break is not None:
        problems.append(f"audit chain broken: {snapshot.audit_break}")
    if snapshot.audit_uploads != len(acknowledged):
        problems.append(
            f"{snapshot.audit_uploads} upload.batch audit entries for {len(acknowledged)} batches"
        )
    return problems


def _batch_problems(snapshot: StoreSnapshot, acknowledged: Sequence[Acknowledged]) -> list[str]:
    problems: list[str] = []
    expected = {(ack.receipt["node_id"], ack.batch_id): ack.receipt for ack in acknowledged}
    if len(expected) != len(acknowledged):
        problems.append("the same batch was acknowledged twice in the test itself")
    stored_batches = Counter((node, batch) for node, batch, _, _ in snapshot.batch_rows)
    problems += [f"batch stored {n} times: {key}" for key, n in stored_batches.items() if n > 1]
    if set(stored_batches) != set(expected):
        problems.append(f"batches {sorted(stored_batches)} != acknowledged {sorted(expected)}")
    for node, batch, batch_accepted, receipt in snapshot.batch_rows:
        if (node, batch) in expected and receipt != expected[(node, batch)]:
            problems.append(f"stored receipt of {batch} differs from the acknowledged one")
        if batch_accepted != receipt["accepted"]:
            problems.append(f"batches.accepted of {batch} disagrees with its receipt")
    feed_receipts = Counter(
        (node, batch) for _, node, kind, batch, _ in snapshot.feed_rows if kind == "receipt"
    )
    if feed_receipts != Counter(expected.keys()):
        problems.append(f"feed receipts {dict(feed_receipts)} != one per acknowledged batch")
    return problems


def _head_problems(snapshot: StoreSnapshot) -> list[str]:
    problems: list[str] = []
    versions_of: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
    for table, key, version, _, _ in snapshot.record_rows:
        versions_of[(table, key)].append(version)
    if len(snapshot.heads) != len(versions_of):
        problems.append(f"record_heads {len(snapshot.heads)} != distinct keys in records {len(versions_of)}")
    for key, versions in versions_of.items():
        if sorted(versions) != list(range(1, len(versions) + 1)):
            problems.append(f"versions of {key} are not 1..n: {sorted(versions)}")
        elif snapshot.heads.get(key) != len(versions):
            problems.append(f"head of {key} is {snapshot.heads.get(key)}, newest stored is {len(versions)}")
    return problems[:20]
