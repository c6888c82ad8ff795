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


@pytest.mark.parametrize("location", [HUB_MIGRATIONS, NODE_MIGRATIONS], ids=["hub", "node"])
def test_a_database_behind_head_is_brought_to_head(db_url: str, location: Path) -> None:
    """``upgrade`` skips Alembic for a database at head; one revision behind it must still migrate."""
    from alembic.script import ScriptDirectory

    from ggzy.store.migrate import current_revision, head_revision

    revisions = [script.revision for script in ScriptDirectory(str(location)).walk_revisions()]
    assert len(revisions) > 1 and revisions[0] == head_revision(location)
    engine = make_engine(db_url)
    try:
        upgrade(engine, location, revisions[1])
        assert current_revision(engine) == revisions[1]
        upgrade(engine, location)
        assert current_revision(engine) == revisions[0]
        upgrade(engine, location)  # at head: nothing to do, nothing broken
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), _metadata_of(location))
    finally:
        engine.dispose()
    assert differences == []


def _metadata_of(location: Path) -> MetaData:
    return hub_metadata if location == HUB_MIGRATIONS else node_metadata
