"""Database engines for SQLite (embedded default) and PostgreSQL (production).

SQLite runs in WAL mode with ``synchronous=FULL`` so that a committed transaction survives a power
cut; PostgreSQL must not run with ``fsync`` or ``synchronous_commit`` off. Both are checked when a
service starts, and a store that could lose acknowledged data is refused.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool, QueuePool

__all__ = [
    "DurabilityError",
    "JsonText",
    "check_durability",
    "compact_json",
    "compact_json_utf8",
    "is_sqlite",
    "json_text",
    "make_engine",
    "redact_url",
    "serialise_record",
    "writing",
]


class DurabilityError(RuntimeError):
    """The database is configured so that acknowledged data could be lost."""

    code = "E-STORE-DURABILITY"


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def redact_url(url: str | URL) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=60000")
    if isinstance(dbapi_connection, _WriterQueueConnection) and dbapi_connection.checkpoints_aside:
        cursor.execute(f"PRAGMA wal_autocheckpoint={_WAL_AUTOCHECKPOINT_PAGES}")
    cursor.close()


# How long a writer waits for the writer lock before leaving the wait to SQLite's busy timeout.
_WRITER_WAIT_SECONDS = 60.0
_THREAD_QUEUES: dict[str, threading.Lock] = {}
_THREAD_QUEUES_GUARD = threading.Lock()


# The committing writer no longer copies the WAL into the database every 1,000 pages (4 MiB: about
# every batch of the hub), inside its write lock; a thread does it beside the writers. The pages
# stay durable in the WAL until then, and a WAL of 64 MiB still makes the writer checkpoint itself.
_WAL_AUTOCHECKPOINT_PAGES = 16_384
_CHECKPOINT_IDLE_SECONDS = 2.0


class _Checkpointer:
    """Copies committed WAL pages into a database file in the background (``PRAGMA wal_checkpoint``,
    PASSIVE: it never waits for readers or writers). One per database file and process; its thread
    ends after a quiet while and starts again at the next commit."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.wake = threading.Event()
        self.guard = threading.Lock()
        self.thread: threading.Thread | None = None

    def poke(self) -> None:
        self.wake.set()
        with self.guard:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            return
        try:
            while self.wake.wait(_CHECKPOINT_IDLE_SECONDS):
                self.wake.clear()
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    return  # the file is gone or unusable: writers checkpoint for themselves
        finally:
            connection.close()


_CHECKPOINTERS: dict[str, _Checkpointer] = {}


def _checkpointer(path: str) -> _Checkpointer:
    with _THREAD_QUEUES_GUARD:
        found = _CHECKPOINTERS.get(path)
        if found is None:
            found = _CHECKPOINTERS[path] = _Checkpointer(path)
        return found


def _thread_queue(path: str) -> threading.Lock:
    with _THREAD_QUEUES_GUARD:
        return _THREAD_QUEUES.setdefault(path, threading.Lock())


