"""Cost of keeping the nodes' versions (Art. 13) when the hub stores a heartbeat, against storing it without.

    .venv/bin/python bench/heartbeat_versions.py [--beats 1500] [--nodes 10]

Both arms store the same beats the same way (``record_heartbeat``, one write transaction per beat on
a SQLite hub database: the availability aggregates, the row, the commit); the measured arm also
runs ``note_versions`` (one indexed read of the node's last versions, and a row when they changed).
Every 100th beat of a node reports a new database version. Prints ms per beat of each arm and
the ratio, from the same run (arms alternate in rounds so the machine's load falls on both).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import ggzy.hub.heartbeat as heartbeat
from ggzy.hub.app import MIGRATIONS
from ggzy.hub.heartbeat import HeartbeatReport, record_heartbeat
from ggzy.hub.registry import add_node
from ggzy.store import make_engine
from ggzy.store.database import writing
from ggzy.store.migrate import upgrade


def _report(beat: int) -> HeartbeatReport:
    return HeartbeatReport.model_validate(
        {
            "version": "0.1.0",
            "queues": {"1": {"queued": 3}, "2": {}},
            "disk": {"used_ratio": 0.4},
            "link": {"failed": 0, "total": 12},
            "platform": {"configured": True, "ok": True},
            "versions": {
                "software": "ggzy-exchange 0.1.0",
                "os": "Debian GNU/Linux 12 (bookworm) (Linux 6.1)",
                "python": "CPython 3.11.7",
                "database": f"PostgreSQL 16.{beat // 100}",
            },
        }
    )


def _store(folder: Path, name: str, beats: int, nodes: int, with_versions: bool) -> float:
    engine = make_engine(f"sqlite:///{folder / name}.db")
    upgrade(engine, MIGRATIONS)
    ids = []
    with writing(engine) as connection:
        for number in range(nodes):
            ids.append(add_node(connection, f"n{number:02d}", "35").node_id)
    names = vars(heartbeat)  # record_heartbeat looks note_versions up in its module at each call
    original = names["note_versions"]
    if not with_versions:
        names["note_versions"] = lambda *args, **kwargs: False
    start = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    try:
        began = time.perf_counter()
        for beat in range(beats):
            node = ids[beat % nodes]
            at = start + dt.timedelta(seconds=30 * (beat // nodes))
            with writing(engine) as connection:
                record_heartbeat(connection, node, "35", _report(beat // nodes), at)
        elapsed = time.perf_counter() - began
    finally:
        names["note_versions"] = original
        engine.dispose()
    return elapsed / beats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beats", type=int, default=1500)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    baseline: list[float] = []
    measured: list[float] = []
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        for round_ in range(args.rounds):
            baseline.append(_store(folder, f"base{round_}", args.beats, args.nodes, False))
            measured.append(_store(folder, f"vers{round_}", args.beats, args.nodes, True))
    base, with_versions = statistics.median(baseline), statistics.median(measured)
    print(f"beats: {args.beats} over {args.nodes} nodes, {args.rounds} rounds (median)")
    print(f"baseline (no versions)   {base:7.3f} ms/beat")
    print(f"with versions kept       {with_versions:7.3f} ms/beat  ratio {with_versions / base:5.2f}")


if __name__ == "__main__":
    main()
