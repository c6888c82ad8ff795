"""``ggzy simulate``: a province's uploads, made up but realistic, with defects on request."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ggzy.cli.app import app
from ggzy.cli.console import err
from ggzy.interchange import Category, write_csv, write_xml
from ggzy.security.permissions import OFFLINE_EXEMPTION, cli_exempt
from ggzy.simulate import SimulatedRecord, simulate
from ggzy.spec import Domain, load_regions, load_spec

EXIT_USAGE = 2


class OutFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"
    XLSX = "xlsx"
    XML = "xml"


class PersonalMode(StrEnum):
    MASKED = "masked"
    RAW = "raw"


_SUFFIXES = {".jsonl": OutFormat.JSONL, ".json": OutFormat.JSONL, ".ndjson": OutFormat.JSONL}
_SUFFIXES |= {".csv": OutFormat.CSV, ".xlsx": OutFormat.XLSX, ".xml": OutFormat.XML}


def _fail(code: str, zh: str, en: str) -> typer.Exit:
    err.print(f"[red]{code}[/] {zh} ({en})")
    return typer.Exit(EXIT_USAGE)


def _parse_start(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise _fail("E-CLI-START", f"开始日期“{text}”应为 YYYY-MM-DD", "--start must be YYYY-MM-DD") from None


def _destination(out: Path | None, chosen: OutFormat | None) -> tuple[OutFormat, bool]:
    """The output format and whether ``out`` is a directory (one file per table)."""
    if out is None:
        if chosen not in (None, OutFormat.JSONL):
            raise _fail(
                "E-CLI-OUT", "标准输出只能是 JSON Lines，请用 --out 指定文件", "stdout is JSON Lines only"
            )
        return OutFormat.JSONL, False
    suffix_format = _SUFFIXES.get(out.suffix.lower())
    if out.is_dir() or (suffix_format is None and chosen is not None):
        return chosen or OutFormat.CSV, True
    if suffix_format is None:
        raise _fail(
            "E-CLI-OUT",
            f"无法由“{out.name}”判断输出格式：用 .jsonl/.csv/.xlsx/.xml，或给目录加 --format csv",
            "unknown output suffix",
        )
    if suffix_format is OutFormat.CSV:
        raise _fail(
            "E-CLI-OUT",
            "CSV 文件只能容纳一个数据表：请给一个目录并加 --format csv（每表一个文件）",
            "a CSV file holds one table; pass a directory with --format csv",
        )
    return chosen or suffix_format, False


# --- writing ---


class _Expectations:
    """The ``--expected`` file: one JSON line per output record, aligned with where it was written."""

    def __init__(self, path: Path | None) -> None:
        self.tables = load_spec().tables
        self.handle: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = path.open("w", encoding="utf-8")

    def write(self, line: int, item: SimulatedRecord, source: str | None = None) -> None:
        if self.handle is None:
            return
        record = item.record
        table = self.tables[record["table"]]
        entry: dict[str, Any] = {"line": line, "table": table.name, "key": table.key_of(record["data"])}
        if source is not None:
            entry["source"] = source
        entry["findings"] = [{"code": f.code, "field": f.field} for f in item.expected]
        self.handle.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def _write_jsonl(items: Iterable[SimulatedRecord], handle: IO[str], expected: _Expectations) -> None:
    for line, item in enumerate(items, 1):
        handle.write(json.dumps(item.record, ensure_ascii=False) + "\n")
        expected.write(line, item)


def _by_table(items: Iterable[SimulatedRecord]) -> dict[str, list[SimulatedRecord]]:
    tables: dict[str, list[SimulatedRecord]] = {}
    for item in items:
        tables.setdefault(item.record["table"], []).append(item)
    return tables


def _file_name(table: str, suffix: str) -> str:
    return f"{load_spec().tables[table].data_no}-{table}{suffix}"


def _write_directory(
    items: Iterable[SimulatedRecord], folder: Path, form: OutFormat, expected: _Expectations
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for table, rows in _by_table(items).items():
        path = folder / _file_name(table, f".{form.value}")
        records = [item.record for item in rows]
        if form is OutFormat.CSV:
            write_csv(records, path)
        elif form is OutFormat.XML:
            write_xml(records, path)
        elif form is OutFormat.XLSX:
            _write_xlsx({table: rows}, path)
        else:
            with path.open("w", encoding="utf-8") as handle:
                _write_jsonl(rows, handle, _Expectations(None))
        first_line = 1 if form in (OutFormat.JSONL, OutFormat.XML) else 2  # CSV and XLSX have a header row
        for offset, item in enumerate(rows):
            expected.write(first_line + offset, item, path.name)


def _write_xlsx(tables: dict[str, list[SimulatedRecord]], path: Path) -> None:
    """One sheet per table (named ``502-SECTION``), data columns then the envelope, all as text."""
    import openpyxl  # a heavy import, only needed here

    workbook = openpyxl.Workbook(write_only=True)
    envelope = ("op", "category", "spec_version", "published_at")
    for table, rows in tables.items():
        sheet = workbook.create_sheet(_file_name(table, "")[:31])
        columns: dict[str, None] = dict.fromkeys(f.name for f in load_spec().tables[table].fields)
        for item in rows:
            columns.update(dict.fromkeys(item.record["data"]))
        sheet.append([*columns, *envelope])
        for item in rows:
            data = item.record["data"]
            sheet.append([*(data.get(name) for name in columns), *(item.record[name] for name in envelope)])
    workbook.save(path)


def _write_file(
    items: Iterable[SimulatedRecord], path: Path, form: OutFormat, expected: _Expectations
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if form is OutFormat.JSONL:
        with path.open("w", encoding="utf-8", newline="\n") as handle:
            _write_jsonl(items, handle, expected)
        return
    rows = list(items)
    if form is OutFormat.XML:
        write_xml([item.record for item in rows], path)
        for line, item in enumerate(rows, 1):
            expected.write(line, item)
        return
    tables = _by_table(rows)
    _write_xlsx(tables, path)
    for table_rows in tables.values():
        for offset, item in enumerate(table_rows):
            expected.write(2 + offset, item, _file_name(item.record["table"], "")[:31])


# --- progress and summary ---


class _Tally:
    def __init__(self) -> None:
        self.tables: Counter[str] = Counter()
        self.domains: Counter[str] = Counter()
        self.defects: Counter[str] = Counter()
        self.records = 0

    def count(self, items: Iterable[SimulatedRecord], progress: Progress | None) -> Iterator[SimulatedRecord]:
        spec = load_spec()
        task = progress.add_task("生成记录 (records)", total=None) if progress else None
        for item in items:
            table = item.record["table"]
            self.records += 1
            self.tables[table] += 1
            self.domains[spec.tables[table].domain.label_zh] += 1
            for finding in item.expected:
                self.defects[finding.code] += 1
            if progress is not None and task is not None and self.records % 500 == 0:
                progress.update(task, completed=self.records)
            yield item
        if progress is not None and task is not None:
            progress.update(task, completed=self.records, total=self.records)

    def print(self, province: str, transactions: int, destination: str) -> None:
        name = load_regions().provinces().get(province, province)
        defective = sum(self.defects.values())
        err.print(
            f"\n[bold]模拟完成[/]：{name}（{province}），{transactions} 笔交易，共 {self.records} 条记录，"
            f"注入缺陷 {defective} 处 → {destination}"
        )
        domains = Table(title="按业务领域 (per domain)", title_justify="left")
        domains.add_column("业务领域")
        domains.add_column("记录数", justify="right")
        for domain, count in self.domains.most_common():
            domains.add_row(domain, str(count))
        err.print(domains)
        tables = Table(title="按数据表 (per table)", title_justify="left")
        tables.add_column("数据表")
        tables.add_column("记录数", justify="right")
        for table, count in sorted(self.tables.items()):
            tables.add_row(table, str(count))
        err.print(tables)
        if self.defects:
            defects = Table(title="注入的缺陷 (defects injected)", title_justify="left")
            defects.add_column("规则代码")
            defects.add_column("次数", justify="right")
            for code, count in sorted(self.defects.items()):
                defects.add_row(code, str(count))
            err.print(defects)


@app.command("simulate")
@cli_exempt(OFFLINE_EXEMPTION)
def simulate_command(
    province: Annotated[
        str, typer.Option("--province", help="省份代码（GB/T 2260 前两位），如 35 福建")
    ] = "35",
    transactions: Annotated[
        int, typer.Option("--transactions", "-n", help="交易笔数 (transactions)", min=0)
    ] = 100,
    seed: Annotated[int, typer.Option("--seed", help="随机种子：相同种子产生相同数据 (seed)")] = 0,
    days: Annotated[int, typer.Option("--days", help="时间窗口天数 (days)", min=1)] = 30,
    start: Annotated[
        str | None, typer.Option("--start", help="开始日期 YYYY-MM-DD，默认今天往前 --days 天 (start date)")
    ] = None,
    errors: Annotated[
        float,
        typer.Option("--errors", help="每条记录注入一个缺陷的概率，如 0.05 (defect rate)", min=0.0, max=1.0),
    ] = 0.0,
    category: Annotated[
        Category | None,
        typer.Option("--category", help="数据类别 realtime/history/test；默认按时间自动判断 (category)"),
    ] = None,
    personal: Annotated[
        PersonalMode, typer.Option("--personal", help="个人信息：masked 脱敏 / raw 原始（用于测试节点脱敏）")
    ] = PersonalMode.MASKED,
    domain: Annotated[
        list[Domain] | None,
        typer.Option("--domain", help="只生成这些业务领域，可重复，如 --domain construction (domains)"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="输出文件 .jsonl/.xlsx/.xml，或目录（每表一个文件）；默认标准输出"),
    ] = None,
    output_format: Annotated[
        OutFormat | None,
        typer.Option("--format", help="目录输出的文件格式，默认 csv (format for a directory)"),
    ] = None,
    expected: Annotated[
        Path | None,
        typer.Option("--expected", help="写出每条记录应有的校验结果（JSON Lines）(expected findings)"),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="不显示进度条和汇总 (no progress)")] = False,
) -> None:
    """生成模拟的省级平台上报数据：各业务领域的完整交易及相关主体、专家、信用、监管信息。

    数据可重现（同一 --seed 结果相同）；--errors 按比例注入缺陷，--expected 写出每条记录应得的规则代码，用来检验校验引擎或节点。

    示例 (examples):

      ggzy simulate --province 35 -n 200 --seed 7 --start 2026-11-01 --out var/fj.jsonl

      ggzy simulate --errors 0.05 --out var/fj.jsonl --expected var/fj.expected.jsonl

      ggzy simulate --domain construction --out var/fj-csv --format csv

      ggzy simulate -n 20 --personal raw > var/raw.jsonl    # 未脱敏数据，用于测试节点脱敏
    """
    if province not in load_regions().provinces():
        raise _fail(
            "E-CLI-PROVINCE", f"未知的省份代码“{province}”，应为 GB/T 2260 前两位，如 35", "unknown province"
        )
    form, is_directory = _destination(out, output_format)
    items = simulate(
        province,
        seed=seed,
        transactions=transactions,
        start=_parse_start(start),
        days=days,
        error_rate=errors,
        category=category.value if category else None,
        personal="raw" if personal is PersonalMode.RAW else "masked",
        domains=domain,
    )
    tally = _Tally()
    expectations = _Expectations(expected)
    progress = (
        None
        if quiet
        else Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
        )
    )
    try:
        if progress is not None:
            progress.start()
        counted = tally.count(items, progress)
        if out is None:
            _write_jsonl(counted, sys.stdout, expectations)
        elif is_directory:
            _write_directory(counted, out, form, expectations)
        else:
            _write_file(counted, out, form, expectations)
    finally:
        if progress is not None:
            progress.stop()
        expectations.close()
    if not quiet:
        tally.print(province, transactions, str(out) if out else "标准输出 (stdout)")
