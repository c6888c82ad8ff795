"""Limits of the streaming readers: what a hostile or broken file can make the node hold is bounded.

Each limit has its attack: a line too long, too many records, a CSV line too long, XML nested too
deep, an XML envelope too large, a DTD with entities (billion laughs), a zip bomb in an .xlsx (by its
declared ratio, and by one giant row when the ratio is allowed), measured in a child process for
its peak memory.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from ggzy.interchange import InputError, InputFormatError, InputTooLargeError
from ggzy.interchange.stream import Position, ReadLimits, stream_items, survey

SMALL = ReadLimits(max_records=50, max_line_bytes=4096, max_xml_depth=8, max_xlsx_part_bytes=1024 * 1024)


def read_all(path: Path, limits: ReadLimits = SMALL) -> list[tuple[object, Position]]:
    with path.open("rb") as handle:
        found = survey(handle, path.suffix, path.name, limits)
        return list(stream_items(handle, path.suffix, path.name, found, limits))


def line(n: int) -> str:
    return json.dumps({"table": "PROJECT", "data": {"PROJECT_CODE": f"P{n}"}}) + "\n"


def test_a_line_too_long_is_refused_alone_and_never_held(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(line(1) + '{"table": "PROJECT", "data": {"X": "' + "y" * 100_000 + '"}}\n' + line(3))
    items = read_all(path)
    assert [(item.line, item.error is None) for item, _ in items] == [(1, True), (2, False), (3, True)]  # type: ignore[attr-defined]
    error = items[1][0].error  # type: ignore[attr-defined]
    assert "E-INPUT-TOO-LARGE" in error and "yyyy" not in error


def test_too_many_records_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("".join(line(n) for n in range(60)))
    with pytest.raises(InputTooLargeError) as refused:
        read_all(path)
    assert "50" in refused.value.message_zh


def test_a_csv_line_too_long_refuses_the_file_before_anything_is_read(tmp_path: Path) -> None:
    path = tmp_path / "PROJECT.csv"
    path.write_text("PROJECT_CODE,PROJECT_NAME\nA," + "b" * 10_000 + "\n")
    with pytest.raises(InputTooLargeError) as refused:
        read_all(path)
    assert refused.value.line == 2


def test_xml_nested_too_deep_or_too_large_is_refused(tmp_path: Path) -> None:
    deep = tmp_path / "deep.xml"
    deep.write_text("<A>" * 20 + "</A>" * 20)
    with pytest.raises(InputTooLargeError):
        read_all(deep)
    large = tmp_path / "large.xml"
    large.write_text(
        "<DATAS><DATA><TITLE><DATA_NO>500</DATA_NO></TITLE><CONTEXT><X>"
        + "z" * 20_000
        + "</X></CONTEXT></DATA></DATAS>"
    )
    with pytest.raises(InputTooLargeError):
        read_all(large)


def test_entity_expansion_is_refused(tmp_path: Path) -> None:
    laughs = tmp_path / "laughs.xml"
    laughs.write_text(
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(
            f'<!ENTITY lol{n} "{("&lol" + str(n - 1) + ";") * 10 if n > 1 else "&lol;" * 10}">'
            for n in range(1, 10)
        )
        + "]><DATA><TITLE><DATA_NO>&lol9;</DATA_NO></TITLE></DATA>"
    )
    with pytest.raises(InputFormatError) as refused:
        read_all(laughs)
    assert "DOCTYPE" in refused.value.message_zh


def bomb(path: Path, inflated: int, *, giant_row: bool) -> None:
    """An .xlsx whose worksheet inflates to ``inflated`` bytes, written without holding them."""
    workbook = Workbook()
    workbook.active.title = "PROJECT"
    workbook.active.append(["PROJECT_CODE"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                target.writestr(info, source.read(info))
                continue
            with target.open(info.filename, "w", force_zip64=True) as sheet:
                sheet.write(
                    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
                )
                sheet.write(b'<row r="1"><c r="A1" t="inlineStr"><is><t>')
                block = (b"A" if giant_row else b'</t></is></c></row><row><c t="inlineStr"><is><t>A') * (
                    1024 * 1024 // 40
                )
                written = 0
                while written < inflated:
                    sheet.write(block)
                    written += len(block)
                sheet.write(b"</t></is></c></row></sheetData></worksheet>")


_MEASURE = r"""
import sys
from pathlib import Path
from ggzy.interchange import InputError
from ggzy.interchange.stream import ReadLimits, stream_items, survey
import openpyxl, ggzy.interchange.xlsx  # imported before the baseline
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
idle = peak()
path = Path(sys.argv[1])
limits = ReadLimits(max_xlsx_ratio=int(sys.argv[2]))
code = "read"
try:
    with path.open("rb") as handle:
        found = survey(handle, ".xlsx", path.name, limits)
        for _ in stream_items(handle, ".xlsx", path.name, found, limits):
            pass
except InputError as exc:
    code = exc.code
print(code, peak() - idle)
"""


@pytest.mark.parametrize(("ratio", "giant_row"), [(200, False), (100_000, True)], ids=["ratio", "giant-row"])
def test_a_zip_bomb_is_refused_within_100_mib_of_idle(tmp_path: Path, ratio: int, giant_row: bool) -> None:
    path = tmp_path / "bomb.xlsx"
    bomb(path, 300 * 1024 * 1024, giant_row=giant_row)
    assert path.stat().st_size < 2 * 1024 * 1024
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), str(ratio)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    code, rise = out[0], int(out[1])
    assert code == "E-INPUT-TOO-LARGE", out
    assert rise < 100, f"peak memory rose {rise} MiB reading the bomb"


def test_xlsx_shared_strings_are_read_from_disk_not_a_list(tmp_path: Path) -> None:
    path = tmp_path / "PROJECT.xlsx"
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "PROJECT"
    sheet.append(["PROJECT_CODE", "PROJECT_NAME"])
    for n in range(30):
        sheet.append([f"P{n}", f"项目{n}"])
    workbook.save(path)
    items = read_all(path, ReadLimits())
    assert [item.raw["data"]["PROJECT_NAME"] for item, _ in items] == [f"项目{n}" for n in range(30)]  # type: ignore[attr-defined]
    assert isinstance(InputError, type)
