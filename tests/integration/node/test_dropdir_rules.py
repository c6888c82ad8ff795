"""The drop folder takes only what was meant for it, and one bad file never stops the others.

Each test is an attack or an accident seen on a real node: a symbolic or hard link to the node's
key, a FIFO, a directory, a name too long for its report, a file that cannot be opened, a file
still open for writing, hidden files, an unparsable line whose bytes must not reach a report.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "interchange"))

from test_dropdir import Clock, records, stored

from ggzy.interchange import write_jsonl
from ggzy.node.context import NodeContext
from ggzy.node.intake import Intake
from ggzy.node.intake.dropdir import DropDirectory
from ggzy.node.models import alerts
from ggzy.node.status import snapshot

KEY_HEX = "9bdf0c4a" * 8


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "node.key"
    path.parent.mkdir()
    path.write_text(KEY_HEX, encoding="ascii")
    return path


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def drop(node_ctx: NodeContext, tmp_path: Path, clock: Clock) -> DropDirectory:
    return DropDirectory(
        node_ctx, Intake(node_ctx, pseudonym_key=b"\x11" * 32), tmp_path / "inbox", clock=clock
    )


def settle(drop: DropDirectory, clock: Clock) -> list[Any]:
    first = drop.scan_once()
    clock.now += drop.settle_seconds + 0.5
    return first + drop.scan_once()


def everything_written(folder: Path) -> str:
    return "".join(p.read_text(encoding="utf-8", errors="replace") for p in folder.rglob("*.report.json"))


def test_links_to_the_nodes_key_are_refused_unread(
    drop: DropDirectory, node_ctx: NodeContext, clock: Clock, key_file: Path
) -> None:
    (drop.path / "PROJECT.csv").symlink_to(key_file)
    os.link(key_file, drop.path / "TENDER.csv")
    write_jsonl(records(2), drop.path / "good.jsonl")
    reports = {r.name: r for r in settle(drop, clock)}
    assert reports["PROJECT.csv"].outcome == "failed"
    assert (
        reports["PROJECT.csv"].error is not None
        and reports["PROJECT.csv"].error["code"] == "E-INPUT-NOT-REGULAR"
    )
    assert reports["TENDER.csv"].error is not None and reports["TENDER.csv"].error["code"] == "E-INPUT-LINKED"
    assert reports["good.jsonl"].outcome == "done" and stored(node_ctx) == 2
    assert KEY_HEX[:8] not in everything_written(drop.path)  # the key was never read, nor quoted
    assert (drop.failed / "PROJECT.csv").is_symlink()  # the link moved, its target untouched
    assert key_file.read_text(encoding="ascii") == KEY_HEX and key_file.stat().st_nlink == 2


def test_a_fifo_and_a_directory_go_to_failed_and_block_nothing(
    drop: DropDirectory, node_ctx: NodeContext, clock: Clock
) -> None:
    os.mkfifo(drop.path / "pipe.jsonl")
    (drop.path / "folder.jsonl").mkdir()
    write_jsonl(records(3), drop.path / "after.jsonl")
    reports = {r.name: r.outcome for r in settle(drop, clock)}
    assert reports == {"pipe.jsonl": "failed", "folder.jsonl": "failed", "after.jsonl": "done"}
    assert (drop.failed / "pipe.jsonl.report.json").exists() and stored(node_ctx) == 3


def test_a_name_too_long_for_its_report_is_shortened_and_the_scan_goes_on(
    drop: DropDirectory, node_ctx: NodeContext, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    long_name = "省级交易平台历史数据导出" * 6 + "x" * 20 + ".jsonl"  # 236 bytes
    assert 240 <= len(long_name.encode()) <= 255
    write_jsonl(records(2), drop.path / long_name)
    write_jsonl(records(2, seed=2), drop.path / "next.jsonl")
    with caplog.at_level(logging.WARNING):
        reports = {r.name: r for r in settle(drop, clock)}
        assert drop.scan_once() == []  # nothing left, nothing failing again
    assert reports[long_name].outcome == "done" and reports["next.jsonl"].outcome == "done"
    moved = reports[long_name].moved_to
    assert moved is not None and moved.exists() and len(moved.name.encode()) <= 200
    report = json.loads(moved.with_name(moved.name + ".report.json").read_text(encoding="utf-8"))
    assert report["file"] == long_name  # the report names the file as it was dropped
    assert not any(record.exc_info for record in caplog.records)
    assert stored(node_ctx) == 4


def test_a_file_failing_in_any_way_is_moved_aside_with_a_report(
    drop: DropDirectory,
    node_ctx: NodeContext,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    write_jsonl(records(2), drop.path / "denied.jsonl")
    write_jsonl(records(2, seed=2), drop.path / "fine.jsonl")
    real_open = os.open

    def deny(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith("denied.jsonl"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    with caplog.at_level(logging.WARNING):
        reports = {r.name: r for r in settle(drop, clock)}
    assert reports["denied.jsonl"].outcome == "failed"
    assert reports["denied.jsonl"].error is not None and reports["denied.jsonl"].error["code"] == "E-INPUT-OS"
    assert (drop.failed / "denied.jsonl").exists() and reports["fine.jsonl"].outcome == "done"
    assert not any(record.exc_info for record in caplog.records)  # expected: a line, no traceback


def test_reports_give_line_offset_and_code_never_the_bytes_of_a_bad_line(
    drop: DropDirectory, clock: Clock
) -> None:
    good = records(1)[0]
    first = json.dumps(good, ensure_ascii=False) + "\n"
    broken = '{"table": "PROJECT", "data": {"NOTE": "' + KEY_HEX + '"' + "\n"  # not JSON: cut short
    (drop.path / "mixed.jsonl").write_text(first + broken, encoding="utf-8")
    (drop.path / "PROJECT.csv").write_text(
        f"{KEY_HEX},NAME\nA,B\n", encoding="utf-8"
    )  # a header that is not one
    reports = {r.name: r for r in settle(drop, clock)}
    problem = reports["mixed.jsonl"].problems[0]
    assert (problem["line"], problem["offset"], problem["code"]) == (2, len(first.encode()), "E-STRUCT-JSON")
    assert (
        reports["PROJECT.csv"].error is not None and reports["PROJECT.csv"].error["code"] == "E-INPUT-FORMAT"
    )
    assert KEY_HEX[:8] not in everything_written(drop.path)


def test_a_file_still_open_for_writing_is_not_read_however_long_it_waits(
    drop: DropDirectory, node_ctx: NodeContext, clock: Clock
) -> None:
    path = drop.path / "slow.jsonl"
    write_jsonl(records(2), path)
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import sys, time; f = open({str(path)!r}, 'a'); sys.stdout.write('open\\n'); sys.stdout.flush(); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == b"open\n"
        for _ in range(3):
            assert all(r.outcome == "waiting" for r in settle(drop, clock))
        assert stored(node_ctx) == 0 and path.exists()
    finally:
        assert writer.stdin is not None
        writer.stdin.close()
        writer.wait(timeout=10)
    (report,) = settle(drop, clock)
    assert report.outcome == "done" and stored(node_ctx) == 2


def test_hidden_files_are_reported_once_as_ignored(
    drop: DropDirectory, node_ctx: NodeContext, clock: Clock
) -> None:
    write_jsonl(records(1), drop.path / ".export.jsonl")
    for _ in range(3):
        settle(drop, clock)
    with node_ctx.engine.connect() as connection:
        rows = connection.execute(select(alerts).where(alerts.c.kind == "intake")).all()
    assert len(rows) == 1 and ".export.jsonl" in rows[0].message and rows[0].resolved_at is None
    assert any(".export.jsonl" in alert.message for alert in snapshot(node_ctx).alerts)
    assert stored(node_ctx) == 0 and (drop.path / ".export.jsonl").exists()  # never read
    (drop.path / ".export.jsonl").rename(drop.path / "export.jsonl")
    settle(drop, clock)
    with node_ctx.engine.connect() as connection:
        assert connection.execute(select(alerts.c.resolved_at).where(alerts.c.id == rows[0].id)).scalar()
    assert stored(node_ctx) == 1


def test_files_must_stay_unchanged_five_seconds_by_default() -> None:
    from ggzy.settings import NodeSettings

    assert NodeSettings().drop_settle_seconds == 5.0


def test_a_zip_bomb_goes_to_failed_as_too_large(
    drop: DropDirectory, node_ctx: NodeContext, clock: Clock
) -> None:
    from test_stream_limits import bomb

    bomb(drop.path / "PROJECT.xlsx", 20 * 1024 * 1024, giant_row=False)
    write_jsonl(records(1), drop.path / "after.jsonl")
    reports = {r.name: r for r in settle(drop, clock)}
    assert reports["PROJECT.xlsx"].outcome == "failed" and reports["after.jsonl"].outcome == "done"
    assert reports["PROJECT.xlsx"].error is not None
    assert reports["PROJECT.xlsx"].error["code"] == "E-INPUT-TOO-LARGE"
    assert stored(node_ctx) == 1
