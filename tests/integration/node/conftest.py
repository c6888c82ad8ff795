"""Fixtures of the node tests: ``hub``, a real hub app on each backend (the hub tests' own fixture)."""

from __future__ import annotations

from hubfixtures import hub  # noqa: F401  (registered here for every node test that asks for it)
