"""Helpers for node tests against a real hub process: configs, node processes, simulated records.

The hub side comes from ``tests/integration/hub/hubproc.py`` (a ``uvicorn ggzy.hub.server:app``
child process); the node side is either a ``NodeContext`` in the test process (uploader threads)
or a ``ggzy node run --config node.toml`` child process that the tests kill with SIGKILL.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))

from hubproc import HubProcess, free_port, prepare_database
from sqlalchemy import func, select

from ggzy.hub.models import records as hub_records
from ggzy.hub.registry import NodeRecord, add_node
from ggzy.node.context import NodeContext, build_context
from ggzy.node.models import outbox
from ggzy.node.outbox import NewRecord
from ggzy.settings import NodeSettings
from ggzy.simulate import province_systems, simulate
from ggzy.spec import load_spec
from ggzy.store import make_engine
from ggzy.store.database import writing

__all__ = [
    "HubProcess",
    "NodeProcess",
    "NodeZygote",
    "as_realtime",
    "context",
    "free_port",
    "hub_record_keys",
    "identity",
    "new_records",
    "node_settings",
    "outbox_states",
    "register",
    "running_hub",
    "simulated",
    "wait_for",
    "write_config",
]

SPEC = load_spec()
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
PROVINCE = "35"


@contextmanager
def running_hub(work_dir: Path, db_url: str | None = None, *, start: bool = True) -> Iterator[HubProcess]:
    """A hub process on SQLite (or ``db_url``) in ``work_dir``; killed on the way out."""
    url = db_url or f"sqlite:///{work_dir / 'hub.db'}"
    prepare_database(url, work_dir / "keys")
    hub = HubProcess(url, work_dir / "keys", work_dir / "hub.log")
    try:
        if start:
            hub.start()
        yield hub
    finally:
        hub.kill()


def register(db_url: str, node_id: str, seeds: Iterable[int], province: str = PROVINCE) -> NodeRecord:
    """Register a node whose platform codes are those of the simulated systems of every seed."""
    codes = sorted({code for seed in seeds for code in province_systems(province, seed).platform_codes})
    engine = make_engine(db_url)
    try:
        with writing(engine) as connection:
            return add_node(connection, node_id, province, platform_codes=codes)
    finally:
        engine.dispose()


def simulated(
    seed: int, transactions: int, category: str = "history", *, province: str = PROVINCE
) -> list[dict[str, Any]]:
    """Simulated envelopes in dependency order, over 40 to 10 days ago.

    Generated codes are serials per region and year, so two seeds of one province share keys: take
    a node's history and realtime records from ONE stream (:func:`as_realtime` on a later slice),
    and give nodes that share a hub different provinces.
    """
    today = dt.datetime.now(SHANGHAI).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    return [
        item.record
        for item in simulate(
            province,
            seed=seed,
            transactions=transactions,
            start=today - dt.timedelta(days=40),
            days=30,
            category=category,
        )
    ]


def as_realtime(envelopes: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same records labelled realtime (``new_records(published_now=True)`` dates them now)."""
    return [{**envelope, "category": "realtime"} for envelope in envelopes]


def identity(envelope: dict[str, Any]) -> tuple[str, str]:
    """(table, key) of an envelope."""
    table = SPEC.tables[envelope["table"]]
    return table.name, table.key_of(envelope["data"])


def new_records(
    envelopes: Iterable[dict[str, Any]], *, published_now: bool = False, now: dt.datetime | None = None
) -> list[NewRecord]:
    """What intake would enqueue for these envelopes (channel from the category).

    ``published_now`` dates the records at the moment of enqueueing, as a realtime source does.
    """
    moment = now or dt.datetime.now(dt.UTC)
    made: list[NewRecord] = []
    for envelope in envelopes:
        record = dict(envelope)
        if published_now:
            record["published_at"] = moment.astimezone(SHANGHAI).isoformat(timespec="milliseconds")
        table = SPEC.tables[record["table"]]
        published = dt.datetime.fromisoformat(record["published_at"]) if record.get("published_at") else None
        made.append(
            NewRecord(
                table=table,
                key=table.key_of(record["data"]),
                record=record,
                channel=1 if record["category"] == "realtime" else 2,
                published_at=published,
                acquired_at=moment,
            )
        )
    return made


