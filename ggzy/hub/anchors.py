"""The nodes' audit anchors at the hub: what each heartbeat reports of the node's newest checkpoint.

An anchor is kept once per (node, sequence) and never changed: a node that later reports another
hash for a sequence the hub already holds (its chain rewritten and signed again) is refused and
audited, and the stored anchor keeps vouching for the original. ``ggzy audit verify --side node``
asks for them back (``GET /api/v1/audit/anchors``). Anchors older than two days are thinned to the
newest of each node and Beijing day, which still covers every older entry (each hash covers all
before it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import TYPE_CHECKING

from sqlalchemy import Connection, and_, delete, func, select

from ggzy.hub.models import audit_anchors
from ggzy.security.audit_anchor import ANCHOR_FILE, Anchor, AnchorFile, AnchorSinks
from ggzy.store.database import writing
from ggzy.store.upsert import insert_ignore

if TYPE_CHECKING:
    from ggzy.hub.app import HubState
    from ggzy.settings import AuditSettings, BackupSettings

log = logging.getLogger(__name__)

__all__ = ["KEEP_ALL", "anchor_periodically", "anchors_for", "hub_sinks", "record_anchor", "thin_anchors"]

KEEP_ALL = dt.timedelta(days=2)
A = audit_anchors.c


def record_anchor(connection: Connection, node_id: str, anchor: Anchor, received_at: dt.datetime) -> str:
    """Keep ``anchor``: ``"new"``, ``"known"`` (the same again) or ``"conflict"`` (another hash or entry
    for a sequence already held: the stored one stays)."""
    row = {
        "node_id": node_id,
        "sequence": anchor.sequence,
        "entry_id": anchor.entry_id,
        "entry_hash": anchor.entry_hash,
        "checkpoint_at": anchor.at,
        "received_at": received_at,
    }
    held = connection.execute(
        select(A.entry_id, A.entry_hash).where(A.node_id == node_id, A.sequence == anchor.sequence)
    ).first()
    if held is None:
        insert_ignore(connection, audit_anchors, [row], ["node_id", "sequence"])
        return "new"
    if (int(held.entry_id), str(held.entry_hash)) == (anchor.entry_id, anchor.entry_hash):
        return "known"
    return "conflict"


def anchors_for(connection: Connection, node_id: str, after_entry: int = 0) -> list[Anchor]:
    rows = connection.execute(
        select(A.sequence, A.entry_id, A.entry_hash, A.checkpoint_at)
        .where(A.node_id == node_id, A.entry_id > after_entry)
        .order_by(A.sequence)
    )
    return [
        Anchor(int(r.sequence), int(r.entry_id), str(r.entry_hash), _aware(r.checkpoint_at)) for r in rows
    ]


def thin_anchors(connection: Connection, now: dt.datetime) -> int:
    """Drop anchors received more than two days ago except each node's newest of each day."""
    cutoff = now - KEEP_ALL
    day = func.date(A.received_at)
    newest_per_day = (
        select(A.node_id, day.label("day"), func.max(A.sequence).label("sequence"))
        .where(A.received_at < cutoff)
        .group_by(A.node_id, day)
        .subquery()
    )
    kept = select(newest_per_day.c.sequence).where(
        and_(newest_per_day.c.node_id == A.node_id, newest_per_day.c.sequence == A.sequence)
    )
    result = connection.execute(delete(audit_anchors).where(A.received_at < cutoff, ~kept.exists()))
    return int(result.rowcount or 0)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _thin(hub: HubState, now: dt.datetime) -> None:
    with writing(hub.engine) as connection:
        thin_anchors(connection, now)


def hub_sinks(backup: BackupSettings, audit: AuditSettings) -> AnchorSinks:
    """The hub's own anchors: a file in ``backup.offsite_dir`` (when set) and ``audit.anchor_syslog``."""
    file = None
    if backup.offsite_dir is not None:
        file = AnchorFile(backup.offsite_dir / ANCHOR_FILE.format(site="hub"))
    return AnchorSinks("hub", file, audit.anchor_syslog)


async def anchor_periodically(hub: HubState, sinks: AnchorSinks, interval_seconds: float) -> None:
    """Every ``interval_seconds``: seal the hub's audit tail and send its newest checkpoint off the
    host; once an hour, thin the nodes' older anchors. A failure is logged and tried again."""
    thinned_at = dt.datetime.min.replace(tzinfo=dt.UTC)
    while True:
        try:
            await asyncio.to_thread(sinks.seal_and_export, hub.engine, hub.audit)
            now = dt.datetime.now(dt.UTC)
            if now - thinned_at >= dt.timedelta(hours=1):
                await asyncio.to_thread(_thin, hub, now)
                thinned_at = now
        except Exception:  # the next round tries again; the service goes on
            log.exception("audit anchoring failed")
        await asyncio.sleep(interval_seconds)
