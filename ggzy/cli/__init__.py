"""The ``ggzy`` command: each command family registers itself on the root app when imported."""

from ggzy.cli import (  # noqa: F401  (registration by import)
    audit,
    backup,
    demo,
    hub,
    hub_stats,
    node,
    node_intake,
    node_ops,
    node_run,
    simulate,
    spec,
    validate,
)
from ggzy.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
