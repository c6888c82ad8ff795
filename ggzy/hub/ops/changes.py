"""Change requests (Art. 22): a pre-launch security check and the approval of upgrades by a second person.

A change is a launch (系统上线) or an upgrade (系统升级) of the provincial platform's systems, or an
upgrade of a front-end node's software by the national side (``node_id`` set; Art. 13). It walks
``requested`` → ``approved`` | ``rejected`` → ``done`` | ``failed``:

* :func:`request_change` files it (who asked, what, to which version);
* :func:`record_prelaunch_check` records the pre-launch security check item by item
  (:data:`PRELAUNCH_CHECKLIST`); a launch cannot be approved without one in which no item failed;
* :func:`approve_change` / :func:`reject_change` decide it — never by the person who asked
  (``E-OPS-CHANGE-SAME-PERSON``);
* :func:`record_result` says how the change went; a node upgrade that succeeded becomes the
  national side's upgrade record (``ggzy.hub.ops.versions.record_upgrade``).

Each step is one transaction with its audit entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ggzy.hub.models import nodes, ops_tables
from ggzy.hub.ops.fields import Problems, check_province
from ggzy.hub.ops.periods import utc
from ggzy.hub.ops.session import OpsError, OpsSession
from ggzy.hub.ops.versions import COMPONENTS, record_upgrade

__all__ = [
    "KINDS",
    "PRELAUNCH_CHECKLIST",
    "STATUSES",
    "approve_change",
    "get_change",
    "list_changes",
    "record_prelaunch_check",
    "record_result",
    "reject_change",
    "request_change",
]

T = ops_tables.change_requests
KINDS = {"launch": "系统上线", "upgrade": "系统升级"}
STATUSES = {
    "requested": "待审核",
    "approved": "已批准",
    "rejected": "已驳回",
    "done": "已实施",
    "failed": "实施失败",
}
PRELAUNCH_CHECKLIST = {
    "three_roles": "三员分立：系统管理、系统操作、系统审计账号分设",
    "default_accounts": "无默认账号、无弱口令",
    "patches": "补丁与安全加固到位",
    "antivirus": "防病毒与主机加固软件正常运行",
    "access_policy": "访问策略按要求配置（单审单开，仅开放必要端口）",
    "vulnerability_scan": "上线前漏洞扫描无高危漏洞",
    "backup": "数据备份与恢复已验证",
    "audit_log": "访问与操作日志纳入审计系统",
}
RESULTS = {"pass": "合格", "fail": "不合格", "na": "不适用"}


def _dict(row: Any) -> dict[str, Any]:
    items = row.check_items or {}
    return {
        "id": row.id,
        "province": row.province,
        "node_id": row.node_id,
        "kind": row.kind,
        "kind_zh": KINDS.get(row.kind, row.kind),
        "title": row.title,
        "description": row.description,
        "component": row.component,
        "component_zh": COMPONENTS.get(row.component or "", row.component),
        "to_version": row.to_version,
        "status": row.status,
        "status_zh": STATUSES.get(row.status, row.status),
        "requested_at": utc(row.requested_at).isoformat(),
        "requested_by": row.requested_by,
        "check_items": items,
        "check_failed": [i for i, v in items.items() if v.get("result") == "fail"],
        "checked_at": utc(row.checked_at).isoformat() if row.checked_at else None,
        "checked_by": row.checked_by,
        "decided_at": utc(row.decided_at).isoformat() if row.decided_at else None,
        "decided_by": row.decided_by,
        "decision_note": row.decision_note,
        "result_at": utc(row.result_at).isoformat() if row.result_at else None,
        "result_by": row.result_by,
        "result_note": row.result_note,
    }


def get_change(connection: Connection, change_id: int) -> dict[str, Any]:
    row = connection.execute(select(T).where(T.c.id == change_id)).first()
    if row is None:
        raise OpsError(
            "E-OPS-NOT-FOUND", f"变更申请 {change_id} 不存在", f"no change request {change_id}", 404
        )
    return _dict(row)


def list_changes(connection: Connection, province: str | None = None) -> list[dict[str, Any]]:
    where = [T.c.province == province] if province is not None else []
    rows = connection.execute(select(T).where(*where).order_by(T.c.requested_at.desc(), T.c.id.desc()))
    return [_dict(r) for r in rows]


def _load(session: OpsSession, change_id: int, *, status: str) -> dict[str, Any]:
    change = get_change(session.connection, change_id)
    session.actor.check_province(change["province"])
    if change["node_id"] is not None:
        session.actor.check_national()  # the nodes' software is the national side's (Art. 13)
    if change["status"] != status:
        raise OpsError(
            "E-OPS-WORKFLOW",
            f"变更申请 {change_id} 当前为“{change['status_zh']}”，不能办理此步骤（须为“{STATUSES[status]}”）",
            f"change {change_id} is {change['status']}, not {status}",
            409,
        )
    return change


def request_change(
    session: OpsSession,
    province: str,
    kind: str,
    title: str,
    description: str = "",
    *,
    node_id: str | None = None,
    component: str | None = None,
    to_version: str | None = None,
) -> dict[str, Any]:
    """File a launch or upgrade for approval by a second person."""
    check_province(province)
    session.actor.check_province(province)
    problems = Problems()
    chosen = problems.choices("kind", "变更类别", kind, KINDS)
    heading = problems.text("title", "变更名称", title, max_length=300)
    text = problems.text("description", "变更内容", description, max_length=5000) or ""
    part = problems.choices("component", "组件", component, COMPONENTS) if component else None
    target = problems.text("to_version", "目标版本", to_version, max_length=200)
    if heading is None and not any(p.field == "title" for p in problems.found):
        problems.add("title", "E-OPS-FIELD-REQUIRED", "请填写变更名称", "a title is required")
    if node_id is not None and (part is None or target is None) and not problems.found:
        problems.add(
            "component",
            "E-OPS-FIELD-REQUIRED",
            "前置机升级须写明组件和目标版本",
            "a node upgrade names component and version",
        )
    problems.raise_if_any()
    if node_id is not None:
        session.actor.check_national()
        node = session.connection.execute(select(nodes.c.province).where(nodes.c.node_id == node_id)).first()
        if node is None or node.province != province:
            raise OpsError(
                "E-OPS-NOT-FOUND",
                f"省份 {province} 没有登记节点 {node_id}",
                f"no node {node_id} in {province}",
                404,
            )
    change_id = session.connection.execute(
        insert(T).returning(T.c.id),
        {
            "province": province,
            "node_id": node_id,
            "kind": chosen,
            "title": heading,
            "description": text,
            "component": part,
            "to_version": target,
            "status": "requested",
            "requested_at": session.now(),
            "requested_by": session.actor.account,
        },
    ).scalar_one()
    session.changed(
        "ops.change.request",
        f"change:{change_id}",
        {"province": province, "kind": chosen, "node_id": node_id},
    )
    return get_change(session.connection, int(change_id))


def record_prelaunch_check(session: OpsSession, change_id: int, items: Mapping[str, Any]) -> dict[str, Any]:
    """The pre-launch security check, every item answered (pass / fail / na) with a note."""
    _load(session, change_id, status="requested")
    if not isinstance(items, Mapping):
        raise OpsError("E-OPS-CHANGE-CHECK", "安全检查结果应为“项目: 结论”的对象", "items must be an object")
    unknown = sorted(set(items) - set(PRELAUNCH_CHECKLIST))
    unanswered = [i for i in PRELAUNCH_CHECKLIST if i not in items]
    bad = sorted(
        i
        for i, v in items.items()
        if i in PRELAUNCH_CHECKLIST and (not isinstance(v, Mapping) or v.get("result") not in RESULTS)
    )
    if unknown or unanswered or bad:
        raise OpsError(
            "E-OPS-CHANGE-CHECK",
            f"上线前安全检查须逐项填写 pass/fail/na；未填：{'、'.join(unanswered) or '无'}；"
            f"未知：{'、'.join(unknown) or '无'}；结论无效：{'、'.join(bad) or '无'}",
            f"answer every item (missing {unanswered}, unknown {unknown}, invalid {bad})",
        )
    problems = Problems()
    cleaned = {
        i: {
            "result": str(v["result"]),
            "note": problems.text(f"{i}.note", "说明", v.get("note", ""), max_length=2000) or "",
        }
        for i, v in items.items()
    }
    problems.raise_if_any()
    session.connection.execute(
        update(T)
        .where(T.c.id == change_id)
        .values(check_items=cleaned, checked_at=session.now(), checked_by=session.actor.account)
    )
    failed = [i for i, v in cleaned.items() if v["result"] == "fail"]
    session.changed("ops.change.check", f"change:{change_id}", {"failed": failed})
    return get_change(session.connection, change_id)


def _second_person(session: OpsSession, change: dict[str, Any]) -> None:
    if session.actor.account == change["requested_by"]:
        raise OpsError(
            "E-OPS-CHANGE-SAME-PERSON",
            f"变更申请 {change['id']} 由 {change['requested_by']} 提出，须由另一人审核（系统升级审核责任）",
            "a change is decided by someone other than its requester",
            409,
        )


def approve_change(session: OpsSession, change_id: int, note: str = "") -> dict[str, Any]:
    change = _load(session, change_id, status="requested")
    _second_person(session, change)
    if change["kind"] == "launch" and not change["check_items"]:
        raise OpsError(
            "E-OPS-CHANGE-CHECK",
            "系统上线前须先完成并登记上线前安全检查",
            "a launch needs its pre-launch check",
            409,
        )
    if change["check_failed"]:
        listed = "、".join(PRELAUNCH_CHECKLIST[i] for i in change["check_failed"])
        raise OpsError(
            "E-OPS-CHANGE-CHECK",
            f"上线前安全检查有不合格项，不能批准：{listed}",
            f"the pre-launch check failed: {change['check_failed']}",
            409,
        )
    return _decide(session, change_id, "approved", note)


def reject_change(session: OpsSession, change_id: int, note: str) -> dict[str, Any]:
    change = _load(session, change_id, status="requested")
    _second_person(session, change)
    if not note.strip():
        raise OpsError("E-OPS-FIELD-REQUIRED", "驳回须写明理由", "a rejection needs its reason")
    return _decide(session, change_id, "rejected", note)


def _decide(session: OpsSession, change_id: int, status: str, note: str) -> dict[str, Any]:
    problems = Problems()
    text = problems.text("note", "审核意见", note, max_length=5000) or ""
    problems.raise_if_any()
    session.connection.execute(
        update(T)
        .where(T.c.id == change_id)
        .values(status=status, decided_at=session.now(), decided_by=session.actor.account, decision_note=text)
    )
    session.changed(
        f"ops.change.{'approve' if status == 'approved' else 'reject'}", f"change:{change_id}", {}
    )
    return get_change(session.connection, change_id)


def record_result(session: OpsSession, change_id: int, succeeded: bool, note: str = "") -> dict[str, Any]:
    """How an approved change went; a successful node upgrade is recorded as the national side's upgrade."""
    change = _load(session, change_id, status="approved")
    problems = Problems()
    text = problems.text("note", "实施情况", note, max_length=5000) or ""
    problems.raise_if_any()
    session.connection.execute(
        update(T)
        .where(T.c.id == change_id)
        .values(
            status="done" if succeeded else "failed",
            result_at=session.now(),
            result_by=session.actor.account,
            result_note=text,
        )
    )
    session.changed("ops.change.result", f"change:{change_id}", {"succeeded": succeeded})
    if succeeded and change["node_id"] is not None:
        record_upgrade(
            session,
            change["node_id"],
            change["component"],
            change["to_version"],
            note=text or change["title"],
            change_id=change_id,
        )
    return get_change(session.connection, change_id)
