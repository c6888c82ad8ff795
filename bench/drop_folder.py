"""The drop folder with files of any size: node memory and intake throughput, streamed in chunks.

    .venv/bin/python bench/drop_folder.py [--records 1000000] [--xlsx-rows 200000] [--compare 50000]

Each figure comes from a node process of its own (a ``DropDirectory`` scanning its folder, intake
into a fresh SQLite outbox, ``intake_chunk`` records per transaction, the service's collector tuning)
whose resident memory (VmRSS) this process samples every 0.1 s:

1. **Throughput**, streamed vs in memory, in turns (twice each, so both see the same machine load):
   the drop folder taking a ``--compare``-record JSON Lines file (survey, streaming, chunks with their
   progress, report and move), and the in-memory path the drop folder had before: the whole file
   read into a list, then handed to ``Intake.accept`` in calls of the same size. Goal: the streamed
   rate within 10% of the in-memory one.
2. **Memory**: a ``--records``-record JSON Lines file and a ``--xlsx-rows``-row XLSX taken by the drop
   folder: RSS idle (started, nothing dropped yet), the peak while taking the file, and a few seconds
   after it was done. Goal: peak at most 150 MiB above idle; after the run within 50 MiB of idle.

Files are generated once into ``bench/.cache`` (simulated records, raw personal data, 5% defects).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CACHE = Path(__file__).parent / ".cache"
CHUNK = 500  # node.intake_chunk's default; --chunk to try another

_NODE = r"""
import json, sys, time
from pathlib import Path
from ggzy.interchange import read_path
from ggzy.node.context import build_context
from ggzy.node.intake import Intake
from ggzy.node.intake.dropdir import DropDirectory
from ggzy.runtime import settle_after_start
from ggzy.settings import NodeSettings

