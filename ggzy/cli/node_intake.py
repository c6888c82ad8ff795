"""``ggzy node intake FILE…``: a one-shot import of files into the node's outbox queue."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ggzy.cli.console import err, out
from ggzy.cli.node import ConfigOption, load_node_settings, node_app
from ggzy.security.permissions import Permission, cli_permission

if TYPE_CHECKING:  # the node's modules load when a command runs, not for every ggzy start
    from ggzy.node.context import NodeContext
    from ggzy.node.intake import IntakeSummary

EXIT_OK, EXIT_UNUSABLE = 0, 2


class CategoryOption(StrEnum):
    REALTIME = "realtime"
    HISTORY = "history"
    TEST = "test"


def _context(config: Path | None) -> NodeContext:
    from ggzy.node.context import build_context, read_node_key

    settings = load_node_settings(config)
    # Intake never talks to the hub: a node that has no key yet (not registered) can still fill its queue.
    key = read_node_key(settings.key_file) if settings.key_file.is_file() else b""
    return build_context(settings, key=key)


def _taken(ctx: NodeContext, digest: str) -> bool:
    from ggzy.node.intake.dropdir import file_state_name
    from ggzy.node.models import state as node_state

    with ctx.engine.connect() as connection:
        found = connection.execute(
            node_state.select().where(node_state.c.name == file_state_name(digest))
        ).first()
    return found is not None


def _render(summary: IntakeSummary) -> None:
    from ggzy.node.intake import Outcome

    table = Table(title="按数据表 (per table)", title_justify="left")
    for column in ("数据表", "接收入队", "暂存待更正", "拒收"):
        table.add_column(column, justify="left" if column == "数据表" else "right")
    for name, counts in sorted(summary.by_table.items()):
        table.add_row(
            name, str(counts[Outcome.ACCEPTED]), str(counts[Outcome.HELD]), str(counts[Outcome.REFUSED])
        )
    out.print(table)
    if summary.refused_codes:
        refused = Table(title="拒收原因 (refusals)", title_justify="left")
        refused.add_column("代码", no_wrap=True)
        refused.add_column("次数", justify="right")
        for code, n in summary.refused_codes.most_common():
            refused.add_row(code, str(n))
        out.print(refused)
    if summary.redacted:
        redacted = Table(title="脱敏字段 (redacted fields)", title_justify="left")
        redacted.add_column("数据表.字段")
        redacted.add_column("记录数", justify="right")
        for name, n in sorted(summary.redacted.items()):
            redacted.add_row(name, str(n))
        out.print(redacted)
    out.print(f"[bold]导入结果[/]：{summary.line_zh()}")


@node_app.command("intake")
@cli_permission(Permission.DATA_CORRECT)
def intake_command(
    files: Annotated[
        list[Path],
        typer.Argument(help="要导入的文件：.jsonl .json .csv .xlsx .xml（UTF-8 或 GBK）", show_default=False),
    ],
    config: ConfigOption = None,
    category: Annotated[
        CategoryOption | None,
        typer.Option("--category", help="未标类别的记录按此类别入队（默认按发布时间规则判断）"),
    ] = None,
    again: Annotated[bool, typer.Option("--again", help="再次导入已导入过的文件（按 SHA-256 判断）")] = False,
) -> None:
    """把文件中的记录脱敏、预校验后写入本地发件箱队列（每个文件一个事务）。

    示例：ggzy node intake 2026-11-27.jsonl --config node.toml
    """
    from ggzy.interchange import InputError, read_path
    from ggzy.node.intake import Intake, IntakeSummary
    from ggzy.node.intake.dropdir import file_state_name

    ctx = _context(config)
    intake = Intake(ctx)
    summary = IntakeSummary()
    unusable = 0
    defaults = {"category": category.value} if category else None
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("导入文件", total=len(files))
        for path in files:
            progress.update(task, description=f"导入 {path.name}")
            if not path.is_file():
                err.print(f"[red]E-INPUT-MISSING[/] 文件不存在：{path} (no such file)")
                unusable += 1
                progress.advance(task)
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if not again and _taken(ctx, digest):
                err.print(f"[yellow]已导入过，跳过[/]：{path}（用 --again 再次导入）")
                progress.advance(task)
                continue
            try:
                items = list(read_path(path, defaults=defaults))
            except InputError as exc:
                err.print(f"[red]{exc.code}[/] {path}: {exc}")
                unusable += 1
                progress.advance(task)
                continue
            marker = json.dumps(
                {"file": str(path), "at": dt.datetime.now(dt.UTC).isoformat()}, ensure_ascii=False
            )
            results = intake.accept(items, "file", str(path), state_updates={file_state_name(digest): marker})
            summary.add(results)
            progress.advance(task)
    _render(summary)
    ctx.engine.dispose()
    raise typer.Exit(EXIT_UNUSABLE if unusable else EXIT_OK)
