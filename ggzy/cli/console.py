"""Shared Rich consoles: results to stdout, progress and messages to stderr."""

from __future__ import annotations

from rich.console import Console

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
