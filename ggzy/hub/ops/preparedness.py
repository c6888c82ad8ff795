"""Emergency plans (预案) and drills (演练), Art. 28.

A plan is kept in versions: filing a plan again makes the next version, the old ones stay. Each
version states its activation and closing procedure; an activation (启动) of a plan is recorded with
its incident and closed when the emergency ends. Drills are recorded with date, scenario,
participants, measured recovery time and data loss and findings, whether entered by hand or by
``ggzy drill`` (``origin = tool``). A province without a drill in the last ``drill_max_age_days``
(default 365) is flagged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from ggzy.hub.models import nodes, ops_tables
from ggzy.hub.ops.periods import SHANGHAI
from ggzy.hub.ops.session import OpsError, OpsSession

__all__ = [
    "Drill",
    "Plan",
    "activate_plan",
    "close_activation",
    "file_plan",
    "last_drill",
    "list_drills",
    "list_plans",
    "provinces_without_drill",
    "record_drill",
]

P = ops_tables.plans
A = ops_tables.plan_activations
D = ops_tables.drills


@dataclass(frozen=True, slots=True)
class Plan:
    id: int
    province: str
    version: int
    title: str
    activation_procedure: str
    closing_procedure: str
    content: str
    effective_on: dt.date

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "province": self.province,
            "version": self.version,
            "title": self.title,
            "activation_procedure": self.activation_procedure,
            "closing_procedure": self.closing_procedure,
            "content": self.content,
            "effective_on": self.effective_on.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Drill:
    id: int
    province: str
    plan_id: int | None
    held_on: dt.date
    scenario: str
    participants: list[str]
    recovery_seconds: float | None
    data_loss_records: int | None
    findings: str
    origin: str
    detail: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "province": self.province,
            "plan_id": self.plan_id,
            "held_on": self.held_on.isoformat(),
            "scenario": self.scenario,
            "participants": self.participants,
            "recovery_seconds": self.recovery_seconds,
            "data_loss_records": self.data_loss_records,
            "findings": self.findings,
            "origin": self.origin,
            "detail": dict(self.detail),
        }


def _plan(row: Any) -> Plan:
    return Plan(
        row.id,
        row.province,
        row.version,
        row.title,
        row.activation_procedure,
        row.closing_procedure,
        row.content,
        row.effective_on,
    )


def _drill(row: Any) -> Drill:
    return Drill(
        row.id,
        row.province,
        row.plan_id,
        row.held_on,
        row.scenario,
        list(row.participants),
        row.recovery_seconds,
        row.data_loss_records,
        row.findings,
        row.origin,
        row.detail or {},
    )


def file_plan(
    session: OpsSession,
    province: str,
    title: str,
    activation_procedure: str,
    closing_procedure: str,
    *,
    content: str = "",
    effective_on: dt.date | None = None,
) -> Plan:
    """File a plan: its next version (1 for the first)."""
    session.actor.check_province(province)
    if not activation_procedure.strip() or not closing_procedure.strip():
        raise OpsError(
            "E-OPS-PLAN-PROCEDURE",
            "预案须写明启动程序和关闭程序",
            "a plan needs its activation and closing procedures",
        )
    connection = session.connection
    current = connection.execute(select(func.max(P.c.version)).where(P.c.province == province)).scalar()
    version = int(current or 0) + 1
    now = session.now()
    plan_id = connection.execute(
        insert(P).returning(P.c.id),
        {
            "province": province,
            "version": version,
            "title": title.strip()[:300],
            "activation_procedure": activation_procedure.strip(),
            "closing_procedure": closing_procedure.strip(),
            "content": content,
            "effective_on": effective_on or now.astimezone(SHANGHAI).date(),
            "created_at": now,
            "created_by": session.actor.account,
        },
    ).scalar_one()
    session.changed("ops.plan.file", f"plan:{plan_id}", {"province": province, "version": version})
    return _plan(connection.execute(select(P).where(P.c.id == plan_id)).one())


def list_plans(connection: Connection, province: str | None = None) -> list[Plan]:
    where = [P.c.province == province] if province is not None else []
    return [_plan(r) for r in connection.execute(select(P).where(*where).order_by(P.c.province, P.c.version))]


def _plan_of(session: OpsSession, plan_id: int, province: str | None = None) -> Any:
    """The plan ``plan_id``: it exists, the actor may act for its province, and (when given) it is
    ``province``'s own — a province never names another province's plan."""
    row = session.connection.execute(select(P).where(P.c.id == plan_id)).first()
    if row is None:
        raise OpsError("E-OPS-NOT-FOUND", f"预案 {plan_id} 不存在", f"no plan {plan_id}", 404)
    session.actor.check_province(row.province)
    if province is not None and row.province != province:
        raise OpsError(
            "E-OPS-SCOPE",
            f"预案 {plan_id} 属于省份 {row.province}，不能用于省份 {province} 的记录",
            "the plan is another province's",
            403,
        )
    return row


def activate_plan(session: OpsSession, plan_id: int, incident_id: int | None = None, note: str = "") -> int:
    row = _plan_of(session, plan_id)
    if incident_id is not None:
        from ggzy.hub.ops.incidents import get_incident

        incident = get_incident(session.connection, incident_id)  # 404 when there is none
        if incident.province != row.province:
            raise OpsError(
                "E-OPS-SCOPE",
                f"事件 {incident_id} 属于省份 {incident.province}，不能用于省份 {row.province} 的预案启动",
                "the incident is another province's",
                403,
            )
    activation_id = session.connection.execute(
        insert(A).returning(A.c.id),
        {"plan_id": plan_id, "incident_id": incident_id, "activated_at": session.now(), "note": note},
    ).scalar_one()
    session.changed(
        "ops.plan.activate", f"plan:{plan_id}", {"activation": int(activation_id), "incident": incident_id}
    )
    return int(activation_id)


def close_activation(session: OpsSession, activation_id: int, note: str = "") -> None:
    row = session.connection.execute(
        select(A, P.c.province).join(P, P.c.id == A.c.plan_id).where(A.c.id == activation_id)
    ).first()
    if row is None:
        raise OpsError("E-OPS-NOT-FOUND", f"预案启动记录 {activation_id} 不存在", "no such activation", 404)
    session.actor.check_province(row.province)
    if row.closed_at is not None:
        raise OpsError("E-OPS-WORKFLOW", "该次预案启动已关闭", "the activation is already closed", 409)
    session.connection.execute(
        update(A)
        .where(A.c.id == activation_id)
        .values(closed_at=session.now(), note=(row.note + "\n" + note).strip())
    )
    session.changed("ops.plan.close", f"plan:{row.plan_id}", {"activation": activation_id})


def record_drill(
    session: OpsSession,
    province: str,
    held_on: dt.date,
    scenario: str,
    participants: Sequence[str],
    *,
    recovery_seconds: float | None = None,
    data_loss_records: int | None = None,
    findings: str = "",
    plan_id: int | None = None,
    origin: str = "manual",
    detail: Mapping[str, Any] | None = None,
) -> Drill:
    session.actor.check_province(province)
    if plan_id is not None:
        _plan_of(session, plan_id, province)
    if not scenario.strip():
        raise OpsError("E-OPS-DRILL-SCENARIO", "请写明演练场景", "a drill needs its scenario")
    if held_on > session.now().astimezone(SHANGHAI).date():
        raise OpsError(
            "E-OPS-DRILL-FUTURE", "演练日期不能晚于今天", "a drill cannot be recorded before it is held"
        )
    drill_id = session.connection.execute(
        insert(D).returning(D.c.id),
        {
            "province": province,
            "plan_id": plan_id,
            "held_on": held_on,
            "scenario": scenario.strip()[:300],
            "participants": [p.strip() for p in participants if p.strip()],
            "recovery_seconds": recovery_seconds,
            "data_loss_records": data_loss_records,
            "findings": findings,
            "origin": origin,
            "detail": dict(detail or {}),
            "created_at": session.now(),
            "created_by": session.actor.account,
        },
    ).scalar_one()
    session.changed(
        "ops.drill.record",
        f"drill:{drill_id}",
        {"province": province, "held_on": held_on.isoformat(), "origin": origin},
    )
    return _drill(session.connection.execute(select(D).where(D.c.id == drill_id)).one())


def list_drills(connection: Connection, province: str | None = None) -> list[Drill]:
    where = [D.c.province == province] if province is not None else []
    return [
        _drill(r)
        for r in connection.execute(select(D).where(*where).order_by(D.c.held_on.desc(), D.c.id.desc()))
    ]


def last_drill(connection: Connection, province: str, on_or_before: dt.date) -> dt.date | None:
    found = connection.execute(
        select(func.max(D.c.held_on)).where(D.c.province == province, D.c.held_on <= on_or_before)
    ).scalar()
    return found if isinstance(found, dt.date) else None


def provinces_without_drill(
    connection: Connection, today: dt.date, max_age_days: int
) -> list[dict[str, Any]]:
    """Provinces with a registered node whose last drill is older than ``max_age_days`` (or none)."""
    provinces = sorted(set(connection.execute(select(nodes.c.province).distinct()).scalars()))
    flagged = []
    for province in provinces:
        last = last_drill(connection, province, today)
        if last is None or (today - last).days > max_age_days:
            flagged.append({"province": province, "last_drill": last.isoformat() if last else None})
    return flagged
