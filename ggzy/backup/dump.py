"""Take a consistent snapshot of a database, and load one back, for SQLite and PostgreSQL.

SQLite: the online backup API copies the live database (WAL included) into a private temporary
file while writers go on; the row counts are read from that copy. PostgreSQL: a REPEATABLE READ
transaction exports its snapshot, the row counts are read in it and ``pg_dump --snapshot`` dumps
exactly that state, so the counts recorded with a backup are the counts in it. ``pg_dump`` must be
at least the server's major version (checked before every dump).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, MetaData, create_engine, func, inspect, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from ggzy.store import make_engine
from ggzy.store.database import writing

__all__ = ["BackupToolError", "Snapshot", "count_rows", "load_snapshot", "pg_tool_check", "take_snapshot"]

READ = 1 << 20


class BackupToolError(RuntimeError):
    """An external tool is missing, too old, or failed (``E-BACKUP-TOOL``)."""

    code = "E-BACKUP-TOOL"


@dataclass
class Snapshot:
    dialect: str
    revision: str
    row_counts: dict[str, int]
    payload: Iterator[bytes]


def count_rows(connection: Connection, metadata: MetaData) -> dict[str, int]:
    """Rows per table of the schema; a table missing from the database (a damaged one) is left out."""
    present = set(inspect(connection).get_table_names())
    return {
        name: int(connection.execute(select(func.count()).select_from(table)).scalar_one())
        for name, table in sorted(metadata.tables.items())
        if name in present
    }


def _revision(connection: Connection) -> str:
    return str(connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one())


def take_snapshot(db_url: str, metadata: MetaData, scratch: Path | None) -> Snapshot:
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_snapshot(url, metadata, scratch)
    if url.get_backend_name() == "postgresql":
        return _postgres_snapshot(url, metadata)
    raise BackupToolError(f"cannot back up a {url.get_backend_name()} database")


def _private_dir(scratch: Path | None) -> Path:
    if scratch is not None:
        scratch.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="ggzy-backup-", dir=scratch))  # mode 0700


def _sqlite_snapshot(url: URL, metadata: MetaData, scratch: Path | None) -> Snapshot:
    folder = _private_dir(scratch)
    copy = folder / "snapshot.db"
    source = sqlite3.connect(str(url.database))
    try:
        target = sqlite3.connect(copy)
        with target:
            source.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        target.close()
    finally:
        source.close()
    engine = create_engine(f"sqlite:///{copy}", poolclass=NullPool)  # read as is: no WAL switch
    try:
        with engine.connect() as connection:
            counts, revision = count_rows(connection, metadata), _revision(connection)
    finally:
        engine.dispose()

    def payload() -> Iterator[bytes]:
        try:
            with copy.open("rb") as handle:
                while block := handle.read(READ):
                    yield block
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # the plain copy never outlives the backup

    return Snapshot("sqlite", revision, counts, payload())


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A connection URI without the password, and the environment carrying it (not the process list)."""
    plain = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    environment = dict(os.environ)
    if url.password:
        environment["PGPASSWORD"] = str(url.password)
    return plain, environment


def _major(version: str) -> int:
    """``pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)`` → 15."""
    match = re.search(r"\)\s*(\d+)", version) or re.search(r"(\d+)", version)
    if match is None:
        raise BackupToolError(f"cannot read a version from {version!r}")
    return int(match.group(1))


def pg_tool_check(connection: Connection, tool: str = "pg_dump") -> str:
    """The tool's version line; refuses one older than the server (its dump could miss things)."""
    if shutil.which(tool) is None:
        raise BackupToolError(f"{tool} is not installed (apt-get install postgresql-client)")
    line = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    server = int(connection.execute(text("SHOW server_version_num")).scalar_one()) // 10000
    if _major(line) < server:
        raise BackupToolError(f"{line} is older than the server (major {server})")
    return line


def _postgres_snapshot(url: URL, metadata: MetaData) -> Snapshot:
    engine = make_engine(url, pool_size=1)
    uri, environment = _libpq(url)
    # The counts and the dump must see one state: both are read in one exported snapshot, and the
    # exporting transaction stays open (held by the payload generator) until pg_dump has finished.
    connection = engine.connect().execution_options(isolation_level="REPEATABLE READ")
    try:
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        pg_tool_check(connection)
        snapshot_id = str(connection.execute(text("SELECT pg_export_snapshot()")).scalar_one())
        counts, revision = count_rows(connection, metadata), _revision(connection)
    except BaseException:
        connection.close()
        engine.dispose()
        raise

    def payload() -> Iterator[bytes]:
        try:
            yield from _pg_dump(uri, environment, snapshot_id)
        finally:
            connection.rollback()
            connection.close()
            engine.dispose()

    return Snapshot("postgresql", revision, counts, payload())


def _pg_dump(uri: str, environment: dict[str, str], snapshot_id: str) -> Iterator[bytes]:
    command = [
        "pg_dump",
        "--format=custom",
        "--no-owner",
        "--no-privileges",
        f"--snapshot={snapshot_id}",
        uri,
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment)
    assert process.stdout is not None and process.stderr is not None
    try:
        while block := process.stdout.read(READ):
            yield block
    finally:
        process.stdout.close()
        error = process.stderr.read().decode(errors="replace")
        process.stderr.close()
        code = process.wait()
    if code != 0:
        raise BackupToolError(f"pg_dump failed ({code}): {error.strip()[:500]}")


def load_snapshot(db_url: str, dialect: str, payload: Iterable[bytes], scratch: Path | None) -> None:
    """Replace everything in ``db_url`` with the snapshot (the database itself must exist)."""
    url = make_url(db_url)
    if dialect != url.get_backend_name():
        raise BackupToolError(
            f"a {dialect} backup cannot be restored into a {url.get_backend_name()} database"
        )
    if dialect == "sqlite":
        _sqlite_load(url, payload, scratch)
    else:
        _postgres_load(url, payload)


def _sqlite_load(url: URL, payload: Iterable[bytes], scratch: Path | None) -> None:
    folder = _private_dir(scratch)
    try:
        copy = folder / "restore.db"
        with copy.open("wb") as handle:
            for block in payload:
                handle.write(block)
        source = sqlite3.connect(copy)
        check = source.execute("PRAGMA integrity_check").fetchone()
        if check is None or check[0] != "ok":
            source.close()
            raise BackupToolError(f"the restored SQLite file fails its integrity check: {check}")
        Path(str(url.database)).parent.mkdir(parents=True, exist_ok=True)
        target = sqlite3.connect(str(url.database), timeout=60)
        try:
            target.execute("PRAGMA journal_mode=WAL")
            # The backup API replaces the target's pages under its lock, WAL and all: readers see
            # the old database or the restored one, never a mixture.
            source.backup(target)
        finally:
            target.close()
            source.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _postgres_load(url: URL, payload: Iterable[bytes]) -> None:
    engine = make_engine(url, pool_size=1)
    try:
        with writing(engine) as connection:
            pg_tool_check(connection, "pg_restore")
            connection.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()
    uri, environment = _libpq(url)
    command = [
        "pg_restore",
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
        "-d",
        uri,
    ]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment
    )
    assert process.stdin is not None and process.stderr is not None
    try:
        with contextlib.suppress(BrokenPipeError):
            for block in payload:
                process.stdin.write(block)
    finally:
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
    error = process.stderr.read().decode(errors="replace")
    if process.wait() != 0:
        raise BackupToolError(f"pg_restore failed: {error.strip()[:500]}")