mode, work, source = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
settings = NodeSettings(
    db_url=f"sqlite:///{work / 'outbox.db'}", key_file=work / "node.key", intake_chunk=int(sys.argv[4]),
    drop_settle_seconds=0, drop_dir=work / "inbox",
)
ctx = build_context(settings, key=b"\x01" * 32)
intake = Intake(ctx, pseudonym_key=b"\x02" * 32)
drop = DropDirectory(ctx, intake, work / "inbox")
intake.accept([], "bench", "warm-up")
settle_after_start()
if mode == "memory":
    print(json.dumps({"event": "idle"}), flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    items = list(read_path(source))  # the in-memory path: the whole file read first, as before
    for offset in range(0, len(items), settings.intake_chunk):
        intake.accept(items[offset : offset + settings.intake_chunk], "file", source.name)
    print(json.dumps({"event": "done", "records": len(items), "seconds": time.perf_counter() - started}), flush=True)
else:
    print(json.dumps({"event": "idle"}), flush=True)
    sys.stdin.readline()
    (work / "staging" / source.name).rename(work / "inbox" / source.name)  # the documented way in
    started = time.perf_counter()
    while not (work / "inbox" / "done" / source.name).exists():
        reports = drop.scan_once()
        if any(r.outcome == "failed" for r in reports):
            raise SystemExit(f"failed: {reports}")
    seconds = time.perf_counter() - started
    report = json.loads((work / "inbox" / "done" / (source.name + ".report.json")).read_text())
    print(json.dumps({"event": "done", "records": report["records"], "seconds": seconds}), flush=True)
sys.stdin.readline()
"""


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def run_node(mode: str, source: Path, *, linger: float = 0.0, chunk: int = CHUNK) -> dict[str, float]:
    """One node process taking ``source``; its rate and RSS (idle, peak, after ``linger`` seconds)."""
    with tempfile.TemporaryDirectory(prefix="ggzy-drop-bench-") as tmp:
        work = Path(tmp)
        (work / "inbox").mkdir()
        (work / "staging").mkdir()
        if mode == "drop":  # a copy of its own: the drop folder moves the file, and takes one link only
            _copy(source, work / "staging" / source.name)
        environment = {k: v for k, v in os.environ.items() if not k.startswith("GGZY_")}
        process = subprocess.Popen(
            [sys.executable, "-c", _NODE, mode, str(work), str(source), str(chunk)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=environment,
            text=True,
        )
        assert process.stdin is not None and process.stdout is not None
        try:
            assert json.loads(process.stdout.readline())["event"] == "idle"
            time.sleep(1.0)
            idle = rss_mib(process.pid)
            peak = idle
            process.stdin.write("go\n")
            process.stdin.flush()
            os.set_blocking(process.stdout.fileno(), False)
            line = ""
            while not line:
                time.sleep(0.1)
                peak = max(peak, rss_mib(process.pid))
                line = process.stdout.readline()
            done = json.loads(line)
            time.sleep(linger)
            after = rss_mib(process.pid)
            process.stdin.write("stop\n")
            process.stdin.flush()
            process.wait(60)
        finally:
            if process.poll() is None:
                process.kill()
    return {
        "rate": done["records"] / done["seconds"],
        "records": done["records"],
        "idle": idle,
        "peak": peak,
        "after": after,
    }


def _copy(source: Path, target: Path) -> None:
    with source.open("rb") as reader, target.open("wb") as writer:
        while chunk := reader.read(1024 * 1024):
            writer.write(chunk)


def jsonl_file(count: int) -> Path:
    path = CACHE / f"drop-{count}.jsonl"
    if path.exists():
        return path
    from ggzy.simulate import simulate

    CACHE.mkdir(exist_ok=True)
    start = dt.datetime(2026, 10, 1, 8, 0)
    written = 0
    with path.with_suffix(".part").open("w", encoding="utf-8") as out:
        while written < count:
            for item in simulate(
                "35",
                seed=written,
                transactions=max(min(count, 120_000) // 12, 1),
                start=start,
                error_rate=0.05,
                personal="raw",
            ):
                out.write(json.dumps(item.record, ensure_ascii=False) + "\n")
                written += 1
                if written == count:
                    break
    path.with_suffix(".part").rename(path)
    return path


def xlsx_file(rows: int) -> Path:
    path = CACHE / f"drop-{rows}.xlsx"
    if path.exists():
        return path
    from openpyxl import Workbook

    from ggzy.simulate import simulate

    CACHE.mkdir(exist_ok=True)
    workbook = Workbook(write_only=True)
    sheets: dict[str, tuple[object, list[str]]] = {}
    written = 0
    seed = 0
    while written < rows:
        for item in simulate("35", seed=seed, transactions=2000, personal="raw", error_rate=0.05):
            record = item.record
            table = record["table"]
            if table not in sheets:
                columns = sorted(record["data"])
                sheet = workbook.create_sheet(table)
                sheet.append([*columns, "category"])
                sheets[table] = (sheet, columns)
            sheet, columns = sheets[table]
            sheet.append([*(record["data"].get(c) for c in columns), record.get("category")])  # type: ignore[attr-defined]
            written += 1
            if written == rows:
                break
        seed += 1
    part = path.with_name(path.name + ".part")
    workbook.save(part)
    part.rename(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--xlsx-rows", type=int, default=200_000)
    parser.add_argument("--compare", type=int, default=50_000)
    parser.add_argument(
        "--linger", type=float, default=5.0, help="seconds idle after a file before RSS is read again"
    )
    parser.add_argument(
        "--chunk", type=int, default=CHUNK, help="records per committed chunk (node.intake_chunk)"
    )
    parser.add_argument("--throughput-only", action="store_true", help="skip the large files")
    args = parser.parse_args()
    compare = jsonl_file(args.compare)
    print(f"drop folder, {args.chunk:,} records per committed chunk, each figure from its own node process")
    streamed, in_memory = [], []
    for _ in range(2):
        in_memory.append(run_node("memory", compare, chunk=args.chunk)["rate"])
        streamed.append(run_node("drop", compare, chunk=args.chunk)["rate"])
    s, m = statistics.median(streamed), statistics.median(in_memory)
    print(
        f"  throughput, {args.compare:,} records: streamed {s:,.0f} rec/s, in memory {m:,.0f} rec/s "
        f"(ratio {s / m:.2f}; goal ≥ 0.90)  runs: streamed {[round(x) for x in streamed]}, "
        f"in memory {[round(x) for x in in_memory]}"
    )
    if args.throughput_only:
        return
    for label, path in (
        (f"JSON Lines, {args.records:,} records", jsonl_file(args.records)),
        (f"XLSX, {args.xlsx_rows:,} rows", xlsx_file(args.xlsx_rows)),
    ):
        figures = run_node("drop", path, linger=args.linger, chunk=args.chunk)
        print(
            f"  {label} ({path.stat().st_size / 2**20:,.0f} MiB): {figures['records']:,} records at "
            f"{figures['rate']:,.0f} rec/s; RSS idle {figures['idle']:.0f} MiB, peak {figures['peak']:.0f} MiB "
            f"(+{figures['peak'] - figures['idle']:.0f}; goal ≤ +150), {args.linger:g} s after "
            f"{figures['after']:.0f} MiB (+{figures['after'] - figures['idle']:.0f}; goal ≤ +50)"
        )


if __name__ == "__main__":
    main()
