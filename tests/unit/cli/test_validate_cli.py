from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from ggzy.cli import app
from ggzy.simulate import simulate

runner = CliRunner()
START = dt.datetime(2026, 11, 1, 8, 0)


def write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def clean_records() -> list[dict[str, object]]:
    return [item.record for item in simulate("35", seed=3, transactions=6, start=START)]


def test_clean_file_exits_0_with_chinese_report(
    tmp_path: Path, clean_records: list[dict[str, object]]
) -> None:
    result = runner.invoke(app, ["validate", str(write_jsonl(tmp_path / "ok.jsonl", clean_records))])
    assert result.exit_code == 0, result.output
    assert "合格率" in result.output
    assert f"共 {len(clean_records)} 条记录" in result.output


def test_file_with_an_error_exits_1_and_names_the_rule(
    tmp_path: Path, clean_records: list[dict[str, object]]
) -> None:
    records = [dict(r) for r in clean_records]
    first_project = next(n for n, r in enumerate(records) if r["table"] == "PROJECT")
    broken = dict(records[first_project])
    broken["data"] = {**broken["data"], "CREATE_TIME": "2026-13-01"}  # type: ignore[dict-item]
    records[first_project] = broken
    result = runner.invoke(app, ["validate", str(write_jsonl(tmp_path / "bad.jsonl", records))])
    assert result.exit_code == 1
    assert "E-FIELD-DATETIME" in result.output


def test_json_format_gives_one_object_per_record(
    tmp_path: Path, clean_records: list[dict[str, object]]
) -> None:
    path = write_jsonl(tmp_path / "ok.jsonl", [*clean_records, {"table": "NOPE", "data": {}}])
    result = runner.invoke(app, ["validate", str(path), "--format", "json"])
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(clean_records) + 1
    assert lines[0]["line"] == 1 and lines[0]["ok"] is True
    assert lines[-1]["ok"] is False
    assert lines[-1]["findings"][0]["code"] == "E-STRUCT-TABLE"
    assert set(lines[-1]["findings"][0]) == {"code", "severity", "field", "value", "message_zh", "message_en"}


def test_xlsx_format_writes_a_filterable_workbook(
    tmp_path: Path, clean_records: list[dict[str, object]]
) -> None:
    records = [*clean_records, {"table": "SECTION", "op": "insert", "data": {"BID_SECTION_CODE": "x"}}]
    target = tmp_path / "report.xlsx"
    result = runner.invoke(
        app,
        ["validate", str(write_jsonl(tmp_path / "in.jsonl", records)), "--format", "xlsx", "-o", str(target)],
    )
    assert result.exit_code == 1
    book = load_workbook(target)
    assert book.sheetnames == ["汇总", "按数据表", "按规则", "明细"]
    detail = list(book["明细"].iter_rows(values_only=True))
    assert detail[0][4] == "规则代码 code"
    assert any(row[4] == "E-FIELD-REQUIRED" for row in detail[1:])
    assert book["明细"].auto_filter.ref


def test_gbk_file_reads_like_utf8(tmp_path: Path, clean_records: list[dict[str, object]]) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in clean_records)
    (tmp_path / "gbk.jsonl").write_bytes(text.encode("gbk"))
    utf8 = runner.invoke(
        app, ["validate", str(write_jsonl(tmp_path / "u.jsonl", clean_records)), "-f", "json"]
    )
    gbk = runner.invoke(app, ["validate", str(tmp_path / "gbk.jsonl"), "-f", "json"])
    assert gbk.exit_code == utf8.exit_code == 0
    assert gbk.stdout == utf8.stdout


def test_undecodable_input_exits_2_with_offset(tmp_path: Path) -> None:
    path = tmp_path / "junk.jsonl"
    path.write_bytes(b'{"table": "SECTION"}\n' + bytes([0xFF, 0xFE, 0x00, 0x81]) * 8)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "E-INPUT-ENCODING" in result.output


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "absent.jsonl")])
    assert result.exit_code == 2
    assert "文件不存在" in result.output


def test_standalone_skips_cross_record_rules(tmp_path: Path, clean_records: list[dict[str, object]]) -> None:
    sections = [r for r in clean_records if r["table"] == "SECTION"]
    path = write_jsonl(tmp_path / "sections.jsonl", sections)
    assert runner.invoke(app, ["validate", str(path)]).exit_code == 1  # their tender projects are absent
    assert runner.invoke(app, ["validate", str(path), "--standalone"]).exit_code == 0


def test_spec_show_prints_fields_in_chinese() -> None:
    result = runner.invoke(app, ["spec", "show", "502"])
    assert result.exit_code == 0
    assert "BID_SECTION_CODE" in result.output and "标段" in result.output


def test_spec_show_unknown_table_exits_2() -> None:
    result = runner.invoke(app, ["spec", "show", "NOPE"])
    assert result.exit_code == 2
    assert "E-SPEC-TABLE" in result.output


def test_spec_list_names_every_domain() -> None:
    result = runner.invoke(app, ["spec", "list"])
    assert result.exit_code == 0
    for label in (
        "工程建设",
        "政府采购",
        "土地使用权",
        "矿业权",
        "国有产权",
        "主体信息",
        "专家信息",
        "信用信息",
        "监管信息",
    ):
        assert label in result.output
