"""Incidents and fault reports (Art. 25–27): one record per fault, whoever noticed it first.

An incident is opened automatically by a trigger (``origin = auto``, see ``ggzy.hub.ops.detect``) or by a
province's fault report (故障报告, ``origin = report``). A province files its report either as a new
incident or onto an automatic one; until it does, the automatic incident is *unreported* and shown to
the national operators (overdue once ``report_due_hours`` have passed).

The workflow moves forward only: reported (上报) → handling (处置中) → recovered (已恢复) → closed
(已关闭), each step stamped. Closing needs the fault report with its cause and corrective actions,
since the lessons and measures are what Art. 27 asks the province to draw.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ggzy.hub.models import ops_tables
from ggzy.hub.ops.periods import Interval, utc
from ggzy.hub.ops.session import OpsError, OpsSession

__all__ = [
    "STATUS_ORDER",
    "Classification",
    "FaultReport",
    "Incident",
    "advance_incident",
    "file_fault_report",
    "get_incident",
    "list_incidents",
    "open_auto_incident",
    "open_incident_for",
    "recover_auto_incident",
    "unreported_incidents",
]

T = ops_tables.incidents
STATUS_ORDER = ("reported", "handling", "recovered", "closed")
STATUS_ZH = {"reported": "已上报", "handling": "处置中", "recovered": "已恢复", "closed": "已关闭"}
TRIGGER_ZH = {
    "node_down": "前置机中断",
    "error_rate": "错误率突增",
    "realtime_late": "实时数据超时",
    "disk": "磁盘空间不足",
    "backup": "备份未验证",
}


class Classification(StrEnum):
    POWER = "power"
    LINK = "link"
    EQUIPMENT = "equipment"
    SOFTWARE = "software"
    SECURITY = "security"
    OTHER = "other"

    @property
    def label(self) -> str:
        return {
            "power": "电力",
            "link": "链路",
            "equipment": "设备",
            "software": "软件",
            "security": "安全",
            "other": "其他",
        }[self.value]


@dataclass(frozen=True, slots=True)
class FaultReport:
    """What a province reports about a fault (all text in the province's words)."""

    title: str
    classification: Classification
    started_at: dt.datetime
    ended_at: dt.datetime | None = None
    impact: str = ""
    cause: str = ""
    handling: str = ""
    lessons: str = ""
    corrective_actions: str = ""


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    province: str
    node_id: str | None
    origin: str
    trigger: str | None
    classification: Classification | None
    title: str
    impact: str
    cause: str
    handling: str
    lessons: str
    corrective_actions: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    status: str
    reported_at: dt.datetime
    handling_at: dt.datetime | None
    recovered_at: dt.datetime | None
    closed_at: dt.datetime | None
    fault_reported_at: dt.datetime | None
    detail: Mapping[str, Any]

    @property
    def unreported(self) -> bool:
        return self.fault_reported_at is None

    def to_dict(self) -> dict[str, Any]:
        def iso(moment: dt.datetime | None) -> str | None:
            return moment.isoformat() if moment is not None else None

        return {
            "id": self.id,
            "province": self.province,
            "node_id": self.node_id,
            "origin": self.origin,
            "trigger": self.trigger,
            "trigger_zh": TRIGGER_ZH.get(self.trigger or ""),
            "classification": self.classification.value if self.classification else None,
            "classification_zh": self.classification.label if self.classification else None,
            "title": self.title,
            "impact": self.impact,
            "cause": self.cause,
            "handling": self.handling,
            "lessons": self.lessons,
            "corrective_actions": self.corrective_actions,
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "status": self.status,
            "status_zh": STATUS_ZH[self.status],
            "reported_at": iso(self.reported_at),
            "handling_at": iso(self.handling_at),
            "recovered_at": iso(self.recovered_at),
            "closed_at": iso(self.closed_at),
            "fault_reported_at": iso(self.fault_reported_at),
            "unreported": self.unreported,
            "detail": dict(self.detail),
        }


def _opt(moment: dt.datetime | None) -> dt.datetime | None:
    return utc(moment) if moment is not None else None


def _incident(row: Any) -> Incident:
    return Incident(
        id=row.id,
        province=row.province,
        node_id=row.node_id,
        origin=row.origin,
        trigger=row.trigger,
        classification=Classification(row.classification) if row.classification else None,
        title=row.title,
        impact=row.impact,
        cause=row.cause,
        handling=row.handling,
        lessons=row.lessons,
        corrective_actions=row.corrective_actions,
        started_at=utc(row.started_at),
        ended_at=_opt(row.ended_at),
        status=row.status,
        reported_at=utc(row.reported_at),
        handling_at=_opt(row.handling_at),
        recovered_at=_opt(row.recovered_at),
        closed_at=_opt(row.closed_at),
        fault_reported_at=_opt(row.fault_reported_at),
        detail=row.detail or {},
    )


def get_incident(connection: Connection, incident_id: int) -> Incident:
    row = connection.execute(select(T).where(T.c.id == incident_id)).first()
    if row is None:
        raise OpsError("E-OPS-NOT-FOUND", f"事件 {incident_id} 不存在", f"no incident {incident_id}", 404)
    return _incident(row)


def open_incident_for(connection: Connection, dedupe_key: str) -> Incident | None:
    """The automatic incident of ``dedupe_key`` that is still open (reported or handling)."""
    row = connection.execute(
        select(T)
        .where(T.c.dedupe_key == dedupe_key, T.c.status.in_(("reported", "handling")))
        .order_by(T.c.id.desc())
        .limit(1)
    ).first()
    return _incident(row) if row is not None else None


def open_auto_incident(
    session: OpsSession,
    province: str,
    trigger: str,
    subject: str,
    title: str,
    started_at: dt.datetime,
    detail: Mapping[str, Any],
    node_id: str | None = None,
) -> Incident | None:
    """Open an automatic incident unless one for the same trigger and subject is still open."""
    dedupe_key = f"{trigger}:{subject}"
    if open_incident_for(session.connection, dedupe_key) is not None:
        return None
    now = session.now()
    incident_id = session.connection.execute(
        insert(T).returning(T.c.id),
        {
            "province": province,
            "node_id": node_id,
            "origin": "auto",
            "trigger": trigger,
            "dedupe_key": dedupe_key,
            "title": title[:300],
            "started_at": utc(started_at),
            "status": "reported",
            "reported_at": now,
            "detail": dict(detail),
        },
    ).scalar_one()
    session.changed(
        "ops.incident.open", f"incident:{incident_id}", {"province": province, "trigger": trigger, **detail}
    )
    return get_incident(session.connection, int(incident_id))


def recover_auto_incident(session: OpsSession, dedupe_key: str, ended_at: dt.datetime) -> Incident | None:
    """The condition behind an open automatic incident has cleared: mark it recovered."""
    found = open_incident_for(session.connection, dedupe_key)
    if found is None:
        return None
    now = session.now()
    session.connection.execute(
        update(T)
        .where(T.c.id == found.id)
        .values(status="recovered", recovered_at=now, ended_at=utc(ended_at))
    )
    session.changed(
        "ops.incident.recover", f"incident:{found.id}", {"province": found.province, "auto": True}
    )
    return get_incident(session.connection, found.id)


def file_fault_report(
    session: OpsSession, province: str, report: FaultReport, incident_id: int | None = None
) -> Incident:
    """A province's fault report: a new incident, or the report of an automatic one (``incident_id``)."""
    session.actor.check_province(province)
    if not report.title.strip():
        raise OpsError("E-OPS-TITLE", "故障报告须有标题", "a fault report needs a title")
    started = utc(report.started_at)
    ended = _opt(report.ended_at)
    if ended is not None and ended < started:
        raise OpsError("E-OPS-WINDOW", "故障结束时间早于开始时间", "the fault ends before it starts")
    now = session.now()
    values = {
        "title": report.title.strip()[:300],
        "classification": report.classification.value,
        "started_at": started,
        "ended_at": ended,
        "impact": report.impact,
        "cause": report.cause,
        "handling": report.handling,
        "lessons": report.lessons,
        "corrective_actions": report.corrective_actions,
        "fault_reported_at": now,
    }
    if incident_id is None:
        new_id = session.connection.execute(
            insert(T).returning(T.c.id),
            {
                **values,
                "province": province,
                "origin": "report",
                "status": "reported",
                "reported_at": now,
                "detail": {},
            },
        ).scalar_one()
        incident_id = int(new_id)
    else:
        existing = get_incident(session.connection, incident_id)
        if existing.province != province:
            raise OpsError(
                "E-OPS-SCOPE",
                f"事件 {incident_id} 不属于省份 {province}",
                "the incident is another province's",
                403,
            )
        session.connection.execute(update(T).where(T.c.id == incident_id).values(**values))
    session.changed(
        "ops.fault.report",
        f"incident:{incident_id}",
        {"province": province, "classification": report.classification.value},
    )
    return get_incident(session.connection, incident_id)


def advance_incident(session: OpsSession, incident_id: int, status: str) -> Incident:
    """Move an incident forward in its workflow (never back); closing needs the full fault report."""
    incident = get_incident(session.connection, incident_id)
    session.actor.check_province(incident.province)
    if status not in STATUS_ORDER:
        raise OpsError("E-OPS-STATUS", f"未知状态“{status}”", f"unknown status {status!r}")
    if STATUS_ORDER.index(status) <= STATUS_ORDER.index(incident.status):
        raise OpsError(
            "E-OPS-WORKFLOW",
            f"事件已是“{STATUS_ZH[incident.status]}”，不能改为“{STATUS_ZH[status]}”（流程只能向前）",
            f"incident is {incident.status}; the workflow only moves forward",
            409,
        )
    if status == "closed" and (
        incident.unreported or not incident.cause.strip() or not incident.corrective_actions.strip()
    ):
        raise OpsError(
            "E-OPS-CLOSE-REPORT",
            "关闭前须提交故障报告并写明原因和整改措施",
            "closing needs the fault report with cause and corrective actions",
            409,
        )
    now = session.now()
    values: dict[str, Any] = {"status": status, f"{status}_at": now}
    if status in ("recovered", "closed") and incident.ended_at is None:
        values["ended_at"] = now
    session.connection.execute(update(T).where(T.c.id == incident_id).values(**values))
    session.changed(
        "ops.incident.status", f"incident:{incident_id}", {"province": incident.province, "status": status}
    )
    return get_incident(session.connection, incident_id)


def list_incidents(
    connection: Connection,
    province: str | None = None,
    window: Interval | None = None,
    *,
    status: str | None = None,
    unreported: bool | None = None,
    limit: int = 500,
) -> list[Incident]:
    where = []
    if province is not None:
        where.append(T.c.province == province)
    if window is not None:
        where += [T.c.started_at < window[1], (T.c.ended_at.is_(None)) | (T.c.ended_at > window[0])]
    if status is not None:
        where.append(T.c.status == status)
    if unreported is True:
        where.append(T.c.fault_reported_at.is_(None))
    elif unreported is False:
        where.append(T.c.fault_reported_at.is_not(None))
    rows = connection.execute(
        select(T).where(*where).order_by(T.c.started_at.desc(), T.c.id.desc()).limit(limit)
    )
    return [_incident(row) for row in rows]


def unreported_incidents(
    connection: Connection, now: dt.datetime, due_hours: float, province: str | None = None
) -> list[tuple[Incident, bool]]:
    """Automatic incidents no fault report covers yet, each with whether its report is overdue."""
    due = dt.timedelta(hours=due_hours)
    return [
        (incident, now - incident.reported_at > due)
        for incident in list_incidents(connection, province, unreported=True)
        if incident.origin == "auto"
    ]
