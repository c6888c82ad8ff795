"""The ``ggzy`` command: each command family registers itself on the root app when imported."""

import ggzy.cli.ops  # noqa: F401  (registration by import: ggzy ops, ggzy drill, ggzy node doctor)
from ggzy.cli import demo, hub, hub_stats, node, node_intake, node_ops, node_run, simulate, spec, validate  # noqa: F401  (registration by import)
from ggzy.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
