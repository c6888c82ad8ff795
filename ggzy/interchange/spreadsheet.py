"""Cells of the spreadsheets the project writes for people (xlsx and CSV exports).

A value that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a formula
by spreadsheet programs (CSV/formula injection): a provincial record's field, a rejected value or an
audit entry would execute on the official's machine when the export is opened. Every export of
provincial text puts its values through :func:`safe_cell` (a leading ``'`` makes the cell text);
numbers, dates and other non-text values are left as they are. The interchange writers
(``write_csv``/``write_xml``) are data formats read back by the node and are not exports for people.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["FORMULA_STARTS", "safe_cell", "safe_row"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` as a cell that cannot become a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    return [safe_cell(value) for value in values]
