"""Errors raised when a whole input cannot be read (as opposed to one bad record in it).

A bad record inside a readable file becomes a ``SourceItem`` with ``error`` set and is reported by
the validator. These exceptions are for the cases where nothing sensible can be read at all: the
bytes are not text, the file type is unknown, the container is broken, or the file is too big.
Every error carries a stable ``code`` (a public contract, like the validation rule codes) and a
message in Chinese and English, because the people fixing the input read either.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["InputEncodingError", "InputError", "InputFormatError", "InputTooLargeError"]


class InputError(Exception):
    """Base class: the input as a whole cannot be read."""

    code: ClassVar[str] = "E-INPUT"

    def __init__(self, message_zh: str, message_en: str, *, source: str) -> None:
        super().__init__(message_zh, message_en)
        self.message_zh = message_zh
        self.message_en = message_en
        self.source = source

    def __str__(self) -> str:
        # Without the source: callers print it themselves ("E-INPUT-FORMAT a.csv: …").
        return f"{self.message_zh} ({self.message_en})"


class InputEncodingError(InputError):
    """The bytes are neither UTF-8 nor GB18030/GBK text (or not the encoding the XML declares)."""

    code: ClassVar[str] = "E-INPUT-ENCODING"

    def __init__(
        self,
        *,
        source: str,
        offset: int,
        declared: str | None = None,
        message_zh: str | None = None,
        message_en: str | None = None,
    ) -> None:
        self.offset = offset
        self.declared = declared
        if declared is None:
            default_zh = f"无法识别文件编码：第 {offset} 字节处不是合法的 UTF-8 或 GB18030 字符"
            default_en = f"cannot decode: byte {offset} is neither UTF-8 nor GB18030"
        else:
            default_zh = f"无法按声明的编码 {declared} 解码：第 {offset} 字节处不是合法的 {declared} 字符"
            default_en = (
                f"cannot decode as the declared encoding {declared}: byte {offset} is not valid {declared}"
            )
        super().__init__(message_zh or default_zh, message_en or default_en, source=source)


class InputFormatError(InputError):
    """The file type is unknown, the file is empty, or its container/structure cannot be parsed.

    ``line``/``column`` locate the problem when the parser reports a position (XML, JSON array).
    """

    code: ClassVar[str] = "E-INPUT-FORMAT"

    def __init__(
        self,
        message_zh: str,
        message_en: str,
        *,
        source: str,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message_zh, message_en, source=source)
        self.line = line
        self.column = column


class InputTooLargeError(InputError):
    """The file, or something in it (a line, a row, an XML element, an inflated XLSX part, the
    number of records), is larger than its limit."""

    code: ClassVar[str] = "E-INPUT-TOO-LARGE"

    def __init__(
        self,
        *,
        source: str,
        size: int,
        max_bytes: int,
        message_zh: str | None = None,
        message_en: str | None = None,
        line: int | None = None,
    ) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.line = line
        super().__init__(
            message_zh or f"文件过大：{size} 字节，超过上限 {max_bytes} 字节",
            message_en or f"file too large: {size} bytes exceeds the limit of {max_bytes} bytes",
            source=source,
        )
