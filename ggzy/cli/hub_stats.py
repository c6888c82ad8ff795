"""``ggzy hub stats``: each province's pass, timely and repair rates against the regulation's targets."""

from __future__ import annotations

import datetime as dt
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ggzy.cli.console import err, out
from ggzy.cli.hub import DbOption, _engine, _settings, hub_app
from ggzy.security.permissions import Permission, cli_permission

if TYPE_CHECKING:
    from ggzy.hub.stats import DayRow, Measures, NationalOverview, ProvinceSummary, Rate, RuleRow, TableRow

EXIT_OK, EXIT_UNUSABLE = 0, 2
NO_DATA = "—"


class StatsFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    XLSX = "xlsx"


def _parse_day(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        err.print(f"[red]E-REQ-RANGE[/] {option} 应为 YYYY-MM-DD 格式的日期，收到“{value}”")
        raise typer.Exit(EXIT_UNUSABLE) from None


def _period(start_text: str | None, end_text: str | None) -> tuple[dt.date, dt.date]:
    """The period asked for; by default from the first of the current (Shanghai) month to today."""
    from ggzy.hub.ingest import SHANGHAI
    from ggzy.hub.stats import StatsRangeError, check_range

    end = _parse_day(end_text, "--to") or dt.datetime.now(SHANGHAI).date()
    start = _parse_day(start_text, "--from") or end.replace(day=1)
    try:
        check_range(start, end)
    except StatsRangeError as exc:
        err.print(f"[red]{exc.code}[/] {exc.message_zh}")
        raise typer.Exit(EXIT_UNUSABLE) from exc
    return start, end


def _check_province(province: str) -> str:
    from ggzy.spec import load_regions

    if province not in load_regions().provinces():
        err.print(f"[red]E-STATS-PROVINCE[/] 未知的省份代码“{province}”（应为 GB/T 2260 前两位，如 35）")
        raise typer.Exit(EXIT_UNUSABLE)
    return province


# --- terminal -------------------------------------------------------------------------------------


def _own_province(chosen: str | None) -> str | None:
    """A province's staff see their own province only (Art. 8)."""
    from ggzy.security.permissions import cli_principal

    principal = cli_principal()
    if principal is None or principal.province is None:
        return chosen
    if chosen is not None and chosen != principal.province:
        err.print(f"[red]E-AUTH-SCOPE[/] 本账号只能查看省份 {principal.province} 的数据")
        raise typer.Exit(77)
    return principal.province


def _percent(value: float | None) -> str:
    return NO_DATA if value is None else f"{value:.2%}"


def _rate_cell(rate: Rate) -> str:
    if rate.met is None:
        return NO_DATA
    return f"[{'green' if rate.met else 'red'}]{rate.value:.2%}[/]"


def _met_cell(rate: Rate) -> str:
    return {None: "无数据", True: "[green]达标[/]", False: "[red]未达标[/]"}[rate.met]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return NO_DATA
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}小时{minutes:02d}分{secs:02d}秒" if hours else f"{minutes}分{secs:02d}秒"


def _rates_table(title: str, measures: Measures) -> Table:
    from ggzy.hub.stats import RATE_LABELS_ZH

    table = Table(title=title, title_justify="left")
    for column in ("指标", "实际值", "目标", "是否达标", "计算"):
        table.add_column(column, justify="left" if column in ("指标", "计算") else "right")
    basis = {"pass": "合格/接收", "timely": "及时/应及时", "repair": "已修复/需修复"}
    for name, rate in measures.rates.items():
        table.add_row(
            RATE_LABELS_ZH[name],
            _rate_cell(rate),
            f"≥ {rate.target:.0%}",
            _met_cell(rate),
            f"{basis[name]} {rate.numerator}/{rate.denominator}",
        )
    table.add_row("平均修复时长", _duration(measures.average_repair_seconds), "", "", "")
    return table


def _counts_line(measures: Measures) -> str:
    t = measures.totals
    return (
        f"接收 {t.received} 条，合格 {t.accepted} 条，不合格 {t.rejected} 条（其中重复上传 {t.duplicates} 条），"
        f"需修复主键 {t.rejected_keys} 个，已修复 {t.repaired} 个"
    )


