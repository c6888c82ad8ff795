"""Feedback explorer: rejected records with their findings, filtered, paged on the server, exported.

Reads the ``portal_rejections`` projection (see :mod:`ggzy.hub.portal.projection`). Pages go by id
(keyset, newest first), so page 500 costs what page 1 costs; the total is counted up to a cap.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, func, select

from ggzy.hub.models import portal_rejection_rules, portal_rejections
from ggzy.hub.portal.scope import Scope, province_name
from ggzy.spec import load_spec
from ggzy.validation import RULES
from ggzy.web.portal import SHANGHAI

__all__ = ["COUNT_CAP", "EXPORT_CAP", "PAGE_SIZE", "FeedbackFilter", "export_xlsx", "search"]

PAGE_SIZE: Final = 50
COUNT_CAP: Final = 10_000  # beyond this the page says "more than"; counting further would scan
EXPORT_CAP: Final = 10_000  # rows of rejected records in one export; narrow the filter for more


@dataclass(frozen=True, slots=True)
class FeedbackFilter:
    start: dt.date
    end: dt.date
    province: str | None = None
    table: str | None = None
    rule: str | None = None
    key: str | None = None  # a business key or its beginning

    def conditions(self, scope: Scope) -> list[ColumnElement[bool]]:
        p = portal_rejections.c
        where: list[ColumnElement[bool]] = [p.day >= self.start, p.day <= self.end]
        if self.province is not None:
            scope.check(self.province)
            where.append(p.province == self.province)
        elif not scope.national:
            where.append(p.province == scope.province)
        if self.table:
            found = load_spec().table(self.table)
            where.append(p.table_name == (found.name if found is not None else self.table))
        if self.rule:
            r = portal_rejection_rules.c
            matching = select(r.rejection_id).where(
                r.rule_code == self.rule.strip(), r.day >= self.start, r.day <= self.end
            )
            if self.province is not None or not scope.national:
                matching = matching.where(r.province == (self.province or scope.province))
            where.append(p.id.in_(matching))
        if self.key:
            where.append(p.key.startswith(self.key, autoescape=True))
        return where


def _item(row: Any) -> dict[str, Any]:
    table = load_spec().table(row.table_name)
    received = row.received_at if row.received_at.tzinfo else row.received_at.replace(tzinfo=dt.UTC)
    return {
        "id": row.id,
        "province": row.province,
        "province_zh": province_name(row.province),
        "node_id": row.node_id,
        "batch_id": row.batch_id,
        "table": row.table_name,
        "table_zh": table.name_zh if table is not None else None,
        "key": row.key,
        "channel": row.channel,
        "day": row.day.isoformat(),
        "received_at": received.isoformat(),
        "rules": row.rules.split(),
        "findings": row.findings,
    }


def _columns() -> tuple[Any, ...]:
    p = portal_rejections.c
    return (
        p.id, p.province, p.node_id, p.batch_id, p.table_name, p.key, p.channel, p.day, p.received_at,
        p.rules, p.findings,
    )  # fmt: skip


def search(
    connection: Connection,
    scope: Scope,
    flt: FeedbackFilter,
    *,
    before: int | None = None,
    size: int = PAGE_SIZE,
) -> dict[str, Any]:
    """One page of rejected records, newest first; ``before`` is the last id of the previous page."""
    p = portal_rejections.c
    where = flt.conditions(scope)
    page_where = [*where, p.id < before] if before is not None else where
    rows = connection.execute(
        select(*_columns()).where(*page_where).order_by(p.id.desc()).limit(size + 1)
    ).all()
    capped = select(p.id).where(*where).limit(COUNT_CAP + 1).subquery()
    total = int(connection.execute(select(func.count()).select_from(capped)).scalar_one())
    rules = sorted({code for row in rows[:size] for code in row.rules.split()})
    return {
        "items": [_item(row) for row in rows[:size]],
        "next_before": rows[size - 1].id if len(rows) > size else None,
        "total": min(total, COUNT_CAP),
        "total_capped": total > COUNT_CAP,
        "rule_titles": {code: RULES[code].title_zh for code in rules if code in RULES},
    }


def _export_rows(connection: Connection, scope: Scope, flt: FeedbackFilter) -> Iterator[list[Any]]:
    p = portal_rejections.c
    query = select(*_columns()).where(*flt.conditions(scope)).order_by(p.id.desc()).limit(EXPORT_CAP)
    for row in connection.execute(query):
        item = _item(row)
        received = dt.datetime.fromisoformat(item["received_at"]).astimezone(SHANGHAI).replace(tzinfo=None)
        for finding in item["findings"] or [{}]:
            yield [
                received,
                f"{item['province']} {item['province_zh']}",
                item["node_id"],
                item["batch_id"],
                item["channel"],
                item["table"],
                item["table_zh"] or "",
                item["key"] or "",
                finding.get("code", ""),
                "错误" if finding.get("severity") == "error" else "警告",
                finding.get("field") or "",
                "" if finding.get("value") is None else str(finding.get("value")),
                finding.get("message_zh", ""),
            ]


HEADERS: Final = (
    "接收时间（北京时间）", "省份", "节点", "批次号", "通道", "数据表", "数据表名称", "业务主键",
    "规则代码", "级别", "字段", "值", "说明",
)  # fmt: skip


def export_xlsx(connection: Connection, scope: Scope, flt: FeedbackFilter) -> tuple[bytes, int]:
    """The filtered rejections as an xlsx workbook (one row per finding) and the number of rows."""
    from openpyxl import Workbook

    from ggzy.interchange.spreadsheet import safe_row

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("拒收记录")
    sheet.append(list(HEADERS))
    count = 0
    for values in _export_rows(connection, scope, flt):
        sheet.append(safe_row(values))  # provincial text: no cell may become a formula
        count += 1
    buffer = BytesIO()
    workbook.save(buffer)
    return buffer.getvalue(), count
