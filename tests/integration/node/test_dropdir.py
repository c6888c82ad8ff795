"""The drop folder: settled files only, done/failed with reports, a file taken exactly once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ggzy.interchange import write_csv, write_jsonl
from ggzy.node.context import NodeContext, build_context
from ggzy.node.intake import Intake
from ggzy.node.intake.dropdir import DropDirectory
from ggzy.node.models import outbox
from ggzy.settings import NodeSettings
from ggzy.simulate import simulate


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ctx(node_db_url: str, tmp_path: Path) -> Iterator[NodeContext]:
    settings = NodeSettings(db_url=node_db_url, key_file=tmp_path / "node.key", drop_settle_seconds=2.0)
    context = build_context(settings, key=b"\x07" * 32)
    yield context
    context.engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def drop(ctx: NodeContext, tmp_path: Path, clock: Clock) -> DropDirectory:
    return DropDirectory(ctx, Intake(ctx, pseudonym_key=b"\x11" * 32), tmp_path / "inbox", clock=clock)


def records(n: int, seed: int = 1) -> list[dict[str, Any]]:
    return [s.record for s in simulate("35", seed=seed, transactions=2)][:n]


def stored(ctx: NodeContext) -> int:
    with ctx.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(outbox)).scalar_one())


def settle(drop: DropDirectory, clock: Clock) -> list[Any]:
    """Two scans the settle time apart: the first notices files, the second takes the unchanged ones."""
    first = drop.scan_once()
    clock.now += 2.5
    return first + drop.scan_once()


def test_a_settled_file_is_taken_whole_and_moved_to_done_with_a_report(
    drop: DropDirectory, ctx: NodeContext, clock: Clock
) -> None:
    batch = records(6)
    batch.append({"table": "PROJECT", "secret": True, "data": {"PROJECT_CODE": "S-1"}})
    write_jsonl(batch, drop.path / "batch.jsonl")
    assert drop.scan_once() == []  # seen once: not yet known to be complete
    assert stored(ctx) == 0
    clock.now += 2.5
    (report,) = drop.scan_once()
    assert report.outcome == "done" and report.moved_to == drop.done / "batch.jsonl"
    assert not (drop.path / "batch.jsonl").exists()
    assert stored(ctx) == 6
    written = json.loads((drop.done / "batch.jsonl.report.json").read_text(encoding="utf-8"))
    assert written["outcome"] == "done" and written["sha256"] == report.sha256
    assert "接收 6 条" in written["summary_zh"] and "拒收 1 条" in written["summary_zh"]
    assert written["records"] == 7  # read; the refused one listed with its line and code
    assert [(p["line"], p["code"]) for p in written["problems"]] == [(7, "E-PRIV-SECRET")]


def test_a_file_still_being_written_is_never_read(
    drop: DropDirectory, ctx: NodeContext, clock: Clock
) -> None:
    growing = drop.path / "growing.jsonl"
    part = drop.path / "upload.jsonl.part"
    hidden = drop.path / ".upload.jsonl"
    write_jsonl(records(3), growing)
    for name in (part, hidden):
        write_jsonl(records(3, seed=2), name)
    drop.scan_once()
    clock.now += 2.5
    with growing.open("a", encoding="utf-8") as handle:  # the writer appended meanwhile
        handle.write(json.dumps(records(4)[3], ensure_ascii=False) + "\n")
    assert drop.scan_once() == []
    assert stored(ctx) == 0
    clock.now += 2.5
    (report,) = drop.scan_once()
    assert report.name == "growing.jsonl" and stored(ctx) == 4  # all four lines, once complete
    clock.now += 10
    assert drop.scan_once() == []
    assert part.exists() and hidden.exists()  # never touched


def test_an_unreadable_file_goes_to_failed_with_a_report(
    drop: DropDirectory, ctx: NodeContext, clock: Clock
) -> None:
    (drop.path / "broken.csv").write_bytes(b"PROJECT_CODE,PROJECT_NAME\n\x81\xff\xfe\x00\x01,\xc0\n")
    (drop.path / "notes.txt").write_text("not records", encoding="utf-8")
    reports = settle(drop, clock)
    assert {(r.name, r.outcome) for r in reports} == {("broken.csv", "failed"), ("notes.txt", "failed")}
    report = json.loads((drop.failed / "broken.csv.report.json").read_text(encoding="utf-8"))
    assert report["error"]["code"] == "E-INPUT-ENCODING" and "无法读取" in report["summary_zh"]
    assert (drop.failed / "broken.csv").exists() and stored(ctx) == 0


def test_gbk_csv_is_read(drop: DropDirectory, ctx: NodeContext, clock: Clock, tmp_path: Path) -> None:
    projects = [r for r in records(200) if r["table"] == "PROJECT"]
    assert projects
    utf8 = tmp_path / "PROJECT.csv"
    write_csv(projects, utf8)
    (drop.path / "PROJECT.csv").write_bytes(utf8.read_text(encoding="utf-8").encode("gbk"))
    (report,) = settle(drop, clock)
    assert report.outcome == "done" and stored(ctx) == len(projects)
    with ctx.engine.connect() as connection:
        names = {row.record["data"]["PROJECT_NAME"] for row in connection.execute(select(outbox.c.record))}
    assert names == {p["data"]["PROJECT_NAME"] for p in projects}


def test_a_crash_between_commit_and_move_does_not_enqueue_twice(
    ctx: NodeContext, tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "inbox"
    first = DropDirectory(ctx, Intake(ctx, pseudonym_key=b"\x11" * 32), inbox, clock=clock)
    write_jsonl(records(5), inbox / "once.jsonl")

    def power_cut(*_: Any) -> Any:
        raise SystemExit("killed after the commit, before the move")

    monkeypatch.setattr(first, "_finish", power_cut)
    first.scan_once()
    clock.now += 2.5
    with pytest.raises(SystemExit):
        first.scan_once()
    assert stored(ctx) == 5 and (inbox / "once.jsonl").exists()  # committed, still in the inbox

    restarted = DropDirectory(ctx, Intake(ctx, pseudonym_key=b"\x11" * 32), inbox, clock=clock)
    (report,) = settle(restarted, clock)
    assert report.outcome == "duplicate"
    assert stored(ctx) == 5  # nothing enqueued twice
    assert (restarted.done / "once.jsonl").exists() and not (inbox / "once.jsonl").exists()


def test_a_file_refused_for_a_full_disk_stays_in_the_inbox(
    ctx: NodeContext, tmp_path: Path, clock: Clock
) -> None:
    full = DropDirectory(
        ctx, Intake(ctx, disk_guard=lambda: False, pseudonym_key=b"\x11" * 32), tmp_path / "in", clock=clock
    )
    write_jsonl(records(2), full.path / "later.jsonl")
    (report,) = settle(full, clock)
    assert report.outcome == "waiting"
    assert (full.path / "later.jsonl").exists() and stored(ctx) == 0
