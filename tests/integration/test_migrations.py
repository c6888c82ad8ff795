"""The Alembic migrations build exactly the schema the code declares, on SQLite and PostgreSQL.

A table, column, index or type added to ``models.py`` without a migration (or the reverse) makes
``compare_metadata`` report a difference, and this test fails with the list.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData

from ggzy.hub.app import MIGRATIONS as HUB_MIGRATIONS
from ggzy.hub.models import metadata as hub_metadata
from ggzy.node.context import MIGRATIONS as NODE_MIGRATIONS
from ggzy.node.models import metadata as node_metadata
from ggzy.store import make_engine
from ggzy.store.migrate import upgrade


@pytest.mark.parametrize(
    ("side", "metadata", "location"),
    [("hub", hub_metadata, HUB_MIGRATIONS), ("node", node_metadata, NODE_MIGRATIONS)],
)
def test_migrations_match_the_declared_schema(
    db_url: str, side: str, metadata: MetaData, location: Path
) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, location)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == [], f"{side}: models.py and the migrations differ: {differences}"
