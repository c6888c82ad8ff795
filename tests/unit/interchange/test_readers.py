from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from ggzy.interchange import (
    InputEncodingError,
    InputFormatError,
    InputTooLargeError,
    SourceItem,
    read_csv,
    read_jsonl,
    read_path,
    read_xml,
    write_csv,
    write_jsonl,
    write_xml,
)

SECTION_NAME = "某市政道路改造工程（一期）第1标段"

RECORDS: list[dict[str, Any]] = [
    {
        "table": "SECTION",
        "op": "insert",
        "category": "history",
        "spec_version": "2.0",
        "published_at": "2026-11-27T09:30:00+08:00",
        "key": "E3501000000001001001",
        "data": {"BID_SECTION_CODE": "E3501000000001001001", "BID_SECTION_NAME": SECTION_NAME},
    },
    {
        "table": "SECTION",
        "op": "update",
        "data": {"BID_SECTION_CODE": "E3501000000001001002", "CONTRACT_RECKON_PRICE": "1234.5"},
    },
]


def _raws(items: list[SourceItem]) -> list[dict[str, Any] | None]:
    return [item.raw for item in items]


def _write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


# --- read_path ------------------------------------------------------------------------------


def test_unknown_suffix_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "records.txt", "{}\n")
    with pytest.raises(InputFormatError) as caught:
        read_path(path)
    assert caught.value.code == "E-INPUT-FORMAT"
    assert ".txt" in caught.value.message_en


def test_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputFormatError, match="empty"):
        read_path(_write(tmp_path, "records.jsonl", ""))


def test_file_larger_than_max_bytes_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "records.jsonl", '{"table": "SECTION"}\n')
    with pytest.raises(InputTooLargeError) as caught:
        read_path(path, max_bytes=10)
    assert caught.value.code == "E-INPUT-TOO-LARGE"
    assert caught.value.size == path.stat().st_size
    assert len(list(read_path(path, max_bytes=path.stat().st_size))) == 1


def test_binary_input_is_refused_before_iteration(tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    path.write_bytes("BID_SECTION_NAME\nMüller".encode("latin-1"))
    with pytest.raises(InputEncodingError) as caught:
        read_path(path)
    assert caught.value.offset == len(b"BID_SECTION_NAME\nM")


# --- JSON Lines ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "encoding"),
    [(b"", "utf-8"), (b"\xef\xbb\xbf", "utf-8"), (b"", "gbk")],
    ids=["utf8", "bom", "gbk"],
)
def test_jsonl_reads_identically_in_every_encoding(tmp_path: Path, prefix: bytes, encoding: str) -> None:
    text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in RECORDS)
    path = tmp_path / "records.jsonl"
    path.write_bytes(prefix + text.encode(encoding))
    items = list(read_path(path))
    assert _raws(items) == RECORDS
    assert [item.line for item in items] == [1, 2]
    assert all(item.source == str(path) and item.error is None for item in items)


def test_broken_json_line_becomes_an_error_item_and_the_rest_is_read() -> None:
    text = (
        '{"table": "SECTION", "op": "insert", "data": {}}\n'
        "\n"
        '{"table": "SECTION", "op": \n'
        "[1, 2]\n"
        '{"op": "delete"}\n'
    )
    items = list(read_jsonl(text, "in.jsonl"))
    assert [item.line for item in items] == [1, 3, 4, 5]
    assert items[0].raw == {"table": "SECTION", "op": "insert", "data": {}}
    assert items[1].raw is None and items[1].error is not None and "Expecting value" in items[1].error
    assert items[2].raw is None and items[2].error is not None and "not an object" in items[2].error
    assert items[3].raw == {"op": "delete"}


@pytest.mark.parametrize(
    ("line", "detail"),
    [('{"op": "insert", "op": "delete"}', "the same key twice"), ('{"data": {"X": NaN}}', "NaN")],
)
def test_json_that_python_would_accept_silently_is_an_error_item(line: str, detail: str) -> None:
    (item,) = read_jsonl(line, "in.jsonl")
    assert item.raw is None
    assert item.error is not None and detail in item.error


