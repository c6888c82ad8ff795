"""The province page: volumes, rates, failing rules with examples, timeliness (and the realtime records
without a publication time), 统一交易标识码 conflicts, repairs, reconciliation (with the records whose
content differs), the period's node, network and system availability with what made up the down time,
and the province's nodes' heartbeat and disk history."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, func, select

from ggzy.hub.models import (
    mismatch_reports,
    open_rejections,
    portal_rejection_rules,
    portal_rejections,
    stats_daily,
)
from ggzy.hub.ops.availability import province_availability
from ggzy.hub.ops.periods import Period
from ggzy.hub.portal import heartbeats, latency
from ggzy.hub.portal.scope import Scope
from ggzy.hub.stats import province_summary, publication_missing
from ggzy.settings import OpsSettings
from ggzy.web.portal import SHANGHAI

__all__ = ["EXAMPLES_PER_RULE", "channel_volumes", "province_page", "rule_examples"]

EXAMPLES_PER_RULE = 3
TOP_RULES = 10
HISTORY_DAYS = 31  # heartbeat history beyond a month is for the operations pages


def _utc_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    begin = dt.datetime.combine(start, dt.time(), SHANGHAI).astimezone(dt.UTC)
    finish = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), SHANGHAI).astimezone(dt.UTC)
    return begin, finish


def channel_volumes(
    connection: Connection, province: str, start: dt.date, end: dt.date
) -> list[dict[str, Any]]:
    """Received, accepted and rejected per day and channel (every day of the period, zeros kept)."""
    d = stats_daily.c
    rows = connection.execute(
        select(d.day, d.channel, func.sum(d.received), func.sum(d.accepted), func.sum(d.rejected))
        .where(d.province == province, d.day >= start, d.day <= end)
        .group_by(d.day, d.channel)
    )
    found = {(day, int(channel)): (int(r), int(a), int(j)) for day, channel, r, a, j in rows}
    answer = []
    for offset in range((end - start).days + 1):
        day = start + dt.timedelta(days=offset)
        for channel in (1, 2):
            received, accepted, rejected = found.get((day, channel), (0, 0, 0))
            answer.append(
                {
                    "day": day.isoformat(),
                    "channel": channel,
                    "received": received,
                    "accepted": accepted,
                    "rejected": rejected,
                }
            )
    return answer


def rule_examples(
    connection: Connection, province: str, start: dt.date, end: dt.date, code: str, limit: int
) -> list[dict[str, Any]]:
    """The newest rejected records of the province that broke rule ``code``, with that finding."""
    p, r = portal_rejections.c, portal_rejection_rules.c
    # The newest ids from the rule index first (a range of one rule, province and period), then
    # only those rejections are read.
    newest = list(
        connection.execute(
            select(r.rejection_id)
            .where(r.rule_code == code, r.province == province, r.day >= start, r.day <= end)
            .order_by(r.rejection_id.desc())
            .limit(limit)
        ).scalars()
    )
    rows = connection.execute(
        select(p.id, p.table_name, p.key, p.received_at, p.findings)
        .where(p.id.in_(newest))
        .order_by(p.id.desc())
        .limit(limit)
    )
    examples = []
    for row in rows:
        finding: dict[str, Any] = next((f for f in row.findings if f.get("code") == code), {})
        examples.append(
            {
                "id": row.id,
                "table": row.table_name,
                "key": row.key,
                "field": finding.get("field"),
                "value": finding.get("value"),
                "message_zh": finding.get("message_zh"),
            }
        )
    return examples


def _reconciliation(connection: Connection, province: str, start: dt.date, end: dt.date) -> dict[str, Any]:
    m = mismatch_reports.c
    where = [m.province == province, m.day >= start, m.day <= end]
    count = int(connection.execute(select(func.count()).where(*where)).scalar_one())
    latest = connection.execute(
        select(
            m.id, m.node_id, m.table_name, m.day, m.local_count, m.hub_count, m.content_differs, m.reported_at
        )
        .where(*where)
        .order_by(m.id.desc())
        .limit(10)
    )
    return {
        "mismatches": count,
        "status": "ok" if count == 0 else "mismatch",
        "latest": [
            {
                "id": row.id,
                "node_id": row.node_id,
                "table": row.table_name,
                "day": row.day.isoformat(),
                "local_count": row.local_count,
                "hub_count": row.hub_count,
                # records whose content at the hub differs from the node's at the same version (Art. 8)
                "content_differs": row.content_differs,
                "reported_at": row.reported_at.isoformat(),
            }
            for row in latest
        ],
    }


_DEAL_CODE_RULES = ("E-XR-DEAL-CODE-REUSED", "E-XR-DEAL-CODE-MISMATCH")


def province_page(
    connection: Connection,
    scope: Scope,
    province: str,
    start: dt.date,
    end: dt.date,
    now: dt.datetime,
    ops: OpsSettings | None = None,
) -> dict[str, Any]:
    """Everything the province page shows for ``start``–``end`` (Shanghai days, inclusive)."""
    scope.check(province)
    summary = province_summary(connection, province, start, end, top_rules=None)
    begin, finish = _utc_bounds(start, end)
    period = Period(f"{start.isoformat()}~{end.isoformat()}", begin, finish)
    availability = province_availability(connection, province, period, ops, clock=lambda: now)
    conflicts = {row.code: row.count for row in summary.rules if row.code in _DEAL_CODE_RULES}
    history_begin = max(begin, finish - dt.timedelta(days=HISTORY_DAYS))
    open_count = connection.execute(
        select(func.count()).where(open_rejections.c.province == province)
    ).scalar_one()
    rules = [
        row.to_dict()
        | {"examples": rule_examples(connection, province, start, end, row.code, EXAMPLES_PER_RULE)}
        for row in summary.rules[:TOP_RULES]
    ]
    node_rows = heartbeats.nodes_of(connection, [province])
    return {
        "province": province,
        "name_zh": summary.name_zh,
        "from": start.isoformat(),
        "to": end.isoformat(),
        **summary.overall.to_dict(),
        "tables": [row.to_dict() for row in summary.tables],
        "publication": publication_missing(summary.tables),
        "days": [row.to_dict() for row in summary.days],
        "channels": channel_volumes(connection, province, start, end),
        "rules": rules,
        "timeliness": latency.delay_histogram(connection, [province], begin, finish),
        "open_rejections": int(open_count),
        "reconciliation": _reconciliation(connection, province, start, end),
        "deal_code_conflicts": {code: conflicts.get(code, 0) for code in _DEAL_CODE_RULES},
        "availability": availability.to_dict(),
        "nodes": [
            {
                **heartbeats.node_status(connection, node_id, now),
                "history": heartbeats.hourly_history(connection, node_id, history_begin, finish),
            }
            for node_id, _ in node_rows
        ],
    }