def _publication_line(tables: list[TableRow]) -> str:
    """Realtime records without a publication time (Art. 9): never left out of the timely rate."""
    from ggzy.hub.stats import publication_missing

    missing = publication_missing(tables)
    return (
        f"缺少发布时间 {missing['untimed']} 条（实时交易信息拒收 {missing['refused']} 条，"
        f"其他信息计为不及时 {missing['counted_late']} 条）"
    )


def _tables_table(rows: list[TableRow]) -> Table:
    table = Table(title="按数据表 (per table)", title_justify="left")
    for column in ("数据表", "名称", "接收", "合格", "不合格", "重复", "合格率", "及时率", "修复率"):
        table.add_column(column, justify="left" if column in ("数据表", "名称") else "right")
    for row in rows:
        t, m = row.measures.totals, row.measures
        table.add_row(
            row.table,
            row.name_zh or "（未知数据表）",
            str(t.received),
            str(t.accepted),
            str(t.rejected),
            str(t.duplicates),
            _rate_cell(m.pass_rate),
            _rate_cell(m.timely_rate),
            _rate_cell(m.repair_rate),
        )
    return table


def _rules_table(rows: list[RuleRow]) -> Table:
    table = Table(title="主要问题规则 (top rules)", title_justify="left")
    table.add_column("规则代码", no_wrap=True)
    table.add_column("级别")
    table.add_column("规则")
    table.add_column("次数", justify="right")
    for row in rows:
        level = "[red]错误[/]" if row.severity == "error" else "[yellow]警告[/]"
        table.add_row(row.code, level, row.title_zh or "（已停用规则）", str(row.count))
    return table


def _render_province(console: Console, summary: ProvinceSummary) -> None:
    scope = f"，数据表 {summary.table}" if summary.table else ""
    console.print(
        f"\n[bold]{summary.name_zh or ''}（{summary.province}）数据质量统计[/]  "
        f"{summary.start} 至 {summary.end}（北京时间）{scope}"
    )
    console.print(_counts_line(summary.overall))
    console.print(_publication_line(summary.tables))
    console.print(_rates_table("考核指标 (rates against targets)", summary.overall))
    if not summary.tables:
        console.print("统计期间内没有收到生产数据。(no production data in the period)")
        return
    console.print(_tables_table(summary.tables))
    if summary.rules:
        console.print(_rules_table(summary.rules))


def _render_national(console: Console, overview: NationalOverview) -> None:
    scope = f"，数据表 {overview.table}" if overview.table else ""
    console.print(f"\n[bold]全国数据质量统计[/]  {overview.start} 至 {overview.end}（北京时间）{scope}")
    table = Table(title="各省汇总 (per province)", title_justify="left")
    for column in ("省份", "名称", "接收", "合格", "不合格", "合格率", "及时率", "修复率", "平均修复"):
        table.add_column(column, justify="left" if column in ("省份", "名称") else "right")

    def add(code: str, name: str, measures: Measures, *, bold: bool = False) -> None:
        t = measures.totals
        cells = [
            code,
            name,
            str(t.received),
            str(t.accepted),
            str(t.rejected),
            _rate_cell(measures.pass_rate),
            _rate_cell(measures.timely_rate),
            _rate_cell(measures.repair_rate),
            _duration(measures.average_repair_seconds),
        ]
        table.add_row(*cells, style="bold" if bold else None)

    for row in overview.provinces:
        add(row.province, row.name_zh or "", row.measures)
    table.add_section()
    add("全国", "合计", overview.total, bold=True)
    console.print(table)
    console.print(_publication_line(overview.tables))
    console.print(_rates_table("全国考核指标 (country rates against targets)", overview.total))
    if overview.rules:
        console.print(_rules_table(overview.rules))


# --- workbook -------------------------------------------------------------------------------------

_MEASURE_HEADERS = [
    "接收 received",
    "合格 accepted",
    "不合格 rejected",
    "重复 duplicates",
    "应及时 timely_due",
    "及时 timely_ok",
    "需修复主键 rejected_keys",
    "已修复 repaired",
    "数据合格率 pass rate",
    "及时报送率 timely rate",
    "修复成功率 repair rate",
    "平均修复秒数 avg repair s",
    "缺少发布时间 untimed",
]
_PERCENT_COLUMNS = (8, 9, 10)  # 0-based positions within _MEASURE_HEADERS


