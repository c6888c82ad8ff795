"""Node status, link success and capacity history from ``node_heartbeats`` (read by node and time).

Every query runs on the ``(node_id, received_at)`` index, one node at a time, so its cost follows
the period asked for and never the size of the table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select

from ggzy.hub.models import node_heartbeats, nodes

__all__ = ["hourly_history", "link_totals", "node_status", "nodes_of"]

# A node is shown as offline when its last beat is older than this (three default intervals).
OFFLINE_AFTER = dt.timedelta(seconds=90)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def nodes_of(connection: Connection, provinces: Sequence[str] | None) -> list[tuple[str, str]]:
    """(node_id, province) of the registered nodes of ``provinces`` (None: every province)."""
    query = select(nodes.c.node_id, nodes.c.province).order_by(nodes.c.province, nodes.c.node_id)
    if provinces is not None:
        query = query.where(nodes.c.province.in_(list(provinces)))
    return [(row.node_id, row.province) for row in connection.execute(query)]


def node_status(connection: Connection, node_id: str, now: dt.datetime) -> dict[str, Any]:
    h = node_heartbeats.c
    row = connection.execute(
        select(h.received_at, h.disk_used_ratio, h.oldest_unsent_seconds, h.platform_ok, h.version)
        .where(h.node_id == node_id)
        .order_by(h.received_at.desc())
        .limit(1)
    ).first()
    if row is None:  # registered, never connected: every key present, with no value
        return {
            "node_id": node_id,
            "last_seen": None,
            "online": False,
            "disk_used_ratio": None,
            "oldest_unsent_seconds": None,
            "platform_ok": None,
            "version": None,
        }
    seen = _utc(row.received_at)
    assert seen is not None
    return {
        "node_id": node_id,
        "last_seen": seen.isoformat(),
        "online": now - seen <= OFFLINE_AFTER,
        "disk_used_ratio": row.disk_used_ratio,
        "oldest_unsent_seconds": row.oldest_unsent_seconds,
        "platform_ok": row.platform_ok,
        "version": row.version,
    }


def link_totals(
    connection: Connection, node_id: str, start: dt.datetime, end: dt.datetime
) -> tuple[int, int]:
    """(failed, total) node → hub attempts the node reported for [start, end)."""
    h = node_heartbeats.c
    row = connection.execute(
        select(
            func.coalesce(func.sum(h.failed_attempts), 0), func.coalesce(func.sum(h.total_attempts), 0)
        ).where(h.node_id == node_id, h.received_at >= start, h.received_at < end)
    ).one()
    return int(row[0]), int(row[1])


def _hour(connection: Connection) -> ColumnElement[Any]:
    received = node_heartbeats.c.received_at
    if connection.dialect.name == "postgresql":
        return func.to_char(func.date_trunc("hour", func.timezone("UTC", received)), "YYYY-MM-DD HH24")
    return func.substr(received, 1, 13)  # SQLite stores UTC as 'YYYY-MM-DD HH:MM:SS…'


def hourly_history(
    connection: Connection, node_id: str, start: dt.datetime, end: dt.datetime
) -> list[dict[str, Any]]:
    """Per UTC hour of [start, end): beats, worst disk use, worst backlog age, link attempts."""
    h = node_heartbeats.c
    hour = _hour(connection).label("hour")
    rows = connection.execute(
        select(
            hour,
            func.count().label("beats"),
            func.max(h.disk_used_ratio).label("disk"),
            func.max(h.oldest_unsent_seconds).label("backlog"),
            func.sum(h.failed_attempts).label("failed"),
            func.sum(h.total_attempts).label("total"),
        )
        .where(h.node_id == node_id, h.received_at >= start, h.received_at < end)
        .group_by(hour)
        .order_by(hour)
    )
    return [
        {
            "hour": f"{row.hour.replace(' ', 'T')}:00:00+00:00",
            "beats": int(row.beats),
            "disk_used_ratio": row.disk,
            "oldest_unsent_seconds": row.backlog,
            "failed": int(row.failed or 0),
            "total": int(row.total or 0),
        }
        for row in rows
    ]