def test_jsonl_lines_split_only_on_newline() -> None:
    # U+2028 is legal inside a JSON string; str.splitlines() would cut the record in two.
    text = json.dumps({"table": "SECTION", "data": {"BID_SECTION_NAME": "a\u2028b"}}, ensure_ascii=False)
    (item,) = read_jsonl(text + "\r\n", "in.jsonl")
    assert item.raw == {"table": "SECTION", "data": {"BID_SECTION_NAME": "a\u2028b"}}


def test_json_array_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "records.json", json.dumps([RECORDS[0], 7, RECORDS[1]], ensure_ascii=False, indent=2)
    )
    items = list(read_path(path))
    assert [item.line for item in items] == [1, 2, 3]
    assert items[0].raw == RECORDS[0] and items[2].raw == RECORDS[1]
    assert items[1].error is not None and "number" in items[1].error


def test_pretty_printed_single_object(tmp_path: Path) -> None:
    path = _write(tmp_path, "record.json", "\n" + json.dumps(RECORDS[1], indent=2))
    (item,) = read_path(path)
    assert item.raw == RECORDS[1]
    assert item.line == 2


def test_malformed_json_array_is_refused_with_position() -> None:
    with pytest.raises(InputFormatError) as caught:
        read_jsonl('[\n  {"table": "SECTION"},\n  {"table": \n]\n', "in.json")
    assert caught.value.line == 4
    assert caught.value.column == 1


def test_jsonl_table_and_defaults_fill_only_missing_keys() -> None:
    text = '{"op": "insert", "data": {}}\n{"table": "502", "category": "realtime", "data": {}}\n'
    items = list(read_jsonl(text, "in.jsonl", table="SECTION", defaults={"category": "history"}))
    assert _raws(items) == [
        {"op": "insert", "data": {}, "table": "SECTION", "category": "history"},
        {"table": "502", "category": "realtime", "data": {}},
    ]


# --- CSV -------------------------------------------------------------------------------------

CSV_TEXT = (
    "BID_SECTION_CODE,BID_SECTION_NAME,table,op,category,spec_version,published_at,key,CONTRACT_RECKON_PRICE\r\n"
    f"E1,{SECTION_NAME},SECTION,update,history,2.0,2026-11-27T09:30:00+08:00,K1,100.50\r\n"
    "E2,,502,,,,,,\r\n"
    "\r\n"
    ",,,,,,,,\r\n"
    'E3,"多行\r\n名称",,delete,,,,,\r\n'
)


def test_csv_envelope_columns_go_to_the_envelope_and_the_rest_to_data() -> None:
    items = list(read_csv(CSV_TEXT, "upload.csv", table="SECTION"))
    assert _raws(items) == [
        {
            "table": "SECTION",
            "op": "update",
            "category": "history",
            "spec_version": "2.0",
            "published_at": "2026-11-27T09:30:00+08:00",
            "key": "K1",
            "data": {
                "BID_SECTION_CODE": "E1",
                "BID_SECTION_NAME": SECTION_NAME,
                "CONTRACT_RECKON_PRICE": "100.50",
            },
        },
        {"table": "502", "op": "insert", "data": {"BID_SECTION_CODE": "E2"}},
        {
            "table": "SECTION",
            "op": "delete",
            "data": {"BID_SECTION_CODE": "E3", "BID_SECTION_NAME": "多行\r\n名称"},
        },
    ]
    # Rows are counted with the header as row 1; blank rows are skipped but still counted.
    assert [item.line for item in items] == [2, 3, 6]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_csv_reads_identically_in_every_encoding(tmp_path: Path, encoding: str) -> None:
    path = _write(tmp_path, "SECTION.csv", CSV_TEXT, encoding)
    assert _raws(list(read_path(path))) == _raws(list(read_csv(CSV_TEXT, "x.csv", table="SECTION")))


@pytest.mark.parametrize(
    ("name", "table"), [("502-SECTION.csv", "502"), ("SECTION.csv", "SECTION"), ("502.csv", "502")]
)
def test_csv_table_from_file_name(tmp_path: Path, name: str, table: str) -> None:
    path = _write(tmp_path, name, "BID_SECTION_CODE\nE1\n")
    (item,) = read_path(path)
    assert item.raw == {"table": table, "op": "insert", "data": {"BID_SECTION_CODE": "E1"}}


