"""The ``ggzy`` command."""

from ggzy.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
