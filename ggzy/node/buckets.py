"""Where the hub files an accepted record for reconciliation (Art. 8), and what of it is kept for good.

The hub files a record under the Asia/Shanghai day of its envelope's ``acquired_at`` (or, without
one, of the batch's receipt, which the batch's ``sent_at`` approaches). When the disk guard removes
records the hub accepted, the latest version of each key is kept in ``reconcile_keys`` — key, hub
version, content digest and that moment — so reconciliation still knows what the hub should hold
and never reports the removed keys as unknown (the record itself is gone: it can be named, not
re-sent).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from ggzy.interchange import Category
from ggzy.node.models import reconcile_keys
from ggzy.store.upsert import dialect_insert
from ggzy.validation import content_digest

__all__ = ["SHANGHAI", "acquired_day", "bucket_moment", "keep_latest", "record_digest"]

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def bucket_moment(
    record: Mapping[str, Any], sent_at: dt.datetime | None, acquired_at: dt.datetime
) -> dt.datetime:
    """The moment the hub files an accepted record under.

    The hub uses the envelope's ``acquired_at`` and, without one, the moment it received the batch;
    the batch's ``sent_at`` is the node's nearest knowledge of that moment.
    """
    return _parse_time(record.get("acquired_at")) or (
        _utc(sent_at) if sent_at is not None else _utc(acquired_at)
    )


def acquired_day(record: Mapping[str, Any], sent_at: dt.datetime | None, acquired_at: dt.datetime) -> dt.date:
    """The bucket (an Asia/Shanghai day) of an accepted record."""
    return bucket_moment(record, sent_at, acquired_at).astimezone(SHANGHAI).date()


def record_digest(record: Mapping[str, Any]) -> str:
    """The content digest the hub computes for the record as sent (its op and data)."""
    return content_digest(str(record.get("op") or "insert"), record.get("data") or {})


def keep_latest(connection: Connection, rows: Iterable[Any]) -> int:
    """Keep the latest accepted version of each key of ``rows`` (outbox rows about to be removed).

    A version already kept stays when it is newer. Test data is not reconciled and not kept.
    """
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        if row.hub_version is None or row.category == Category.TEST.value:
            continue
        record = row.record or {}
        filed = bucket_moment(record, row.sent_at, row.acquired_at)
        kept = {
            "table_name": row.table_name,
            "key": row.key,
            "version": int(row.hub_version),
            "op": str(record.get("op") or row.op),
            "channel": int(row.channel),
            "digest": record_digest(record),
            "filed_at": filed,
            "filed_day": filed.astimezone(SHANGHAI).date(),
        }
        current = latest.get((row.table_name, row.key))
        if current is None or kept["version"] > current["version"]:
            latest[(row.table_name, row.key)] = kept
    if not latest:
        return 0
    statement = dialect_insert(connection, reconcile_keys)
    changes = {
        name: statement.excluded[name]
        for name in ("version", "op", "channel", "digest", "filed_at", "filed_day")
    }
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["table_name", "key"],
            set_=changes,
            where=statement.excluded.version > reconcile_keys.c.version,
        ),
        list(latest.values()),
    )
    return len(latest)