def test_csv_defaults_fill_the_envelope_and_op_defaults_to_insert() -> None:
    (item,) = read_csv("BID_SECTION_CODE\nE1\n", "SECTION.csv", defaults={"category": "test"})
    assert item.raw == {
        "table": "SECTION",
        "op": "insert",
        "category": "test",
        "data": {"BID_SECTION_CODE": "E1"},
    }
    (item,) = read_csv("BID_SECTION_CODE\nE1\n", "SECTION.csv", defaults={"op": "update"})
    assert item.raw is not None and item.raw["op"] == "update"


def test_csv_without_any_table_is_refused() -> None:
    with pytest.raises(InputFormatError, match="table"):
        read_csv("BID_SECTION_CODE\nE1\n", "export-2026.csv")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("E1,某标段\nE2,另一标段\n", "not a header"),
        ("A,B,A\n1,2,3\n", "duplicate columns"),
        ("", "no header"),
    ],
)
def test_csv_without_a_proper_header_is_refused(text: str, message: str) -> None:
    with pytest.raises(InputFormatError, match=message):
        read_csv(text, "SECTION.csv")


def test_csv_row_wider_than_the_header_is_an_error_item() -> None:
    items = list(read_csv("A,B\n1,2,3\n4,5,\n", "SECTION.csv"))
    assert items[0].error is not None and "column 3" in items[0].error and items[0].line == 2
    assert items[1].raw == {"table": "SECTION", "op": "insert", "data": {"A": "4", "B": "5"}}


# --- XLSX ------------------------------------------------------------------------------------


def _workbook(tmp_path: Path) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "502-SECTION"
    sheet.append(
        ["BID_SECTION_CODE", "BID_SECTION_NAME", "BID_ECTION_NUM", "PRICE", "CREATE_TIME", "DAY", "op"]
    )
    sheet.append(["E1", SECTION_NAME, 2, 1234.5, datetime(2026, 11, 27, 9, 30, 5), date(2026, 11, 27), None])
    sheet.append([None, None, None, None, None, None, None])
    sheet.append(["E2", None, 3, 12345678901.0, datetime(2026, 1, 2, 0, 0), None, "delete"])
    instructions = workbook.create_sheet("TENDER_PROJECT")
    instructions.append(["TENDER_PROJECT_CODE", "table"])
    instructions.append(["T1", None])
    instructions.append(["T2", "TENDER_PROJECT_2"])
    workbook.create_sheet("Sheet3")  # empty: skipped, even though its name is no table
    path = tmp_path / "upload.xlsx"
    workbook.save(path)
    return path


def test_xlsx_cells_become_text_without_losing_information(tmp_path: Path) -> None:
    items = list(read_path(_workbook(tmp_path), defaults={"category": "history"}))
    assert _raws(items) == [
        {
            "table": "502",
            "op": "insert",
            "category": "history",
            "data": {
                "BID_SECTION_CODE": "E1",
                "BID_SECTION_NAME": SECTION_NAME,
                "BID_ECTION_NUM": "2",
                "PRICE": "1234.5",
                "CREATE_TIME": "20261127093005",
                "DAY": "20261127",
            },
        },
        {
            "table": "502",
            "op": "delete",
            "category": "history",
            "data": {
                "BID_SECTION_CODE": "E2",
                "BID_ECTION_NUM": "3",
                "PRICE": "12345678901",
                "CREATE_TIME": "20260102000000",
            },
        },
        {
            "table": "TENDER_PROJECT",
            "op": "insert",
            "category": "history",
            "data": {"TENDER_PROJECT_CODE": "T1"},
        },
        {
            "table": "TENDER_PROJECT_2",
            "op": "insert",
            "category": "history",
            "data": {"TENDER_PROJECT_CODE": "T2"},
        },
    ]
    assert [(item.line, item.extra) for item in items] == [
        (2, {"sheet": "502-SECTION"}),
        (4, {"sheet": "502-SECTION"}),
        (2, {"sheet": "TENDER_PROJECT"}),
        (3, {"sheet": "TENDER_PROJECT"}),
    ]


def test_xlsx_sheet_without_a_table_name_is_refused(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["BID_SECTION_CODE"])
    sheet.append(["E1"])
    path = tmp_path / "upload.xlsx"
    workbook.save(path)
    with pytest.raises(InputFormatError, match="table"):
        list(read_path(path))
    (item,) = read_path(path, table="SECTION")
    assert item.raw == {"table": "SECTION", "op": "insert", "data": {"BID_SECTION_CODE": "E1"}}


