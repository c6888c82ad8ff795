"""The ``world`` fixture: one simulated month per backend and test module (see portal_world.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from portal_world import World, build_world, postgres_database


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("portal")
    if request.param == "sqlite":
        yield from build_world(f"sqlite:///{folder / 'hub.db'}", folder / "keys")
        return
    for url in postgres_database():
        yield from build_world(url, folder / "keys")
