"""``ggzy validate``: check files of records before they are uploaded."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ggzy.cli.app import app
from ggzy.cli.console import err, out
from ggzy.interchange import InputError, SourceItem, read_path
from ggzy.security.permissions import OFFLINE_EXEMPTION, cli_exempt
from ggzy.settings import get_settings
from ggzy.validation import DealCodeCheck, RecordVerdict, ValidationOptions, Validator
from ggzy.validation.report import Report, write_xlsx

EXIT_OK, EXIT_FINDINGS, EXIT_UNUSABLE = 0, 1, 2


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    XLSX = "xlsx"


SUFFIXES = (".jsonl", ".json", ".ndjson", ".csv", ".xlsx", ".xml")


def _expand(paths: list[Path]) -> list[Path]:
    """Files as given; a directory stands for the data files directly in it, by name (cross-record
    rules read records in order, so the order is the same on every run)."""
    files: list[Path] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        found = sorted(
            p
            for p in path.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUFFIXES
        )
        if not found:
            err.print(f"[red]E-INPUT-EMPTY[/] 目录 {path} 中没有数据文件（{' '.join(SUFFIXES)}）")
            raise typer.Exit(EXIT_UNUSABLE)
        err.print(f"目录 {path}：{len(found)} 个数据文件，按文件名顺序校验")
        files.extend(found)
    return files


def _read_all(paths: list[Path], table: str | None) -> list[SourceItem]:
    items: list[SourceItem] = []
    for path in _expand(paths):
        if not path.is_file():
            err.print(f"[red]E-INPUT-MISSING[/] 文件不存在：{path} (no such file)")
            raise typer.Exit(EXIT_UNUSABLE)
        try:
            items.extend(read_path(path, table=table))
        except InputError as exc:
            err.print(f"[red]{exc.code}[/] {path}: {exc}")
            raise typer.Exit(EXIT_UNUSABLE) from exc
    return items


def _render_table(report: Report) -> None:
    rate_style = "green" if report.pass_rate >= 0.95 else "red"
    out.print(
        f"\n[bold]校验结果[/]：共 {report.records} 条记录，通过 {report.passed} 条，未通过 {report.failed} 条，"
        f"合格率 [{rate_style}]{report.pass_rate:.2%}[/]（目标 ≥ 95%）"
    )
    tables = Table(title="按数据表 (per table)", title_justify="left")
    for column in ("数据表", "记录数", "通过", "错误", "警告", "合格率"):
        tables.add_column(column, justify="right" if column != "数据表" else "left")
    for name, tally in sorted(report.tables.items()):
        rate = tally.passed / tally.records if tally.records else 1.0
        tables.add_row(
            name, str(tally.records), str(tally.passed), str(tally.errors), str(tally.warnings), f"{rate:.1%}"
        )
    out.print(tables)
    if not report.rules:
        out.print("[green]未发现问题。[/] (no findings)")
        return
    rules = Table(title="主要问题 (top problems)", title_justify="left", show_lines=False)
    rules.add_column("规则代码", no_wrap=True)
    for column in ("级别", "规则", "次数", "示例"):
        rules.add_column(column, overflow="fold")
    for rule in report.top_rules(15):
        example = rule.examples[0]
        where = f"{Path(example.source).name}:{example.line} " if example.source else f"#{example.line} "
        level = "[red]错误[/]" if rule.severity == "error" else "[yellow]警告[/]"
        rules.add_row(rule.code, level, rule.title_zh, str(rule.count), where + example.message_zh)
    out.print(rules)


@app.command("validate")
@cli_exempt(OFFLINE_EXEMPTION)
def validate_command(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="要校验的文件或目录（目录：其中全部 .jsonl .csv .xlsx .xml 文件，按文件名顺序）；UTF-8 或 GBK",
            show_default=False,
        ),
    ],
    output_format: Annotated[
        OutputFormat,
        typer.Option("--format", "-f", help="输出格式：table 中文报告 / json 逐条 / xlsx 工作簿"),
    ] = OutputFormat.TABLE,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="xlsx 输出文件（默认 validation-report.xlsx）")
    ] = None,
    table: Annotated[
        str | None, typer.Option("--table", help="CSV 文件的数据表（表名或 DATA_NO），文件名可推断时不必给")
    ] = None,
    deal_code_check: Annotated[
        DealCodeCheck | None,
        typer.Option("--deal-code-check", help="统一交易标识码校验码：strict / warn / off"),
    ] = None,
    standalone: Annotated[
        bool,
        typer.Option(
            "--standalone", help="不做跨记录检查（上级记录、环节顺序、重复），适合只含部分数据表的文件"
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="不显示进度条")] = False,
) -> None:
    """校验数据文件是否符合《公共资源交易平台系统数据规范》。

    逐条报告所有问题（缺项漏项、类型长度、代码集、统一社会信用代码、统一交易标识码、时间顺序、
    上级记录、重复上传、未脱敏个人信息……），并统计合格率。

    退出码：0 没有错误；1 有记录存在错误；2 输入无法使用。

    示例 (examples):

      ggzy validate uploads/2026-11-27.jsonl

      ggzy validate uploads/

      ggzy validate 502-SECTION.csv --format xlsx -o 校验报告.xlsx

      ggzy validate data.jsonl --format json | jq 'select(.ok == false)'
    """
    settings = get_settings().validation
    options = settings.options()
    if deal_code_check is not None or standalone:
        options = ValidationOptions(
            deal_code_check=deal_code_check or options.deal_code_check,
            unit_suspect_min_yuan=options.unit_suspect_min_yuan,
            unit_suspect_max_wan=options.unit_suspect_max_wan,
            check_personal=options.check_personal,
            cross_record=not standalone,
        )
    items = _read_all(files, table)
    validator = Validator(options=options)
    report = Report()
    kept: list[RecordVerdict] = []
    progress = Progress(
        TextColumn("[bold]校验中[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=quiet or len(items) < 2000,
        transient=True,
    )
    with progress:
        task = progress.add_task("validate", total=len(items))
        for n, verdict in enumerate(validator.validate_items(items), 1):
            report.add(verdict)
            if output_format is OutputFormat.JSON:
                sys.stdout.write(json.dumps(verdict.to_dict(), ensure_ascii=False) + "\n")
            elif output_format is OutputFormat.XLSX and verdict.findings:
                kept.append(verdict)
            if n % 500 == 0:
                progress.update(task, completed=n)
        progress.update(task, completed=len(items))
    if output_format is OutputFormat.TABLE:
        _render_table(report)
    elif output_format is OutputFormat.XLSX:
        target = output or Path("validation-report.xlsx")
        write_xlsx(target, report, kept)
        err.print(f"已写入 {target}：{report.records} 条记录，合格率 {report.pass_rate:.2%}")
    raise typer.Exit(EXIT_OK if report.failed == 0 else EXIT_FINDINGS)
