"""The feedback feed: every receipt, re-upload request (补传) and notice for a node, in order."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, text

from ggzy.hub.models import feed

__all__ = ["FEED_KINDS", "lock_node", "push", "read_feed"]

FEED_KINDS = ("receipt", "reupload", "notice")


def lock_node(connection: Connection, node_id: str) -> None:
    """Serialise writers of one node's feed, so feed ids grow in commit order for each node."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:n, 7))"), {"n": node_id})


def push(engine: Engine, node_id: str, kind: str, body: dict[str, Any]) -> int:
    """Add a re-upload request or a notice from the national operators to a node's feed."""
    if kind not in FEED_KINDS[1:]:
        raise ValueError(f"kind must be one of {FEED_KINDS[1:]}")
    with engine.connect() as plain:
        connection = plain.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            lock_node(connection, node_id)
            result = connection.execute(
                insert(feed).returning(feed.c.id),
                {
                    "node_id": node_id,
                    "kind": kind,
                    "batch_id": None,
                    "body": body,
                    "created_at": dt.datetime.now(dt.UTC),
                },
            )
            return int(result.scalar_one())


def _utc(moment: dt.datetime) -> dt.datetime:
    """SQLite hands back the stored UTC time without its offset; answer the same on every backend."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def read_feed(connection: Connection, node_id: str, after: int, limit: int) -> list[dict[str, Any]]:
    rows = connection.execute(
        select(feed.c.id, feed.c.kind, feed.c.batch_id, feed.c.body, feed.c.created_at)
        .where(feed.c.node_id == node_id, feed.c.id > after)
        .order_by(feed.c.id)
        .limit(limit)
    )
    return [
        {
            "cursor": row.id,
            "kind": row.kind,
            "batch_id": row.batch_id,
            "created_at": _utc(row.created_at).isoformat() if row.created_at else None,
            "body": row.body,
        }
        for row in rows
    ]
