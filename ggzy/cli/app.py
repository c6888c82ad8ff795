"""Root Typer application; each command family lives in its own module."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="ggzy",
    help="公共资源交易平台系统数据交换工具 (ggzy-exchange)。",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
