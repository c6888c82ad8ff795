"""Fixtures of the node tests: ``hub``, a real hub app on each backend (the hub tests' own fixture),
and ``node_ctx``, a node context on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hubfixtures import hub  # noqa: F401  (registered here for every node test that asks for it)

from ggzy.node.context import NodeContext, build_context
from ggzy.settings import NodeSettings


@pytest.fixture
def node_ctx(node_db_url: str, tmp_path: Path) -> Iterator[NodeContext]:
    """A node's context on each backend, its signing key fixed, default settings otherwise."""
    context = build_context(
        NodeSettings(db_url=node_db_url, key_file=tmp_path / "node.key"), key=b"\x07" * 32
    )
    yield context
    context.engine.dispose()
