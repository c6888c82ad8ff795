"""Planned outage notices (Art. 25): 停电、搬迁、线路割接、设备检修, notified ahead with window and impact.

A notice given at least ``outage_lead_hours`` (default 24 h) before its window starts is *in time*:
its window is approved maintenance and is excluded from the availability period. A late notice is
kept and shown, but its window counts as ordinary down time; downtime that no notice covers at all
is reported by the availability figures as *unnotified*.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ggzy.hub.models import ops_tables
from ggzy.hub.ops.periods import Interval, utc
from ggzy.hub.ops.session import OpsError, OpsSession

__all__ = [
    "OutageKind",
    "OutageNotice",
    "approved_windows",
    "list_notices",
    "notify_outage",
    "withdraw_notice",
]

T = ops_tables.outage_notices


class OutageKind(StrEnum):
    POWER = "power"
    RELOCATION = "relocation"
    CUTOVER = "cutover"
    MAINTENANCE = "maintenance"

    @property
    def label(self) -> str:
        return {"power": "停电", "relocation": "搬迁", "cutover": "线路割接", "maintenance": "设备检修"}[
            self.value
        ]


@dataclass(frozen=True, slots=True)
class OutageNotice:
    id: int
    province: str
    kind: OutageKind
    starts_at: dt.datetime
    ends_at: dt.datetime
    impact: str
    notified_at: dt.datetime
    in_time: bool
    status: str
    created_by: str

    @property
    def lead_hours(self) -> float:
        return (self.starts_at - self.notified_at).total_seconds() / 3600

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "province": self.province,
            "kind": self.kind.value,
            "kind_zh": self.kind.label,
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "impact": self.impact,
            "notified_at": self.notified_at.isoformat(),
            "lead_hours": round(self.lead_hours, 2),
            "in_time": self.in_time,
            "late": not self.in_time,
            "status": self.status,
            "created_by": self.created_by,
        }


def _notice(row: Any) -> OutageNotice:
    return OutageNotice(
        id=row.id,
        province=row.province,
        kind=OutageKind(row.kind),
        starts_at=utc(row.starts_at),
        ends_at=utc(row.ends_at),
        impact=row.impact,
        notified_at=utc(row.notified_at),
        in_time=bool(row.in_time),
        status=row.status,
        created_by=row.created_by,
    )


def notify_outage(
    session: OpsSession,
    province: str,
    kind: OutageKind,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    impact: str,
) -> OutageNotice:
    """Record a planned outage notice; it is in time when given at least the lead time ahead."""
    session.actor.check_province(province)
    starts_at, ends_at = utc(starts_at), utc(ends_at)
    if ends_at <= starts_at:
        raise OpsError(
            "E-OPS-WINDOW", "停用结束时间须晚于开始时间", "the outage window ends before it starts"
        )
    if not impact.strip():
        raise OpsError("E-OPS-IMPACT", "请说明停用对平台对接的影响", "the impact of the outage is required")
    now = session.now()
    in_time = starts_at - now >= dt.timedelta(hours=session.settings.outage_lead_hours)
    notice_id = session.connection.execute(
        insert(T).returning(T.c.id),
        {
            "province": province,
            "kind": kind.value,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "impact": impact.strip(),
            "notified_at": now,
            "in_time": in_time,
            "status": "active",
            "created_by": session.actor.account,
        },
    ).scalar_one()
    session.changed(
        "ops.outage.notify",
        f"outage:{notice_id}",
        {"province": province, "kind": kind.value, "in_time": in_time, "starts_at": starts_at.isoformat()},
    )
    return _get(session.connection, int(notice_id))


def withdraw_notice(session: OpsSession, notice_id: int) -> OutageNotice:
    notice = _get(session.connection, notice_id)
    session.actor.check_province(notice.province)
    session.connection.execute(update(T).where(T.c.id == notice_id).values(status="withdrawn"))
    session.changed("ops.outage.withdraw", f"outage:{notice_id}", {"province": notice.province})
    return _get(session.connection, notice_id)


def _get(connection: Connection, notice_id: int) -> OutageNotice:
    row = connection.execute(select(T).where(T.c.id == notice_id)).first()
    if row is None:
        raise OpsError(
            "E-OPS-NOT-FOUND", f"停用通知 {notice_id} 不存在", f"no outage notice {notice_id}", 404
        )
    return _notice(row)


def list_notices(
    connection: Connection,
    province: str | None = None,
    window: Interval | None = None,
    *,
    include_withdrawn: bool = False,
) -> list[OutageNotice]:
    where = []
    if province is not None:
        where.append(T.c.province == province)
    if window is not None:
        where += [T.c.starts_at < window[1], T.c.ends_at > window[0]]
    if not include_withdrawn:
        where.append(T.c.status == "active")
    rows = connection.execute(select(T).where(*where).order_by(T.c.starts_at, T.c.id))
    return [_notice(row) for row in rows]


def approved_windows(connection: Connection, province: str, window: Interval) -> list[Interval]:
    """The windows of in-time, active notices of ``province`` overlapping ``window``."""
    return [(n.starts_at, n.ends_at) for n in list_notices(connection, province, window) if n.in_time]
