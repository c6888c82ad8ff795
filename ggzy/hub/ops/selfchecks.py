"""Security self-checks (安全自查) and the periodic 信息安全通报 (Art. 20).

Each province keeps a schedule of security self-checks (:func:`schedule_self_checks`: a due date
every N months) and records each one's result item by item (:func:`record_self_check`); a
scheduled check past its Beijing due date without a result is overdue and shown to the province by
``ggzy node doctor``. Checks outside the schedule are recorded as ``ad_hoc``.

:func:`security_bulletin` builds the 信息安全通报 of a period from what the hub holds: security
incidents (incidents and fault reports classified ``security``), audit findings (failed security
items of the national inspections, and refusals in the hub's audit log: forged signatures, replays,
out-of-scope requests, failed sign-ins) and the self-checks; :func:`publish_security_bulletin`
tells each province its part as a notice. The report is written as xlsx or PDF by
``ggzy.hub.ops.exports``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from ggzy.hub.models import audit_log, ops_tables
from ggzy.hub.ops.exports import Report, Section
from ggzy.hub.ops.fields import Problems, beijing_today, check_province
from ggzy.hub.ops.incidents import list_incidents
from ggzy.hub.ops.inspections import list_inspections
from ggzy.hub.ops.periods import SHANGHAI, Period
from ggzy.hub.ops.session import OpsError, OpsSession

__all__ = [
    "ITEMS",
    "list_self_checks",
    "publish_security_bulletin",
    "record_self_check",
    "schedule_self_checks",
    "security_bulletin",
]

T = ops_tables.self_checks
ITEMS = {
    "classified_protection": "等级保护测评与整改",
    "accounts": "账号与口令（三员分立、口令策略、无默认账号）",
    "patches": "补丁与系统加固",
    "antivirus": "防病毒软件运行与病毒库更新",
    "access_policy": "访问策略（防火墙、端口、单审单开）",
    "vulnerability_scan": "漏洞扫描与修复",
    "backup": "数据备份与恢复验证",
    "audit_log": "审计日志留存（不少于一年）",
}
RESULTS = {"pass": "合格", "fail": "不合格", "na": "不适用"}
KINDS = {"scheduled": "定期自查", "ad_hoc": "不定期自查"}
STATUSES = {"scheduled": "待自查", "done": "已完成"}


def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def schedule_self_checks(
    session: OpsSession, province: str, first_due: dt.date, every_months: int = 3, count: int = 4
) -> list[dict[str, Any]]:
    """Plan ``count`` self-checks of ``province``, the first on ``first_due``, then every ``every_months``."""
    check_province(province)
    session.actor.check_province(province)
    if not 1 <= every_months <= 12 or not 1 <= count <= 24:
        raise OpsError(
            "E-OPS-SELFCHECK-SCHEDULE",
            "自查周期应为 1–12 个月，次数 1–24 次",
            "every 1-12 months, 1-24 checks",
        )
    created = []
    for number in range(count):
        due = _add_months(first_due, number * every_months)
        check_id = session.connection.execute(
            insert(T).returning(T.c.id),
            {
                "province": province,
                "due_on": due,
                "kind": "scheduled",
                "items": {},
                "status": "scheduled",
                "created_at": session.now(),
                "created_by": session.actor.account,
            },
        ).scalar_one()
        created.append(int(check_id))
    session.changed(
        "ops.selfcheck.schedule",
        f"selfchecks:{province}",
        {"first_due": first_due.isoformat(), "every_months": every_months, "count": count},
    )
    today = beijing_today(session.now())
    return [c for c in list_self_checks(session.connection, province, today) if c["id"] in created]


def _check_items(items: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    if not isinstance(items, Mapping):
        raise OpsError("E-OPS-SELFCHECK-ITEMS", "自查结果应为“项目: 结论”的对象", "items must be an object")
    unknown = sorted(set(items) - set(ITEMS))
    unanswered = [i for i in ITEMS if i not in items]
    bad = sorted(
        item
        for item, value in items.items()
        if item in ITEMS and (not isinstance(value, Mapping) or value.get("result") not in RESULTS)
    )
    if unknown or unanswered or bad:
        raise OpsError(
            "E-OPS-SELFCHECK-ITEMS",
            f"自查须逐项填写 pass（合格）/ fail（不合格）/ na（不适用）；未填：{'、'.join(unanswered) or '无'}；"
            f"未知：{'、'.join(unknown) or '无'}；结论无效：{'、'.join(bad) or '无'}",
            f"answer every item with pass/fail/na (missing {unanswered}, unknown {unknown}, invalid {bad})",
        )
    problems = Problems()
    cleaned = {}
    for item, value in items.items():
        note = problems.text(f"{item}.note", f"{ITEMS[item]}的说明", value.get("note", ""), max_length=2000)
        cleaned[item] = {"result": str(value["result"]), "note": note or ""}
    problems.raise_if_any()
    return cleaned


def record_self_check(
    session: OpsSession,
    items: Mapping[str, Any],
    findings: str = "",
    *,
    check_id: int | None = None,
    province: str | None = None,
    performed_on: dt.date | str | None = None,
) -> dict[str, Any]:
    """The result of a scheduled self-check (``check_id``) or of an unscheduled one (``province``)."""
    today = beijing_today(session.now())
    problems = Problems()
    day = problems.date("performed_on", "自查日期", performed_on, not_after=today) or today
    text = problems.text("findings", "发现的问题", findings, max_length=5000) or ""
    problems.raise_if_any()
    cleaned = _check_items(items)
    connection = session.connection
    if check_id is not None:
        row = connection.execute(select(T).where(T.c.id == check_id)).first()
        if row is None:
            raise OpsError("E-OPS-NOT-FOUND", f"自查 {check_id} 不存在", f"no self-check {check_id}", 404)
        session.actor.check_province(row.province)
        if row.status != "scheduled":
            raise OpsError(
                "E-OPS-WORKFLOW", f"自查 {check_id} 已登记结果", "the self-check is already done", 409
            )
        connection.execute(
            update(T)
            .where(T.c.id == check_id)
            .values(
                items=cleaned,
                findings=text,
                performed_on=day,
                status="done",
                performed_by=session.actor.account,
            )
        )
        chosen = row.province
    else:
        if province is None:
            raise OpsError(
                "E-REQ-PARAMETER", "请指定自查编号或省份", "a self-check id or a province is required"
            )
        chosen = check_province(province)
        session.actor.check_province(chosen)
        check_id = int(
            connection.execute(
                insert(T).returning(T.c.id),
                {
                    "province": chosen,
                    "due_on": day,
                    "kind": "ad_hoc",
                    "performed_on": day,
                    "items": cleaned,
                    "findings": text,
                    "status": "done",
                    "created_at": session.now(),
                    "created_by": session.actor.account,
                    "performed_by": session.actor.account,
                },
            ).scalar_one()
        )
    failed = [i for i, v in cleaned.items() if v["result"] == "fail"]
    session.changed("ops.selfcheck.record", f"selfcheck:{check_id}", {"province": chosen, "failed": failed})
    return next(c for c in list_self_checks(connection, chosen, today) if c["id"] == check_id)


def list_self_checks(
    connection: Connection, province: str | None, today: dt.date, *, since: dt.date | None = None
) -> list[dict[str, Any]]:
    """The self-checks (of ``province``), each with whether it is overdue on Beijing's ``today``."""
    where = [T.c.province == province] if province is not None else []
    if since is not None:
        where.append(T.c.due_on >= since)
    rows = connection.execute(select(T).where(*where).order_by(T.c.due_on, T.c.id))
    return [
        {
            "id": r.id,
            "province": r.province,
            "kind": r.kind,
            "kind_zh": KINDS.get(r.kind, r.kind),
            "due_on": r.due_on.isoformat(),
            "performed_on": r.performed_on.isoformat() if r.performed_on else None,
            "status": r.status,
            "status_zh": STATUSES.get(r.status, r.status),
            "overdue": r.status == "scheduled" and r.due_on < today,
            "items": r.items or {},
            "failed_items": [i for i, v in (r.items or {}).items() if v.get("result") == "fail"],
            "findings": r.findings,
            "performed_by": r.performed_by,
        }
        for r in rows
    ]


