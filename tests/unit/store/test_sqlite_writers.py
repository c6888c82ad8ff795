"""SQLite writers: the WAL is copied into the database beside them, not by them."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import text

from ggzy.store import make_engine


def test_committed_pages_reach_the_database_file_without_the_writer_checkpointing(tmp_path: Path) -> None:
    # the writers' own checkpoint waits for a 64 MiB WAL; without the background checkpointer the
    # database file would stay at its first pages
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.connect() as plain:
        connection = plain.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            connection.exec_driver_sql("CREATE TABLE t (v TEXT)")
            connection.exec_driver_sql("INSERT INTO t VALUES (?)", [("数据" * 2000,) for _ in range(400)])
    deadline = time.monotonic() + 10
    while (tmp_path / "w.db").stat().st_size < 4_000_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "w.db").stat().st_size >= 4_000_000
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar_one() == 400
    engine.dispose()
