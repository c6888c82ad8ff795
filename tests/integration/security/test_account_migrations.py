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


@pytest.mark.parametrize(
    ("kind", "migrations", "before"),
    [("hub", HUB_MIGRATIONS, "0010"), ("node", NODE_MIGRATIONS, "0008")],
    ids=["hub", "node"],
)
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_second_round_migrates_down_and_up_again(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, kind: str, migrations: Path, before: str
) -> None:
    """Hub 0011 (and 0012) / node 0009 go down and up on both backends; an ID-keyed account keeps
    its key. Starts from a database at head (the session's template) to spare the older migrations."""
    from alembic import command
    from sqlalchemy import text

    from ggzy.store.migrate import _config, current_revision

    if backend == "sqlite":
        url = request.getfixturevalue("sqlite_templates").copy(kind, tmp_path / "db.db")
    else:
        databases = request.getfixturevalue("postgres_databases")
        name = databases.create(kind)
        request.addfinalizer(lambda: databases.drop(name))
        url = databases.url(name)
    engine = make_engine(url)
    try:
        command.downgrade(_config(migrations, engine), before)
        assert current_revision(engine) == before
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO accounts (account, name, role, person_key, status, password_hash, "
                    "password_changed_at, must_change_password, created_at, created_by, updated_at) VALUES "
                    "('a1', 'x', 'auditor', 'id:abc', 'active', 'h', :t, true, :t, 'b', :t)"
                ),
                {"t": "2026-01-01T00:00:00+00:00"},
            )
        upgrade(engine, migrations)
        with engine.connect() as connection:
            kept = connection.execute(text("SELECT id_key, valid_until FROM accounts")).one()
            assert kept.id_key == "id:abc" and kept.valid_until is not None  # the auditor's term begins
            differences = compare_metadata(
                MigrationContext.configure(connection, opts={"compare_type": True}),
                hub_metadata if kind == "hub" else node_metadata,
            )
    finally:
        engine.dispose()
    assert differences == []
