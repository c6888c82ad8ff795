"""Parse the type/length notation of the national data specification.

The spec writes a field's type as ``C17`` (exactly 17 characters), ``C..600`` (at most 600),
``C..ul`` (unlimited text), ``N..20,6`` (a number of at most 20 digits, 6 of them decimals), ``N1``
(exactly one digit) or a date/time pattern ``yyyyMMddHHmmss`` / ``yyyyMMdd``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["FieldType", "Kind", "parse_notation"]


class Kind(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATETIME = "datetime"
    DATE = "date"


@dataclass(frozen=True, slots=True)
class FieldType:
    """A parsed type notation. ``length`` is exact when ``fixed`` and a maximum otherwise."""

    notation: str
    kind: Kind
    length: int | None = None
    fixed: bool = False
    decimals: int = 0

    def describe_zh(self) -> str:
        if self.kind is Kind.DATETIME:
            return "日期时间 yyyyMMddHHmmss"
        if self.kind is Kind.DATE:
            return "日期 yyyyMMdd"
        if self.kind is Kind.NUMBER:
            if self.fixed:
                return f"{self.length}位数字"
            return f"数字，最多{self.length}位，其中小数{self.decimals}位"
        if self.length is None:
            return "文本，不限长度"
        return f"{self.length}个字符" if self.fixed else f"文本，最多{self.length}个字符"


_TEXT = re.compile(r"^C(\.\.)?(\d+|ul)$")
_NUMBER = re.compile(r"^N(\.\.)?(\d+)(?:,(\d+))?$")


def parse_notation(notation: str) -> FieldType:
    """Turn ``C..600`` and friends into a :class:`FieldType`; raise ``ValueError`` on anything else."""
    text = notation.strip()
    if text == "yyyyMMddHHmmss":
        return FieldType(text, Kind.DATETIME, 14, True)
    if text == "yyyyMMdd":
        return FieldType(text, Kind.DATE, 8, True)
    if match := _TEXT.match(text):
        ranged, size = match.groups()
        if size == "ul":
            return FieldType(text, Kind.TEXT, None, False)
        return FieldType(text, Kind.TEXT, int(size), not ranged)
    if match := _NUMBER.match(text):
        ranged, digits, decimals = match.groups()
        return FieldType(text, Kind.NUMBER, int(digits), not ranged, int(decimals or 0))
    raise ValueError(f"unknown type notation {notation!r}")
