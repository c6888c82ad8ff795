"""Reconciliation (Art. 8): what the hub holds per province, table and day, as counts and digests.

A bucket is the Asia/Shanghai day on which the node acquired the current version of each key. Its
digest is a hash over the sorted ``key:version`` lines, so a node that computes the same from its
own receipts knows exactly whether, and then (with the key list) where, the two sides differ.

Its content digest hashes ``key:version:content`` lines, the content digest of each record computed
from what the hub holds now (``records``, sealed fields opened): a record whose content changed at
the hub at the same version changes it, and the key list (``records``) names the record.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select

from ggzy.hub.models import mismatch_reports, record_heads, records
from ggzy.security.cipher import CipherError
from ggzy.security.crypto import Digest
from ggzy.security.fieldcrypt import FieldEncryptionUnavailable, decrypt_sensitive
from ggzy.validation import content_digest

__all__ = [
    "bucket",
    "bucket_contents",
    "bucket_digest",
    "content_bucket_digest",
    "day_summary",
    "record_mismatch",
]

UNREADABLE = "unreadable"  # the content digest of a stored version that is missing or cannot be opened


def bucket_digest(pairs: list[tuple[str, int]], digest: Digest = Digest.SHA256) -> str:
    lines = "\n".join(f"{key}:{version}" for key, version in sorted(pairs))
    return digest.hash_hex(lines.encode())


def content_bucket_digest(items: list[tuple[str, int, str]], digest: Digest = Digest.SHA256) -> str:
    lines = "\n".join(f"{key}:{version}:{content}" for key, version, content in sorted(items))
    return digest.hash_hex(lines.encode())


def _where(province: str, day: dt.date) -> list[Any]:
    h = record_heads.c
    return [h.namespace == "prod", h.province == province, h.acquired_day == day]


def bucket(connection: Connection, province: str, table: str, day: dt.date) -> list[tuple[str, int]]:
    h = record_heads.c
    rows = connection.execute(select(h.key, h.version).where(*_where(province, day), h.table_name == table))
    return [(row.key, row.version) for row in rows]


def _content(table: str, op: str | None, data: Any) -> str:
    if op is None or not isinstance(data, dict):
        return UNREADABLE
    try:
        return content_digest(op, decrypt_sensitive(table, data))
    except (CipherError, FieldEncryptionUnavailable, ValueError):
        return UNREADABLE


def bucket_contents(
    connection: Connection, province: str, table: str, day: dt.date
) -> list[tuple[str, int, str]]:
    """(key, version, content digest of what is stored) of every key of the bucket."""
    h, r = record_heads.c, records.c
    joined = record_heads.outerjoin(
        records, and_(r.table_name == h.table_name, r.key == h.key, r.version == h.version)
    )
    rows = connection.execute(
        select(h.key, h.version, r.op, r.data)
        .select_from(joined)
        .where(*_where(province, day), h.table_name == table),
        execution_options={"yield_per": 2000},
    )
    return [(row.key, row.version, _content(table, row.op, row.data)) for row in rows]


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
        items = bucket_contents(connection, province, table, day)
        summary.append(
            {
                "table": table,
                "count": len(items),
                "digest": bucket_digest([(k, v) for k, v, _ in items], digest),
                "content_digest": content_bucket_digest(items, digest),
            }
        )
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
    content_differs: list[str] | None = None,
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
            "content_differs": content_differs or [],
            "note": note,
            "reported_at": dt.datetime.now(dt.UTC),
        },
    )
    return int(result.scalar_one())
