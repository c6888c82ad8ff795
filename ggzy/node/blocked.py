"""Records waiting on a record held for correction: what waits, and on what (status, portal, doctor).

Per-key order is strict: a record never goes before an earlier version of its key, its parent or
an earlier stage. When that earlier record is held for correction (pre-validation errors), the
outbox sets the waiting record aside (state ``blocked``, ``blocked_by`` naming the held row) and
it waits until the held record is corrected or superseded by a newer full version. This module
says so: every held record something waits on, with its first finding and how many records (how
many of them realtime) wait on it, read from the rows set aside (``ix_outbox_send``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, case, func, select

from ggzy.node.models import outbox

__all__ = ["BlockedBy", "blocked_by_held"]


@dataclass(frozen=True, slots=True)
class BlockedBy:
    """A held record and what waits on it."""

    held_id: int
    table: str
    key: str
    state: str  # held, or already superseded (the rows wait to be queued again)
    code: str | None  # its first finding
    message_zh: str | None
    waiting: int
    realtime: int
    oldest_published: dt.datetime | None  # of the realtime records waiting

    def line_zh(self) -> str:
        reason = f"（{self.code}：{self.message_zh}）" if self.code else ""
        realtime = f"，其中实时数据 {self.realtime} 条" if self.realtime else ""
        return (
            f"{self.table} {self.key}（发件箱编号 {self.held_id}）暂存待更正{reason}，"
            f"{self.waiting} 条依赖它的数据等待其更正{realtime}"
        )


def blocked_by_held(engine: Engine, limit: int = 20) -> list[BlockedBy]:
    """The held records that others wait on, the most waited on first (realtime first)."""
    o = outbox.c
    with engine.connect() as connection:
        groups = connection.execute(
            select(
                o.blocked_by,
                func.count().label("waiting"),
                func.sum(case((o.channel == 1, 1), else_=0)).label("realtime"),
                func.min(case((o.channel == 1, o.published_at), else_=None)).label("oldest"),
            )
            .where(o.channel.in_((1, 2)), o.state == "blocked")
            .group_by(o.blocked_by)
        ).all()
        ordered = sorted(groups, key=lambda g: (-int(g.realtime or 0), -int(g.waiting), g.blocked_by))[:limit]
        held = {
            row.id: row
            for row in connection.execute(
                select(o.id, o.table_name, o.key, o.state, o.findings).where(
                    o.id.in_([g.blocked_by for g in ordered])
                )
            )
        }
    found: list[BlockedBy] = []
    for group in ordered:
        row = held.get(group.blocked_by)
        first = (row.findings or [{}])[0] if row is not None else {}
        oldest = group.oldest
        if isinstance(oldest, str):  # SQLite's MIN over a CASE loses the column's type
            oldest = dt.datetime.fromisoformat(oldest)
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=dt.UTC)
        found.append(
            BlockedBy(
                held_id=int(group.blocked_by),
                table=row.table_name if row is not None else "?",
                key=row.key if row is not None else "?",
                state=row.state if row is not None else "?",
                code=first.get("code"),
                message_zh=first.get("message_zh"),
                waiting=int(group.waiting),
                realtime=int(group.realtime or 0),
                oldest_published=oldest,
            )
        )
    return found
