"""The eight conditions of Art. 35, rectification orders (责令限期改正) and the 通报 list.

:func:`check_article35` reads an assessment and says which conditions the data shows: (1) no
responsibility system — the roster lacks its 运行负责人 or 技术负责人; (2) the data specification not
followed — pass rate under target; (3) data not reported on time — timely rate under target; (4) the
front-end not deployed — no registered node or no heartbeat in the period, or deployed without the
provincial platform's health probe (the system availability cannot be measured); (6) no emergency plan, or
no drill within the required time, or no safety or information-sharing training within it; (7) an incident not reported — an automatic incident without its
fault report past the due time. Conditions (5) and (8), and the parts the data cannot show (the
rules of (1)), come from an inspection's failed items (``ggzy.hub.ops.inspections``) or are
recorded by an inspector with :func:`issue_order`.

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
from ggzy.hub.ops.fields import beijing_today, check_province
from ggzy.hub.ops.notices import post_notice
from ggzy.hub.ops.periods import SHANGHAI, day_period, utc
from ggzy.hub.ops.session import OpsError, OpsSession

__all__ = [
    "CONDITIONS",
    "Violation",
    "check_article35",
    "close_order",
    "deadline_after",
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
AUTOMATIC = (1, 2, 3, 4, 6, 7)  # from the assessment's data; every condition also from an inspection
SOURCES = {"auto": "考核自动发现", "inspector": "检查人员下达", "inspection": "检查结果自动下达"}


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
    reasons = []
    if not a.facts["plans"] or drill.met is False:
        reasons.append(
            "未备案应急预案" if not a.facts["plans"] else f"最近演练 {drill.value or '无'}，超过规定期限"
        )
    if not a.facts.get("trainings", [None]):
        reasons.append("期末前规定期限内未开展运行安全和信息共享教育培训")
    if reasons:
        found.append(Violation(6, "；".join(reasons), drill.evidence))
    if a.facts["late_incidents"]:
        ids = "、".join(f"#{i}" for i in a.facts["late_incidents"])
        found.append(
            Violation(7, f"事件 {ids} 逾期未提交故障报告", a.indicator("incidents_reported").evidence)
        )
    return found


def deadline_after(issued_at: dt.datetime, days: int) -> dt.datetime:
    """The end of the Beijing day ``days`` after the day of issue (``0``: by the end of today)."""
    return day_period(beijing_today(issued_at) + dt.timedelta(days=days)).end


def _beijing_day(moment: dt.datetime) -> str:
    return moment.astimezone(SHANGHAI).date().isoformat()


def _order(row: Any, now: dt.datetime | None = None) -> dict[str, Any]:
    deadline = utc(row.deadline)  # the end of the last Beijing day of the deadline (exclusive)
    closed = utc(row.closed_at) if row.closed_at is not None else None
    overdue = (closed is None and now is not None and now >= deadline) or (
        closed is not None and closed >= deadline
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
        "source_zh": SOURCES.get(row.source, row.source),
        "issued_at": utc(row.issued_at).isoformat(),
        "issued_on": _beijing_day(utc(row.issued_at)),
        "deadline": deadline.isoformat(),
        "deadline_date": _beijing_day(deadline - dt.timedelta(microseconds=1)),  # the last day allowed
        "closed_at": closed.isoformat() if closed else None,
        "closed_on": _beijing_day(closed) if closed else None,
        "closing_note": row.closing_note,
        "status": "closed" if closed else "open",
        "status_zh": "已关闭" if closed else "整改中",
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
    """Order ``province`` to put ``condition`` right within ``deadline_days`` (national operators only).

    The deadline is a Beijing calendar day: ``deadline_days`` after the Beijing day of issue, until
    that day's end (``0``: by the end of today).
    """
    session.actor.check_national()
    check_province(province)
    if condition not in CONDITIONS:
        raise OpsError("E-OPS-CONDITION", "条件编号应为 1–8（第三十五条各项）", "condition must be 1-8")
    if not basis.strip():
        raise OpsError("E-OPS-BASIS", "请写明责令改正的依据", "the basis of the order is required")
    now = session.now()
    days = deadline_days if deadline_days is not None else session.settings.rectification_days
    if days < 0:
        raise OpsError("E-OPS-DEADLINE", "整改期限天数不能为负数", "the deadline cannot be in the past")
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
            "deadline": deadline_after(now, days),
            "issued_by": session.actor.account,
        },
    ).scalar_one()
    session.changed(
        "ops.rectification.issue",
        f"rectification:{order_id}",
        {"province": province, "condition": condition, "period": period},
    )
    order = _order(session.connection.execute(select(T).where(T.c.id == order_id)).one(), now)
    post_notice(
        session,
        province,
        "order",
        f"责令限期改正 #{order_id}：第三十五条第{condition}项 {CONDITIONS[condition]}",
        f"依据：{order['basis']}\n整改期限：{order['deadline_date']}（北京时间，含）前完成整改并报国家平台确认。",
        link=f"/api/v1/ops/rectifications?province={province}",
        ref=f"rectification:{order_id}",
    )
    return order


def issue_orders(
    session: OpsSession, assessment: Assessment, *, deadline_days: int | None = None
) -> list[dict[str, Any]]:
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
                    deadline_days=deadline_days,
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
    session.changed(
        "ops.rectification.close", f"rectification:{order_id}", {"late": now >= utc(row.deadline)}
    )
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
