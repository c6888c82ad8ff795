"""A validation report for people who prepare uploads: counts per table and rule, pass rate, examples."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ggzy.validation.catalogue import RULES, Severity
from ggzy.validation.findings import RecordVerdict

__all__ = ["Example", "Report", "RuleTally", "TableTally", "write_xlsx"]

EXAMPLES_PER_RULE = 3


@dataclass(slots=True)
class Example:
    source: str
    line: int
    table: str | None
    key: str | None
    field: str | None
    value: str | None
    message_zh: str


@dataclass(slots=True)
class TableTally:
    records: int = 0
    passed: int = 0
    with_warnings: int = 0
    errors: int = 0
    warnings: int = 0


@dataclass(slots=True)
class RuleTally:
    code: str
    count: int = 0
    examples: list[Example] = field(default_factory=list)

    @property
    def severity(self) -> Severity:
        return RULES[self.code].severity

    @property
    def title_zh(self) -> str:
        return RULES[self.code].title_zh


@dataclass
class Report:
    """Add verdicts one by one; read the tallies at any time (memory does not grow with records)."""

    records: int = 0
    passed: int = 0
    tables: dict[str, TableTally] = field(default_factory=lambda: defaultdict(TableTally))
    rules: dict[str, RuleTally] = field(default_factory=dict)
    fields_by_rule: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, verdict: RecordVerdict) -> None:
        self.records += 1
        ok = verdict.ok
        self.passed += ok
        tally = self.tables[verdict.table or "（无法识别）"]
        tally.records += 1
        tally.passed += ok
        for finding in verdict.findings:
            if finding.is_error:
                tally.errors += 1
            else:
                tally.warnings += 1
            rule = self.rules.get(finding.code)
            if rule is None:
                rule = self.rules[finding.code] = RuleTally(finding.code)
            rule.count += 1
            if finding.field:
                self.fields_by_rule[finding.code][finding.field] += 1
            if len(rule.examples) < EXAMPLES_PER_RULE:
                rule.examples.append(
                    Example(
                        verdict.source,
                        verdict.line,
                        verdict.table,
                        verdict.key,
                        finding.field,
                        finding.value,
                        finding.message_zh,
                    )
                )
        if ok and verdict.findings:
            tally.with_warnings += 1

    @property
    def failed(self) -> int:
        return self.records - self.passed

    @property
    def pass_rate(self) -> float:
        return self.passed / self.records if self.records else 1.0

    def top_rules(self, limit: int | None = None) -> list[RuleTally]:
        ordered = sorted(
            self.rules.values(), key=lambda r: (r.severity is not Severity.ERROR, -r.count, r.code)
        )
        return ordered[:limit] if limit else ordered

    def summary(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "passed": self.passed,
            "failed": self.failed,
            "pass_rate": round(self.pass_rate, 6),
            "tables": {name: vars_of(t) for name, t in sorted(self.tables.items())},
            "rules": {r.code: r.count for r in self.top_rules()},
        }


def vars_of(tally: TableTally) -> dict[str, int]:
    return {
        "records": tally.records,
        "passed": tally.passed,
        "with_warnings": tally.with_warnings,
        "errors": tally.errors,
        "warnings": tally.warnings,
    }


def write_xlsx(path: Path, report: Report, verdicts: list[RecordVerdict]) -> None:
    """A workbook an official can filter: summary, per-table, per-rule and one row per finding."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    from ggzy.interchange.spreadsheet import safe_row

    book = Workbook()
    bold = Font(bold=True)
    header_fill = PatternFill("solid", fgColor="DDEBF7")

    def header(sheet: Any, names: list[str]) -> None:
        sheet.append(names)
        for cell in sheet[1]:
            cell.font = bold
            cell.fill = header_fill
        sheet.freeze_panes = "A2"

    summary = book.active
    summary.title = "汇总"
    header(summary, ["项目 item", "数值 value"])
    summary.append(["记录总数 records", report.records])
    summary.append(["通过 passed", report.passed])
    summary.append(["未通过 failed", report.failed])
    summary.append(["合格率 pass rate", round(report.pass_rate, 4)])
    summary["B5"].number_format = "0.00%"

    tables = book.create_sheet("按数据表")
    header(
        tables,
        ["数据表 table", "记录数 records", "通过 passed", "错误数 errors", "警告数 warnings", "合格率"],
    )
    for name, tally in sorted(report.tables.items()):
        rate = tally.passed / tally.records if tally.records else 1.0
        tables.append(
            safe_row([name, tally.records, tally.passed, tally.errors, tally.warnings, round(rate, 4)])
        )
        tables.cell(row=tables.max_row, column=6).number_format = "0.00%"

    rules = book.create_sheet("按规则")
    header(rules, ["规则代码 code", "级别 severity", "规则 rule", "次数 count", "示例 example"])
    for rule in report.top_rules():
        example = rule.examples[0].message_zh if rule.examples else ""
        rules.append(safe_row([rule.code, rule.severity.value, rule.title_zh, rule.count, example]))

    detail = book.create_sheet("明细")
    header(
        detail,
        [
            "来源 source",
            "行号 line",
            "数据表 table",
            "业务主键 key",
            "规则代码 code",
            "级别 severity",
            "字段 field",
            "值 value",
            "说明 message",
        ],
    )
    for verdict in verdicts:
        for finding in verdict.findings:
            detail.append(
                safe_row(  # the checked file's own values: never a formula
                    [
                        verdict.source,
                        verdict.line,
                        verdict.table,
                        verdict.key,
                        finding.code,
                        finding.severity.value,
                        finding.field,
                        finding.value,
                        finding.message_zh,
                    ]
                )
            )
    for sheet in (tables, rules, detail):
        sheet.auto_filter.ref = sheet.dimensions
    for sheet in book.worksheets:
        for column in sheet.columns:
            width = max(len(str(c.value or "")) for c in column[:200])
            sheet.column_dimensions[column[0].column_letter].width = min(max(10, width * 1.6), 60)
    book.save(path)