def _measure_values(measures: Measures) -> list[Any]:
    t = measures.totals
    average = measures.average_repair_seconds
    return [
        t.received,
        t.accepted,
        t.rejected,
        t.duplicates,
        t.timely_due,
        t.timely_ok,
        t.rejected_keys,
        t.repaired,
        measures.pass_rate.value,
        measures.timely_rate.value,
        measures.repair_rate.value,
        None if average is None else round(average, 1),
        t.untimed,
    ]


def _sheet(book: Any, title: str, headers: list[str], rows: list[list[Any]], percent: set[int]) -> None:
    """A sheet an official can sort and filter: bold frozen header, autofilter, percentages as such."""
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    from ggzy.interchange.spreadsheet import safe_row

    sheet = book.create_sheet(title)
    sheet.append(headers)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
    for values in rows:
        sheet.append(safe_row(values))  # table names and filters come from callers: never a formula
        for column in percent:
            cell = sheet.cell(row=sheet.max_row, column=column + 1)
            if isinstance(cell.value, float):  # a count or a label in a percentage column stays as it is
                cell.number_format = "0.00%"
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{max(sheet.max_row, 1)}"
    for index, header in enumerate(headers, 1):
        sheet.column_dimensions[get_column_letter(index)].width = max(12, len(header) + 4)


def _measure_sheet(book: Any, title: str, keys: list[str], rows: list[tuple[list[Any], Measures]]) -> None:
    offset = len(keys)
    _sheet(
        book,
        title,
        keys + _MEASURE_HEADERS,
        [key_values + _measure_values(measures) for key_values, measures in rows],
        {offset + column for column in _PERCENT_COLUMNS},
    )


def _rates_rows(measures: Measures) -> list[list[Any]]:
    from ggzy.hub.stats import RATE_LABELS_ZH

    met = {None: "无数据", True: "达标", False: "未达标"}
    return [
        [RATE_LABELS_ZH[name], rate.value, rate.target, met[rate.met], rate.numerator, rate.denominator]
        for name, rate in measures.rates.items()
    ]


def _count_rows(measures: Measures) -> list[list[Any]]:
    t, average = measures.totals, measures.average_repair_seconds
    labelled = [
        ("接收 received", t.received),
        ("合格 accepted", t.accepted),
        ("不合格 rejected", t.rejected),
        ("重复上传 duplicates", t.duplicates),
        ("应及时 timely_due", t.timely_due),
        ("及时 timely_ok", t.timely_ok),
        ("需修复主键 rejected_keys", t.rejected_keys),
        ("已修复 repaired", t.repaired),
        ("平均修复秒数 avg repair s", None if average is None else round(average)),
        ("缺少发布时间 untimed", t.untimed),
    ]
    return [[label, value, None, None, None, None] for label, value in labelled]


def _rules_rows(rules: list[RuleRow]) -> list[list[Any]]:
    return [[r.code, "错误" if r.severity == "error" else "警告", r.title_zh, r.count] for r in rules]


_RULE_HEADERS = ["规则代码 code", "级别 severity", "规则 rule", "次数 count"]
_RATE_HEADERS = [
    "指标 measure",
    "实际值 value",
    "目标 target",
    "是否达标 met",
    "分子 numerator",
    "分母 denominator",
]


def _common_sheets(book: Any, tables: list[TableRow], days: list[DayRow], rules: list[RuleRow]) -> None:
    _measure_sheet(
        book, "按数据表", ["数据表 table", "名称 name"], [([r.table, r.name_zh], r.measures) for r in tables]
    )
    _measure_sheet(book, "按日", ["日期 day"], [([r.day], r.measures) for r in days])
    _sheet(book, "按规则", _RULE_HEADERS, _rules_rows(rules), set())


def write_province_xlsx(path: Path, summary: ProvinceSummary) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    head = [
        ["省份 province", f"{summary.name_zh or ''}（{summary.province}）", None, None, None, None],
        ["统计期间 period", f"{summary.start} 至 {summary.end}", None, None, None, None],
        ["数据表 table", summary.table or "全部", None, None, None, None],
    ]
    _sheet(
        book,
        "汇总",
        _RATE_HEADERS,
        head + _rates_rows(summary.overall) + _count_rows(summary.overall),
        {1, 2},
    )
    _common_sheets(book, summary.tables, summary.days, summary.rules)
    book.save(path)


