"""The drop folder: files of records put into a directory are taken into the outbox.

Files: ``.jsonl``/``.json``/``.ndjson``, ``.csv``, ``.xlsx`` and provincial XML envelopes, UTF-8 or
GBK. The folder takes only what was meant for it:

- only regular files directly in the folder, opened without following a symbolic link
  (``O_NOFOLLOW``) and with one name only (``st_nlink == 1``: a hard link to a file elsewhere, the
  node's key for one, is refused unread); a symbolic link, a directory, a FIFO, a device or a hard
  link goes to ``failed/`` with a report saying why, and is never opened;
- a file is read only when complete: put it in by renaming it into the folder (write it as
  ``name.part``, ``name.tmp`` or ``.name``, which are never touched, then rename), or let it stay
  unchanged in size and modification time for ``drop_settle_seconds`` (5 s); a file another
  process still holds open for writing (Linux: a read lease cannot be taken) waits too;
- names starting with ``.`` are ignored, and said to be: one standing "intake" alert lists them
  (``ggzy node status``, the portal) until they are gone;
- each file is handled inside its own guard: whatever fails for one file (its name, its
  permissions, the disk) moves it aside to ``failed/`` with a report, under a shortened name when
  its own is too long, and the scan goes on; an expected refusal is one log line, not a traceback;
- reports give line numbers, byte offsets and codes, never the bytes of a line that could not be
  read.

A file is streamed (:mod:`ggzy.interchange.stream`), ``intake_chunk`` records at a time: each chunk
is one intake transaction that also commits the file's progress (``node_state`` ``file:<sha256>``:
records and byte offset read, counts of the chunks before), so a crash resumes after the last committed chunk,
losing and repeating nothing. The first ``PROBLEMS_KEPT`` held and refused records, listed in the
report, are appended after each commit to ``done/.<sha256>.problems`` (a crash in between costs the
report one chunk's list, never a record). The file stays in the folder until it is finished,
then moves to ``done/`` (read; each record's outcome counted in the report) or ``failed/`` (it could
not be read, or stopped being readable part-way: the report says how far it was taken), with
``<name>.report.json`` beside it. A finished file's digest stays recorded: the same bytes dropped
again are a duplicate, not taken twice.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import errno
import fcntl
import gc
import hashlib
import json
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select

from ggzy.interchange import InputError, SourceItem
from ggzy.interchange.stream import Position, ReadLimits, Survey, stream_items, survey
from ggzy.node.context import NodeContext
from ggzy.node.intake.service import Intake, IntakeResult, IntakeSummary, Outcome
from ggzy.node.models import state as node_state
from ggzy.node.uploader import raise_alert, resolve_alerts
from ggzy.settings import NodeSettings

__all__ = ["DropDirectory", "FileReport", "file_state_name", "read_limits"]

log = logging.getLogger(__name__)

SUFFIXES = frozenset({".jsonl", ".json", ".ndjson", ".csv", ".xlsx", ".xml"})
_WRITING_SUFFIXES = (".part", ".tmp")
PROBLEMS_KEPT = 1000  # held and refused records listed one by one in a report; the rest are counted
_NAME_BYTES = 200  # longer names are shortened (NAME_MAX is 255 bytes, and ".report.json" follows)
_F_SETLEASE = getattr(fcntl, "F_SETLEASE", 1024)
_F_RDLCK = getattr(fcntl, "F_RDLCK", 0)
_F_UNLCK = getattr(fcntl, "F_UNLCK", 2)


def file_state_name(digest: str) -> str:
    return f"file:{digest}"


def read_limits(settings: NodeSettings) -> ReadLimits:
    return ReadLimits(
        max_records=settings.file_max_records,
        max_line_bytes=settings.file_max_line_bytes,
        max_xlsx_inflated_bytes=settings.xlsx_max_inflated_bytes,
        max_xlsx_ratio=settings.xlsx_max_ratio,
        max_xml_bytes=settings.xml_max_bytes,
        max_xml_depth=settings.xml_max_depth,
    )


@dataclass
class FileReport:
    """What became of one dropped file (also written as ``<name>.report.json``)."""

    name: str
    sha256: str | None
    outcome: str  # done | failed | duplicate | waiting (disk full: left in the folder)
    summary_zh: str
    moved_to: Path | None = None
    error: dict[str, Any] | None = None
    summary: IntakeSummary = field(default_factory=IntakeSummary)
    problems: list[dict[str, Any]] = field(default_factory=list)  # held and refused records, first ones
    records: int = 0  # items read

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.name,
            "sha256": self.sha256,
            "outcome": self.outcome,
            "summary_zh": self.summary_zh,
            "processed_at": dt.datetime.now(dt.UTC).isoformat(),
            "error": self.error,
            "records": self.records,
            "counts": {table: dict(counts) for table, counts in sorted(self.summary.by_table.items())},
            "refused_codes": dict(self.summary.refused_codes),
            "problems": self.problems,
            "problems_not_listed": max(
                0, self.summary.total(Outcome.HELD) + self.summary.total(Outcome.REFUSED) - len(self.problems)
            ),
        }


@dataclass
class _Progress:
    """A file's progress, committed with each chunk (``node_state`` ``file:<sha256>``)."""

    name: str
    done: bool = False
    position: Position = field(default_factory=Position)
    summary: IntakeSummary = field(default_factory=IntakeSummary)
    problems: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "file": self.name,
                "at": dt.datetime.now(dt.UTC).isoformat(),
                "done": self.done,
                "items": self.position.items,
                "offset": self.position.offset,
                "line": self.position.line,
                "counts": {t: dict(c) for t, c in self.summary.by_table.items()},
                "refused": dict(self.summary.refused_codes),
                "redacted": dict(self.summary.redacted),
                "error": self.error,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> _Progress:
        value = json.loads(text)
        progress = cls(
            name=str(value.get("file", "")),
            done=bool(value.get("done", True)),  # a marker of an earlier release: a file taken whole
            position=Position(
                int(value.get("items", 0)), int(value.get("offset", 0)), int(value.get("line", 0))
            ),
            error=value.get("error"),
        )
        for table, counts in (value.get("counts") or {}).items():
            progress.summary.by_table.setdefault(table, type(progress.summary.refused_codes)()).update(counts)
        progress.summary.refused_codes.update(value.get("refused") or {})
        progress.summary.redacted.update(value.get("redacted") or {})
        return progress


