"""Inspections (Art. 32–33): scheduled (定期) and spot (抽检) checks of a province with a checklist.

The checklist covers what Art. 32–33 name: security measures, information sharing, front-end
operation, the organisation and roster, plans and drills, and the operation rules. An inspection is
planned, then performed with a result per item (pass / fail / na) and findings, then followed up.
Every failed item raises a rectification order (``ggzy.hub.ops.rectification``) under the condition
of Art. 35 it shows (:data:`CONDITION_OF`), one order per condition and inspection, in the same
transaction as the result: conditions (5) funding that let a security incident happen and (8)
not following the safety measures of a major event come from an inspection like the others.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ggzy.hub.models import ops_tables
from ggzy.hub.ops.fields import check_province
from ggzy.hub.ops.periods import SHANGHAI, utc
from ggzy.hub.ops.session import OpsError, OpsSession

__all__ = [
    "CHECKLIST",
    "CONDITION_OF",
    "follow_up",
    "get_inspection",
    "list_inspections",
    "perform_inspection",
    "plan_inspection",
]

T = ops_tables.inspections
CHECKLIST = {
    "security": "安全保护措施（等级保护、防火墙策略、防病毒与加固）",
    "sharing": "信息共享（数据规范执行、按时报送、纠错）",
    "frontend": "交换前置系统运行保障（部署、容量、心跳）",
    "organisation": "组织机构与人员落实（人员备案、主备制、培训）",
    "rules": "运行维护制度（运行维护责任制与管理制度）",
    "plans": "应急预案制定与演练",
    "training": "运行安全和信息共享教育培训",
    "funding": "运行安全必需的资金投入（投入不足致使发生安全事件）",
    "major_events": "重大活动期间执行运行安全管理措施、服从指挥调度",
}
# The condition of Art. 35 a failed item shows.
CONDITION_OF = {
    "security": 5,
    "sharing": 2,
    "frontend": 4,
    "organisation": 1,
    "rules": 1,
    "plans": 6,
    "training": 6,
    "funding": 5,
    "major_events": 8,
}
RESULTS = ("pass", "fail", "na")
RESULT_LABELS = {"pass": "合格", "fail": "不合格", "na": "不适用"}
STATUS_LABELS = {"planned": "已安排", "done": "已检查", "followed_up": "已跟踪整改"}


def _dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "province": row.province,
        "kind": row.kind,
        "kind_zh": {"scheduled": "定期检查", "spot": "抽检"}[row.kind],
        "planned_on": row.planned_on.isoformat(),
        "performed_at": utc(row.performed_at).isoformat() if row.performed_at else None,
        "inspector": row.inspector,
        "checklist": row.checklist,
        "checklist_zh": {
            item: f"{CHECKLIST.get(item, item)}：{RESULT_LABELS.get(value.get('result'), value.get('result'))}"
            for item, value in (row.checklist or {}).items()
        },
        "failed_items": [
            item for item, value in (row.checklist or {}).items() if value.get("result") == "fail"
        ],
        "findings": row.findings,
        "follow_up": row.follow_up,
        "follow_up_due": row.follow_up_due.isoformat() if row.follow_up_due else None,
        "followed_up_at": utc(row.followed_up_at).isoformat() if row.followed_up_at else None,
        "status": row.status,
        "status_zh": STATUS_LABELS.get(row.status, row.status),
    }


def plan_inspection(session: OpsSession, province: str, kind: str, planned_on: dt.date) -> dict[str, Any]:
    session.actor.check_national()
    check_province(province)
    if kind not in ("scheduled", "spot"):
        raise OpsError(
            "E-OPS-INSPECTION-KIND",
            "检查方式应为 scheduled（定期）或 spot（抽检）",
            "kind must be scheduled or spot",
        )
    inspection_id = session.connection.execute(
        insert(T).returning(T.c.id),
        {
            "province": province,
            "kind": kind,
            "planned_on": planned_on,
            "inspector": session.actor.account,
            "checklist": {},
            "status": "planned",
            "created_at": session.now(),
        },
    ).scalar_one()
    session.changed(
        "ops.inspection.plan", f"inspection:{inspection_id}", {"province": province, "kind": kind}
    )
    return get_inspection(session.connection, int(inspection_id))


def perform_inspection(
    session: OpsSession,
    inspection_id: int,
    results: Mapping[str, Mapping[str, str]],
    findings: str,
    *,
    follow_up_text: str = "",
    follow_up_due: dt.date | None = None,
) -> dict[str, Any]:
    """Record the result of every checklist item (each must be answered) and the findings."""
    session.actor.check_national()
    if get_inspection(session.connection, inspection_id)["status"] != "planned":
        raise OpsError(
            "E-OPS-WORKFLOW",
            f"检查 {inspection_id} 已登记结果，不能重复登记",
            "the inspection is already performed",
            409,
        )
    unknown = set(results) - set(CHECKLIST)
    unanswered = set(CHECKLIST) - set(results)
    bad = [
        item
        for item, value in results.items()
        if not isinstance(value, Mapping) or value.get("result") not in RESULTS
    ]
    if unknown or unanswered or bad:
        raise OpsError(
            "E-OPS-CHECKLIST",
            f"检查表须逐项填写 pass/fail/na；未填：{'、'.join(sorted(unanswered)) or '无'}；未知：{'、'.join(sorted(unknown)) or '无'}",
            f"every checklist item needs pass/fail/na (missing {sorted(unanswered)}, unknown {sorted(unknown)}, invalid {bad})",
        )
    session.connection.execute(
        update(T)
        .where(T.c.id == inspection_id)
        .values(
            checklist={k: dict(v) for k, v in results.items()},
            findings=findings,
            follow_up=follow_up_text,
            follow_up_due=follow_up_due,
            performed_at=session.now(),
            inspector=session.actor.account,
            status="done",
        )
    )
    session.changed(
        "ops.inspection.perform",
        f"inspection:{inspection_id}",
        {"failed": [k for k, v in results.items() if v.get("result") == "fail"]},
    )
    done = get_inspection(session.connection, inspection_id)
    done["orders"] = _raise_orders(session, done)
    return done


def _raise_orders(session: OpsSession, inspection: dict[str, Any]) -> list[dict[str, Any]]:
    """One rectification order per Art. 35 condition the failed items show (items in checklist order)."""
    from ggzy.hub.ops.rectification import issue_order

    by_condition: dict[int, list[str]] = {}
    for item in CHECKLIST:
        if item in inspection["failed_items"]:
            by_condition.setdefault(CONDITION_OF[item], []).append(item)
    orders = []
    for condition, items in sorted(by_condition.items()):
        facts = "；".join(
            f"{CHECKLIST[i]}：不合格"
            + (f"（{note}）" if (note := inspection["checklist"][i].get("note")) else "")
            for i in items
        )
        orders.append(
            issue_order(
                session,
                inspection["province"],
                condition,
                f"{inspection['kind_zh']} #{inspection['id']}（{inspection['planned_on']}）：{facts}",
                period=f"insp-{inspection['id']}",
                evidence=f"/api/v1/ops/inspections/{inspection['id']}",
                deadline_days=_days_until(session, inspection.get("follow_up_due")),
                source="inspection",
            )
        )
    return orders


def _days_until(session: OpsSession, due: str | None) -> int | None:
    """The follow-up date the inspector set, as the deadline of the orders (else the default)."""
    if not due:
        return None
    today = session.now().astimezone(SHANGHAI).date()
    return max(0, (dt.date.fromisoformat(due) - today).days)


def follow_up(session: OpsSession, inspection_id: int, note: str) -> dict[str, Any]:
    session.actor.check_national()
    current = get_inspection(session.connection, inspection_id)
    if current["status"] != "done":
        raise OpsError(
            "E-OPS-WORKFLOW", "检查完成后才能登记整改跟踪", "follow up a performed inspection", 409
        )
    text = (current["follow_up"] + "\n" + note).strip()
    session.connection.execute(
        update(T)
        .where(T.c.id == inspection_id)
        .values(follow_up=text, followed_up_at=session.now(), status="followed_up")
    )
    session.changed("ops.inspection.follow_up", f"inspection:{inspection_id}", {})
    return get_inspection(session.connection, inspection_id)


def get_inspection(connection: Connection, inspection_id: int) -> dict[str, Any]:
    row = connection.execute(select(T).where(T.c.id == inspection_id)).first()
    if row is None:
        raise OpsError(
            "E-OPS-NOT-FOUND", f"检查 {inspection_id} 不存在", f"no inspection {inspection_id}", 404
        )
    return _dict(row)


def list_inspections(connection: Connection, province: str | None = None) -> list[dict[str, Any]]:
    where = [T.c.province == province] if province is not None else []
    return [
        _dict(r)
        for r in connection.execute(select(T).where(*where).order_by(T.c.planned_on.desc(), T.c.id.desc()))
    ]
