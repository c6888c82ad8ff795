"""``ggzy node``: the provincial front-end exchange node (交换前置系统)."""

from __future__ import annotations

from pathlib import Path

import typer

from ggzy.cli.app import app
from ggzy.cli.config import ConfigOption, use_config
from ggzy.settings import NodeSettings, Settings

node_app = typer.Typer(
    help="省级交换前置系统：接收、脱敏、校验、分通道上传、反馈、对账。", no_args_is_help=True
)
app.add_typer(node_app, name="node")

__all__ = ["ConfigOption", "load_node_settings", "node_app"]


def load_node_settings(config: Path | None) -> NodeSettings:
    """Settings from the TOML file given with --config (or GGZY_CONFIG / ./ggzy.toml) and GGZY_NODE__*."""
    use_config(config)
    return Settings().node
