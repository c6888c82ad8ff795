"""Cells of the spreadsheets the project writes for people (xlsx and CSV exports).

A value that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a formula
by spreadsheet programs (CSV/formula injection): a provincial record's field, a rejected value or an
audit entry would execute on the official's machine when the export is opened. Every export of
provincial text puts its values through :func:`safe_cell` (a leading ``'`` makes the cell text);
numbers, dates and other non-text values are left as they are. The interchange writers
(``write_csv``/``write_xml``) are data formats read back by the node and are not exports for people.

Control characters an xlsx cell cannot hold (an audit entry may carry what a caller typed) are
replaced by U+FFFD, so one odd value does not make the whole export fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["FORMULA_STARTS", "safe_cell", "safe_row"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # what openpyxl refuses in a cell


def safe_cell(value: Any) -> Any:
    """``value`` as a cell that cannot become a formula (and that a workbook can hold)."""
    if not isinstance(value, str):
        return value
    value = _UNSTORABLE.sub("\ufffd", value)
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def safe_row(values: Iterable[Any]) -> list[Any]:
    return [safe_cell(value) for value in values]
