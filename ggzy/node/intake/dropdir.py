"""The drop folder: files of records put into a directory are taken into the outbox.

Files: ``.jsonl``/``.json``/``.ndjson``, ``.csv``, ``.xlsx`` and provincial XML envelopes, UTF-8 or
GBK (:func:`ggzy.interchange.read_path`). Names starting with ``.`` or ending in ``.part``/``.tmp``
are someone's file still being written and are never touched; any other file is read only once its
size and modification time have stayed the same for ``drop_settle_seconds`` (a copy in progress
keeps changing both).

All records of one file go through one intake call — one transaction: a crash takes the whole file
or none of it. The file stays in the folder until that transaction committed, then moves to
``done/`` (it could be read; each record's outcome is in the report) or ``failed/`` (it could not be
read at all: unknown type, not UTF-8/GBK, broken XML …), with ``<name>.report.json`` beside it.
A crash after the commit and before the move would read the file again; the SHA-256 of every file
taken is committed with its records (``node_state`` ``file:<sha256>``), so the second reading
enqueues nothing and only finishes the move.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ggzy.interchange import InputError, read_path
from ggzy.node.context import NodeContext
from ggzy.node.intake.service import Intake, IntakeResult, IntakeSummary
from ggzy.node.models import state as node_state

__all__ = ["DropDirectory", "FileReport", "file_state_name"]

SUFFIXES = frozenset({".jsonl", ".json", ".ndjson", ".csv", ".xlsx", ".xml"})
_WRITING_SUFFIXES = (".part", ".tmp")


def file_state_name(digest: str) -> str:
    return f"file:{digest}"


@dataclass
class FileReport:
    """What became of one dropped file (also written as ``<name>.report.json``)."""

    name: str
    sha256: str
    outcome: str  # done | failed | duplicate | waiting (disk full: left in the folder)
    summary_zh: str
    moved_to: Path | None = None
    error: dict[str, str] | None = None
    results: list[IntakeResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        summary = IntakeSummary()
        summary.add(self.results)
        return {
            "file": self.name,
            "sha256": self.sha256,
            "outcome": self.outcome,
            "summary_zh": self.summary_zh,
            "processed_at": dt.datetime.now(dt.UTC).isoformat(),
            "error": self.error,
            "counts": {table: dict(counts) for table, counts in sorted(summary.by_table.items())},
            "records": [
                {
                    "line": r.line,
                    "outcome": r.outcome,
                    "table": r.table,
                    "key": r.key,
                    "id": r.id,
                    "channel": r.channel,
                    "code": r.code,
                    "message_zh": r.message_zh,
                    "findings": r.findings,
                    "redacted": r.redacted,
                }
                for r in self.results
            ],
        }


class DropDirectory:
    def __init__(
        self,
        ctx: NodeContext,
        intake: Intake,
        path: Path,
        *,
        settle_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = ctx
        self.intake = intake
        self.path = path
        self.done = path / "done"
        self.failed = path / "failed"
        self.settle_seconds = ctx.settings.drop_settle_seconds if settle_seconds is None else settle_seconds
        self.clock = clock
        self._seen: dict[Path, tuple[int, int, float]] = {}  # path -> (size, mtime_ns, first seen unchanged)
        for directory in (self.path, self.done, self.failed):
            directory.mkdir(parents=True, exist_ok=True)

    def scan_once(self) -> list[FileReport]:
        """Take every settled file in the folder; returns a report per file taken, oldest first."""
        reports: list[FileReport] = []
        for path in self._settled():
            reports.append(self._take(path))
        return reports

    # --- which files ---

    def _settled(self) -> list[Path]:
        now = self.clock()
        present: dict[Path, tuple[int, int]] = {}
        for path in self.path.iterdir():
            name = path.name
            if name.startswith(".") or name.endswith(_WRITING_SUFFIXES) or name.endswith(".report.json"):
                continue
            try:
                if not path.is_file():
                    continue
                stat = path.stat()
            except FileNotFoundError:
                continue  # moved away meanwhile
            present[path] = (stat.st_size, stat.st_mtime_ns)
        ready: list[tuple[int, Path]] = []
        for path, (size, mtime) in present.items():
            seen = self._seen.get(path)
            if seen is None or seen[:2] != (size, mtime):
                self._seen[path] = (size, mtime, now)  # new or still changing: look again later
                continue
            if now - seen[2] >= self.settle_seconds:
                ready.append((mtime, path))
        for gone in set(self._seen) - set(present):
            del self._seen[gone]
        return [path for _, path in sorted(ready)]

    # --- one file ---

    def _take(self, path: Path) -> FileReport:
        self._seen.pop(path, None)
        content = path.read_bytes()
        digest = hashlib.sha256(content).hexdigest()
        if self._taken(digest):
            report = FileReport(
                path.name,
                digest,
                "duplicate",
                f"{path.name}：此文件已接收过，未重复入队（duplicate of a file already taken）",
            )
            return self._finish(path, report, self.done)
        if path.suffix.lower() not in SUFFIXES:
            return self._finish(
                path,
                FileReport(
                    path.name,
                    digest,
                    "failed",
                    f"{path.name}：不支持的文件类型（支持 .jsonl/.json/.csv/.xlsx/.xml）",
                    error={
                        "code": "E-INPUT-FORMAT",
                        "message_zh": "不支持的文件类型",
                        "message_en": "unsupported file type",
                    },
                ),
                self.failed,
            )
        try:
            items = list(read_path(path))
        except InputError as exc:
            error = {"code": exc.code, "message_zh": exc.message_zh, "message_en": exc.message_en}
            report = FileReport(
                path.name, digest, "failed", f"{path.name}：文件无法读取：{exc.message_zh}", error=error
            )
            return self._finish(path, report, self.failed)
        marker = json.dumps(
            {"file": path.name, "at": dt.datetime.now(dt.UTC).isoformat()}, ensure_ascii=False
        )
        results = self.intake.accept(
            items, "file", path.name, state_updates={file_state_name(digest): marker}
        )
        if results and all(r.code == "E-NODE-DISK-FULL" for r in results):
            # Nothing was stored and the disk guard will let files in again: leave it for a later scan.
            return FileReport(
                path.name, digest, "waiting", f"{path.name}：磁盘空间不足，稍后再接收", results=results
            )
        summary = IntakeSummary()
        summary.add(results)
        report = FileReport(path.name, digest, "done", f"{path.name}：{summary.line_zh()}", results=results)
        return self._finish(path, report, self.done)

    def _taken(self, digest: str) -> bool:
        with self.ctx.engine.connect() as connection:
            return (
                connection.execute(
                    select(node_state.c.name).where(node_state.c.name == file_state_name(digest))
                ).first()
                is not None
            )

    def _finish(self, path: Path, report: FileReport, directory: Path) -> FileReport:
        """Write the report, then move the file beside it (a crash between leaves a harmless report)."""
        target = _free_name(directory, path.name)
        report_path = target.with_name(target.name + ".report.json")
        temporary = report_path.with_name(report_path.name + ".tmp")
        temporary.write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
        temporary.replace(report_path)
        path.replace(target)
        report.moved_to = target
        return report


def _free_name(directory: Path, name: str) -> Path:
    """``name`` in ``directory``, or ``name`` with a time stamp when a file of that name is there."""
    target = directory / name
    if not target.exists():
        return target
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S%f")
    stem, dot, suffix = name.rpartition(".")
    return directory / (f"{stem}.{stamp}{dot}{suffix}" if dot else f"{name}.{stamp}")