# --- the 信息安全通报 ---


def _beijing(moment: dt.datetime | None) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if moment else ""


def bulletin_facts(
    connection: Connection, period: Period, province: str | None, now: dt.datetime
) -> dict[str, Any]:
    """What the 通报 of ``period`` says: security incidents, audit findings, self-checks."""
    window = (period.start, min(period.end, now))
    incidents = [
        i
        for i in list_incidents(connection, province, window, limit=5000)
        if i.classification is not None and i.classification.value == "security"
    ]
    inspections = [
        i
        for i in list_inspections(connection, province)
        if i["performed_at"]
        and period.start <= dt.datetime.fromisoformat(i["performed_at"]) < period.end
        and i["checklist"].get("security", {}).get("result") == "fail"
    ]
    refusals: Counter[str] = Counter()
    if province is None:  # the hub's own log knows no province: the national bulletin shows it
        a = audit_log.c
        for action, outcome, count in connection.execute(
            select(a.action, a.outcome, func.count())
            .where(a.at >= window[0], a.at < window[1], a.outcome.in_(("refused", "failure")))
            .group_by(a.action, a.outcome)
        ):
            refusals[f"{action}（{'拒绝' if outcome == 'refused' else '失败'}）"] += int(count)
    today = beijing_today(now)
    checks = [
        c
        for c in list_self_checks(connection, province, today)
        if period.first_day <= dt.date.fromisoformat(c["performed_on"] or c["due_on"]) <= period.last_day
    ]
    return {"incidents": incidents, "inspections": inspections, "refusals": refusals, "self_checks": checks}


