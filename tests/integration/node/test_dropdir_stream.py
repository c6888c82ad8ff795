"""Files of any size: the drop folder streams a file in chunks of ``intake_chunk`` records, each one
transaction with the file's progress, and a crash — an exception or a kill -9 — resumes after the
last committed chunk: every record of the file in the outbox exactly once, whatever the format."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from test_dropdir import Clock, records

from ggzy.interchange import write_csv, write_jsonl, write_xml
from ggzy.node.context import NodeContext
from ggzy.node.intake import Intake
from ggzy.node.intake.dropdir import DropDirectory, file_state_name
from ggzy.node.models import outbox
from ggzy.node.models import state as node_state
from ggzy.simulate import simulate


def projects(n: int) -> list[dict[str, Any]]:
    found = [s.record for s in simulate("35", seed=7, transactions=4 * n) if s.record["table"] == "PROJECT"][
        :n
    ]
    assert len(found) == n
    return found


def write(path: Path, envelopes: list[dict[str, Any]]) -> None:
    if path.suffix == ".jsonl":
        write_jsonl(envelopes, path)
    elif path.suffix == ".csv":
        write_csv(envelopes, path)
    elif path.suffix == ".xml":
        write_xml(envelopes, path, encoding="GBK")
    else:
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("PROJECT")
        columns = list(envelopes[0]["data"])
        sheet.append(columns)
        for envelope in envelopes:
            sheet.append([envelope["data"].get(c) for c in columns])
        workbook.save(path)


def chunked(ctx: NodeContext, tmp_path: Path, chunk: int) -> tuple[DropDirectory, Clock]:
    configured = replace(ctx, settings=ctx.settings.model_copy(update={"intake_chunk": chunk}))
    clock = Clock()
    drop = DropDirectory(
        configured, Intake(configured, pseudonym_key=b"\x11" * 32), tmp_path / "inbox", clock=clock
    )
    return drop, clock


def lines_stored(ctx: NodeContext) -> list[str]:
    with ctx.engine.connect() as connection:
        return list(connection.execute(select(outbox.c.source_ref).order_by(outbox.c.id)).scalars())


def test_a_crash_mid_file_resumes_after_the_last_committed_chunk(
    node_ctx: NodeContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On each backend: the progress commits with the chunk's records, in one transaction."""
    crash_and_resume(node_ctx, tmp_path, "PROJECT.jsonl", monkeypatch)


