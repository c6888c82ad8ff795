"""Alembic environment for the node's local store (see ggzy.store.migrate.run_env)."""

from __future__ import annotations

from ggzy.node.models import metadata
from ggzy.settings import get_settings
from ggzy.store.migrate import run_env

run_env(metadata, lambda: get_settings().node.db_url)
