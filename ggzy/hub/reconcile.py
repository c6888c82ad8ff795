"""Reconciliation (Art. 8): what the hub holds per province, table and day, as counts and digests.

A bucket is the Asia/Shanghai day on which the node acquired the current version of each key. Its
digest is a hash over the sorted ``key:version`` lines, so a node that computes the same from its
own receipts knows exactly whether, and then (with the key list) where, the two sides differ.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, func, insert, select

from ggzy.hub.models import mismatch_reports, record_heads
from ggzy.security.crypto import Digest

__all__ = ["bucket", "bucket_digest", "day_summary", "record_mismatch"]


def bucket_digest(pairs: list[tuple[str, int]], digest: Digest = Digest.SHA256) -> str:
    lines = "\n".join(f"{key}:{version}" for key, version in sorted(pairs))
    return digest.hash_hex(lines.encode())


def _where(province: str, day: dt.date) -> list[Any]:
    h = record_heads.c
    return [h.namespace == "prod", h.province == province, h.acquired_day == day]


def bucket(connection: Connection, province: str, table: str, day: dt.date) -> list[tuple[str, int]]:
    h = record_heads.c
    rows = connection.execute(select(h.key, h.version).where(*_where(province, day), h.table_name == table))
    return [(row.key, row.version) for row in rows]


def day_summary(connection: Connection, province: str, day: dt.date, digest: Digest) -> list[dict[str, Any]]:
    h = record_heads.c
    tables = [
        row.table_name
        for row in connection.execute(
            select(h.table_name, func.count())
            .where(*_where(province, day))
            .group_by(h.table_name)
            .order_by(h.table_name)
        )
    ]
    summary = []
    for table in tables:
        pairs = bucket(connection, province, table, day)
        summary.append({"table": table, "count": len(pairs), "digest": bucket_digest(pairs, digest)})
    return summary


def record_mismatch(
    connection: Connection,
    node_id: str,
    province: str,
    table: str,
    day: dt.date,
    local_count: int,
    missing_at_hub: list[str],
    unknown_locally: list[str],
    note: str,
) -> int:
    hub_count = len(bucket(connection, province, table, day))
    result = connection.execute(
        insert(mismatch_reports).returning(mismatch_reports.c.id),
        {
            "node_id": node_id,
            "province": province,
            "table_name": table,
            "day": day,
            "local_count": local_count,
            "hub_count": hub_count,
            "missing_at_hub": missing_at_hub,
            "unknown_locally": unknown_locally,
            "note": note,
            "reported_at": dt.datetime.now(dt.UTC),
        },
    )
    return int(result.scalar_one())
