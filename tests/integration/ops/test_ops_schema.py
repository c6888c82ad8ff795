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


def test_migration_0009_goes_down_and_up_again(db_url: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    from ggzy.store.migrate import current_revision

    engine = make_engine(db_url)
    added = {"ops_roster_absences", "ops_notices", "ops_node_versions", "ops_change_requests"}
    try:
        upgrade(engine, MIGRATIONS)
        assert added <= set(inspect(engine).get_table_names())
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["engine"] = engine
        command.downgrade(config, "0008")
        assert current_revision(engine) == "0008"
        assert not added & set(inspect(engine).get_table_names())
        upgrade(engine, MIGRATIONS)
        assert added <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
