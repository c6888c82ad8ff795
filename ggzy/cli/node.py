"""``ggzy node``: the provincial front-end exchange node (交换前置系统)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ggzy.cli.app import app
from ggzy.settings import NodeSettings, Settings

node_app = typer.Typer(
    help="省级交换前置系统：接收、脱敏、校验、分通道上传、反馈、对账。", no_args_is_help=True
)
app.add_typer(node_app, name="node")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="节点配置文件 node.toml（其 [node] 段），也可用 GGZY_CONFIG 指定"),
]


def load_node_settings(config: Path | None) -> NodeSettings:
    """Settings from the TOML file given with --config (or GGZY_CONFIG / ./ggzy.toml) and GGZY_NODE__*."""
    import os

    if config is not None:
        if not config.is_file():
            from ggzy.cli.console import err

            err.print(f"[red]E-CONFIG-MISSING[/] 配置文件不存在：{config}")
            raise typer.Exit(2)
        os.environ["GGZY_CONFIG"] = str(config)
    return Settings().node