class _Refusal(Exception):
    """A file that is not taken, with the code and reason its report gives."""

    def __init__(self, code: str, message_zh: str, message_en: str, **detail: Any) -> None:
        super().__init__(message_en)
        self.code, self.message_zh, self.message_en, self.detail = code, message_zh, message_en, detail


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
        settings = ctx.settings
        self.settle_seconds = settings.drop_settle_seconds if settle_seconds is None else settle_seconds
        self.chunk = settings.intake_chunk
        self.limits = read_limits(settings)
        self.clock = clock
        self._seen: dict[str, tuple[int, int, int, float]] = {}  # name -> (inode, size, mtime_ns, since)
        self._stuck: dict[str, tuple[int, int, int]] = {}  # could not even be moved aside: not retried
        self.hidden: list[str] = []  # names ignored at the last scan
        for directory in (self.path, self.done, self.failed):
            directory.mkdir(parents=True, exist_ok=True)

    def scan_once(self) -> list[FileReport]:
        """Take every settled file in the folder; returns a report per file handled, oldest first."""
        reports: list[FileReport] = []
        for name in self._settled():
            reports.append(self._guarded(name))
        return reports

    # --- which files ---

    def _settled(self) -> list[str]:
        now = self.clock()
        present: dict[str, tuple[int, int, int]] = {}
        hidden: list[str] = []
        others: list[str] = []
        with os.scandir(self.path) as entries:
            for entry in entries:
                name = entry.name
                if name.startswith("."):
                    hidden.append(name)
                    continue
                if name.endswith(_WRITING_SUFFIXES) or name in ("done", "failed"):
                    continue
                try:
                    found = entry.stat(follow_symlinks=False)
                except OSError:
                    continue  # moved away meanwhile
                key = (found.st_ino, found.st_size, found.st_mtime_ns)
                if self._stuck.get(name) == key:
                    continue
                if not stat.S_ISREG(found.st_mode):
                    others.append(name)  # refused at once: there is nothing to wait for
                    continue
                present[name] = key
        self._note_hidden(sorted(hidden))
        ready: list[tuple[int, str]] = []
        for name, (inode, size, mtime) in present.items():
            seen = self._seen.get(name)
            if seen is None or seen[:3] != (inode, size, mtime):
                self._seen[name] = (inode, size, mtime, now)  # new or still changing: look again later
                continue
            if now - seen[3] >= self.settle_seconds:
                ready.append((mtime, name))
        for gone in set(self._seen) - set(present):
            del self._seen[gone]
        return sorted(others) + [name for _, name in sorted(ready)]

    def _note_hidden(self, names: list[str]) -> None:
        """Hidden files are never read, and never silently: one standing alert names them."""
        if names == self.hidden:
            return
        for name in sorted(set(names) - set(self.hidden)):
            log.warning("drop folder: %r starts with '.': ignored (rename it to have it read)", name)
        self.hidden = names
        if not names:
            resolve_alerts(self.ctx.engine, "intake", condition="drop-hidden")
            return
        shown = "、".join(names[:10]) + (f" 等 {len(names)} 个" if len(names) > 10 else "")
        raise_alert(
            self.ctx.engine,
            "intake",
            "info",
            f"投递目录中以“.”开头的文件不会被读取（视为正在写入或隐藏文件）：{shown}。"
            f"如需接收，请改名去掉开头的“.” (E-INPUT-HIDDEN)",
            condition="drop-hidden",
        )

    # --- one file, inside its own guard ---

    def _guarded(self, name: str) -> FileReport:
        self._seen.pop(name, None)
        try:
            return self._take(name)
        except _Refusal as refusal:
            log.warning("drop folder: %s refused: %s %s", name, refusal.code, refusal.message_en)
            error = {"code": refusal.code, "message_zh": refusal.message_zh, "message_en": refusal.message_en}
            return self._set_aside(
                name,
                FileReport(
                    name, None, "failed", f"{name}：{refusal.message_zh}", error=error | refusal.detail
                ),
            )
        except Exception as exc:  # anything else about this one file: it goes aside, the scan goes on
            expected = isinstance(exc, OSError)
            if expected:
                log.warning("drop folder: %s could not be taken: %s", name, exc)
            else:
                log.exception("drop folder: %s could not be taken", name)
            code = "E-INPUT-OS" if expected else "E-NODE-INTERNAL"
            reason_zh = f"处理文件时出错：{type(exc).__name__}" + (
                f"（{os.strerror(exc.errno)}）" if isinstance(exc, OSError) and exc.errno else ""
            )
            error = {
                "code": code,
                "message_zh": reason_zh,
                "message_en": f"{type(exc).__name__}: {exc}"[:500],
            }
            return self._set_aside(
                name, FileReport(name, None, "failed", f"{name}：{reason_zh}", error=error)
            )

    def _take(self, name: str) -> FileReport:
        path = self.path / name
        try:
            fd = os.open(
                path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)
            )
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _Refusal(
                    "E-INPUT-NOT-REGULAR",
                    "是符号链接，不读取（投递目录只接收直接放入的普通文件）",
                    "a symbolic link: not followed",
                ) from None
            raise
        with os.fdopen(fd, "rb", buffering=1024 * 1024) as handle:
            found = os.fstat(fd)
            if not stat.S_ISREG(found.st_mode):
                raise _Refusal(
                    "E-INPUT-NOT-REGULAR",
                    "不是普通文件（目录、管道、设备等），不读取",
                    "not a regular file: not read",
                )
            if found.st_nlink != 1:
                raise _Refusal(
                    "E-INPUT-LINKED",
                    f"文件有 {found.st_nlink} 个硬链接（可能指向目录外的文件），不读取；请复制后放入",
                    f"the file has {found.st_nlink} hard links (it may be a file from elsewhere): not read",
                )
            if not _nobody_writing(fd):
                self._seen.pop(name, None)  # still being written: wait for it to settle again
                return FileReport(name, None, "waiting", f"{name}：文件仍被写入，稍后再读取")
            suffix = Path(name).suffix.lower()
            if suffix not in SUFFIXES:
                raise _Refusal(
                    "E-INPUT-FORMAT",
                    "不支持的文件类型（支持 .jsonl/.json/.ndjson/.csv/.xlsx/.xml）",
                    "unsupported file type",
                )
            return self._read(name, handle, suffix)

    def _read(self, name: str, handle: IO[bytes], suffix: str) -> FileReport:
        try:
            found = survey(handle, suffix, name, self.limits)
        except InputError as exc:
            return self._set_aside(name, _unreadable(name, None, exc))
        progress = self._progress(found.sha256)
        if progress is not None and progress.done:
            report = FileReport(
                name,
                found.sha256,
                "duplicate",
                f"{name}：此文件已接收过，未重复入队（duplicate of a file already taken）",
            )
            return self._finish(name, report, self.done)
        progress = progress or _Progress(name)
        problems_file = self.done / f".{found.sha256}.problems"
        progress.problems = _read_problems(problems_file) if progress.position.items else []
        try:
            for items, positions in self._chunks(handle, suffix, name, found, progress.position):
                # The chunk's position commits with its records: a crash after this resumes behind them.
                moved = _Progress(name, False, positions[-1], progress.summary)
                results = self.intake.accept(
                    items, "file", name, state_updates={file_state_name(found.sha256): moved.to_json()}
                )
                if results and all(r.code == "E-NODE-DISK-FULL" for r in results):
                    # Nothing was stored (nor the progress): the file stays, a later scan resumes here.
                    return FileReport(name, found.sha256, "waiting", f"{name}：磁盘空间不足，稍后再接收")
                listed = len(progress.problems)
                _count(progress, items, results)
                _append_problems(problems_file, progress.problems[listed:])
                # Its counts are known once it committed: they ride with the next chunk's commit (or
                # the file's last one), so a crash costs the report one chunk's counts, never a record.
                progress.position = positions[-1]
        except InputError as exc:
            progress.done = True
            progress.error = _error_of(exc)
            self._save(found.sha256, progress)
            report = _unreadable(name, found.sha256, exc)
            _fill(report, progress)
            if progress.position.items:
                report.summary_zh += f"；此前已接收前 {progress.position.items} 条记录，勿重复提交"
            finished = self._set_aside(name, report)
        else:
            progress.done = True
            self._save(found.sha256, progress)
            report = FileReport(name, found.sha256, "done", "")
            _fill(report, progress)
            report.summary_zh = f"{name}：{progress.summary.line_zh()}"
            finished = self._finish(name, report, self.done)
        problems_file.unlink(missing_ok=True)
        _give_back_memory()
        return finished

    def _chunks(
        self, handle: IO[bytes], suffix: str, name: str, found: Survey, start: Position
    ) -> Iterator[tuple[list[SourceItem], list[Position]]]:
        pairs = stream_items(handle, suffix, name, found, self.limits, start=start)
        while chunk := list(islice(pairs, self.chunk)):
            yield [item for item, _ in chunk], [position for _, position in chunk]

    # --- progress ---

    def _progress(self, digest: str) -> _Progress | None:
        with self.ctx.engine.connect() as connection:
            value = connection.execute(
                select(node_state.c.value).where(node_state.c.name == file_state_name(digest))
            ).scalar()
        return _Progress.from_json(value) if value is not None else None

    def _save(self, digest: str, progress: _Progress) -> None:
        self.ctx.outbox.enqueue([], state_updates={file_state_name(digest): progress.to_json()})

    # --- moving aside ---

    def _set_aside(self, name: str, report: FileReport) -> FileReport:
        try:
            return self._finish(name, report, self.failed)
        except (
            OSError
        ) as exc:  # not even movable (permissions, a full disk): left, not retried until it changes
            log.warning("drop folder: %s could not be moved to failed/: %s", name, exc)
            with contextlib.suppress(OSError):
                found = os.lstat(self.path / name)
                self._stuck[name] = (found.st_ino, found.st_size, found.st_mtime_ns)
            raise_alert(
                self.ctx.engine,
                "intake",
                "warning",
                f"投递目录中的文件无法处理也无法移到 failed/，请人工处理：{safe_name(name)} (E-INPUT-STUCK)",
            )
            return report

    def _finish(self, name: str, report: FileReport, directory: Path) -> FileReport:
        """Write the report, then move the file beside it (a crash between leaves a harmless report)."""
        target = _free_name(directory, safe_name(name))
        report_path = target.with_name(target.name + ".report.json")
        temporary = report_path.with_name("." + report_path.name + ".tmp")
        temporary.write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
        temporary.replace(report_path)
        os.rename(self.path / name, target)  # the name itself, never what a link points to
        report.moved_to = target
        return report