def test_xlsx_data_under_an_empty_first_row_is_refused(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "SECTION"
    sheet["A3"] = "BID_SECTION_CODE"
    sheet["A4"] = "E1"
    path = tmp_path / "upload.xlsx"
    workbook.save(path)
    with pytest.raises(InputFormatError, match="no header"):
        list(read_path(path))


def test_broken_xlsx_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "upload.xlsx", "not a zip file")
    with pytest.raises(InputFormatError, match="XLSX"):
        read_path(path)


# --- XML -------------------------------------------------------------------------------------

SINGLE_XML = f"""<?xml version="1.0" encoding="{{encoding}}"?>
<root>
  <title>
    <DATA_NO>502</DATA_NO>
    <DATA_EN>SECTION</DATA_EN>
    <DATA_TYPE>2</DATA_TYPE>
    <DATA_KEY>3501502000000000000001</DATA_KEY>
    <CATEGORY>2</CATEGORY>
  </title>
  <context>
    <BID_SECTION_CODE> E1 </BID_SECTION_CODE>
    <BID_SECTION_NAME>{SECTION_NAME}</BID_SECTION_NAME>
    <BID_SECTION_CONTENT>   </BID_SECTION_CONTENT>
  </context>
  <SOURCE>
    <FILE><FILE_EN_NAME>BID_FILE</FILE_EN_NAME><BINARY_CONTENT>a.pdf</BINARY_CONTENT><IS_DELETE>0</IS_DELETE></FILE>
  </SOURCE>
</root>
"""

SINGLE_RAW = {
    "table": "502",
    "op": "update",
    "category": "history",
    "key": "3501502000000000000001",
    "data": {"BID_SECTION_CODE": "E1", "BID_SECTION_NAME": SECTION_NAME},
    "attachments": [{"FILE_EN_NAME": "BID_FILE", "BINARY_CONTENT": "a.pdf", "IS_DELETE": "0"}],
}


@pytest.mark.parametrize(
    ("declared", "codec"), [("UTF-8", "utf-8"), ("GBK", "gbk"), ("GB2312", "gbk"), ("GB18030", "gb18030")]
)
def test_xml_single_envelope_in_every_encoding(tmp_path: Path, declared: str, codec: str) -> None:
    path = _write(tmp_path, "record.xml", SINGLE_XML.format(encoding=declared), codec)
    (item,) = read_path(path)
    assert item.raw == SINGLE_RAW
    assert item.line == 1
    assert item.extra == {"title": {"DATA_EN": "SECTION"}}


def _envelope(data_type: str, code: str) -> str:
    return (
        f"<DATA><TITLE><DATA_NO>SECTION</DATA_NO><DATA_TYPE>{data_type}</DATA_TYPE></TITLE>"
        f"<CONTEXT><BID_SECTION_CODE>{code}</BID_SECTION_CODE></CONTEXT></DATA>"
    )


def test_xml_several_envelopes_and_data_type_mapping() -> None:
    body = "".join(_envelope(t, f"E{t}") for t in ("1", "2", "3", "9"))
    document = f"<DATAS><validation><SYSTEM_NO>A001</SYSTEM_NO></validation>{body}</DATAS>"
    items = list(read_xml(document.encode(), "batch.xml", defaults={"category": "realtime"}))
    assert [item.line for item in items] == [1, 2, 3, 4]
    assert [(item.raw or {})["op"] for item in items] == ["insert", "update", "delete", "9"]
    assert items[3].raw == {
        "table": "SECTION",
        "op": "9",
        "category": "realtime",
        "data": {"BID_SECTION_CODE": "E9"},
    }


def test_xml_delete_without_context_has_empty_data() -> None:
    document = "<r><Title><DATA_NO>502</DATA_NO><DATA_TYPE>3</DATA_TYPE><DATA_KEY>K</DATA_KEY></Title></r>"
    (item,) = read_xml(document.encode(), "d.xml")
    assert item.raw == {"table": "502", "op": "delete", "key": "K", "data": {}}


def test_xml_envelopes_are_found_at_any_depth_in_document_order() -> None:
    nested = "<A>" * 5000 + _envelope("1", "E1") + "</A>" * 5000
    document = f"<ROOT><X>{_envelope('2', 'E0')}</X>{nested}<Y>{_envelope('3', 'E2')}</Y></ROOT>"
    items = list(read_xml(document.encode(), "deep.xml"))
    assert [(item.raw or {})["data"]["BID_SECTION_CODE"] for item in items] == ["E0", "E1", "E2"]


