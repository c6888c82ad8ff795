"""Root Typer application; each command family lives in its own module."""

from __future__ import annotations

import typer

# Shown under ``ggzy --help``: the first commands a newcomer runs, in the order the README runs them.
EXAMPLES = """[bold]示例[/bold]

  数据规范的数据表      ggzy spec list
  校验文件或目录        ggzy validate 数据.jsonl   ggzy validate 数据目录/
  中文校验报告          ggzy validate 数据.jsonl --format xlsx -o 报告.xlsx
  建立国家平台数据库    ggzy hub migrate --config hub.toml
  首批管理员和审计员    ggzy admin bootstrap --admin … --auditor … -c hub.toml
  登录（动态口令）      ggzy login -u zhangsan --config hub.toml
  节点状态              ggzy node status --config node.toml
  查审计日志            ggzy audit search --action 'auth.sign-in*'

每个命令都接受 --config 配置文件（TOML：\\[hub] 或 \\[node] 段），同 GGZY_CONFIG。
各命令所需角色见 docs/roles.md；ggzy 命令 --help 显示该命令的说明和示例。"""

app = typer.Typer(
    name="ggzy",
    help="公共资源交易平台系统数据交换工具 (ggzy-exchange)。",
    epilog=EXAMPLES,
    no_args_is_help=True,
    rich_markup_mode="rich",
)
