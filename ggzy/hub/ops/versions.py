"""Software of the front-end nodes (Art. 13): what each runs, what is approved, who upgraded it.

The national side manages the nodes' operating system, database and application software. Every
heartbeat carries the node's exchange software, OS, Python and database versions
(``versions`` in the payload); :func:`note_versions` keeps a row each time they change, in the
heartbeat's transaction, so the history says from when a node ran what. National operators keep
the list of approved versions per component (an exact version or a shell pattern such as
``PostgreSQL 16.*``); :func:`version_flags` names every node running a version outside that list
(an empty list approves nothing) and every change no recorded upgrade explains.
:func:`record_upgrade` is the national side's record of an upgrade it performed, optionally tied
to an approved change request (``ggzy.hub.ops.changes``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from fnmatch import fnmatchcase
from itertools import pairwise
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from ggzy.hub.models import nodes, ops_tables
from ggzy.hub.ops.fields import Problems
from ggzy.hub.ops.periods import SHANGHAI, utc
from ggzy.hub.ops.session import OpsError, OpsSession

__all__ = [
    "COMPONENTS",
    "approve_version",
    "approved_versions",
    "current_versions",
    "list_upgrades",
    "note_versions",
    "record_upgrade",
    "version_flags",
    "version_history",
    "withdraw_approval",
]

V = ops_tables.node_versions
A = ops_tables.approved_versions
U = ops_tables.node_upgrades
COMPONENTS = {"software": "交换软件", "os": "操作系统", "python": "Python 运行环境", "database": "数据库"}


def note_versions(
    connection: Connection, node_id: str, province: str, versions: Mapping[str, str], at: dt.datetime
) -> bool:
    """Keep the versions a beat reports when they differ from the node's last known ones."""
    wanted = {c: str(versions.get(c) or "")[:200] for c in COMPONENTS}
    last = connection.execute(
        select(V).where(V.c.node_id == node_id).order_by(V.c.seen_at.desc(), V.c.id.desc()).limit(1)
    ).first()
    if last is not None and all(getattr(last, c) == wanted[c] for c in COMPONENTS):
        return False
    connection.execute(insert(V), {"node_id": node_id, "province": province, "seen_at": at, **wanted})
    return True


def _row(row: Any) -> dict[str, Any]:
    return {
        "node_id": row.node_id,
        "province": row.province,
        "seen_at": utc(row.seen_at).isoformat(),
        **{c: getattr(row, c) for c in COMPONENTS},
    }