def node_settings(work_dir: Path, hub_url: str, node: NodeRecord, **options: Any) -> NodeSettings:
    """Settings of a node in ``work_dir`` (key file written) with fast retries for tests."""
    key_file = work_dir / "node.key"
    key_file.write_text(node.key, encoding="ascii")
    values: dict[str, Any] = {
        "node_id": node.node_id,
        "province": node.province,
        "hub_url": hub_url,
        "key_file": key_file,
        "db_url": f"sqlite:///{work_dir / 'outbox.db'}",
        "api_port": free_port(),
        "drop_dir": work_dir / "inbox",
        "disk_path": work_dir,
        "retry_base_seconds": 0.05,
        "retry_max_seconds": 0.5,
        "breaker_failures": 3,
        "breaker_open_seconds": 0.5,
        "feedback_interval_seconds": 0.5,
        "heartbeat_seconds": 5.0,
        "hub_timeout_seconds": 10.0,
    }
    values.update(options)
    return NodeSettings(**values)


def context(settings: NodeSettings) -> NodeContext:
    return build_context(settings)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def write_config(settings: NodeSettings, path: Path) -> Path:
    """The ``[node]`` section of a node.toml holding ``settings`` (scalars only)."""
    lines = ["[node]"]
    for name, value in settings.model_dump().items():
        if value is None or isinstance(value, list | dict):
            continue
        lines.append(f"{name} = {_toml_value(value)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class NodeProcess:
    """``ggzy node run --config`` as a child process (stdout and stderr in ``log_path``)."""

    config: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    exit_codes: list[int] = field(default_factory=list)

    def start(self) -> int:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        environment = {k: v for k, v in os.environ.items() if not k.startswith("GGZY_")}
        with self.log_path.open("ab") as log:
            log.write(f"\n--- start {self.starts} ---\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from ggzy.cli import main; main()",
                    "node",
                    "run",
                    "--config",
                    str(self.config),
                    "--log-level",
                    "WARNING",
                ],
                env=environment,
                cwd=self.config.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no handler runs, whatever was in flight dies with the process."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.exit_codes.append(self.process.wait(timeout=10))

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for the graceful stop; its exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self.exit_codes.append(code)
        return code

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


_ZYGOTE = r"""
import logging, os, signal, sys
os.environ["GGZY_CONFIG"] = sys.argv[1]
from ggzy.node.context import build_context
from ggzy.node.service import NodeService
from ggzy.settings import Settings
from ggzy.spec import load_spec
from ggzy.store.database import writing

load_spec()  # the slow part of a start, done once before forking
from ggzy.validation import Validator, ValidationOptions
Validator(load_spec(), ValidationOptions(cross_record=False))  # compiled checks, kept by the forks
settings = Settings().node
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the killed children
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() != "start":
        break
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.close(0)
        log = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.dup2(log, 1)
        os.dup2(log, 2)
        logging.basicConfig(level=logging.WARNING)
        try:
            ctx = build_context(settings)
            NodeService(ctx).run_forever()
        finally:
            os._exit(0)
    print(pid, flush=True)
"""


class NodeZygote:
    """Starts node processes (a ``NodeService`` on ``config``) by forking a process that has already
    imported everything and loaded the spec: a start takes a fraction of a second instead of
    seconds, so a test can kill and restart the node many times. Each node is a process of its own
    with its own database connections, opened after the fork."""

    def __init__(self, config: Path, log_path: Path) -> None:
        self.log_path = log_path
        environment = {k: v for k, v in os.environ.items() if not k.startswith("GGZY_")}
        self.process = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE, str(config), str(log_path)],
            env=environment,
            cwd=config.parent,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.ready = False  # it imports while the first, real node runs; the first fork waits for it

    def start_node(self) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        if not self.ready:
            answer = self.process.stdout.readline().strip()
            if answer != b"ready":
                raise RuntimeError(f"node zygote failed to start: {answer!r}")
            self.ready = True
        self.process.stdin.write(b"start\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    @staticmethod
    def kill_node(pid: int, timeout: float = 10.0) -> None:
        """SIGKILL the node and wait until it is gone."""
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.005)
        raise TimeoutError(f"node process {pid} still alive after SIGKILL")

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def wait_for(condition: Any, timeout: float, interval: float = 0.05, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"{message} not reached within {timeout} s")


def outbox_states(ctx_or_url: NodeContext | str) -> dict[str, int]:
    engine = make_engine(ctx_or_url) if isinstance(ctx_or_url, str) else ctx_or_url.engine
    try:
        with engine.connect() as connection:
            return {
                row.state: row.n
                for row in connection.execute(
                    select(outbox.c.state, func.count().label("n")).group_by(outbox.c.state)
                )
            }
    finally:
        if isinstance(ctx_or_url, str):
            engine.dispose()


def hub_record_keys(db_url: str) -> list[tuple[str, str, int, str]]:
    """(table, key, version, batch_id) of every record row the hub stored, in storage order."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            r = hub_records.c
            return [
                (row.table_name, row.key, row.version, row.batch_id)
                for row in connection.execute(
                    select(r.table_name, r.key, r.version, r.batch_id).order_by(r.id)
                )
            ]
    finally:
        engine.dispose()
