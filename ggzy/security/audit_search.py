"""Search and export the audit log by time, account, action and outcome (the 安全审计员's view).

:func:`search_audit` is the one query both the CLI and the web portal call; :func:`export_audit`
writes the same selection to xlsx or CSV (CSV with a BOM, so spreadsheet programs read the Chinese).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Select, Table, func, select

from ggzy.interchange.spreadsheet import safe_cell

__all__ = ["COLUMNS", "AuditPage", "AuditQuery", "ExportFormat", "export_audit", "search_audit"]

# (column, Chinese heading) in the order shown and exported.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "序号"),
    ("at", "时间（北京时间）"),
    ("account", "账号"),
    ("role", "角色"),
    ("source", "来源地址"),
    ("action", "操作"),
    ("object", "对象"),
    ("outcome", "结果"),
    ("request_id", "请求编号"),
    ("detail", "详情"),
)


class ExportFormat(StrEnum):
    XLSX = "xlsx"
    CSV = "csv"


@dataclass(frozen=True, slots=True)
class AuditQuery:
    since: dt.datetime | None = None  # inclusive
    until: dt.datetime | None = None  # exclusive
    account: str | None = None
    action: str | None = None  # exact, or a prefix ending in '*' / '.' ("signin*", "backup.")
    outcome: str | None = None
    newest_first: bool = True


@dataclass(frozen=True, slots=True)
class AuditPage:
    rows: list[dict[str, Any]]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _filtered(table: Table, query: AuditQuery) -> Select[Any]:
    statement = select(table)
    if query.since is not None:
        statement = statement.where(table.c.at >= query.since)
    if query.until is not None:
        statement = statement.where(table.c.at < query.until)
    if query.account:
        statement = statement.where(table.c.account == query.account)
    if query.action:
        if query.action.endswith(("*", ".")):
            prefix = query.action.rstrip("*")
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            statement = statement.where(table.c.action.like(escaped + "%", escape="\\"))
        else:
            statement = statement.where(table.c.action == query.action)
    if query.outcome:
        statement = statement.where(table.c.outcome == query.outcome)
    return statement


def _row(mapping: Any) -> dict[str, Any]:
    row = {name: mapping[name] for name, _ in COLUMNS}
    at = row["at"]
    if isinstance(at, dt.datetime):
        row["at"] = (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    return row


def search_audit(
    connection: Connection, table: Table, query: AuditQuery, *, page: int = 1, page_size: int = 50
) -> AuditPage:
    page, page_size = max(1, page), max(1, min(page_size, 1000))
    statement = _filtered(table, query)
    total = connection.execute(select(func.count()).select_from(statement.subquery())).scalar_one()
    order = table.c.id.desc() if query.newest_first else table.c.id
    rows = connection.execute(statement.order_by(order).limit(page_size).offset((page - 1) * page_size))
    return AuditPage([_row(r) for r in rows.mappings()], int(total), page, page_size)


def _all_rows(connection: Connection, table: Table, query: AuditQuery) -> Iterator[dict[str, Any]]:
    statement = _filtered(table, query).order_by(table.c.id)
    for mapping in connection.execution_options(yield_per=1000).execute(statement).mappings():
        yield _row(mapping)


_BEIJING = dt.timezone(dt.timedelta(hours=8))  # every time a person reads is Beijing time


def _cell(name: str, value: Any) -> Any:
    if name == "at" and isinstance(value, dt.datetime):
        return value.astimezone(_BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    if name == "detail":
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return safe_cell(value)  # a cell starting with = + - @ tab CR would run as a formula


def export_audit(
    connection: Connection, table: Table, query: AuditQuery, path: Path, fmt: ExportFormat
) -> int:
    """Write the selected entries (oldest first) to ``path``; the number written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    headings = [zh for _, zh in COLUMNS]
    count = 0
    if fmt is ExportFormat.CSV:
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(headings)
            for row in _all_rows(connection, table, query):
                writer.writerow([_cell(name, row[name]) for name, _ in COLUMNS])
                count += 1
        return count
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("审计日志")
    sheet.append(headings)
    for row in _all_rows(connection, table, query):
        sheet.append([_cell(name, row[name]) for name, _ in COLUMNS])
        count += 1
    workbook.save(path)
    return count