def _count(progress: _Progress, items: list[SourceItem], results: list[IntakeResult]) -> None:
    progress.summary.add(results)
    for result in results:
        if result.outcome == Outcome.ACCEPTED or len(progress.problems) >= PROBLEMS_KEPT:
            continue
        item = items[result.index]
        progress.problems.append(
            {
                "line": result.line,
                "offset": item.extra.get("offset"),
                "outcome": result.outcome,
                "table": result.table,
                "key": result.key,
                "id": result.id,
                "code": result.code,
                "message_zh": result.message_zh,
                "findings": result.findings,
            }
        )


def _append_problems(path: Path, problems: list[dict[str, Any]]) -> None:
    if problems:
        with path.open("a", encoding="utf-8") as out:
            out.writelines(json.dumps(p, ensure_ascii=False) + "\n" for p in problems)


def _read_problems(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in islice(lines, PROBLEMS_KEPT) if line.endswith("\n")]


def _fill(report: FileReport, progress: _Progress) -> None:
    report.summary = progress.summary
    report.problems = progress.problems
    report.records = progress.position.items


def _error_of(exc: InputError) -> dict[str, Any]:
    error: dict[str, Any] = {"code": exc.code, "message_zh": exc.message_zh, "message_en": exc.message_en}
    for name in ("line", "column", "offset"):
        value = getattr(exc, name, None)
        if value is not None:
            error[name] = value
    return error


