"""openpyxl's read-only workbook, held in bounded memory whatever the workbook inflates to.

openpyxl streams a worksheet row by row in read-only mode, but reads the shared-string table into
a list and trusts every part of the archive: a 300 KB workbook inflating to 300 MB of strings took
a node from 138 to 743 MiB. Here the shared strings go to a temporary file as they are parsed
(:class:`~ggzy.interchange.stream.DiskStrings`), and every worksheet and the string table are read
through :class:`PieceGuard`, which refuses a row or a string longer than the limit before the
parser could build it. The sizes the archive declares were checked before (``stream._check_xlsx``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import IO, Any

from ggzy.interchange.errors import InputFormatError, InputTooLargeError

__all__ = ["WORKSHEET_PART", "PieceGuard", "open_streaming_workbook"]

_SI = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}si"
WORKSHEET_PART = re.compile(r"xl/worksheets/[^/]+\.xml\Z")  # streamed, row by row


class PieceGuard:
    """A read-only stream that refuses to go on once ``limit`` bytes pass without ``marker`` (the
    start of a row, of a string): no single row or string can grow beyond the limit in memory."""

    def __init__(self, raw: IO[bytes], marker: bytes, limit: int, source: str) -> None:
        self.raw, self.marker, self.limit, self.source = raw, marker, limit, source
        self._since = 0
        self._tail = b""

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size if size and size > 0 else 1024 * 1024)
        if not data:
            return data
        window = self._tail + data
        found = window.rfind(self.marker)
        if found >= 0:
            self._since = len(window) - found
        else:
            self._since += len(data)
        self._tail = window[-(len(self.marker) - 1) :]
        if self._since > self.limit:
            raise InputTooLargeError(
                source=self.source,
                size=self._since,
                max_bytes=self.limit,
                message_zh=f"XLSX 中一行或一个字符串超过 {self.limit} 字节上限（疑似压缩炸弹）",
                message_en=f"a row or a string of the XLSX is over {self.limit} bytes",
            )
        return data

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> PieceGuard:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class _GuardedArchive:
    """The workbook's zip archive, handing out worksheets through :class:`PieceGuard`."""

    def __init__(self, archive: Any, limit: int, source: str) -> None:
        self._archive, self._limit, self._source = archive, limit, source

    def open(self, name: str, *args: Any, **kwargs: Any) -> Any:
        opened = self._archive.open(name, *args, **kwargs)
        if WORKSHEET_PART.match(name):
            return PieceGuard(opened, b"<row", self._limit, self._source)
        return opened  # other parts: their declared size was checked, and they are small

    def __getattr__(self, name: str) -> Any:
        return getattr(self._archive, name)


def open_streaming_workbook(handle: IO[bytes], source: str, limit: int) -> Any:
    """The workbook in ``handle`` (read-only, cached formula values), strings on disk, parts guarded."""
    from openpyxl.cell.text import Text
    from openpyxl.packaging.manifest import Manifest  # noqa: F401  (openpyxl's import order)
    from openpyxl.reader.excel import SHARED_STRINGS, ExcelReader

    from ggzy.interchange.stream import DiskStrings

    class StreamingReader(ExcelReader):  # type: ignore[misc]
        def read(self) -> None:
            # Guarded from the start: opening a sheet reads it (looking for its dimensions).
            archive: Any = getattr(self, "archive")  # noqa: B009  (openpyxl's attribute, untyped)
            self.archive = _GuardedArchive(archive, limit, source)
            super().read()

        def read_strings(self) -> None:
            strings = DiskStrings()
            self.shared_strings = strings
            found = self.package.find(SHARED_STRINGS)
            if found is None:
                return
            with PieceGuard(self.archive.open(found.PartName[1:]), b"<si", limit, source) as src:
                root = None
                for event, node in ET.iterparse(src, events=("start", "end")):
                    if root is None:
                        root = node
                    if event == "end" and node.tag == _SI:
                        strings.append(Text.from_tree(node).content.replace("x005F_", ""))
                        root.clear()  # nothing kept of a string once stored

    try:
        reader = StreamingReader(handle, read_only=True, keep_vba=False, data_only=True, keep_links=False)
        reader.read()
    except InputTooLargeError:
        raise
    except Exception as exc:  # openpyxl raises anything from BadZipFile to KeyError on broken files
        raise InputFormatError(
            f"无法打开 XLSX 文件：{type(exc).__name__}",
            f"cannot open the XLSX workbook: {exc}",
            source=source,
        ) from None
    workbook = reader.wb
    workbook._ggzy_strings = reader.shared_strings
    return workbook