def test_xml_flat_source_is_one_attachment() -> None:
    document = (
        "<r><TITLE><DATA_NO>502</DATA_NO><DATA_TYPE>1</DATA_TYPE></TITLE>"
        "<source><FILE_EN_NAME>BID_FILE</FILE_EN_NAME><BINARY_CONTENT>a.pdf</BINARY_CONTENT></source></r>"
    )
    (item,) = read_xml(document.encode(), "a.xml")
    assert item.raw is not None
    assert item.raw["attachments"] == [{"FILE_EN_NAME": "BID_FILE", "BINARY_CONTENT": "a.pdf"}]


def test_xml_duplicate_column_is_an_error_item() -> None:
    document = "<r><TITLE><DATA_NO>502</DATA_NO></TITLE><CONTEXT><A>1</A><A>2</A></CONTEXT></r>"
    (item,) = read_xml(document.encode(), "d.xml")
    assert item.raw is None
    assert item.error is not None and "duplicate element A" in item.error


@pytest.mark.parametrize(
    "document",
    [
        '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>\n<r>&b;</r>',
        '<!doctype r SYSTEM "file:///etc/passwd"><r/>',
        '<r>\n<!ENTITY x "y"></r>',
    ],
    ids=["billion-laughs", "xxe", "entity"],
)
def test_xml_dtd_and_entities_are_refused(document: str) -> None:
    with pytest.raises(InputFormatError, match="must not contain"):
        read_xml(document.encode(), "evil.xml")


def test_malformed_xml_is_refused_with_its_position() -> None:
    document = (
        "<DATAS>\n"
        "  <DATA><TITLE><DATA_NO>502</DATA_NO></TITLE>\n"
        "  <CONTEXT><A>1</B></CONTEXT></DATA>\n"
        "</DATAS>"
    )
    with pytest.raises(InputFormatError) as caught:
        read_xml(document.encode(), "bad.xml")
    # 1-based, pointing at the mismatched name: "  <CONTEXT><A>1</B>" has B in column 18.
    assert (caught.value.line, caught.value.column) == (3, 18)
    assert "line 3, column 18" in caught.value.message_en
    assert "mismatched tag" in caught.value.message_en


def test_xml_without_title_is_refused() -> None:
    with pytest.raises(InputFormatError, match="TITLE"):
        read_xml(b"<DATAS><DATA><CONTEXT/></DATA></DATAS>", "x.xml")


# --- writers: round trips -----------------------------------------------------------------


def test_jsonl_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    write_jsonl(RECORDS, path)
    assert SECTION_NAME in path.read_text(encoding="utf-8")  # not \\u-escaped
    assert _raws(list(read_path(path))) == RECORDS


def test_csv_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write_csv(RECORDS, path)
    header = path.read_text(encoding="utf-8").splitlines()[0]
    assert header == (
        "BID_SECTION_CODE,BID_SECTION_NAME,CONTRACT_RECKON_PRICE,table,op,category,spec_version,published_at,key"
    )
    assert _raws(list(read_path(path))) == RECORDS


def test_csv_writer_refuses_what_csv_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one table"):
        write_csv([RECORDS[0], {**RECORDS[1], "table": "TENDER_PROJECT"}], tmp_path / "x.csv")
    with pytest.raises(ValueError, match="attachments"):
        write_csv([{**RECORDS[0], "attachments": [{"FILE_EN_NAME": "X"}]}], tmp_path / "x.csv")


@pytest.mark.parametrize(("encoding", "codec"), [("UTF-8", "utf-8"), ("GBK", "gb18030")])
def test_xml_round_trip(tmp_path: Path, encoding: Any, codec: str) -> None:
    records = [*RECORDS, {**SINGLE_RAW, "data": {"BID_SECTION_NAME": "生僻字𠀀"}}]
    path = tmp_path / "out.xml"
    write_xml(records, path, encoding=encoding)
    data = path.read_bytes()
    assert data.startswith(f'<?xml version="1.0" encoding="{encoding}"?>'.encode("ascii"))
    assert "生僻字𠀀".encode(codec) in data
    assert _raws(list(read_path(path))) == records
