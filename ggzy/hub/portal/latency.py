"""How long realtime trade records took from local publication to the hub (Art. 9's ten minutes).

Both figures read ``ix_records_province_received_latency`` (province, received_at, channel,
published_at) one province at a time: the database answers from the index alone, without
touching the records' data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, Integer, func, select

from ggzy.hub.models import records

__all__ = ["BUCKETS", "delay_histogram", "recent_latency"]

# Upper bounds in seconds and their labels; the ten-minute deadline is a bucket edge.
BUCKETS: Final = (
    (60, "≤1分钟"),
    (300, "1–5分钟"),
    (600, "5–10分钟"),
    (1800, "10–30分钟"),
    (3600, "30–60分钟"),
    (6 * 3600, "1–6小时"),
    (None, ">6小时"),
)
REALTIME_CHANNEL: Final = 1


def _seconds(connection: Connection) -> ColumnElement[Any]:
    r = records.c
    if connection.dialect.name == "postgresql":
        return func.extract("epoch", r.received_at - r.published_at)
    return (func.julianday(r.received_at) - func.julianday(r.published_at)) * 86400.0


def _where(province: str, start: dt.datetime, end: dt.datetime) -> list[ColumnElement[bool]]:
    r = records.c
    return [
        r.province == province,
        r.received_at >= start,
        r.received_at < end,
        r.channel == REALTIME_CHANNEL,
        r.published_at.is_not(None),
    ]


def delay_histogram(
    connection: Connection, provinces: Sequence[str], start: dt.datetime, end: dt.datetime
) -> list[dict[str, Any]]:
    """Realtime records received in [start, end) by delay bucket, summed over ``provinces``.

    The database counts per whole second of delay (one date difference per row); the buckets are
    made here, so the expression is not evaluated again for every bucket edge.
    """
    seconds = (
        func.floor(_seconds(connection))
        if connection.dialect.name == "postgresql"
        else (func.cast(_seconds(connection), Integer))
    )
    second = seconds.label("second")
    counts = [0] * len(BUCKETS)
    for province in provinces:
        rows = connection.execute(
            select(second, func.count()).where(*_where(province, start, end)).group_by(second)
        )
        for value, count in rows:
            counts[_bucket(float(value))] += int(count)
    return [
        {"label": label, "upper_seconds": bound, "count": count}
        for (bound, label), count in zip(BUCKETS, counts, strict=True)
    ]


def _bucket(seconds: float) -> int:
    for index, (bound, _) in enumerate(BUCKETS):
        if bound is None or seconds <= bound:
            return index
    return len(BUCKETS) - 1


def recent_latency(
    connection: Connection, province: str, now: dt.datetime, window: dt.timedelta = dt.timedelta(hours=1)
) -> dict[str, Any]:
    """Median, 95th percentile and maximum delay of the province's realtime records in the window."""
    seconds = _seconds(connection).label("seconds")
    # Bounded: a busy hour of one province is a few thousand rows, read from the index.
    values = sorted(
        float(v)
        for v in connection.execute(
            select(seconds)
            .where(*_where(province, now - window, now + dt.timedelta(minutes=1)))
            .limit(50_000)
        ).scalars()
        if v is not None
    )
    if not values:
        return {"count": 0, "p50": None, "p95": None, "max": None}
    return {
        "count": len(values),
        "p50": values[len(values) // 2],
        "p95": values[min(len(values) - 1, int(len(values) * 0.95))],
        "max": values[-1],
    }