def security_bulletin(
    connection: Connection, period: Period, now: dt.datetime, province: str | None = None
) -> Report:
    facts = bulletin_facts(connection, period, province, now)
    provinces = sorted(
        {i.province for i in facts["incidents"]}
        | {i["province"] for i in facts["inspections"]}
        | {c["province"] for c in facts["self_checks"]}
    )
    summary = Section(
        "概况",
        ["省份", "安全事件", "检查发现安全问题", "自查计划", "自查完成", "自查逾期", "自查不合格项"],
        [
            [
                p,
                sum(1 for i in facts["incidents"] if i.province == p),
                sum(1 for i in facts["inspections"] if i["province"] == p),
                sum(1 for c in facts["self_checks"] if c["province"] == p),
                sum(1 for c in facts["self_checks"] if c["province"] == p and c["status"] == "done"),
                sum(1 for c in facts["self_checks"] if c["province"] == p and c["overdue"]),
                sum(len(c["failed_items"]) for c in facts["self_checks"] if c["province"] == p),
            ]
            for p in provinces
        ],
    )
    incidents = Section(
        "安全事件",
        ["编号", "省份", "事件", "开始", "结束", "状态", "原因", "整改措施"],
        [
            [
                i.id,
                i.province,
                i.title,
                _beijing(i.started_at),
                _beijing(i.ended_at),
                i.to_dict()["status_zh"],
                i.cause,
                i.corrective_actions,
            ]
            for i in facts["incidents"]
        ],
    )
    findings = Section(
        "审计发现",
        ["来源", "省份", "发现", "时间或次数"],
        [
            [
                f"国家平台检查 #{i['id']}",
                i["province"],
                i["checklist"]["security"].get("note") or i["findings"] or "安全保护措施不合格",
                _beijing(dt.datetime.fromisoformat(i["performed_at"])),
            ]
            for i in facts["inspections"]
        ]
        + [
            ["国家平台审计日志", "全国", action, f"{count} 次"]
            for action, count in sorted(facts["refusals"].items())
        ],
    )
    checks = Section(
        "安全自查",
        ["省份", "类别", "计划日期", "完成日期", "状态", "不合格项", "发现"],
        [
            [
                c["province"],
                c["kind_zh"],
                c["due_on"],
                c["performed_on"] or "",
                "逾期未自查" if c["overdue"] else c["status_zh"],
                "、".join(ITEMS[i] for i in c["failed_items"]),
                c["findings"],
            ]
            for c in facts["self_checks"]
        ],
    )
    scope = f"（省份 {province}）" if province else ""
    return Report(
        f"信息安全通报（{period.label}）{scope}",
        "依据第二十条：安全事件、审计发现与安全自查情况；时间为北京时间",
        [summary, incidents, findings, checks],
    )


def publish_security_bulletin(session: OpsSession, period: Period) -> list[Any]:
    """Tell every province in the bulletin of ``period`` its own lines (once per province and period)."""
    from ggzy.hub.ops.notices import post_notice

    session.actor.check_national()
    report = security_bulletin(session.connection, period, session.now())
    sent = []
    for row in report.sections[0].rows:
        province, incidents, found, planned, done, overdue, failed = row
        notice = post_notice(
            session,
            province,
            "security_bulletin",
            f"信息安全通报（{period.label}）：安全事件 {incidents} 起，检查发现 {found} 项，自查逾期 {overdue} 次",
            f"安全事件 {incidents} 起；国家平台检查发现安全问题 {found} 项；安全自查计划 {planned} 次、完成 {done} 次、"
            f"逾期 {overdue} 次、不合格项 {failed} 个。",
            link=f"/api/v1/ops/security-bulletin?period={period.label}&province={province}&format=pdf",
            ref=f"security-bulletin:{period.label}",
        )
        if notice is not None:
            sent.append(notice)
    return sent