def version_history(
    connection: Connection, *, node_id: str | None = None, province: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    where = []
    if node_id is not None:
        where.append(V.c.node_id == node_id)
    if province is not None:
        where.append(V.c.province == province)
    rows = connection.execute(
        select(V).where(*where).order_by(V.c.seen_at.desc(), V.c.id.desc()).limit(limit)
    )
    return [_row(r) for r in rows]


def current_versions(connection: Connection, province: str | None = None) -> list[dict[str, Any]]:
    """The newest versions of each node (of ``province``)."""
    newest = select(V.c.node_id, func.max(V.c.id).label("id")).group_by(V.c.node_id)
    if province is not None:
        newest = newest.where(V.c.province == province)
    sub = newest.subquery()
    rows = connection.execute(select(V).join(sub, V.c.id == sub.c.id).order_by(V.c.node_id))
    return [_row(r) for r in rows]


def approve_version(session: OpsSession, component: str, pattern: str, note: str = "") -> dict[str, Any]:
    """Add ``pattern`` to the approved versions of ``component`` (national operators)."""
    session.actor.check_national()
    problems = Problems()
    chosen = problems.choices("component", "组件", component, COMPONENTS)
    text = problems.text("pattern", "版本", pattern, max_length=200)
    why = problems.text("note", "说明", note, max_length=2000) or ""
    if text is None and not problems.found:
        problems.add(
            "pattern", "E-OPS-FIELD-REQUIRED", "请填写已审批的版本（可用 * 通配）", "a version is required"
        )
    problems.raise_if_any()
    approval_id = session.connection.execute(
        insert(A).returning(A.c.id),
        {
            "component": chosen,
            "pattern": text,
            "note": why,
            "approved_at": session.now(),
            "approved_by": session.actor.account,
        },
    ).scalar_one()
    session.changed(
        "ops.version.approve", f"version-approval:{approval_id}", {"component": chosen, "pattern": text}
    )
    return next(
        a for a in approved_versions(session.connection, include_withdrawn=True) if a["id"] == approval_id
    )


def withdraw_approval(session: OpsSession, approval_id: int) -> dict[str, Any]:
    session.actor.check_national()
    row = session.connection.execute(select(A).where(A.c.id == approval_id)).first()
    if row is None:
        raise OpsError("E-OPS-NOT-FOUND", f"审批记录 {approval_id} 不存在", f"no approval {approval_id}", 404)
    if row.withdrawn_at is not None:
        raise OpsError("E-OPS-WORKFLOW", "该版本审批已撤销", "the approval is already withdrawn", 409)
    session.connection.execute(
        update(A)
        .where(A.c.id == approval_id)
        .values(withdrawn_at=session.now(), withdrawn_by=session.actor.account)
    )
    session.changed("ops.version.withdraw", f"version-approval:{approval_id}", {"pattern": row.pattern})
    return next(
        a for a in approved_versions(session.connection, include_withdrawn=True) if a["id"] == approval_id
    )


def approved_versions(connection: Connection, *, include_withdrawn: bool = False) -> list[dict[str, Any]]:
    where = [] if include_withdrawn else [A.c.withdrawn_at.is_(None)]
    rows = connection.execute(select(A).where(*where).order_by(A.c.component, A.c.id))
    return [
        {
            "id": r.id,
            "component": r.component,
            "component_zh": COMPONENTS.get(r.component, r.component),
            "pattern": r.pattern,
            "note": r.note,
            "approved_at": utc(r.approved_at).isoformat(),
            "approved_by": r.approved_by,
            "withdrawn": r.withdrawn_at is not None,
        }
        for r in rows
    ]


def record_upgrade(
    session: OpsSession,
    node_id: str,
    component: str,
    to_version: str,
    *,
    from_version: str = "",
    note: str = "",
    change_id: int | None = None,
) -> dict[str, Any]:
    """The national side upgraded ``component`` of a front-end node (Art. 13, 15 (1))."""
    session.actor.check_national()
    node = session.connection.execute(select(nodes.c.province).where(nodes.c.node_id == node_id)).first()
    if node is None:
        raise OpsError("E-OPS-NOT-FOUND", f"节点 {node_id} 未登记", f"no node {node_id}", 404)
    problems = Problems()
    chosen = problems.choices("component", "组件", component, COMPONENTS)
    target = problems.text("to_version", "升级后版本", to_version, max_length=200)
    before = problems.text("from_version", "升级前版本", from_version, max_length=200) or ""
    why = problems.text("note", "说明", note, max_length=2000) or ""
    if target is None and not problems.found:
        problems.add("to_version", "E-OPS-FIELD-REQUIRED", "请填写升级后版本", "the new version is required")
    problems.raise_if_any()
    upgrade_id = session.connection.execute(
        insert(U).returning(U.c.id),
        {
            "node_id": node_id,
            "province": node.province,
            "component": chosen,
            "from_version": before,
            "to_version": target,
            "performed_at": session.now(),
            "performed_by": session.actor.account,
            "change_id": change_id,
            "note": why,
        },
    ).scalar_one()
    session.changed(
        "ops.version.upgrade",
        f"node:{node_id}",
        {"upgrade": upgrade_id, "component": chosen, "from": before, "to": target, "change": change_id},
    )
    return next(u for u in list_upgrades(session.connection, node_id=node_id) if u["id"] == upgrade_id)


def list_upgrades(
    connection: Connection, *, node_id: str | None = None, province: str | None = None
) -> list[dict[str, Any]]:
    where = []
    if node_id is not None:
        where.append(U.c.node_id == node_id)
    if province is not None:
        where.append(U.c.province == province)
    rows = connection.execute(select(U).where(*where).order_by(U.c.performed_at.desc(), U.c.id.desc()))
    return [
        {
            "id": r.id,
            "node_id": r.node_id,
            "province": r.province,
            "component": r.component,
            "component_zh": COMPONENTS.get(r.component, r.component),
            "from_version": r.from_version,
            "to_version": r.to_version,
            "performed_at": utc(r.performed_at).isoformat(),
            "performed_by": r.performed_by,
            "change_id": r.change_id,
            "note": r.note,
        }
        for r in rows
    ]


def version_flags(connection: Connection, province: str | None = None) -> list[dict[str, Any]]:
    """Every component a node runs outside the approved list, and every change without an upgrade record."""
    approved: dict[str, list[str]] = {}
    for a in approved_versions(connection):
        approved.setdefault(a["component"], []).append(a["pattern"])
    flags: list[dict[str, Any]] = []
    for current in current_versions(connection, province):
        for component, label in COMPONENTS.items():
            version = current[component]
            if version and not any(fnmatchcase(version, p) for p in approved.get(component, [])):
                flags.append(
                    {
                        "code": "OPS-VERSION-UNAPPROVED",
                        "node_id": current["node_id"],
                        "province": current["province"],
                        "component": component,
                        "message_zh": f"前置机 {current['node_id']} 的{label}版本“{version}”不在国家平台审批的版本清单中",
                    }
                )
    upgraded = {
        (u["node_id"], u["component"], u["to_version"]) for u in list_upgrades(connection, province=province)
    }
    history: dict[str, list[dict[str, Any]]] = {}
    for row in reversed(version_history(connection, province=province, limit=10_000)):
        history.setdefault(row["node_id"], []).append(row)
    for node_id, rows in history.items():
        for before, after in pairwise(rows):
            for component, label in COMPONENTS.items():
                changed = bool(before[component]) and after[component] != before[component]
                if changed and (node_id, component, after[component]) not in upgraded:
                    flags.append(
                        {
                            "code": "OPS-VERSION-UNRECORDED",
                            "node_id": node_id,
                            "province": after["province"],
                            "component": component,
                            "message_zh": f"前置机 {node_id} 的{label}于 {_beijing(after['seen_at'])} 由“{before[component]}”变为"
                            f"“{after[component]}”，未见国家平台的升级记录",
                        }
                    )
    return flags


def _beijing(text: str) -> str:
    return dt.datetime.fromisoformat(text).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
