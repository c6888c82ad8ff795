"""Alembic environment for the hub database; the engine is handed over by ggzy.store.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from ggzy.hub.models import metadata

config = context.config


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if not isinstance(engine, Engine):
        from ggzy.settings import get_settings
        from ggzy.store import make_engine

        engine = make_engine(get_settings().hub.db_url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            compare_type=True,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