@pytest.mark.parametrize("name", ["PROJECT.csv", "PROJECT.xml", "PROJECT.xlsx"])
def test_every_format_resumes_where_it_stopped(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each reader's position (a byte offset, or records to skip) on SQLite: the storage is the same."""
    from ggzy.node.context import build_context
    from ggzy.settings import NodeSettings

    ctx = build_context(
        NodeSettings(db_url=f"sqlite:///{tmp_path / 'outbox.db'}", key_file=tmp_path / "node.key"),
        key=b"\x07" * 32,
    )
    try:
        crash_and_resume(ctx, tmp_path, name, monkeypatch)
    finally:
        ctx.engine.dispose()


def crash_and_resume(
    node_ctx: NodeContext, tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    envelopes = projects(23)
    drop, clock = chunked(node_ctx, tmp_path, 5)
    write(drop.path / name, envelopes)
    calls: list[int] = []
    real_accept = Intake.accept

    def accept_then_die(self: Intake, items: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(items))
        results = real_accept(self, items, *args, **kwargs)
        if len(calls) == 3:
            raise SystemExit("killed after the third chunk committed")
        return results

    monkeypatch.setattr(Intake, "accept", accept_then_die)
    drop.scan_once()
    clock.now += 10
    with pytest.raises(SystemExit):
        drop.scan_once()
    assert len(lines_stored(node_ctx)) == 15 and (drop.path / name).exists()
    monkeypatch.setattr(Intake, "accept", real_accept)
    restarted, clock = chunked(node_ctx, tmp_path, 5)
    restarted.scan_once()
    clock.now += 10
    (report,) = restarted.scan_once()
    stored = lines_stored(node_ctx)
    assert report.outcome == "done" and report.records == 23
    assert len(stored) == 23 and len(set(stored)) == 23  # each record once, none lost
    assert calls == [5, 5, 5]
    with node_ctx.engine.connect() as connection:
        value = connection.execute(
            select(node_state.c.value).where(node_state.c.name == file_state_name(report.sha256 or ""))
        ).scalar()
    assert value is not None and '"done": true' in value
    # the same bytes again, under another name: a duplicate, nothing enqueued
    (restarted.path / ("again" + Path(name).suffix)).write_bytes((restarted.done / name).read_bytes())
    restarted.scan_once()
    clock.now += 10
    (again,) = restarted.scan_once()
    assert again.outcome == "duplicate" and len(lines_stored(node_ctx)) == 23


def test_each_chunk_is_one_intake_call(
    node_ctx: NodeContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop, clock = chunked(node_ctx, tmp_path, 7)
    write_jsonl(records(30, seed=3), drop.path / "many.jsonl")
    sizes: list[int] = []
    real_accept = Intake.accept

    def counting(self: Intake, items: Any, *args: Any, **kwargs: Any) -> Any:
        sizes.append(len(items))
        assert file_state_name("") not in kwargs["state_updates"]  # the file's own progress rides along
        assert len(kwargs["state_updates"]) == 1
        return real_accept(self, items, *args, **kwargs)

    monkeypatch.setattr(Intake, "accept", counting)
    drop.scan_once()
    clock.now += 10
    (report,) = drop.scan_once()
    assert sizes == [7, 7, 7, 7, 2] and report.records == 30


_NODE_SCRIPT = r"""
import sys, time
from pathlib import Path
from ggzy.node.context import build_context
from ggzy.node.intake import Intake
from ggzy.node.intake.dropdir import DropDirectory
from ggzy.settings import NodeSettings
folder = Path(sys.argv[1])
settings = NodeSettings(db_url=f"sqlite:///{folder / 'outbox.db'}", key_file=folder / "node.key", intake_chunk=40, drop_settle_seconds=0)
ctx = build_context(settings, key=b"\x07" * 32)
drop = DropDirectory(ctx, Intake(ctx, pseudonym_key=b"\x11" * 32), folder / "inbox")
print("ready", flush=True)
while True:
    drop.scan_once()
    time.sleep(0.05)
"""


def test_kill_9_in_the_middle_of_a_file_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    from ggzy.node.context import build_context
    from ggzy.settings import NodeSettings

    envelopes = [s.record for s in simulate("35", seed=4, transactions=40)][:400]
    assert len(envelopes) == 400
    (tmp_path / "inbox").mkdir()
    write_jsonl(envelopes, tmp_path / "staging.jsonl")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GGZY_")}

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-c", _NODE_SCRIPT, str(tmp_path)], env=environment, stdout=subprocess.PIPE
        )
        assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        return process

    first = start()
    ctx = build_context(
        NodeSettings(db_url=f"sqlite:///{tmp_path / 'outbox.db'}", key_file=tmp_path / "node.key"),
        key=b"\x07" * 32,
    )
    try:
        (tmp_path / "staging.jsonl").rename(tmp_path / "inbox" / "history.jsonl")  # the documented way in
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with ctx.engine.connect() as connection:
                taken = connection.execute(select(func.count()).select_from(outbox)).scalar_one()
            if 80 <= taken < len(envelopes):
                break
            time.sleep(0.005)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert 80 <= taken < len(envelopes), taken
        assert (tmp_path / "inbox" / "history.jsonl").exists()
        second = start()
        try:
            deadline = time.monotonic() + 60
            while (
                not (tmp_path / "inbox" / "done" / "history.jsonl").exists() and time.monotonic() < deadline
            ):
                time.sleep(0.05)
        finally:
            second.send_signal(signal.SIGKILL)
            second.wait(10)
        stored = lines_stored(ctx)
    finally:
        ctx.engine.dispose()
    assert len(stored) == len(envelopes) and len(set(stored)) == len(envelopes)
