"""The migrations build exactly the tables the code defines (hub 0005 for operations included)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ggzy.hub.app import MIGRATIONS
from ggzy.hub.models import metadata
from ggzy.store import make_engine
from ggzy.store.migrate import upgrade


def test_hub_migrations_match_the_metadata(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, MIGRATIONS)
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()
    assert differences == []
