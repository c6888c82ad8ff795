"""Run Alembic migrations from code: services upgrade at start-up and /readyz checks they are current."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData

__all__ = ["current_revision", "head_revision", "is_current", "run_env", "upgrade"]


def _config(location: Path, engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(location))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, location: Path, revision: str = "head") -> None:
    # A database already at head (every start but the first after a release) needs no migration
    # environment: one read of alembic_version instead of loading every revision script.
    if revision == "head" and current_revision(engine) == head_revision(location):
        return
    command.upgrade(_config(location, engine), revision)


@cache
def _head(location: Path) -> str | None:
    return ScriptDirectory.from_config(_config(location)).get_current_head()


def head_revision(location: Path) -> str | None:
    """The newest revision shipped in ``location`` (read once per process: a release does not change
    its migrations under a running process)."""
    return _head(Path(location).resolve())


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_current(engine: Engine, location: Path) -> bool:
    return current_revision(engine) == head_revision(location)


def run_env(metadata: MetaData, default_url: Callable[[], str]) -> None:
    """The body of an Alembic ``env.py``: migrate the engine handed over, or the configured one."""
    from alembic import context

    from ggzy.store.database import make_engine

    engine = context.config.attributes.get("engine")
    if not isinstance(engine, Engine):
        engine = make_engine(default_url())
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
