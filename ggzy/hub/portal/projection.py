"""Keep ``portal_rejections`` caught up with the receipts in the feed.

A catch-up reads receipt rows of the feed after the stored cursor, in id order and in bounded
rounds, and inserts one row per rejected record. It re-reads a window of ids below the cursor on
every round: on PostgreSQL ids are handed out before commit, so a batch committed late may carry
an id under the cursor; the unique ``(feed_id, item)`` makes re-reading harmless. The hub runs a
catch-up every few seconds (see :func:`run_periodically`); tests call :func:`catch_up` directly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, Row, and_, func, select

from ggzy.hub.models import batches, feed, portal_cursors, portal_rejection_rules, portal_rejections
from ggzy.store.upsert import insert_ignore, upsert

__all__ = ["BODIES_AT_ONCE", "CURSOR", "REREAD_WINDOW", "catch_up", "rejection_rows", "run_periodically"]

logger = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
CURSOR = "rejections"
REREAD_WINDOW = 200  # feed ids re-read below the cursor (batches committed out of id order)
_ROUND = 500  # receipts per transaction: a short write lock on SQLite
# Receipts parsed at once: a receipt of 1,000 records is ~0.3 MB of Python objects once parsed, and
# a round parsing all of its receipts together held up to ~150 MB at its peak.
BODIES_AT_ONCE = 8

_Receipt = Row[*tuple[Any, ...]]  # a feed row: id, node_id, created_at, the batch's rejected count


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def rejection_rows(
    feed_id: int, node_id: str, province: str, receipt: Mapping[str, Any], received_at: dt.datetime
) -> Iterator[dict[str, Any]]:
    """One projection row per rejected result of one receipt."""
    received = _utc(received_at)
    day = received.astimezone(SHANGHAI).date()
    for result in receipt.get("results", ()):
        if result.get("outcome") != "rejected":
            continue
        findings = list(result.get("findings") or ())
        codes = sorted({f["code"] for f in findings if f.get("severity") == "error"})
        yield {
            "feed_id": feed_id,
            "item": int(result.get("index", 0)),
            "node_id": node_id,
            "batch_id": str(receipt.get("batch_id", ""))[:64],
            "province": province,
            "table_name": str(result.get("table") or "-")[:64],
            "key": (str(result["key"])[:512] if result.get("key") is not None else None),
            "channel": int(receipt.get("channel", 0)),
            "day": day,
            "received_at": received,
            "rules": (" " + " ".join(codes) + " ")[:1024],
            "findings": findings,
        }


def _position(connection: Connection) -> int:
    found = connection.execute(
        select(portal_cursors.c.position).where(portal_cursors.c.name == CURSOR)
    ).scalar_one_or_none()
    return int(found) if found is not None else 0


def _round(connection: Connection, provinces: Mapping[str, str]) -> int:
    """One bounded round; the number of receipts read past the cursor."""
    position = _position(connection)
    f, b = feed.c, batches.c
    # The batch's count of rejected records says which receipts have any: only those are read and
    # parsed (a receipt is ~100 bytes a record; most batches have no rejection). A receipt without
    # its batch row (none is written so) is read all the same.
    rows = connection.execute(
        select(f.id, f.node_id, f.created_at, b.rejected)
        .select_from(feed.outerjoin(batches, and_(b.node_id == f.node_id, b.batch_id == f.batch_id)))
        .where(f.id > max(position - REREAD_WINDOW, 0), f.kind == "receipt")
        .order_by(f.id)
        .limit(_ROUND + REREAD_WINDOW)
    ).all()
    fresh = [row for row in rows if row.id > position]
    if not fresh:
        return 0
    wanted = [
        row
        for row in rows
        if row.node_id in provinces  # a node removed from the registry: its receipts cannot be placed
        and (row.rejected is None or row.rejected > 0)
    ]
    wanted = _not_yet_projected(connection, wanted, position)
    for start in range(0, len(wanted), BODIES_AT_ONCE):
        _project(connection, wanted[start : start + BODIES_AT_ONCE], provinces)
    upsert(
        connection,
        portal_cursors,
        [{"name": CURSOR, "position": fresh[-1].id, "updated_at": dt.datetime.now(dt.UTC)}],
        ["name"],
        replace=["position", "updated_at"],
    )
    return len(fresh)


def _not_yet_projected(connection: Connection, rows: list[_Receipt], position: int) -> list[_Receipt]:
    """``rows`` without the re-read ones whose rejections are already projected.

    Re-reading the window is for a late commit; parsing its receipts again on every round would
    cost the hub a window of receipts' CPU and memory every few seconds for nothing.
    """
    reread = [row.id for row in rows if row.id <= position]
    if not reread:
        return rows
    p = portal_rejections.c
    done = set(connection.execute(select(p.feed_id).where(p.feed_id.in_(reread)).distinct()).scalars())
    return [row for row in rows if row.id not in done]


def _project(connection: Connection, rows: list[_Receipt], provinces: Mapping[str, str]) -> None:
    """Project a few receipts: only ``BODIES_AT_ONCE`` parsed receipts are held at a time."""
    f = feed.c
    ids = [row.id for row in rows]
    bodies = {row.id: row.body for row in connection.execute(select(f.id, f.body).where(f.id.in_(ids)))}
    projected = [
        projection
        for row in rows
        if row.id in bodies
        for projection in rejection_rows(
            row.id, row.node_id, provinces[row.node_id], bodies[row.id], row.created_at
        )
    ]
    del bodies
    insert_ignore(connection, portal_rejections, projected, ["feed_id", "item"])
    _index_rules(connection, ids)


def _index_rules(connection: Connection, feed_ids: list[int]) -> None:
    """The rule rows of the rejections just projected (re-read rows add nothing twice)."""
    if not feed_ids:
        return
    p = portal_rejections.c
    found = connection.execute(select(p.id, p.day, p.province, p.rules).where(p.feed_id.in_(feed_ids)))
    rows = [
        {"rule_code": code, "day": row.day, "rejection_id": row.id, "province": row.province}
        for row in found
        for code in row.rules.split()
    ]
    insert_ignore(connection, portal_rejection_rules, rows, ["rule_code", "province", "day", "rejection_id"])


def _pending(engine: Engine) -> bool:
    """Whether a receipt waits past the cursor: a read, so an idle hub never takes the write lock."""
    with engine.connect() as connection:
        position = _position(connection)
        f = feed.c
        waiting = connection.execute(
            select(f.id).where(f.id > position, f.kind == "receipt").limit(1)
        ).first()
        return waiting is not None


def catch_up(engine: Engine, *, max_rounds: int = 1000) -> int:
    """Project every receipt not yet seen; the number of receipts read."""
    from ggzy.hub.models import nodes

    total = 0
    for _ in range(max_rounds):
        if not _pending(engine):
            break
        with engine.connect() as plain:
            connection = plain.execution_options(sqlite_begin="IMMEDIATE")
            with connection.begin():
                if connection.dialect.name == "postgresql":  # one catch-up at a time across processes
                    connection.execute(select(func.pg_advisory_xact_lock(0x67677A79_706F7274)))
                provinces = {
                    row.node_id: row.province
                    for row in connection.execute(select(nodes.c.node_id, nodes.c.province))
                }
                done = _round(connection, provinces)
        total += done
        if done < _ROUND:
            break
    return total


async def run_periodically(engine: Engine, interval: float) -> None:
    """Catch up every ``interval`` seconds until cancelled; a failure is logged and retried."""
    while True:
        await asyncio.sleep(interval)  # not at start-up: the hub's own start needs the database first
        try:
            await asyncio.to_thread(catch_up, engine)
        except Exception:
            logger.exception("portal projection catch-up failed", extra={"action": "portal.catch_up"})
