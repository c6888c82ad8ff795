"""Operator commands of the node: rejects, corrections, reconciliation, status.

``ggzy node rejects``              rejected and held records with the reasons (filters, pages, --summary)
``ggzy node rejects export``       the same as an Excel workbook, one row per finding
``ggzy node corrections import``   a corrected file re-enters validation and the queue
``ggzy node reconcile``            compare a day with the hub, re-send what it lacks, report
``ggzy node status``               a live view of queues, rates, latency, last contact, disk
"""

from __future__ import annotations

import datetime as dt
import getpass
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ggzy.cli.console import err, out
from ggzy.cli.node import ConfigOption, load_node_settings, node_app
from ggzy.security.permissions import Permission, cli_permission

if TYPE_CHECKING:
    from ggzy.node.context import NodeContext
    from ggzy.node.corrections import CorrectionReport, RejectFilter, RejectRow, RepairSummary
    from ggzy.node.reconcile import ReconcileResult

EXIT_OK, EXIT_DIFFERENCES, EXIT_UNUSABLE, EXIT_HUB = 0, 1, 2, 3
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
PAGE_SIZE = 20

rejects_app = typer.Typer(help="被拒收和暂存待更正的记录及原因；export 导出 Excel。", no_args_is_help=False)
node_app.add_typer(rejects_app, name="rejects")
corrections_app = typer.Typer(help="导入更正后的数据：重新校验后作为新版本排队上传。", no_args_is_help=True)
node_app.add_typer(corrections_app, name="corrections")

TableOption = Annotated[str | None, typer.Option("--table", "-t", help="只看一张数据表（表名，如 SECTION）")]
RuleOption = Annotated[
    str | None, typer.Option("--rule", "-r", help="只看命中该规则编码的记录，如 E-FIELD-REQUIRED")
]
FromOption = Annotated[str | None, typer.Option("--from", help="起始日期 YYYY-MM-DD（北京时间，含）")]
ToOption = Annotated[str | None, typer.Option("--to", help="截止日期 YYYY-MM-DD（北京时间，含）")]


def _operator() -> str:
    from ggzy.security.permissions import cli_principal

    principal = cli_principal()
    if principal is not None:
        return principal.account
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in a bare container
        return "operator:-"


def _context(config: Path | None, *, need_key: bool = False) -> NodeContext:
    """The node's store; the signing key only for commands that talk to the hub."""
    from ggzy.node.context import build_context

    settings = load_node_settings(config)
    try:
        return build_context(settings, key=None if need_key else b"")
    except FileNotFoundError as exc:
        err.print(f"[red]E-CONFIG-KEY[/] 找不到签名密钥文件：{exc.filename}（见 key_file 配置）")
        raise typer.Exit(EXIT_UNUSABLE) from exc
    except ValueError as exc:
        err.print(f"[red]E-CONFIG-KEY[/] 签名密钥文件格式错误：{exc}")
        raise typer.Exit(EXIT_UNUSABLE) from exc