def write_national_xlsx(path: Path, overview: NationalOverview) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    rows = [([row.province, row.name_zh], row.measures) for row in overview.provinces]
    rows.append((["全国", "合计"], overview.total))
    _measure_sheet(book, "汇总", ["省份 province", "名称 name"], rows)
    _common_sheets(book, overview.tables, overview.days, overview.rules)
    book.save(path)


# --- command --------------------------------------------------------------------------------------


@hub_app.command("stats")
@cli_permission(Permission.STATS_READ)
def stats_command(
    province: Annotated[
        str | None,
        typer.Option("--province", help="省份代码（GB/T 2260 前两位，如 35）；不填则显示全国各省汇总"),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="起始日期 YYYY-MM-DD（北京时间，含当日；默认本月1日）")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="截止日期 YYYY-MM-DD（含当日；默认今天）")] = None,
    table: Annotated[str | None, typer.Option("--table", help="只统计一张数据表（表名或 DATA_NO）")] = None,
    output_format: Annotated[
        StatsFormat, typer.Option("--format", "-f", help="输出格式：table 中文报表 / json / xlsx 工作簿")
    ] = StatsFormat.TABLE,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="输出文件（xlsx 默认按省份和期间命名）")
    ] = None,
    top: Annotated[
        int, typer.Option("--top", min=1, help="中文报表中列出的规则条数（json/xlsx 列出全部）")
    ] = 10,
    db: DbOption = None,
) -> None:
    """数据质量考核统计：数据合格率（≥95%）、及时报送率（≥95%）、修复成功率（≥90%）。

    按省份、数据表、日期和校验规则汇总国家平台收到的生产数据（测试数据不计入），
    每个指标与目标值对照显示（绿色达标、红色未达标，无数据显示“—”）。

    示例 (examples):

      ggzy hub stats --province 35 --from 2026-11-01 --to 2026-11-30

      ggzy hub stats --from 2026-11-01 --to 2026-11-30 --format xlsx -o 十一月考核.xlsx

      ggzy hub stats --province 35 --table SECTION --format json
    """
    from ggzy.hub.stats import national_overview, province_summary

    period = _period(start, end)
    chosen = _check_province(province) if province is not None else None
    chosen = _own_province(chosen)
    engine = _engine(_settings(db))
    try:
        with engine.connect() as connection:
            top_rules = top if output_format is StatsFormat.TABLE else None
            result: ProvinceSummary | NationalOverview = (
                province_summary(connection, chosen, *period, table, top_rules=top_rules)
                if chosen is not None
                else national_overview(connection, *period, table, top_rules=top_rules)
            )
    finally:
        engine.dispose()
    _emit(result, output_format, output)


def _emit(
    result: ProvinceSummary | NationalOverview, output_format: StatsFormat, output: Path | None
) -> None:
    from ggzy.hub.stats import ProvinceSummary

    if output_format is StatsFormat.JSON:
        text = json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n"
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text, encoding="utf-8")
            err.print(f"已写入 {output}")
    elif output_format is StatsFormat.XLSX:
        scope = result.province if isinstance(result, ProvinceSummary) else "national"
        target = output or Path(f"ggzy-stats-{scope}-{result.start:%Y%m%d}-{result.end:%Y%m%d}.xlsx")
        if isinstance(result, ProvinceSummary):
            write_province_xlsx(target, result)
        else:
            write_national_xlsx(target, result)
        err.print(f"已写入 {target}")
    elif output is None:
        _render(out, result)
    else:
        with output.open("w", encoding="utf-8") as handle:
            _render(Console(file=handle, width=160, no_color=True, highlight=False), result)
        err.print(f"已写入 {output}")


def _render(console: Console, result: ProvinceSummary | NationalOverview) -> None:
    from ggzy.hub.stats import ProvinceSummary

    if isinstance(result, ProvinceSummary):
        _render_province(console, result)
    else:
        _render_national(console, result)
