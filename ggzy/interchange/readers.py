"""Readers and writers for the record interchange format: JSON Lines, CSV, XLSX and provincial XML.

Every reader yields :class:`SourceItem` objects whose ``raw`` is an envelope dict::

    {"table": ..., "op": ..., ["category", "spec_version", "published_at", "key"], "data": {...},
     ["attachments": [...]]}

Readers do not validate: they only translate a container into envelopes, keeping every value as
text so the validator sees exactly what the sender wrote. A problem with one record (a broken JSON
line, a CSV row wider than its header) becomes an item with ``error`` set; a problem with the
whole input (unknown type, bad encoding, broken XML or XLSX, no header) raises an
:class:`~ggzy.interchange.errors.InputError` — from the call itself where the check is cheap, or
while iterating (XLSX sheets are checked one by one as they are streamed).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path, PurePath
from typing import Any, Literal
from xml.parsers import expat

from ggzy.interchange.encoding import decode_bytes, decode_xml_bytes
from ggzy.interchange.errors import InputFormatError, InputTooLargeError
from ggzy.interchange.record import SourceItem

__all__ = [
    "ENVELOPE_COLUMNS",
    "NOTES_SHEET_MARK",
    "read_csv",
    "read_jsonl",
    "read_path",
    "read_xlsx",
    "read_xml",
    "write_csv",
    "write_jsonl",
    "write_xml",
]

# Columns of a CSV/XLSX header that belong to the envelope, not to ``data``. Lower case on
# purpose: national column names are upper case, so the two cannot collide.
NOTES_SHEET_MARK = "#"  # a workbook's sheet of notes for people, skipped by the reader
ENVELOPE_COLUMNS = ("table", "op", "category", "spec_version", "published_at", "key")

_JSON_SUFFIXES = frozenset({".jsonl", ".json", ".ndjson"})
_SUFFIXES = _JSON_SUFFIXES | {".csv", ".xlsx", ".xml"}

_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NUMBERED_NAME = re.compile(r"(\d{3,4})(?:[-_ ].*)?\Z")  # 502, 502-SECTION, 502_标段
_TABLE_NAME = re.compile(r"[A-Z][A-Z0-9_]*\Z")  # SECTION, TENDER_PROJECT

# Long free-text columns (C..ul) easily exceed csv's default 128 KiB field limit.
_CSV_FIELD_LIMIT = 64 * 1024 * 1024

_OP_BY_DATA_TYPE = {"1": "insert", "2": "update", "3": "delete"}
_DATA_TYPE_BY_OP = {op: code for code, op in _OP_BY_DATA_TYPE.items()}
_CATEGORY_BY_CODE = {
    "1": "realtime",
    "2": "history",
    "3": "test",
    "实时数据": "realtime",
    "历史数据": "history",
    "测试数据": "test",
}
# TITLE children that map onto envelope keys; any others are kept in ``extra["title"]``.
_TITLE_FIELDS = {
    "DATA_NO": "table",
    "DATA_TYPE": "op",
    "DATA_KEY": "key",
    "CATEGORY": "category",
    "SPEC_VERSION": "spec_version",
    "PUBLISHED_AT": "published_at",
}
_XML_ENVELOPE_ORDER = ("table", "op", "key", "category", "spec_version", "published_at")
_XML_TAG_BY_KEY = {key: tag for tag, key in _TITLE_FIELDS.items()}
_DTD = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
# Characters XML 1.0 cannot carry at all; writing them would produce a file nobody can parse.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# --------------------------------------------------------------------------------------------
# Entry point


def read_path(
    path: Path,
    *,
    table: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    max_bytes: int | None = None,
) -> Iterator[SourceItem]:
    """Read a file, choosing the reader by its suffix (``.jsonl``/``.json``/``.ndjson``, ``.csv``,
    ``.xlsx``, ``.xml``).

    ``table`` is used where the input does not name the table itself; ``defaults`` fill envelope
    keys the input leaves out (e.g. ``{"category": "history"}``). The suffix, size and encoding are
    checked before this returns.
    """
    source = str(path)
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise InputFormatError(
            f"不支持的文件类型“{path.suffix or '（无扩展名）'}”（支持 .jsonl/.json/.ndjson/.csv/.xlsx/.xml）",
            f"unsupported file type {path.suffix!r} (use .jsonl, .json, .ndjson, .csv, .xlsx or .xml)",
            source=source,
        )
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise InputTooLargeError(source=source, size=size, max_bytes=max_bytes)
    if size == 0:
        raise _empty_file(source)
    if suffix == ".xlsx":
        return read_xlsx(path, source, table, defaults)
    data = path.read_bytes()
    if suffix == ".xml":
        return read_xml(data, source, table=table, defaults=defaults)
    text = decode_bytes(data, source=source)
    if suffix == ".csv":
        return read_csv(text, source, table, defaults)
    return read_jsonl(text, source, table=table, defaults=defaults)


# --------------------------------------------------------------------------------------------
# JSON Lines / JSON


def read_jsonl(
    text: str,
    source: str,
    *,
    table: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Iterator[SourceItem]:
    """One record per non-blank line; also a whole-file JSON array of records, or one object.

    A line that is not a JSON object becomes an item with ``error`` (its line number kept), so the
    other lines are still read. For a JSON array, ``line`` is the element's 1-based position.
    """
    text = text.removeprefix("\ufeff")  # a BOM left by a caller that decoded with plain utf-8
    if not text.strip():
        raise _empty_file(source)
    document = _whole_json_document(text, source)
    if isinstance(document, list):
        return _json_array_items(document, source, table, defaults)
    if isinstance(document, dict):
        line = text[: len(text) - len(text.lstrip())].count("\n") + 1  # where the object starts
        return iter([_json_item(document, source, line, table, defaults)])
    return _json_line_items(text, source, table, defaults)


def _whole_json_document(text: str, source: str) -> object | None:
    """The file parsed as a single JSON document (array or object), or None when it is JSON Lines.

    A file that starts with ``[`` but is not valid JSON is refused with the parser's position,
    unless its first line is JSON by itself (then it is JSON Lines with a bad first record).
    Parsing a JSON Lines file whole fails fast, right after its first record ("Extra data").
    """
    start = text.lstrip()[:1]
    if start not in ("[", "{"):
        return None
    try:
        document: object = _loads(text)
    except ValueError as exc:
        if start == "{" or _first_line_is_json(text):
            return None
        line, column = (exc.lineno, exc.colno) if isinstance(exc, json.JSONDecodeError) else (None, None)
        raise InputFormatError(
            f"JSON 数组格式错误：{exc}",
            f"malformed JSON array: {exc}",
            source=source,
            line=line,
            column=column,
        ) from exc
    return document


def _first_line_is_json(text: str) -> bool:
    first = next(line for line in text.split("\n") if line.strip())
    try:
        _loads(first)
    except ValueError:
        return False
    return True


def _json_array_items(
    elements: list[Any], source: str, table: str | None, defaults: Mapping[str, Any] | None
) -> Iterator[SourceItem]:
    for position, element in enumerate(elements, start=1):
        yield _json_item(element, source, position, table, defaults)


def _json_line_items(
    text: str, source: str, table: str | None, defaults: Mapping[str, Any] | None
) -> Iterator[SourceItem]:
    # Split on "\n" only: str.splitlines() would also split on U+2028, U+0085 … which JSON allows
    # unescaped inside strings.
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = _loads(line)
        except ValueError as exc:
            detail = f"{exc.msg} (column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else str(exc)
            yield SourceItem(source=source, line=line_no, error=detail)
            continue
        yield _json_item(value, source, line_no, table, defaults)


def _json_item(
    value: object, source: str, line: int, table: str | None, defaults: Mapping[str, Any] | None
) -> SourceItem:
    if not isinstance(value, dict):
        kind = _json_kind(value)
        return SourceItem(
            source=source, line=line, error=f"JSON 值是{kind[0]}而不是对象 (a JSON {kind[1]}, not an object)"
        )
    if table is not None:
        value.setdefault("table", table)
    return SourceItem(source=source, line=line, raw=_apply_defaults(value, defaults))


def _json_kind(value: object) -> tuple[str, str]:
    if isinstance(value, list):
        return "数组", "array"
    if isinstance(value, str):
        return "字符串", "string"
    if isinstance(value, bool):
        return "布尔值", "boolean"
    if value is None:
        return "null", "null"
    return "数值", "number"


def _loads(text: str) -> object:
    """json.loads, but strict: no NaN/Infinity (not JSON) and no duplicate keys (data would be lost)."""
    return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} 不是合法的 JSON 值 ({name} is not valid JSON)")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("对象中有重复的键 (an object holds the same key twice)")
        result[key] = value
    return result


# --------------------------------------------------------------------------------------------
# CSV


def read_csv(
    text: str,
    source: str,
    table: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Iterator[SourceItem]:
    """Header row of national column names (plus optional envelope columns), one record per row.

    The table comes from a ``table`` column, else ``table``, else the file name (``502-SECTION.csv``,
    ``SECTION.csv``, ``502.csv``). ``line`` is the row number, the header being row 1.
    """
    _raise_csv_field_limit()
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header, fallback_table = _csv_header(reader, source, table)
    return _csv_items(reader, header, source, fallback_table, defaults)


def _csv_header(reader: Iterator[list[str]], source: str, table: str | None) -> tuple[list[str], str | None]:
    """The header row and the table of rows without a ``table`` column (argument, else file name)."""
    try:
        first_row = next(reader, [])
    except csv.Error as exc:
        raise _csv_error(exc, 1, source) from exc
    header = _header(first_row, source, where="CSV")
    fallback_table = table or _table_hint(PurePath(source).stem)
    if "table" not in header and fallback_table is None:
        raise _no_table(
            source, "把文件命名为 502-SECTION.csv 或 SECTION.csv", "name the file 502-SECTION.csv"
        )
    return header, fallback_table


def _csv_items(
    reader: Iterator[list[str]],
    header: list[str],
    source: str,
    table: str | None,
    defaults: Mapping[str, Any] | None,
) -> Iterator[SourceItem]:
    row_no = 1
    try:
        for row_no, row in enumerate(reader, start=2):
            cells: list[str | None] = [cell or None for cell in row]
            if _blank(cells):
                continue
            yield _row_item(header, cells, source, row_no, table, defaults)
    except csv.Error as exc:
        raise _csv_error(exc, row_no + 1, source) from exc


def _csv_error(exc: csv.Error, row_no: int, source: str) -> InputFormatError:
    return InputFormatError(
        f"CSV 格式错误：第 {row_no} 行：{exc}",
        f"malformed CSV at row {row_no}: {exc}",
        source=source,
        line=row_no,
    )


def _raise_csv_field_limit() -> None:
    # csv.field_size_limit is process-wide; only ever raise it, never lower what someone else set.
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)


# --------------------------------------------------------------------------------------------
# XLSX


def read_xlsx(
    path: Path,
    source: str,
    table: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Iterator[SourceItem]:
    """One table per sheet: the sheet name (``SECTION``, ``502``, ``502-SECTION``) names it unless a
    ``table`` column or the ``table`` argument does; the first row is the header. A sheet whose name
    starts with ``#`` holds notes for people (``ggzy node rejects export``'s list of problems) and is
    not read.

    Cells become text without losing information: integers without ``.0``, date-times as
    ``yyyyMMddHHmmss``, dates as ``yyyyMMdd``. Formulas are read as their cached values.
    ``extra`` holds ``{"sheet": name}``.
    """
    workbook = _open_workbook(path, source)
    return _workbook_items(workbook, source, table, defaults)


def _open_workbook(path: Path, source: str) -> Any:
    import openpyxl  # a heavy import, only needed for spreadsheets

    try:
        # data_only: the cached result of a formula, not the formula text.
        return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises anything from BadZipFile to KeyError on broken files
        raise InputFormatError(
            f"无法打开 XLSX 文件：{exc}", f"cannot open the XLSX workbook: {exc}", source=source
        ) from exc


def _workbook_items(
    workbook: Any, source: str, table: str | None, defaults: Mapping[str, Any] | None
) -> Iterator[SourceItem]:
    try:
        for sheet in workbook.worksheets:
            if not sheet.title.startswith(NOTES_SHEET_MARK):
                yield from _sheet_items(sheet, source, table, defaults)
    finally:
        workbook.close()  # read-only mode keeps the zip file open until closed


def _sheet_items(
    sheet: Any, source: str, table: str | None, defaults: Mapping[str, Any] | None
) -> Iterator[SourceItem]:
    # Some writers store a wrong <dimension>; without this, rows beyond it would be dropped silently.
    sheet.reset_dimensions()
    rows = iter(sheet.iter_rows())
    first = [_cell_text(cell) for cell in next(rows, ())]
    where = f"工作表“{sheet.title}”"
    if _blank(first):
        # An empty sheet carries nothing; data below an empty first row has no header.
        if any(not _blank([_cell_text(cell) for cell in row]) for row in rows):
            _header([], source, where=where)
        return
    header = _header([value or "" for value in first], source, where=where)
    sheet_table = table or _table_hint(sheet.title)
    if "table" not in header and sheet_table is None:
        raise _no_table(
            source, f"把{where}命名为 502-SECTION 或 SECTION", f"name sheet {sheet.title!r} 502-SECTION"
        )
    for row_no, row in enumerate(rows, start=2):
        cells = [_cell_text(cell) for cell in row]
        if _blank(cells):
            continue
        item = _row_item(header, cells, source, row_no, sheet_table, defaults)
        item.extra["sheet"] = sheet.title
        yield item


def _cell_text(cell: Any) -> str | None:
    """A cell's value as the text the sender meant; None for an empty cell."""
    value = cell.value
    if value is None or value == "":
        return None
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, datetime):
        if value.time() == time() and not _format_shows_time(getattr(cell, "number_format", "")):
            return value.strftime("%Y%m%d")  # a date cell: openpyxl hands it over as midnight
        return value.strftime("%Y%m%d%H%M%S")
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    if isinstance(value, time):
        return value.strftime("%H%M%S")
    return str(value)


def _float_text(value: float) -> str:
    # repr() is the shortest text that round-trips; Decimal avoids exponent notation (1e+16).
    number = Decimal(repr(value))
    if number == number.to_integral_value():
        return str(int(number))
    return format(number, "f")


def _format_shows_time(number_format: str) -> bool:
    # Drop quoted literals and [colour]/[$-locale] sections, then look for hour/second tokens.
    bare = re.sub(r'"[^"]*"|\[[^\]]*\]', "", number_format).lower()
    return "h" in bare or "s" in bare


# --------------------------------------------------------------------------------------------
# Shared by CSV and XLSX: header and rows


def _header(cells: list[str], source: str, *, where: str) -> list[str]:
    """Validate the header row: real column names, no duplicates. Empty names are allowed (unused
    trailing columns), values under them are reported per row."""
    names = [cell.strip() for cell in cells]
    present = [name for name in names if name]
    if not present:
        raise InputFormatError(f"{where}没有表头", f"{_en(where)} has no header row", source=source, line=1)
    bad = [position for position, name in enumerate(names, start=1) if name and not _COLUMN_NAME.match(name)]
    if bad:
        # The cell is not quoted: a file that is not records at all (a key, a password file…) must
        # not have its content copied into a report.
        raise InputFormatError(
            f"{where}第 1 行不是表头：第 {bad[0]} 列不是列名（第 1 行应为数据规范中的英文列名）",
            f"row 1 of {_en(where)} is not a header: column {bad[0]} is not a column name",
            source=source,
            line=1,
            column=bad[0],
        )
    duplicates = sorted({name for name in present if present.count(name) > 1})
    if duplicates:
        raise InputFormatError(
            f"{where}表头中列名重复：{', '.join(duplicates)}",
            f"duplicate columns in the header of {_en(where)}: {', '.join(duplicates)}",
            source=source,
            line=1,
        )
    return names


def _blank(cells: list[str | None]) -> bool:
    # Blank lines and rows of empty or blank cells are spreadsheet layout, not records.
    return all(cell is None or not cell.strip() for cell in cells)


def _en(where: str) -> str:
    return "the CSV file" if where == "CSV" else "the sheet"


def _row_item(
    header: list[str],
    cells: list[str | None],
    source: str,
    row_no: int,
    table: str | None,
    defaults: Mapping[str, Any] | None,
) -> SourceItem:
    envelope: dict[str, Any] = {}
    data: dict[str, str] = {}
    for index, value in enumerate(cells):
        if value is None:
            continue
        name = header[index] if index < len(header) else ""
        if not name:
            return SourceItem(
                source=source,
                line=row_no,
                error=f"第 {index + 1} 列有值但没有列名 (column {index + 1} has a value but no header)",
            )
        if name in ENVELOPE_COLUMNS:
            if value.strip():
                envelope[name] = value.strip()  # codes: surrounding blanks are never meaningful
        else:
            data[name] = value  # verbatim: the validator judges blanks in data
    if table is not None:
        envelope.setdefault("table", table)
    raw = _apply_defaults(envelope, defaults)
    raw.setdefault("op", "insert")
    raw["data"] = data
    return SourceItem(source=source, line=row_no, raw=_ordered(raw))


def _table_hint(name: str) -> str | None:
    """The table a file or sheet name points at: ``502-SECTION`` → ``502``, ``SECTION`` → itself.

    Resolution against the specification is the validator's job; this only refuses names that
    cannot be a table (``Sheet1``, ``export``)."""
    name = name.strip()
    numbered = _NUMBERED_NAME.match(name)
    if numbered:
        return numbered.group(1)
    return name if _TABLE_NAME.match(name) else None


def _no_table(source: str, hint_zh: str, hint_en: str) -> InputFormatError:
    return InputFormatError(
        f"无法确定数据表：请加入 table 列、指定表名，或{hint_zh}",
        f"cannot tell which table the rows belong to: add a table column, pass the table, or {hint_en}",
        source=source,
    )


# --------------------------------------------------------------------------------------------
# XML


def read_xml(
    data: bytes,
    source: str,
    *,
    table: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Iterator[SourceItem]:
    """The provincial envelope: ``TITLE`` (DATA_NO, DATA_TYPE, DATA_KEY …), ``CONTEXT`` (columns),
    ``SOURCE`` (attachments), alone or several under one root (``<DATAS><DATA>…</DATA></DATAS>``).

    Tag names are matched case-insensitively. ``line`` is the envelope's 1-based position.
    DOCTYPE/ENTITY declarations are refused before parsing (entity expansion, external entities).
    """
    text = decode_xml_bytes(data, source=source)
    _refuse_dtd(text, source)
    root = _parse_xml(text, source)
    envelopes = list(_find_envelopes(root))
    if not envelopes:
        raise InputFormatError(
            "XML 中没有找到 TITLE 元素（数据头）",
            "no TITLE element (record header) in the XML",
            source=source,
        )
    return (
        _xml_item(envelope, source, position, table, defaults)
        for position, envelope in enumerate(envelopes, start=1)
    )


def _refuse_dtd(text: str, source: str) -> None:
    match = _DTD.search(text)
    if match:
        line = text.count("\n", 0, match.start()) + 1
        raise InputFormatError(
            f"XML 不得包含 {match.group(1).upper()} 声明（第 {line} 行）",
            f"XML must not contain a {match.group(1).upper()} declaration (line {line})",
            source=source,
            line=line,
        )


def _parse_xml(text: str, source: str) -> ET.Element:
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        line, column = exc.position
        column += 1  # expat counts columns from 0; people and editors count from 1
        reason = expat.ErrorString(exc.code)
        raise InputFormatError(
            f"XML 格式错误：第 {line} 行第 {column} 列：{reason}",
            f"malformed XML at line {line}, column {column}: {reason}",
            source=source,
            line=line,
            column=column,
        ) from exc


def _local(tag: str) -> str:
    """Upper-cased tag without namespace: TITLE, title and {ns}Title all match."""
    return tag.rsplit("}", 1)[-1].upper()


def _find_envelopes(root: ET.Element) -> Iterator[ET.Element]:
    """Elements with a TITLE child, in document order, not looking inside an envelope.

    Iterative on purpose: a hostile document nested thousands deep must not hit the recursion limit.
    """
    stack = [root]
    while stack:
        element = stack.pop()
        if any(_local(child.tag) == "TITLE" for child in element):
            yield element
        else:
            stack.extend(reversed(element))


def _xml_item(
    envelope: ET.Element, source: str, position: int, table: str | None, defaults: Mapping[str, Any] | None
) -> SourceItem:
    parts: dict[str, list[ET.Element]] = {}
    for child in envelope:
        parts.setdefault(_local(child.tag), []).append(child)
    repeated = sorted(name for name in ("TITLE", "CONTEXT", "SOURCE") if len(parts.get(name, [])) > 1)
    if repeated:
        return SourceItem(
            source=source,
            line=position,
            error=f"{repeated[0]} 元素重复出现 (more than one {repeated[0]} element)",
        )
    try:
        title = _child_texts(parts["TITLE"][0], upper=True)
        data = _child_texts(parts["CONTEXT"][0], upper=False) if "CONTEXT" in parts else {}
        attachments = _attachments(parts["SOURCE"][0]) if "SOURCE" in parts else None
    except ValueError as exc:
        return SourceItem(source=source, line=position, error=str(exc))
    raw, unmapped = _title_envelope(title)
    if table is not None:
        raw.setdefault("table", table)
    raw = _apply_defaults(raw, defaults)
    raw["data"] = data
    if attachments is not None:
        raw["attachments"] = attachments
    item = SourceItem(source=source, line=position, raw=_ordered(raw))
    if unmapped:
        item.extra["title"] = unmapped
    return item


def _child_texts(parent: ET.Element, *, upper: bool) -> dict[str, str]:
    """Child element name → stripped text; empty children are left out, repeated ones refused."""
    texts: dict[str, str] = {}
    seen: set[str] = set()
    for child in parent:
        name = _local(child.tag) if upper else child.tag.rsplit("}", 1)[-1]
        if name in seen:
            raise ValueError(f"{_local(parent.tag)} 中元素 {name} 重复出现 (duplicate element {name})")
        seen.add(name)
        value = (child.text or "").strip()
        if value:
            texts[name] = value
    return texts


def _title_envelope(title: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    raw: dict[str, Any] = {}
    unmapped: dict[str, str] = {}
    for name, value in title.items():
        key = _TITLE_FIELDS.get(name)
        if key is None:
            unmapped[name] = value  # DATA_EN, DATA_CN, CA_KEY, ROUTE_WAY …
        elif key == "op":
            raw[key] = _OP_BY_DATA_TYPE.get(value, value)  # unknown codes pass through to the validator
        elif key == "category":
            raw[key] = _CATEGORY_BY_CODE.get(value, value)
        else:
            raw[key] = value
    return raw, unmapped


def _attachments(source_element: ET.Element) -> list[dict[str, str]]:
    children = list(source_element)
    if children and all(len(child) == 0 for child in children):
        # <SOURCE><FILE_EN_NAME>…</FILE_EN_NAME>…</SOURCE>: a single attachment written flat.
        return [_child_texts(source_element, upper=True)]
    return [_child_texts(child, upper=True) for child in children]


# --------------------------------------------------------------------------------------------
# Envelope helpers


def _apply_defaults(raw: dict[str, Any], defaults: Mapping[str, Any] | None) -> dict[str, Any]:
    for key, value in (defaults or {}).items():
        if key not in raw:
            raw[key] = copy.deepcopy(value)  # never share a mutable default between records
    return raw


def _ordered(raw: dict[str, Any]) -> dict[str, Any]:
    """Envelope keys in the documented order (readable output, stable diffs)."""
    order = ("table", "op", "category", "spec_version", "published_at", "key", "data", "attachments")
    ordered = {key: raw[key] for key in order if key in raw}
    ordered.update((key, value) for key, value in raw.items() if key not in ordered)
    return ordered


def _empty_file(source: str) -> InputFormatError:
    return InputFormatError("文件为空", "the file is empty", source=source)


# --------------------------------------------------------------------------------------------
# Writers


def write_jsonl(records: Iterable[Mapping[str, Any]], path: Path) -> None:
    """One JSON object per line, UTF-8 without BOM, Chinese characters unescaped."""
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, default=_jsonable) + "\n")


def _jsonable(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_csv(records: Iterable[Mapping[str, Any]], path: Path) -> None:
    """One table per file: data columns in first-seen order, then the envelope columns in use.

    Attachments cannot be expressed in CSV, so records carrying them are refused (ValueError)
    rather than written without them. With no records, only a ``table,op`` header is written.
    """
    rows = list(records)
    tables = {str(record.get("table")) for record in rows}
    if len(tables) > 1:
        raise ValueError(f"write_csv: one table per CSV file, got {sorted(tables)}")
    data_columns: dict[str, None] = {}
    for record in rows:
        if record.get("attachments"):
            raise ValueError("write_csv: attachments cannot be written to CSV; use JSON Lines or XML")
        data_columns.update(dict.fromkeys(record.get("data") or {}))
    clash = sorted(set(data_columns) & set(ENVELOPE_COLUMNS))
    if clash:
        raise ValueError(f"write_csv: data columns {clash} clash with envelope columns")
    envelope_columns = [name for name in ENVELOPE_COLUMNS if any(name in record for record in rows)]
    header = [*data_columns, *(envelope_columns or ["table", "op"])]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for record in rows:
            data = record.get("data") or {}
            writer.writerow(
                [_text(data.get(name) if name in data_columns else record.get(name)) for name in header]
            )


def write_xml(
    records: Iterable[Mapping[str, Any]], path: Path, encoding: Literal["UTF-8", "GBK"] = "UTF-8"
) -> None:
    """The provincial envelope format under a ``DATAS`` root, one ``DATA`` per record.

    ``GBK`` declares ``encoding="GBK"`` and writes GB18030 bytes, so characters outside GBK
    survive (the reader decodes GBK as GB18030).
    """
    codec = {"UTF-8": "utf-8", "GBK": "gb18030"}.get(encoding.upper())
    if codec is None:
        raise ValueError(f"write_xml: encoding must be UTF-8 or GBK, not {encoding!r}")
    root = ET.Element("DATAS")
    for record in records:
        root.append(_record_element(record))
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    path.write_bytes(f'<?xml version="1.0" encoding="{encoding.upper()}"?>\n{body}\n'.encode(codec))


def _record_element(record: Mapping[str, Any]) -> ET.Element:
    element = ET.Element("DATA")
    title = ET.SubElement(element, "TITLE")
    for key in _XML_ENVELOPE_ORDER:
        if record.get(key) is None:
            continue
        value = _text(record[key])
        if key == "op":
            value = _DATA_TYPE_BY_OP.get(value, value)
        _text_element(title, _XML_TAG_BY_KEY[key], value)
    context = ET.SubElement(element, "CONTEXT")
    for name, value in (record.get("data") or {}).items():
        _text_element(context, name, _text(value))
    attachments = record.get("attachments") or []
    if attachments:
        source = ET.SubElement(element, "SOURCE")
        for attachment in attachments:
            file_element = ET.SubElement(source, "FILE")
            for name, value in attachment.items():
                _text_element(file_element, name, _text(value))
    return element


def _text_element(parent: ET.Element, tag: str, text: str) -> None:
    if not _COLUMN_NAME.match(tag):
        raise ValueError(f"write_xml: {tag!r} cannot be an XML element name")
    if _XML_ILLEGAL.search(text):
        raise ValueError(f"write_xml: the value of {tag} contains a character XML cannot carry")
    ET.SubElement(parent, tag).text = text


def _text(value: Any) -> str:
    return "" if value is None else str(value)
