"""Server time of the node portal's pages with a month of a busy node's records on SQLite.

    .venv/bin/python bench/node_portal.py [--records 1000000] [--rejected 0.05] [--repeat 20] [--fresh]

Seeding: a node store is migrated to head, then filled directly with ``sqlite3`` ``executemany``:
``--records`` outbox rows over 30 days (the default retention), a ``--rejected`` share of them
rejected by the hub with one or two findings each, the rest accepted (realtime ones with publication
and decision times); 14 days of heartbeat samples at 30 s (``node.history_days``); 30 days of
reconciliation results for 20 tables. Cached in ``bench/.cache/node-portal-<records>.db``.

Measured: each page ``--repeat`` times in-process through the ASGI app (framework included, network
not; every read writes its audit entry as in production), signed in by a test authenticator, after
one warm-up call; baseline ``/healthz``. Printed: p50 and p95 per page and p95 against 1 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ggzy.node.context import build_context  # noqa: E402
from ggzy.node.intake import Intake  # noqa: E402
from ggzy.node.intake.push_api import create_intake_app  # noqa: E402
from ggzy.node.status import DiskUsage  # noqa: E402
from ggzy.security.permissions import Principal, Role  # noqa: E402
from ggzy.settings import NodeSettings, SecuritySettings  # noqa: E402

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=SHANGHAI).astimezone(dt.UTC)
TABLES = ["TENDER_PROJECT", "SECTION", "TENDER_NOTICE", "BID_OPENING", "WIN_RESULT_NOTICE", "CONTRACT"]
RULES = ["E-FIELD-REQUIRED", "E-CODE-LIST", "E-DATE-FORMAT", "E-DEAL-CODE-CHECK", "E-CROSS-AMOUNT"]


def _at(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def seed(path: Path, records: int, rejected: float) -> None:
    settings = NodeSettings(db_url=f"sqlite:///{path}", key_file=path.parent / "k", disk_path=path.parent)
    build_context(settings, key=b"k").engine.dispose()  # migrated to head
    rng = random.Random(7)
    db = sqlite3.connect(path)
    start = NOW - dt.timedelta(days=30)
    step = dt.timedelta(days=30) / records
    rows = []
    for i in range(records):
        table = TABLES[i % len(TABLES)]
        acquired = start + step * i
        channel = 1 if i % 3 else 2
        published = acquired - dt.timedelta(seconds=rng.randint(1, 30)) if channel == 1 else None
        decided = acquired + dt.timedelta(seconds=rng.randint(2, 120))
        is_rejected = rng.random() < rejected
        findings = None
        if is_rejected:
            codes = rng.sample(RULES, rng.choice((1, 2)))
            findings = json.dumps(
                [
                    {
                        "code": c,
                        "severity": "error",
                        "field": "F",
                        "message_zh": "不合格",
                        "message_en": "bad",
                    }
                    for c in codes
                ],
                ensure_ascii=False,
            )
        record = json.dumps({"table": table, "op": "insert", "data": {"K": f"{i:012d}"}})
        rows.append(
            (table, f"A35{i:015d}", "insert", "realtime" if channel == 1 else "history", channel, record,
             "rejected" if is_rejected else "accepted", 0, f"b{i // 500}", 1, findings,
             None if is_rejected else 1, "push", "", _at(published) if published else None, _at(acquired),
             _at(acquired), _at(decided))
        )  # fmt: skip
        if len(rows) == 20_000:
            _insert(db, rows)
            rows = []
    _insert(db, rows)
    samples = []
    moment = NOW - dt.timedelta(days=14)
    while moment <= NOW:
        samples.append((_at(moment), rng.random() > 0.01, 0.6 + rng.random() * 0.2, rng.randint(0, 50), 0))
        moment += dt.timedelta(seconds=30)
    db.executemany(
        "INSERT INTO node_samples (at, beat_ok, disk_used_ratio, waiting_1, waiting_2) VALUES (?,?,?,?,?)",
        samples,
    )
    results = [
        (_at(NOW), (NOW.date() - dt.timedelta(days=d)).isoformat(), f"T{t:02d}", 1000, 1000, True, 0, 0, 0, 0, 0, None, "node")
        for d in range(1, 31)
        for t in range(20)
    ]  # fmt: skip
    db.executemany(
        "INSERT INTO reconcile_results (run_at, day, table_name, local_count, hub_count, consistent, missing_at_hub,"
        " unknown_locally, version_mismatch, in_flight, resent, report_id, account) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        results,
    )
    db.commit()
    db.close()


def _insert(db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    db.executemany(
        "INSERT INTO outbox (table_name, key, op, category, channel, record, state, expedite, batch_id, attempts,"
        " findings, hub_version, source, source_ref, published_at, acquired_at, sent_at, decided_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rejected", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    cache = ROOT / "bench" / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"node-portal-{args.records}.db"
    if args.fresh or not path.exists():
        path.unlink(missing_ok=True)
        started = time.perf_counter()
        seed(path, args.records, args.rejected)
        print(f"seeded {path} in {time.perf_counter() - started:.0f} s")
    with tempfile.TemporaryDirectory() as folder:
        settings = NodeSettings(
            db_url=f"sqlite:///{path}", key_file=Path(folder) / "k", disk_path=Path(folder), drop_dir=None
        )
        ctx = build_context(settings, key=b"k")
        app = create_intake_app(ctx, Intake(ctx, pseudonym_key=b"\x11" * 32), security=SecuritySettings())
        app.state.portal_clock = lambda: NOW
        app.state.disk_usage = lambda _p: DiskUsage(1000, 700, 300)

        def authenticate(request: Request) -> Principal | None:
            role = request.headers.get("X-Role")
            return Principal(f"bench-{role}", Role(role)) if role else None

        app.state.authenticate = authenticate
        http = TestClient(app, client=("127.0.0.1", 5000))
        pages = [
            ("/healthz (baseline)", "/healthz", "operator"),
            ("总览 (overview, 24 h charts)", "/portal/overview", "operator"),
            ("退回记录, page 1 (all)", "/portal/rejects", "operator"),
            ("退回记录, page 100", "/portal/rejects?page=100", "operator"),
            (
                "退回记录, one table, one week",
                "/portal/rejects?table=SECTION&from=2026-11-10&to=2026-11-16",
                "operator",
            ),
            ("退回记录, one rule (findings read in Python)", "/portal/rejects?rule=E-CODE-LIST", "operator"),
            ("对账 (31 days)", "/portal/reconcile", "operator"),
            ("审计 (auditor)", "/portal/audit", "auditor"),
            ("系统管理 (administrator)", "/portal/admin", "sysadmin"),
        ]
        print("| Page | p50 ms | p95 ms | p95 / 1 s |\n|---|---:|---:|---:|")
        for label, url, role in pages:
            headers = {"X-Role": role}
            assert http.get(url, headers=headers).status_code == 200, url
            times = []
            for _ in range(args.repeat):
                began = time.perf_counter()
                http.get(url, headers=headers)
                times.append((time.perf_counter() - began) * 1000)
            p95 = statistics.quantiles(times, n=20)[-1]
            print(f"| {label} | {statistics.median(times):,.0f} | {p95:,.0f} | {p95 / 1000:.2f} |")
        began = time.perf_counter()
        export = http.get(
            "/portal/rejects.xlsx?from=2026-11-19&to=2026-11-19", headers={"X-Role": "operator"}
        )
        print(
            f"| Download: rejects xlsx, one day | {(time.perf_counter() - began) * 1000:,.0f} | | ({len(export.content):,} bytes) |"
        )
        ctx.engine.dispose()


if __name__ == "__main__":
    main()
