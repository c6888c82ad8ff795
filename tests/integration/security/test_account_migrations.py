"""The migrations build exactly the tables the models declare (hub and node, both backends)."""

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
    ("migrations", "metadata"),
    [(HUB_MIGRATIONS, hub_metadata), (NODE_MIGRATIONS, node_metadata)],
    ids=["hub", "node"],
)
def test_migrations_match_models(db_url: str, migrations: Path, metadata: MetaData) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, migrations)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []
