"""Reading a file of records of any size in bounded memory, from any record on (to resume).

:func:`survey` reads the file once: its SHA-256, its encoding (UTF-8 with or without BOM, or
GB18030 that looks like Chinese text, as :func:`~ggzy.interchange.encoding.decode_bytes` decides
for a whole file), and the limits that can be checked before anything is taken: the file's size,
its longest line, the inflated size and compression ratio of every part of an ``.xlsx``.

:func:`stream_items` then yields ``(item, position)`` pairs, one record at a time, whatever the
format: JSON Lines one line at a time (a JSON array element by element, with ijson), CSV one row at
a time, XML one envelope at a time (expat, refusing DTDs and entities), XLSX one row at a time
(openpyxl's read-only mode, its shared strings kept in a temporary file instead of a list). The
:class:`Position` after an item is where reading resumes after a crash: a byte offset for line
formats, a count of items to skip for the others.

Limits (:class:`ReadLimits`) bound what a hostile or broken file can make the reader hold: records
per file, bytes per line, per XML envelope and per XLSX row or shared string, inflated bytes and
compression ratio of an XLSX, XML size and depth. Past one, :class:`InputTooLargeError`
(``E-INPUT-TOO-LARGE``); a JSON line that is too long is refused alone (an item with ``error``).
No message quotes the file's content: a line number, a byte offset and a code.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any
from xml.parsers import expat

from ggzy.interchange.encoding import ChineseTextCheck, declared_xml_codec
from ggzy.interchange.errors import InputEncodingError, InputFormatError, InputTooLargeError
from ggzy.interchange.readers import (
    _blank,
    _csv_error,
    _csv_header,
    _json_item,
    _loads,
    _raise_csv_field_limit,
    _row_item,
    _sheet_items,
    _xml_item,
)
from ggzy.interchange.record import SourceItem
from ggzy.interchange.xlsx import WORKSHEET_PART, open_streaming_workbook

__all__ = ["Position", "ReadLimits", "Survey", "stream_items", "survey"]

_CHUNK = 1024 * 1024
_UTF8_BOM = b"\xef\xbb\xbf"
_TEXT_SUFFIXES = frozenset({".jsonl", ".json", ".ndjson", ".csv"})
_SHARED_STRINGS = "xl/sharedStrings.xml"
_RATIO_FLOOR = 1024 * 1024  # small parts may compress as well as they like


@dataclass(frozen=True, slots=True)
class ReadLimits:
    max_records: int = 2_000_000
    max_line_bytes: int = 8 * 1024 * 1024  # a line, an XML envelope, an XLSX row or shared string
    max_xlsx_inflated_bytes: int = 2 * 1024**3
    max_xlsx_ratio: int = 200
    max_xlsx_part_bytes: int = 64 * 1024 * 1024  # parts openpyxl reads whole: workbook, styles, rels
    max_xml_bytes: int = 2 * 1024**3
    max_xml_depth: int = 32


@dataclass(frozen=True, slots=True)
class Position:
    """Where reading stands: ``items`` yielded so far, the byte ``offset`` after the last one (line
    formats), the ``line`` (line, row or element number) of the last one."""

    items: int = 0
    offset: int = 0
    line: int = 0


@dataclass(frozen=True, slots=True)
class Survey:
    sha256: str
    size: int
    codec: str | None  # utf-8 | utf-8-sig | gb18030 (text and XML); None for XLSX
    long_line: int | None = None  # the first line longer than max_line_bytes (1-based)


# --------------------------------------------------------------------------------------------
# The survey


def survey(handle: IO[bytes], suffix: str, source: str, limits: ReadLimits) -> Survey:
    """Hash, check and classify the whole file in one pass (two for a GB18030 text file)."""
    suffix = suffix.lower()
    handle.seek(0)
    head = handle.read(4096)
    if not head:
        raise InputFormatError("文件为空", "the file is empty", source=source)
    declared = declared_xml_codec(head, source=source) if suffix == ".xml" else None
    handle.seek(0)
    digest = hashlib.sha256()
    size = 0
    text = suffix in _TEXT_SUFFIXES or (suffix == ".xml" and declared is None)
    codec = declared or ("utf-8-sig" if head.startswith(_UTF8_BOM) else "utf-8")
    decoder = codecs.getincrementaldecoder(codec)() if suffix != ".xlsx" else None
    failed_at: int | None = None  # the first byte that is not ``codec``
    line_run, line_no, long_line = 0, 1, None
    while chunk := handle.read(_CHUNK):
        digest.update(chunk)
        if decoder is not None and failed_at is None:
            nul = chunk.find(b"\x00")
            if nul >= 0:
                _refuse_nul(size + nul, source)
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                failed_at = size + exc.start
        if text:
            pieces = chunk.split(b"\n")
            line_run += len(pieces[0])
            if long_line is None and line_run > limits.max_line_bytes:
                long_line = line_no
            for piece in pieces[1:]:
                line_no += 1
                line_run = len(piece)
                if long_line is None and line_run > limits.max_line_bytes:
                    long_line = line_no
        size += len(chunk)
        if suffix == ".xml" and size > limits.max_xml_bytes:
            raise _too_large_file(source, size, limits.max_xml_bytes)
    if decoder is not None and failed_at is None:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            failed_at = size
    if failed_at is not None:
        if declared is not None or codec == "utf-8-sig":  # an explicit statement: no second guess
            raise InputEncodingError(
                source=source, offset=failed_at, declared="UTF-8" if declared is None else declared
            )
        codec = _gb18030_or_refuse(handle, source, failed_at)
    if suffix == ".xlsx":
        _check_xlsx(handle, source, limits)
        return Survey(digest.hexdigest(), size, None, long_line)
    return Survey(digest.hexdigest(), size, codec, long_line)


def _refuse_nul(offset: int, source: str) -> None:
    raise InputEncodingError(
        source=source,
        offset=offset,
        message_zh=f"无法识别文件编码：第 {offset} 字节处是 NUL 字符（可能是 UTF-16 或二进制文件）",
        message_en=f"cannot decode: byte {offset} is NUL (UTF-16 or a binary file?)",
    )


def _gb18030_or_refuse(handle: IO[bytes], source: str, utf8_offset: int) -> str:
    handle.seek(0)
    decoder = codecs.getincrementaldecoder("gb18030")()
    check = ChineseTextCheck()
    try:
        while chunk := handle.read(_CHUNK):
            check.feed(decoder.decode(chunk))
        check.feed(decoder.decode(b"", final=True))
    except UnicodeDecodeError:
        raise InputEncodingError(source=source, offset=utf8_offset) from None
    if not check.looks_chinese():
        raise InputEncodingError(source=source, offset=utf8_offset)
    return "gb18030"


def _too_large_file(source: str, size: int, limit: int) -> InputTooLargeError:
    return InputTooLargeError(source=source, size=size, max_bytes=limit)


def _check_xlsx(handle: IO[bytes], source: str, limits: ReadLimits) -> None:
    """Refuse a zip bomb before anything is inflated: the sizes the archive declares (zipfile never
    inflates an entry beyond its declared size: a lying entry fails its CRC instead)."""
    handle.seek(0)
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputFormatError(
            f"无法打开 XLSX 文件：{type(exc).__name__}",
            f"cannot open the XLSX workbook: {exc}",
            source=source,
        ) from None
    total = 0
    for info in archive.infolist():
        total += info.file_size
        if total > limits.max_xlsx_inflated_bytes:
            raise InputTooLargeError(
                source=source,
                size=total,
                max_bytes=limits.max_xlsx_inflated_bytes,
                message_zh=f"XLSX 解压后超过 {limits.max_xlsx_inflated_bytes} 字节上限（疑似压缩炸弹）",
                message_en=f"the XLSX inflates to more than {limits.max_xlsx_inflated_bytes} bytes",
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_FLOOR and ratio > limits.max_xlsx_ratio:
            raise InputTooLargeError(
                source=source,
                size=info.file_size,
                max_bytes=info.compress_size * limits.max_xlsx_ratio,
                message_zh=f"XLSX 中的部件压缩比 {ratio:.0f}:1 超过上限 {limits.max_xlsx_ratio}:1（疑似压缩炸弹）",
                message_en=f"an XLSX part has a compression ratio of {ratio:.0f}:1, over {limits.max_xlsx_ratio}:1",
            )
        whole = info.filename != _SHARED_STRINGS and not WORKSHEET_PART.match(info.filename)
        if (
            whole
            and info.filename.endswith((".xml", ".rels"))
            and info.file_size > limits.max_xlsx_part_bytes
        ):
            raise InputTooLargeError(
                source=source,
                size=info.file_size,
                max_bytes=limits.max_xlsx_part_bytes,
                message_zh=f"XLSX 的部件解压后超过 {limits.max_xlsx_part_bytes} 字节上限",
                message_en=f"an XLSX part inflates to more than {limits.max_xlsx_part_bytes} bytes",
            )


# --------------------------------------------------------------------------------------------
# Items


@dataclass(frozen=True, slots=True)
class _Reading:
    """One reading of a surveyed file, from ``start`` on."""

    handle: IO[bytes]
    source: str
    found: Survey
    limits: ReadLimits
    start: Position
    table: str | None
    defaults: Mapping[str, Any] | None

    @property
    def codec(self) -> str:
        return self.found.codec or "utf-8"


def stream_items(
    handle: IO[bytes],
    suffix: str,
    source: str,
    found: Survey,
    limits: ReadLimits,
    *,
    start: Position | None = None,
    table: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Iterator[tuple[SourceItem, Position]]:
    """Every item of the file after ``start``, with the position after it."""
    reading = _Reading(handle, source, found, limits, start or Position(), table, defaults)
    readers = {".csv": _csv_items, ".xml": _xml_items, ".xlsx": _xlsx_items}
    items = readers.get(suffix.lower(), _json_items)(reading)
    for item, position in items:
        if position.items > limits.max_records:
            raise InputTooLargeError(
                source=source,
                size=position.items,
                max_bytes=limits.max_records,
                message_zh=f"文件中的记录超过 {limits.max_records} 条上限（第 {position.line} 行起未读取），请拆分文件",
                message_en=f"more than {limits.max_records} records in the file; split it",
                line=position.line,
            )
        yield item, position


def _lines(handle: IO[bytes], codec: str, limit: int, offset: int) -> Iterator[tuple[str | None, int, int]]:
    """(text or None when longer than ``limit``, offset of the line, offset after it), line by line."""
    handle.seek(offset)
    text_codec = "utf-8" if codec == "utf-8-sig" else codec
    while True:
        at = handle.tell()
        raw = handle.readline(limit + 1)
        if not raw:
            return
        if len(raw) > limit and not raw.endswith(b"\n"):
            while (rest := handle.readline(_CHUNK)) and not rest.endswith(b"\n"):
                pass  # the rest of a line too long to hold: skipped, never kept
            yield None, at, handle.tell()
            continue
        text = raw.decode(text_codec)
        if at == 0:
            text = text.removeprefix("\ufeff")
        yield text, at, handle.tell()


# --- JSON ---


def _json_items(reading: _Reading) -> Iterator[tuple[SourceItem, Position]]:
    handle, source, start = reading.handle, reading.source, reading.start
    found, limits = reading.found, reading.limits
    table, defaults = reading.table, reading.defaults
    codec = found.codec or "utf-8"
    lead = _first_significant(handle, codec)
    if lead == "[":
        yield from _json_array_items(reading)
        return
    if lead == "{" and not start.items:
        first = next(
            (
                text
                for text, _, _ in _lines(handle, codec, limits.max_line_bytes, 0)
                if text is None or text.strip()
            ),
            None,
        )
        if first is None or not _parses(first):  # one object over several lines: the whole file is the record
            if found.size > limits.max_line_bytes:
                raise InputTooLargeError(
                    source=source,
                    size=found.size,
                    max_bytes=limits.max_line_bytes,
                    message_zh=f"JSON 对象超过 {limits.max_line_bytes} 字节上限；大文件请用 JSON Lines（每行一条记录）",
                    message_en=f"a JSON object over {limits.max_line_bytes} bytes; use JSON Lines for large files",
                )
            handle.seek(0)
            whole = handle.read().decode(codec).removeprefix("\ufeff")
            try:
                document = _loads(whole)
            except ValueError as exc:
                raise InputFormatError(
                    f"JSON 格式错误：{_json_reason(exc)}",
                    f"malformed JSON: {_json_reason(exc)}",
                    source=source,
                ) from None
            line = whole[: len(whole) - len(whole.lstrip())].count("\n") + 1
            yield _json_item(document, source, line, table, defaults), Position(1, found.size, line)
            return
    items, line_no = start.items, start.line
    for text, at, after in _lines(handle, codec, limits.max_line_bytes, start.offset):
        line_no += 1
        if text is None:
            items += 1
            error = f"行长度超过 {limits.max_line_bytes} 字节上限，未读取（第 {at} 字节起）(E-INPUT-TOO-LARGE, line over {limits.max_line_bytes} bytes at byte {at})"
            yield (
                SourceItem(source, line_no, error=error, extra={"offset": at}),
                Position(items, after, line_no),
            )
            continue
        if not text.strip():
            continue
        items += 1
        try:
            value = _loads(text)
        except ValueError as exc:
            error = f"{_json_reason(exc)}（第 {at} 字节起）"
            yield (
                SourceItem(source, line_no, error=error, extra={"offset": at}),
                Position(items, after, line_no),
            )
            continue
        yield _json_item(value, source, line_no, table, defaults), Position(items, after, line_no)


def _json_reason(exc: ValueError) -> str:
    """Why a JSON text failed, without quoting it: the parser's reason and column."""
    if hasattr(exc, "msg") and hasattr(exc, "colno"):
        return f"{exc.msg} (column {exc.colno})"
    return str(exc)


def _parses(text: str) -> bool:
    try:
        _loads(text)
    except ValueError:
        return False
    return True


def _first_significant(handle: IO[bytes], codec: str) -> str:
    handle.seek(0)
    head = handle.read(4096).decode(codec if codec != "utf-8-sig" else "utf-8", errors="ignore")
    return head.lstrip("\ufeff \t\r\n")[:1]


class _UniqueDict(dict[str, Any]):
    """ijson builds objects with this: a key twice would lose data silently."""

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self:
            raise ValueError("an object holds the same key twice")
        super().__setitem__(key, value)


def _json_array_items(reading: _Reading) -> Iterator[tuple[SourceItem, Position]]:
    handle, source, codec, start = reading.handle, reading.source, reading.codec, reading.start
    import ijson

    handle.seek(0)
    stream: IO[Any] = handle if codec == "utf-8" else io.TextIOWrapper(handle, encoding=codec)
    position = 0
    try:
        for element in ijson.items(stream, "item", use_float=True, map_type=_UniqueDict):
            position += 1
            if position <= start.items:
                continue
            value = dict(element) if isinstance(element, _UniqueDict) else element
            yield (
                _json_item(value, source, position, reading.table, reading.defaults),
                Position(position, 0, position),
            )
    except (ijson.JSONError, ValueError) as exc:
        raise InputFormatError(
            f"JSON 数组格式错误：第 {position + 1} 个元素：{type(exc).__name__}",
            f"malformed JSON array at element {position + 1}: {exc}",
            source=source,
            line=position + 1,
        ) from None
    finally:
        if stream is not handle:
            stream.detach()  # type: ignore[attr-defined]


# --- CSV ---


def _csv_items(reading: _Reading) -> Iterator[tuple[SourceItem, Position]]:
    handle, source, start = reading.handle, reading.source, reading.start
    found, limits = reading.found, reading.limits
    table, defaults = reading.table, reading.defaults
    if found.long_line is not None:
        raise InputTooLargeError(
            source=source,
            size=limits.max_line_bytes + 1,
            max_bytes=limits.max_line_bytes,
            message_zh=f"第 {found.long_line} 行超过 {limits.max_line_bytes} 字节上限",
            message_en=f"line {found.long_line} is longer than {limits.max_line_bytes} bytes",
            line=found.long_line,
        )
    _raise_csv_field_limit()
    codec = found.codec or "utf-8"
    feed = _LineFeed(handle, codec, limits.max_line_bytes, 0)
    reader = csv.reader(feed)
    header, fallback = _csv_header(reader, source, table)
    if start.items:
        feed.restart(start.offset)
    items, row_no = start.items, max(start.line, 1)
    try:
        for row in reader:
            row_no += 1
            cells: list[str | None] = [cell or None for cell in row]
            if _blank(cells):
                continue
            items += 1
            yield (
                _row_item(header, cells, source, row_no, fallback, defaults),
                Position(items, feed.offset, row_no),
            )
    except csv.Error as exc:
        raise _csv_error(exc, row_no + 1, source) from None


class _LineFeed:
    """Decoded lines for :mod:`csv`, keeping the byte offset after the last line handed over (the
    reader asks for lines only as a row needs them, so that is where the row ends)."""

    def __init__(self, handle: IO[bytes], codec: str, limit: int, offset: int) -> None:
        self.handle, self.codec, self.limit = handle, codec, limit
        self.restart(offset)

    def restart(self, offset: int) -> None:
        self.offset = offset
        self._lines = _lines(self.handle, self.codec, self.limit, offset)

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        text, _, after = next(self._lines)
        self.offset = after
        return text or ""


# --- XML ---


class _Refused(Exception):
    def __init__(self, error: Exception) -> None:
        self.error = error


def _xml_items(reading: _Reading) -> Iterator[tuple[SourceItem, Position]]:
    handle, source, start = reading.handle, reading.source, reading.start
    found, limits = reading.found, reading.limits
    table, defaults = reading.table, reading.defaults
    """Envelopes (elements with a TITLE child, not inside another envelope) as they close."""
    parser = expat.ParserCreate(encoding="utf-8", namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[ET.Element] = []
    envelopes_open = [0]  # open elements that already have a TITLE child
    ready: list[ET.Element] = []
    held_from = [0]  # byte index of the last envelope handed over (or container dropped)

    def refuse(what: str) -> None:
        line = parser.CurrentLineNumber
        raise _Refused(
            InputFormatError(
                f"XML 不得包含 {what} 声明（第 {line} 行）",
                f"XML must not contain a {what} declaration (line {line})",
                source=source,
                line=line,
            )
        )

    def too_large(zh: str, en: str) -> None:
        raise _Refused(
            InputTooLargeError(
                source=source,
                size=parser.CurrentByteIndex,
                max_bytes=limits.max_line_bytes,
                message_zh=f"{zh}（第 {parser.CurrentLineNumber} 行）",
                message_en=f"{en} (line {parser.CurrentLineNumber})",
                line=parser.CurrentLineNumber,
            )
        )

    def start_element(name: str, _attributes: dict[str, str]) -> None:
        if len(stack) >= limits.max_xml_depth:
            too_large(
                f"XML 嵌套超过 {limits.max_xml_depth} 层", f"XML nested deeper than {limits.max_xml_depth}"
            )
        if parser.CurrentByteIndex - held_from[0] > limits.max_line_bytes:
            too_large(
                f"XML 数据元素超过 {limits.max_line_bytes} 字节",
                f"an XML envelope over {limits.max_line_bytes} bytes",
            )
        element = ET.Element(name)
        if stack:
            stack[-1].append(element)
            if _local(name) == "TITLE" and sum(1 for c in stack[-1] if _local(c.tag) == "TITLE") == 1:
                envelopes_open[0] += 1
        stack.append(element)

    def end_element(_name: str) -> None:
        if parser.CurrentByteIndex - held_from[0] > limits.max_line_bytes:
            too_large(
                f"XML 数据元素超过 {limits.max_line_bytes} 字节",
                f"an XML envelope over {limits.max_line_bytes} bytes",
            )
        element = stack.pop()
        parent = stack[-1] if stack else None
        has_title = any(_local(child.tag) == "TITLE" for child in element)
        if has_title:
            envelopes_open[0] -= 1
        if has_title and envelopes_open[0] == 0:
            ready.append(element)
            if parent is not None:
                parent.remove(element)
            held_from[0] = parser.CurrentByteIndex
        elif (
            parent is not None
            and len(element)
            and _local(element.tag) not in ("TITLE", "CONTEXT", "SOURCE")
            and _local(parent.tag) not in ("CONTEXT", "SOURCE", "TITLE")
        ):
            parent.remove(element)  # a container whose envelopes were handed over
            held_from[0] = parser.CurrentByteIndex

    def text(data: str) -> None:
        if stack:
            element = stack[-1]
            if not len(element):
                element.text = (element.text or "") + data
        if parser.CurrentByteIndex - held_from[0] > limits.max_line_bytes:
            too_large(
                f"XML 数据元素超过 {limits.max_line_bytes} 字节",
                f"an XML envelope over {limits.max_line_bytes} bytes",
            )

    parser.StartElementHandler = start_element
    parser.EndElementHandler = end_element
    parser.CharacterDataHandler = text
    parser.StartDoctypeDeclHandler = lambda *_: refuse("DOCTYPE")
    parser.EntityDeclHandler = lambda *_: refuse("ENTITY")
    parser.ExternalEntityRefHandler = lambda *_: refuse("ENTITY")  # type: ignore[assignment]

    codec = found.codec or "utf-8"
    handle.seek(0)
    decoder = codecs.getincrementaldecoder(codec)()
    position = 0
    while True:
        chunk = handle.read(_CHUNK)
        final = not chunk
        piece = decoder.decode(chunk, final=final)
        if position == 0 and not parser.CurrentByteIndex:
            piece = piece.removeprefix("\ufeff")
        try:
            parser.Parse(piece.encode("utf-8"), final)
        except _Refused as refused:
            raise refused.error from None
        except expat.ExpatError as exc:
            column = exc.offset + 1
            reason = expat.ErrorString(exc.code)
            raise InputFormatError(
                f"XML 格式错误：第 {exc.lineno} 行第 {column} 列：{reason}",
                f"malformed XML at line {exc.lineno}, column {column}: {reason}",
                source=source,
                line=exc.lineno,
                column=column,
            ) from None
        for envelope in ready:
            position += 1
            if position > start.items:
                yield _xml_item(envelope, source, position, table, defaults), Position(position, 0, position)
        ready.clear()
        if final:
            break
    if position == 0:
        raise InputFormatError(
            "XML 中没有找到 TITLE 元素（数据头）",
            "no TITLE element (record header) in the XML",
            source=source,
        )


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].upper()


# --- XLSX ---


def _xlsx_items(reading: _Reading) -> Iterator[tuple[SourceItem, Position]]:
    reading.handle.seek(0)
    workbook = open_streaming_workbook(reading.handle, reading.source, reading.limits.max_line_bytes)
    position = 0
    try:
        for sheet in workbook.worksheets:
            for item in _sheet_items(sheet, reading.source, reading.table, reading.defaults):
                position += 1
                if position > reading.start.items:
                    yield item, Position(position, 0, item.line)
    finally:
        workbook.close()
        strings = getattr(workbook, "_ggzy_strings", None)
        if strings is not None:
            strings.close()


class DiskStrings:
    """An XLSX shared-string table in a temporary file: memory holds 8 bytes per string, not the
    strings (openpyxl keeps the whole table in a list, a zip bomb's worth of text)."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115  (closed by close(), when the workbook is)
        self._offsets = array("Q", [0])
        self._cache: dict[int, str] = {}

    def append(self, value: str) -> None:
        self._file.seek(0, os.SEEK_END)
        self._file.write(value.encode("utf-8"))
        self._offsets.append(self._file.tell())

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, index: int) -> str:
        found = self._cache.get(index)
        if found is not None:
            return found
        if not 0 <= index < len(self):
            raise IndexError(index)
        start, end = self._offsets[index], self._offsets[index + 1]
        self._file.seek(start)
        value = self._file.read(end - start).decode("utf-8")
        if len(self._cache) >= 4096:
            self._cache.clear()
        self._cache[index] = value
        return value

    def close(self) -> None:
        self._file.close()