class _WriterQueueConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions first wait their turn outside SQLite.

    SQLite makes a second writer retry on a timer (sleeps of up to 100 ms), so two threads or
    processes writing in turn lose most of the time in those sleeps. Here the threads of a process
    queue on a lock (a blocked thread costs nothing), and processes on ``flock`` of a file beside
    the database: the database is handed over within a millisecond of the commit. The operating
    system releases the lock of a killed process.
    """

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        name = os.fspath(database) if isinstance(database, str | os.PathLike) else ""
        uri = kwargs.get("uri", False)
        self._lock_path = f"{name}-writer" if name and name != ":memory:" and not uri else None
        self._queue = _thread_queue(os.path.abspath(name)) if self._lock_path else None
        self._checkpointer = _checkpointer(os.path.abspath(name)) if self._lock_path else None
        self._lock_fd: int | None = None
        self._queued = False
        self._holding = False

    @property
    def checkpoints_aside(self) -> bool:
        return self._checkpointer is not None

    def take_writer_lock(self) -> None:
        if self._lock_path is None or self._queue is None or self._queued:
            return
        deadline = time.monotonic() + _WRITER_WAIT_SECONDS
        if not self._queue.acquire(timeout=_WRITER_WAIT_SECONDS):
            return  # from here SQLite's busy timeout decides, as without this lock
        self._queued = True
        if self._lock_fd is None:
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        pause = 0.0001
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return
                time.sleep(pause)  # another process writes: poll, so that a stuck one cannot hang us
                pause = min(pause * 2, 0.001)
            else:
                self._holding = True
                return

    def _release_writer_lock(self) -> None:
        if self._holding and self._lock_fd is not None:
            self._holding = False
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        if self._queued and self._queue is not None:
            self._queued = False
            self._queue.release()

    def commit(self) -> None:
        wrote = self._holding
        try:
            super().commit()
        finally:
            self._release_writer_lock()
        if wrote and self._checkpointer is not None:
            self._checkpointer.poke()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release_writer_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release_writer_lock()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None


def make_engine(url: str | URL, *, pool_size: int = 5) -> Engine:
    """An engine with the durability settings this project relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # The driver's own transaction handling is switched off: transactions are begun explicitly
        # (BEGIN IMMEDIATE for writers) so that two processes never deadlock upgrading a read lock.
        # A file database keeps a few connections open: opening one costs the pragmas and a schema
        # read, and closing the last one checkpoints the whole WAL, on every request. The pool never
        # makes a caller wait (no overflow limit: SQLite itself serialises the writers).
        pooling: dict[str, Any] = (
            {"poolclass": QueuePool, "pool_size": pool_size, "max_overflow": -1}
            if database and database != ":memory:"
            else {"poolclass": NullPool}
        )
        engine = create_engine(
            parsed,
            connect_args={
                "check_same_thread": False,
                "isolation_level": None,
                "factory": _WriterQueueConnection,
            },
            json_serializer=compact_json,
            **pooling,
        )
        event.listen(engine, "connect", _sqlite_pragmas)

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
            if mode == "IMMEDIATE":
                driver = connection.connection.driver_connection
                if isinstance(driver, _WriterQueueConnection):
                    driver.take_writer_lock()
            connection.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(
        parsed, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, json_serializer=compact_json
    )


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes: on SQLite it takes the write lock at ``BEGIN IMMEDIATE``.

    A deferred transaction that reads before it writes fails at once with "database is locked"
    (the busy timeout cannot help) when another writer commits in between, e.g. the portal's
    projection or a people's session update racing an operator's change. Use this, not
    ``engine.begin()``, for every write.
    """
    with engine.connect() as plain:
        connection = plain.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            yield connection


# Types orjson would serialise where json.dumps refuses: they go to json.dumps, which decides as before.
_ORJSON_STRICT = (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS
)


@dataclass(frozen=True, slots=True)
class JsonText:
    """A value already serialised (:func:`json_text`, :func:`serialise_record`): a JSON column stores
    it as it is. Kept as orjson wrote it, in UTF-8: SQLite takes these bytes (``CAST(? AS TEXT)``) and
    a response body is these bytes, so the text is neither decoded nor encoded again."""

    utf8: bytes

    @property
    def text(self) -> str:
        return self.utf8.decode()


def json_text(value: Any) -> JsonText:
    """``value`` serialised once, as :func:`compact_json` writes it."""
    encoded = compact_json_utf8(value)
    return JsonText(encoded if encoded is not None else compact_json(value).encode())


def serialise_record(value: Any) -> JsonText | None:
    """``value`` as the compact JSON a column would store, or None when it holds text that no
    database and no hub takes: a lone surrogate (not Unicode) or a NUL character (PostgreSQL's
    text and JSONB refuse it; the hub refuses a body that carries one)."""
    data = compact_json_utf8(value)
    if data is None:  # a lone surrogate, or what compact_json hands to json.dumps
        return None if _has_unstorable_text(value) else json_text(value)
    if b"\\u0000" in data and _has_unstorable_text(value):
        return None
    return JsonText(data)


def _has_unstorable_text(value: Any) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item or (not item.isascii() and _lone_surrogate(item)):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


def _lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def compact_json_utf8(value: Any) -> bytes | None:
    """:func:`compact_json`'s text as UTF-8 bytes, when orjson writes it (else None).

    On SQLite a record's JSON goes to the driver as these bytes (stored as text by ``CAST(? AS TEXT)``):
    a ``str`` of Chinese text would be decoded from orjson's UTF-8 only for the driver to encode it
    again, about 3% of the hub's instructions per record.
    """
    try:
        return orjson.dumps(value, option=_ORJSON_STRICT)
    except TypeError:
        return None


def compact_json(value: Any) -> str:
    """JSON columns hold Chinese text as itself: \\u escapes would make every record several times larger.

    orjson writes the text ``json.dumps(ensure_ascii=False)`` would, several times faster (a float's
    exponent may be spelt ``1e-7`` for ``1e-07``: the same number).
    What it refuses goes to ``json.dumps``: integers beyond 64 bits as before, and text with a lone
    surrogate (not UTF-8, so no database could store it unescaped) with ``\\u`` escapes, as it came.
    """
    if type(value) is JsonText:
        return value.text
    encoded = compact_json_utf8(value)
    if encoded is not None:
        return encoded.decode()
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text


def check_durability(engine: Engine) -> dict[str, str]:
    """Read the settings that decide whether a commit is durable; raise when one is unsafe."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            journal = str(connection.exec_driver_sql("PRAGMA journal_mode").scalar())
            synchronous = int(connection.exec_driver_sql("PRAGMA synchronous").scalar() or 0)
            found = {"journal_mode": journal, "synchronous": str(synchronous)}
            if journal.lower() != "wal" and engine.url.database not in (None, "", ":memory:"):
                raise DurabilityError(f"SQLite journal_mode is {journal}, WAL is required")
            if synchronous < 2:
                raise DurabilityError(f"SQLite synchronous={synchronous}, FULL (2) is required")
            return found
        if engine.dialect.name == "postgresql":
            found = {
                name: str(connection.execute(text(f"SHOW {name}")).scalar())
                for name in ("fsync", "synchronous_commit", "full_page_writes")
            }
            unsafe = [name for name, value in found.items() if value.lower() in ("off", "local")]
            if unsafe:
                raise DurabilityError(f"PostgreSQL settings lose committed data: {', '.join(unsafe)}")
            return found
        raise DurabilityError(f"unsupported database {engine.dialect.name}")