def _unreadable(name: str, digest: str | None, exc: InputError) -> FileReport:
    return FileReport(name, digest, "failed", f"{name}：文件无法读取：{exc.message_zh}", error=_error_of(exc))


def _give_back_memory() -> None:
    """After a file: collect what its chunks left in reference cycles and hand the freed heap back to
    the system (glibc keeps it otherwise), so a node's RSS does not stay at a large file's level."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _nobody_writing(fd: int) -> bool:
    """False while another process holds the file open for writing (Linux leases); True where that
    cannot be told (not the file's owner, another system): the settle time alone decides then."""
    try:
        fcntl.fcntl(fd, _F_SETLEASE, _F_RDLCK)
    except OSError as exc:
        return exc.errno not in (errno.EAGAIN, errno.EBUSY)
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETLEASE, _F_UNLCK)
    return True


def safe_name(name: str) -> str:
    """``name``, or a shortened one (its start, a digest, its suffix) when too long for a report beside it."""
    encoded = name.encode("utf-8", errors="surrogateescape")
    if len(encoded) <= _NAME_BYTES:
        return name
    suffix = Path(name).suffix[:16]
    digest = hashlib.sha256(encoded).hexdigest()[:16]
    start = encoded[:120].decode("utf-8", errors="ignore")
    return f"{start}…{digest}{suffix}"


def _free_name(directory: Path, name: str) -> Path:
    """``name`` in ``directory``, or ``name`` with a time stamp when a file of that name is there."""
    target = directory / name
    if not os.path.lexists(target):
        return target
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S%f")
    stem, dot, suffix = name.rpartition(".")
    return directory / (f"{stem}.{stamp}{dot}{suffix}" if dot else f"{name}.{stamp}")
