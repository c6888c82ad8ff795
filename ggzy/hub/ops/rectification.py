"""The eight conditions of Art. 35, rectification orders (责令限期改正) and the 通报 list.

:func:`check_article35` reads an assessment and says which conditions the data shows: (1) no
responsibility system — the roster lacks its 运行负责人 or 技术负责人; (2) the data specification not
followed — pass rate under target; (3) data not reported on time — timely rate under target; (4) the
front-end not deployed — no registered node or no heartbeat in the period, or deployed without the
provincial platform's health probe (the system availability cannot be measured); (6) no emergency plan, or
no drill within the required time; (7) an incident not reported — an automatic incident without its
fault report past the due time. Conditions (5) and (8), and the parts the data cannot show (the
rules of (1), the training of (6)), are recorded by an inspector with :func:`issue_order`.

Each violation gets one order per province, condition and period, with a deadline
(``rectification_days``). An order still open after its deadline, or closed only after it, is on
the 通报 list (:func:`notice_list`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ggzy.hub.models import ops_tables
from ggzy.hub.ops.assessment import Assessment
from ggzy.hub.ops.periods import utc
from ggzy.hub.ops.session import OpsError, OpsSession

__all__ = [
    "CONDITIONS",
    "Violation",
    "check_article35",
    "close_order",
    "issue_order",
    "issue_orders",
    "list_orders",
    "notice_list",
]

T = ops_tables.rectifications
CONDITIONS = {
    1: "未建立运行维护责任制，或者未制定运行维护制度",
    2: "未执行数据规范标准",
    3: "未按时报送数据",
    4: "交换前置系统未按要求部署",
    5: "未保证运行安全所必需的资金投入，致使造成安全事件",
    6: "未制定和演练网络运行事故应急处置预案，或未开展运行安全和信息共享教育培训",
    7: "发生运行事故，未及时、如实上报或者对事故调查处理不力",
    8: "在重大活动时，不执行运行安全管理措施或不听从指挥、调度",
}
AUTOMATIC = (1, 2, 3, 4, 6, 7)  # the others only an inspector can find


@dataclass(frozen=True, slots=True)
class Violation:
    condition: int
    basis: str
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "condition": self.condition,
            "condition_zh": CONDITIONS[self.condition],
            "basis": self.basis,
            "evidence": self.evidence,
        }


def check_article35(assessment: Assessment) -> list[Violation]:
    found: list[Violation] = []
    a = assessment
    leads = [
        g
        for g in a.facts["roster_gaps"]
        if g["post"] in ("lead_ops", "lead_tech") and g["code"] == "E-ROSTER-EMPTY"
    ]
    if leads:
        found.append(
            Violation(1, "；".join(g["message_zh"] for g in leads), a.indicator("roster_complete").evidence)
        )
    for condition, key in ((2, "pass_rate"), (3, "timely_rate")):
        indicator = a.indicator(key)
        if indicator.met is False:
            assert isinstance(indicator.value, float)
            found.append(
                Violation(
                    condition,
                    f"{indicator.name_zh} {indicator.value:.2%}，低于 {float(indicator.target):.0%}",
                    indicator.evidence,
                )
            )
    deployed = a.indicator("frontend_deployed")
    if deployed.met is False:
        found.append(Violation(4, deployed.note, deployed.evidence))
    probe = a.indicator("system_probe")
    if probe.met is False and deployed.met is not False:
        found.append(Violation(4, f"交换前置系统{probe.note}", probe.evidence))
    drill = a.indicator("drill_held")
    if not a.facts["plans"] or drill.met is False:
        reason = "未备案应急预案" if not a.facts["plans"] else f"最近演练 {drill.value or '无'}，超过规定期限"
        found.append(Violation(6, reason, drill.evidence))
    if a.facts["late_incidents"]:
        ids = "、".join(f"#{i}" for i in a.facts["late_incidents"])
        found.append(
            Violation(7, f"事件 {ids} 逾期未提交故障报告", a.indicator("incidents_reported").evidence)
        )
    return found


def _order(row: Any, now: dt.datetime | None = None) -> dict[str, Any]:
    deadline = utc(row.deadline)
    closed = utc(row.closed_at) if row.closed_at is not None else None
    overdue = (closed is None and now is not None and now > deadline) or (
        closed is not None and closed > deadline
    )
    return {
        "id": row.id,
        "province": row.province,
        "condition": row.condition,
        "condition_zh": CONDITIONS[row.condition],
        "period": row.period,
        "basis": row.basis,
        "evidence": row.evidence,
        "source": row.source,
        "issued_at": utc(row.issued_at).isoformat(),
        "deadline": deadline.isoformat(),
        "closed_at": closed.isoformat() if closed else None,
        "closing_note": row.closing_note,
        "status": "closed" if closed else "open",
        "overdue": bool(overdue),
    }


def issue_order(
    session: OpsSession,
    province: str,
    condition: int,
    basis: str,
    *,
    period: str = "inspection",
    evidence: str = "",
    deadline_days: int | None = None,
    source: str = "inspector",
) -> dict[str, Any]:
    """Order ``province`` to put ``condition`` right within ``deadline_days`` (national operators only)."""
    session.actor.check_national()
    if condition not in CONDITIONS:
        raise OpsError("E-OPS-CONDITION", "条件编号应为 1–8（第三十五条各项）", "condition must be 1-8")
    if not basis.strip():
        raise OpsError("E-OPS-BASIS", "请写明责令改正的依据", "the basis of the order is required")
    now = session.now()
    days = deadline_days if deadline_days is not None else session.settings.rectification_days
    order_id = session.connection.execute(
        insert(T).returning(T.c.id),
        {
            "province": province,
            "condition": condition,
            "period": period,
            "basis": basis.strip(),
            "evidence": evidence[:500],
            "source": source,
            "issued_at": now,
            "deadline": now + dt.timedelta(days=days),
            "issued_by": session.actor.account,
        },
    ).scalar_one()
    session.changed(
        "ops.rectification.issue",
        f"rectification:{order_id}",
        {"province": province, "condition": condition, "period": period},
    )
    return _order(session.connection.execute(select(T).where(T.c.id == order_id)).one(), now)


def issue_orders(session: OpsSession, assessment: Assessment) -> list[dict[str, Any]]:
    """Orders for the violations the assessment shows, unless already ordered for this period."""
    issued = []
    for violation in check_article35(assessment):
        exists = session.connection.execute(
            select(T.c.id).where(
                T.c.province == assessment.province,
                T.c.condition == violation.condition,
                T.c.period == assessment.period.label,
            )
        ).first()
        if exists is None:
            issued.append(
                issue_order(
                    session,
                    assessment.province,
                    violation.condition,
                    violation.basis,
                    period=assessment.period.label,
                    evidence=violation.evidence,
                    source="auto",
                )
            )
    return issued


def close_order(session: OpsSession, order_id: int, note: str) -> dict[str, Any]:
    """The national side confirms the province has put it right."""
    session.actor.check_national()
    row = session.connection.execute(select(T).where(T.c.id == order_id)).first()
    if row is None:
        raise OpsError("E-OPS-NOT-FOUND", f"整改通知 {order_id} 不存在", f"no order {order_id}", 404)
    if row.closed_at is not None:
        raise OpsError("E-OPS-WORKFLOW", "该整改通知已关闭", "the order is already closed", 409)
    if not note.strip():
        raise OpsError("E-OPS-CLOSE-NOTE", "请写明整改情况", "say how it was put right")
    now = session.now()
    session.connection.execute(
        update(T).where(T.c.id == order_id).values(closed_at=now, closing_note=note.strip())
    )
    session.changed("ops.rectification.close", f"rectification:{order_id}", {"late": now > utc(row.deadline)})
    return _order(session.connection.execute(select(T).where(T.c.id == order_id)).one(), now)


def list_orders(
    connection: Connection, now: dt.datetime, province: str | None = None, *, open_only: bool = False
) -> list[dict[str, Any]]:
    where = []
    if province is not None:
        where.append(T.c.province == province)
    if open_only:
        where.append(T.c.closed_at.is_(None))
    rows = connection.execute(select(T).where(*where).order_by(T.c.issued_at.desc(), T.c.id.desc()))
    return [_order(r, now) for r in rows]


def notice_list(connection: Connection, now: dt.datetime) -> list[dict[str, Any]]:
    """The 通报 list: orders not closed by their deadline (still open, or closed late)."""
    return [
        {**order, "notice_zh": "逾期未改正" if order["status"] == "open" else "逾期后改正"}
        for order in reversed(list_orders(connection, now))
        if order["overdue"]
    ]
