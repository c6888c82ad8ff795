"""Alembic environment for the hub database (see ggzy.store.migrate.run_env)."""

from __future__ import annotations

from ggzy.hub.models import metadata
from ggzy.settings import get_settings
from ggzy.store.migrate import run_env

run_env(metadata, lambda: get_settings().hub.db_url)
