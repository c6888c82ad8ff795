"""总览: every province's indicators against their targets, today and this month, and the country's totals.

The rates come from ``stats_daily`` (:mod:`ggzy.hub.stats`), node state and link success from the
latest heartbeats, realtime latency from the records' latency index: nothing scans the records.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, func, select

from ggzy.hub.models import stats_daily
from ggzy.hub.portal import heartbeats, latency
from ggzy.hub.portal.scope import Scope, province_name
from ggzy.hub.stats import COUNTERS, TARGETS, Measures, Totals
from ggzy.web.portal import SHANGHAI

__all__ = ["NETWORK_TARGET", "grid_provinces", "overview"]

NETWORK_TARGET = 0.99  # Art. 13: network availability ≥ 99 %


def grid_provinces(scope: Scope, with_nodes: set[str]) -> list[str]:
    """Mainland provinces (codes below 70) and any other province with a registered node."""
    return [code for code in scope.provinces() if code < "70" or code in with_nodes]


def _rates(measures: Measures | None) -> dict[str, Any]:
    measures = measures or Measures(Totals())
    return {name: rate.to_dict() for name, rate in measures.rates.items()} | {
        "received": measures.totals.received,
        "rejected": measures.totals.rejected,
    }


def _network(failed: int, total: int) -> dict[str, Any]:
    value = (total - failed) / total if total else None
    return {
        "value": value,
        "target": NETWORK_TARGET,
        "met": None if value is None else value >= NETWORK_TARGET,
        "numerator": total - failed,
        "denominator": total,
    }


def _by_province(connection: Connection, scope: Scope, start: dt.date, end: dt.date) -> dict[str, Measures]:
    """The counters of ``stats_daily`` per province over [start, end]: one GROUP BY on the aggregate."""
    d = stats_daily.c
    where = [d.day >= start, d.day <= end]
    if not scope.national:
        where.append(d.province == scope.province)
    sums = [func.coalesce(func.sum(d[name]), 0).label(name) for name in COUNTERS]
    rows = connection.execute(select(d.province, *sums).where(*where).group_by(d.province))
    # int(): PostgreSQL sums into NUMERIC.
    return {row.province: Measures(Totals(*(int(row._mapping[n]) for n in COUNTERS))) for row in rows}


def overview(connection: Connection, scope: Scope, now: dt.datetime) -> dict[str, Any]:
    """The 总览 page's data at ``now`` (aware), limited to ``scope``."""
    today = now.astimezone(SHANGHAI).date()
    month_start = today.replace(day=1)
    day_start = dt.datetime.combine(today, dt.time(), SHANGHAI).astimezone(dt.UTC)
    by_day = _by_province(connection, scope, today, today)
    by_month = _by_province(connection, scope, month_start, today)
    node_rows = heartbeats.nodes_of(connection, None if scope.national else scope.provinces())
    provinces = []
    national_failed = national_total = 0
    for code in grid_provinces(scope, {province for _, province in node_rows} | set(by_month)):
        states = [heartbeats.node_status(connection, n, now) for n, p in node_rows if p == code]
        failed = total = 0
        for node_id, province in node_rows:
            if province == code:
                f, t = heartbeats.link_totals(connection, node_id, day_start, now + dt.timedelta(minutes=1))
                failed, total = failed + f, total + t
        national_failed, national_total = national_failed + failed, national_total + total
        provinces.append(
            {
                "province": code,
                "name_zh": province_name(code),
                "today": _rates(by_day.get(code)),
                "month": _rates(by_month.get(code)),
                "nodes": states,
                "nodes_online": sum(1 for s in states if s["online"]),
                "network_today": _network(failed, total),
                "latency": latency.recent_latency(connection, code, now),
            }
        )
    answer: dict[str, Any] = {
        "now": now.isoformat(),
        "today": today.isoformat(),
        "month_from": month_start.isoformat(),
        "targets": dict(TARGETS) | {"network": NETWORK_TARGET},
        "national": scope.national,
        "provinces": provinces,
    }
    if scope.national:
        answer["totals"] = {
            "today": _rates(Measures(sum((m.totals for m in by_day.values()), Totals()))),
            "month": _rates(Measures(sum((m.totals for m in by_month.values()), Totals()))),
            "network_today": _network(national_failed, national_total),
            "nodes": len(node_rows),
            "nodes_online": sum(p["nodes_online"] for p in provinces),
        }
    return answer
