"""The ``ggzy`` command: each command family registers itself on the root app when imported."""

import ggzy.cli.ops  # noqa: F401  (registration by import: ggzy ops, ggzy drill, ggzy node doctor)
from ggzy.cli import (  # noqa: F401  (registration by import)
    account,
    admin,
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
from ggzy.cli.config import add_config_option
from ggzy.cli.session import install as _install_guard

_install_guard()  # every @cli_permission command checks the signed-in person
add_config_option(app)  # every command takes --config FILE, the same way


def main() -> None:
    app()


__all__ = ["app", "main"]
