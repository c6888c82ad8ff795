"""Run Alembic migrations from code: services upgrade at start-up and /readyz checks they are current."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

__all__ = ["current_revision", "head_revision", "is_current", "upgrade"]


def _config(location: Path, engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(location))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, location: Path, revision: str = "head") -> None:
    command.upgrade(_config(location, engine), revision)


def head_revision(location: Path) -> str | None:
    return ScriptDirectory.from_config(_config(location)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_current(engine: Engine, location: Path) -> bool:
    return current_revision(engine) == head_revision(location)