def _day(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        err.print(f"[red]E-CLI-DATE[/] {option} 应为 YYYY-MM-DD 格式的日期，收到“{value}”")
        raise typer.Exit(EXIT_UNUSABLE) from None


def _filter(table: str | None, rule: str | None, start: str | None, end: str | None) -> RejectFilter:
    from ggzy.node.corrections import RejectFilter

    first, last = _day(start, "--from"), _day(end, "--to")
    if first and last and first > last:
        err.print(f"[red]E-CLI-DATE[/] --from {first} 晚于 --to {last}")
        raise typer.Exit(EXIT_UNUSABLE)
    return RejectFilter(table=table, rule=rule, start=first, end=last)


def _local(moment: dt.datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 3600:
        return f"{seconds / 60:.1f} 分钟"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} 小时"
    return f"{seconds / 86400:.1f} 天"


# --- rejects ---


def _rejects_table(rows: list[RejectRow], page: int, pages: int, total: int) -> Table:
    table = Table(
        title=f"被拒收与暂存的记录（第 {page}/{pages} 页，共 {total} 条，最新在前）", title_justify="left"
    )
    for column in ("时间（北京时间）", "状态", "数据表", "记录标识", "规则编码", "说明"):
        table.add_column(column, overflow="fold")
    for row in rows:
        messages = "\n".join(
            f"{f.get('message_zh', '')}" + (f"（{f['field']}）" if f.get("field") else "")
            for f in row.findings
        )
        table.add_row(
            _local(row.at), row.state_zh, row.table, row.key, "\n".join(row.codes), messages or "（无说明）"
        )
    return table


def _summary_table(summary: RepairSummary) -> Table:
    from ggzy.node.corrections import REPAIR_TARGET

    table = Table(title="本地修复率 (repair rate, Art. 11)", title_justify="left", show_header=False)
    table.add_column("项目")
    table.add_column("值", justify="right")
    table.add_row("被国家平台拒收的记录（按记录标识）rejected keys", str(summary.rejected_keys))
    table.add_row("已修复（其后有被接收的版本）repaired keys", str(summary.repaired_keys))
    if summary.rate is None:
        rate = "—（无拒收记录）"
    else:
        verdict = "[green]达标[/]" if summary.meets_target else "[red]未达标[/]"
        rate = f"{summary.rate:.1%}（目标 ≥ {REPAIR_TARGET:.0%}）{verdict}"
    table.add_row("修复率 rate", rate)
    table.add_row("平均修复时长 average time to repair", _duration(summary.average_seconds))
    table.add_row("待修复 open", str(len(summary.open_keys)))
    return table


@rejects_app.callback(invoke_without_command=True)
@cli_permission(Permission.DATA_READ)
def rejects(
    context: typer.Context,
    config: ConfigOption = None,
    table: TableOption = None,
    rule: RuleOption = None,
    start: FromOption = None,
    end: ToOption = None,
    page: Annotated[int, typer.Option("--page", "-p", min=1, help="页码（每页20条）")] = 1,
    summary: Annotated[
        bool, typer.Option("--summary", help="显示本地修复率：拒收、已修复、修复率、平均修复时长")
    ] = False,
) -> None:
    """列出被国家平台拒收和预校验暂存的记录及原因（最新在前，可按表、规则、日期筛选）。

    示例：ggzy node rejects --table SECTION --rule E-FIELD-REQUIRED --from 2026-11-01
    """
    if context.invoked_subcommand is not None:
        return
    from ggzy.node.corrections import list_rejects, repair_summary

    flt = _filter(table, rule, start, end)
    ctx = _context(config)
    try:
        if summary:
            out.print(_summary_table(repair_summary(ctx.engine, flt.start, flt.end)))
            return
        rows, total = list_rejects(ctx.engine, flt, page, PAGE_SIZE)
    finally:
        ctx.engine.dispose()
    if total == 0:
        out.print("没有符合条件的拒收或暂存记录。")
        return
    pages = max(1, -(-total // PAGE_SIZE))
    if not rows:
        err.print(f"[red]E-CLI-PAGE[/] 只有 {pages} 页，没有第 {page} 页")
        raise typer.Exit(EXIT_UNUSABLE)
    out.print(_rejects_table(rows, page, pages, total))
    if page < pages:
        out.print(f"下一页：--page {page + 1}")


@rejects_app.command("export")
@cli_permission(Permission.REPORTS_EXPORT)
def rejects_export(
    xlsx: Annotated[Path, typer.Option("--xlsx", help="导出的 Excel 文件（每条问题一行，可筛选）")],
    config: ConfigOption = None,
    table: TableOption = None,
    rule: RuleOption = None,
    start: FromOption = None,
    end: ToOption = None,
) -> None:
    """把拒收和暂存记录的问题导出为 Excel 工作簿（冻结表头、自动筛选）。"""
    from ggzy.node.corrections import export_rejects_xlsx

    flt = _filter(table, rule, start, end)
    ctx = _context(config)
    try:
        written = export_rejects_xlsx(ctx.engine, flt, xlsx, ctx.spec)
    finally:
        ctx.engine.dispose()
    out.print(f"已导出 {written} 条问题到 {xlsx}")


# --- corrections ---


def _print_correction(report: CorrectionReport) -> None:
    out.print(
        f"读取 {report.read} 条：排队上传 {len(report.queued)} 条，仍有错误暂存 {len(report.held)} 条，"
        f"无待更正记录 {len(report.unknown)} 条，无法读取 {len(report.unreadable)} 条。"
    )
    problems = [*report.unknown, *report.unreadable]
    if not problems:
        return
    table = Table(title="未排队的记录", title_justify="left")
    for column in ("行", "数据表", "记录标识", "原因"):
        table.add_column(column, overflow="fold")
    for problem in problems[:200]:
        table.add_row(str(problem.line), problem.table or "—", problem.key or "—", problem.reason_zh)
    out.print(table)
    if len(problems) > 200:
        out.print(f"……另有 {len(problems) - 200} 条未列出")


@corrections_app.command("import")
@cli_permission(Permission.DATA_CORRECT)
def corrections_import(
    file: Annotated[Path, typer.Argument(help="更正后的数据文件：.jsonl/.csv/.xlsx/.xml（UTF-8 或 GBK）")],
    config: ConfigOption = None,
) -> None:
    """导入更正后的数据：与被拒收/暂存的同一记录匹配，重新校验，作为新版本排队上传。"""
    from ggzy.interchange import InputError
    from ggzy.node.corrections import DiskFull, import_corrections
    from ggzy.node.disk import DiskGuard

    if not file.is_file():
        err.print(f"[red]E-INPUT-MISSING[/] 文件不存在：{file}")
        raise typer.Exit(EXIT_UNUSABLE)
    ctx = _context(config)
    guard = DiskGuard(ctx)
    try:
        report = import_corrections(ctx, file, account=_operator(), disk_guard=guard)
    except InputError as exc:
        err.print(f"[red]{exc.code}[/] {file}: {exc}")
        raise typer.Exit(EXIT_UNUSABLE) from exc
    except DiskFull as exc:
        err.print(f"[red]{exc.code}[/] {guard.allows_intake()[1]}")
        raise typer.Exit(EXIT_UNUSABLE) from exc
    finally:
        ctx.engine.dispose()
    _print_correction(report)
    if report.unknown or report.unreadable:
        raise typer.Exit(EXIT_DIFFERENCES)


# --- reconcile ---


def _reconcile_table(result: ReconcileResult) -> Table:
    table = Table(title=f"{result.day.isoformat()} 对账结果（北京时间获取日）", title_justify="left")
    for column in (
        "表",
        "本地",
        "国家平台",
        "状态",
        "补传数",
        "国家平台缺少",
        "本地未知",
        "版本不一致",
        "内容不一致",
    ):
        table.add_column(column, justify="left" if column in ("表", "状态") else "right")
    for row in result.tables:
        status = "[green]一致[/]" if row.consistent else "[red]不一致[/]"
        table.add_row(
            row.table,
            str(row.local_count),
            str(row.hub_count),
            status,
            str(row.resent),
            str(len(row.missing_at_hub)),
            str(len(row.unknown_locally)),
            str(len(row.hub_behind) + len(row.hub_ahead)),
            str(len(row.content_differs)),
        )
    return table


@node_app.command("reconcile")
@cli_permission(Permission.DATA_CORRECT)
def reconcile(
    date: Annotated[str, typer.Option("--date", "-d", help="对账日期 YYYY-MM-DD（北京时间，数据获取日）")],
    config: ConfigOption = None,
    table: TableOption = None,
) -> None:
    """与国家平台对账：比较各表记录数和摘要，找出不一致的记录，补传国家平台缺少的数据并报告。"""
    from ggzy.node.reconcile import reconcile_day
    from ggzy.protocol import HubRefused, HubUnavailable

    day = _day(date, "--date")
    assert day is not None
    ctx = _context(config, need_key=True)
    client = ctx.hub_client()
    try:
        result = reconcile_day(ctx, client, day, table, account=_operator())
    except HubUnavailable as exc:
        err.print(f"[red]E-NODE-HUB-UNAVAILABLE[/] 无法连接国家平台：{exc}")
        raise typer.Exit(EXIT_HUB) from exc
    except HubRefused as exc:
        err.print(f"[red]{exc.code}[/] 国家平台拒绝：{exc.message_zh}")
        raise typer.Exit(EXIT_HUB) from exc
    finally:
        client.close()
        ctx.engine.dispose()
    if not result.tables:
        out.print(f"{day.isoformat()} 本地和国家平台都没有数据。")
        return
    out.print(_reconcile_table(result))
    if result.consistent:
        out.print("[green]全部一致。[/]")
        return
    out.print(
        f"[yellow]发现不一致，已补传 {result.resent} 条并向国家平台报告；补传数据上传后可再次对账确认。[/]"
    )
    raise typer.Exit(EXIT_DIFFERENCES)


# --- status ---


@node_app.command("status")
@cli_permission(Permission.OPS_READ)
def status(
    config: ConfigOption = None,
    once: Annotated[bool, typer.Option("--once", help="只输出一次当前状态（不刷新）")] = False,
) -> None:
    """实时查看节点状态：各通道队列、接收速率、时延、最近连通时间、磁盘、未处理告警（Ctrl-C 退出）。

    没有终端时（输出到管道或文件）只输出一次。示例：ggzy node status --config node.toml
    """
    from rich.live import Live

    from ggzy.node.status import render, snapshot

    ctx = _context(config)
    try:
        if once or not out.is_terminal:  # piped, cron, systemd: no screen to refresh, print once
            out.print(render(snapshot(ctx)))
            return
        with Live(render(snapshot(ctx)), console=out, refresh_per_second=1, screen=False) as live:
            while True:
                time.sleep(1.0)
                live.update(render(snapshot(ctx)))
    except KeyboardInterrupt:
        pass
    finally:
        ctx.engine.dispose()
