"""Node intake throughput: records/s from intake call to committed outbox row, in one process.

    .venv/bin/python bench/node_intake.py [--records 100000] [--call 5000]

What is measured: :meth:`ggzy.node.intake.Intake.accept` on simulated records with unmasked personal
data (as a provincial trading system hands them over, 5% with defects), ``--call`` records per call:
envelope checks, secret check, publication time and category, redaction, pre-validation (field and
cross-field rules), key and channel, and the durable enqueue (SQLite, WAL, ``synchronous=FULL``) with
counters and an audit entry in the same transaction.

Baseline, in the same run: the same rows (read back from the outbox, as stored) written with a raw
``sqlite3`` ``executemany`` into a fresh outbox table of the same schema, JSON serialisation and
commit included (the store's own compact UTF-8 JSON, orjson) — the cost of storing alone. The two take turns call by call, so that both see the
same machine load. Machines are noisy; compare the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ggzy.node.context import build_context
from ggzy.node.intake import Intake
from ggzy.node.models import outbox
from ggzy.runtime import settle_after_start
from ggzy.settings import NodeSettings
from ggzy.simulate import simulate
from ggzy.store.database import compact_json

CACHE = Path(__file__).parent / ".cache"
_COLUMNS = (
    "table_name",
    "key",
    "op",
    "category",
    "channel",
    "record",
    "state",
    "findings",
    "redacted",
    "source",
    "source_ref",
    "published_at",
    "acquired_at",
)


def sample_records(count: int) -> list[dict[str, Any]]:
    """``count`` simulated records with raw personal data (5% with defects), cached between runs."""
    path = CACHE / f"node-intake-{count}.jsonl"
    if not path.exists():
        CACHE.mkdir(exist_ok=True)
        start = dt.datetime(2026, 10, 1, 8, 0)
        written = 0
        with path.open("w", encoding="utf-8") as out:
            while written < count:
                for item in simulate(
                    "35",
                    seed=written,
                    transactions=max(count // 12, 1),
                    start=start,
                    error_rate=0.05,
                    personal="raw",
                ):
                    out.write(json.dumps(item.record, ensure_ascii=False) + "\n")
                    written += 1
                    if written == count:
                        break
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


class Baseline:
    """A fresh outbox table of the same schema, written with a raw ``sqlite3`` ``executemany``."""

    def __init__(self, workdir: Path) -> None:
        settings = NodeSettings(db_url=f"sqlite:///{workdir / 'baseline.db'}", key_file=workdir / "node.key")
        build_context(settings, key=b"\x01" * 32).engine.dispose()  # the same schema, migrated
        self.connection = sqlite3.connect(workdir / "baseline.db", isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=FULL")
        self.statement = (
            f"INSERT INTO outbox ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
        )
        self.json_columns = {_COLUMNS.index(name) for name in ("record", "findings", "redacted")}

    def store(self, rows: list[tuple[Any, ...]]) -> float:
        """Seconds to serialise and durably insert ``rows`` in one transaction."""
        started = time.perf_counter()
        chunk = [
            tuple(
                compact_json(value) if i in self.json_columns else _plain(value)
                for i, value in enumerate(row)
            )
            for row in rows
        ]
        self.connection.execute("BEGIN IMMEDIATE")
        self.connection.executemany(self.statement, chunk)
        self.connection.execute("COMMIT")
        return time.perf_counter() - started


def measure(records: list[dict[str, Any]], call: int, threads: int, workdir: Path) -> Figures:
    """Intake and baseline in turns, round by round, so that both see the same machine load.

    A round is ``threads`` intake calls of ``call`` records, made at once from as many threads (as
    the push API's concurrent requests would), then the baseline storing the same rows.
    """
    settings = NodeSettings(db_url=f"sqlite:///{workdir / 'intake.db'}", key_file=workdir / "node.key")
    ctx = build_context(settings, key=b"\x01" * 32)
    intake = Intake(ctx)
    intake.accept(records[:50], "bench", "warm-up")  # compile, first connection, first audit row
    enqueue = ctx.outbox.enqueue
    in_enqueue = [0.0]

    def timed_enqueue(*args: Any, **kwargs: Any) -> list[int]:
        started = time.perf_counter()
        try:
            return enqueue(*args, **kwargs)
        finally:
            in_enqueue[0] += time.perf_counter() - started

    ctx.outbox.enqueue = timed_enqueue  # type: ignore[method-assign]
    baseline = Baseline(workdir)
    body = records[50:]
    intake_seconds = baseline_seconds = 0.0
    stored = 0
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for start in range(0, len(body), call * threads):
            parts = [
                (body[offset : offset + call], f"call-{offset}")
                for offset in range(start, min(start + call * threads, len(body)), call)
            ]
            started = time.perf_counter()
            if threads == 1:
                answers = [intake.accept(part, "bench", ref) for part, ref in parts]
            else:
                answers = list(pool.map(lambda p: intake.accept(p[0], "bench", p[1]), parts))
            intake_seconds += time.perf_counter() - started
            ids = [r.id for results in answers for r in results if r.id is not None]
            with ctx.engine.connect() as connection:  # not timed: the same rows, as stored
                rows = [
                    tuple(row)
                    for row in connection.execute(
                        select(*(outbox.c[name] for name in _COLUMNS)).where(outbox.c.id.in_(ids))
                    )
                ]
            stored += len(rows)
            for offset in range(0, len(rows), call):  # the baseline stores in calls of the same size
                baseline_seconds += baseline.store(rows[offset : offset + call])
    ctx.engine.dispose()
    share = in_enqueue[0] / intake_seconds if threads == 1 else None
    return Figures(len(body) / intake_seconds, stored / baseline_seconds, share)


@dataclass
class Figures:
    intake: float  # records/s
    baseline: float  # records/s
    enqueue_share: float | None  # of the intake time, inside Outbox.enqueue (one thread only)


def _plain(value: Any) -> Any:
    return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--call", type=int, default=5_000, help="records per intake call (one transaction)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="concurrent intake calls in the one process (push API requests)",
    )
    args = parser.parse_args()
    records = sample_records(args.records)
    # The records stand for the province's systems, not the node's heap: keep them out of the
    # collector's way, as they would be in a real deployment; and collect as `ggzy node run` does.
    settle_after_start()
    print(
        f"node intake → outbox, {len(records):,} simulated records, {args.call:,} per call, "
        f"{args.threads} concurrent call(s) in one process"
    )
    with tempfile.TemporaryDirectory(prefix="ggzy-bench-") as tmp:
        figures = measure(records, args.call, args.threads, Path(tmp))
    rate, baseline = figures.intake, figures.baseline
    print(f"  {'ggzy intake (redact + pre-validate + durable enqueue)':<56} {rate:>10,.0f} records/s")
    print(f"  {'baseline: raw sqlite3 executemany of the same rows':<56} {baseline:>10,.0f} records/s")
    print(f"  ratio intake / baseline: {rate / baseline:.2f}")
    per_record = 1e6 / rate
    if figures.enqueue_share is None:
        print(f"  per record {per_record:.0f} µs of wall time")
    else:
        share = figures.enqueue_share
        print(
            f"  per record {per_record:.0f} µs: durable enqueue {per_record * share:.0f} µs, "
            f"reading, redaction, pre-validation and the rest {per_record * (1 - share):.0f} µs"
        )
    print(f"  goal ≥ 20,000 records/s: {'met' if rate >= 20_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
