"""The ``ops_db`` fixture: a migrated hub database on each backend (helpers in ``opsdb.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opsdb import Clock, OpsDb, shanghai

from ggzy.hub.app import MIGRATIONS
from ggzy.hub.models import audit_log
from ggzy.security.audit import AuditLog
from ggzy.store import make_engine
from ggzy.store.migrate import upgrade


@pytest.fixture
def ops_db(hub_db_url: str, tmp_path: Path) -> Iterator[OpsDb]:
    engine = make_engine(hub_db_url)
    upgrade(engine, MIGRATIONS)
    audit = AuditLog(audit_log, b"k" * 32)
    yield OpsDb(engine, audit, Clock(shanghai(2026, 11, 1)))
    engine.dispose()
