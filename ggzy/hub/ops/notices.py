"""Notices to provinces (通知): what the national side tells a province, read or unread, mailed and posted.

A province is told of every rectification order issued to it, of each of its orders on the 通报 list,
of the national platform's own planned outages, of its published assessment results, of the
信息安全通报, and of any free message a national operator sends to it or to all provinces. Each notice
is one row per province (``ops_notices``), written in the transaction of what it tells about and
audited with it; a ``ref`` (``rectification:12``) makes telling twice impossible.

Delivery by e-mail and webhook (:func:`deliver_pending`) happens after the commit, outside any
transaction, to the province's 运行负责人, 技术负责人 and 值班人员 from its roster; each attempt is
kept in ``ops_notice_deliveries``. A crash between sending and recording sends again (at least
once, never lost). The province reads its notices on the portal (``/portal/notices``, a banner while
any is unread) and in ``ggzy node doctor``; marking one read is audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from ggzy.hub.models import nodes, ops_tables
from ggzy.hub.ops.fields import Problems, check_province
from ggzy.hub.ops.notify import Delivery, Notifier, recipients
from ggzy.hub.ops.periods import SHANGHAI, utc
from ggzy.hub.ops.session import Actor, Clock, OpsError, OpsSession, system_clock
from ggzy.security.audit import AuditLog
from ggzy.settings import OpsSettings

__all__ = [
    "KINDS",
    "Notice",
    "announce_national_outage",
    "deliver_pending",
    "list_notices",
    "mark_all_read",
    "mark_read",
    "post_notice",
    "publish_assessments",
    "publish_notice_list",
    "send_message",
    "unread_count",
]

T = ops_tables.notices
D = ops_tables.notice_deliveries
KINDS = {
    "order": "整改通知",
    "bulletin": "通报",
    "outage": "国家平台停用",
    "assessment": "考核结果",
    "security_bulletin": "信息安全通报",
    "message": "通知",
}
DELIVERER = Actor(account="system:ops-notify", role="system", source="hub")


@dataclass(frozen=True, slots=True)
class Notice:
    id: int
    province: str
    kind: str
    title: str
    body: str
    link: str
    ref: str | None
    created_at: dt.datetime
    created_by: str
    read_at: dt.datetime | None
    read_by: str | None
    delivered_at: dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "province": self.province,
            "kind": self.kind,
            "kind_zh": KINDS.get(self.kind, self.kind),
            "title": self.title,
            "body": self.body,
            "link": self.link,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "read": self.read_at is not None,
            "read_at": self.read_at.isoformat() if self.read_at else None,
            "read_by": self.read_by,
            "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
        }


def _notice(row: Any) -> Notice:
    return Notice(
        row.id,
        row.province,
        row.kind,
        row.title,
        row.body,
        row.link,
        row.ref,
        utc(row.created_at),
        row.created_by,
        utc(row.read_at) if row.read_at else None,
        row.read_by,
        utc(row.delivered_at) if row.delivered_at else None,
    )


def _get(connection: Connection, notice_id: int) -> Notice:
    row = connection.execute(select(T).where(T.c.id == notice_id)).first()
    if row is None:
        raise OpsError("E-OPS-NOT-FOUND", f"通知 {notice_id} 不存在", f"no notice {notice_id}", 404)
    return _notice(row)


def post_notice(
    session: OpsSession,
    province: str,
    kind: str,
    title: str,
    body: str = "",
    *,
    link: str = "",
    ref: str | None = None,
) -> Notice | None:
    """Tell ``province``; None when a notice with the same ``ref`` was already posted to it."""
    check_province(province)
    if kind not in KINDS:
        raise OpsError("E-OPS-NOTICE-KIND", f"未知的通知类别“{kind}”", f"unknown notice kind {kind!r}")
    connection = session.connection
    if ref is not None:
        told = connection.execute(select(T.c.id).where(T.c.province == province, T.c.ref == ref)).first()
        if told is not None:
            return None
    notice_id = connection.execute(
        insert(T).returning(T.c.id),
        {
            "province": province,
            "kind": kind,
            "title": title[:300],
            "body": body,
            "link": link[:500],
            "ref": ref,
            "created_at": session.now(),
            "created_by": session.actor.account,
        },
    ).scalar_one()
    session.changed(
        "ops.notice.post", f"notice:{notice_id}", {"province": province, "kind": kind, "ref": ref}
    )
    return _get(connection, int(notice_id))


def _provinces(connection: Connection, chosen: Sequence[str] | None) -> list[str]:
    """The provinces named, or every province with a registered node."""
    if chosen:
        return [check_province(p) for p in dict.fromkeys(chosen)]
    found = sorted(set(connection.execute(select(nodes.c.province).distinct()).scalars()))
    if not found:
        raise OpsError(
            "E-OPS-NOTICE-NOBODY", "尚无已登记节点的省份，请指定省份", "no province has a node yet; name one"
        )
    return found


def send_message(session: OpsSession, provinces: Sequence[str] | None, title: str, body: str) -> list[Notice]:
    """A national operator's free notice to the named provinces, or to all of them."""
    session.actor.check_national()
    problems = Problems()
    cleaned_title = problems.text("title", "通知标题", title, max_length=300)
    cleaned_body = problems.text("body", "通知内容", body, max_length=5000) or ""
    if cleaned_title is None and not problems.found:
        problems.add("title", "E-OPS-FIELD-REQUIRED", "请填写通知标题", "a title is required")
    problems.raise_if_any()
    assert cleaned_title is not None
    sent = [
        post_notice(session, p, "message", cleaned_title, cleaned_body)
        for p in _provinces(session.connection, provinces)
    ]
    return [n for n in sent if n is not None]


def announce_national_outage(
    session: OpsSession,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    impact: str,
    provinces: Sequence[str] | None = None,
) -> list[Notice]:
    """The national platform will stop (维护、割接 …): every province (or those named) is told."""
    session.actor.check_national()
    starts_at, ends_at = utc(starts_at), utc(ends_at)
    if ends_at <= starts_at:
        raise OpsError(
            "E-OPS-WINDOW", "停用结束时间须晚于开始时间", "the outage window ends before it starts"
        )
    problems = Problems()
    what = problems.text("impact", "停用影响", impact, max_length=2000)
    if what is None and not problems.found:
        problems.add("impact", "E-OPS-IMPACT", "请说明停用对平台对接的影响", "the impact is required")
    problems.raise_if_any()
    local = f"{_beijing(starts_at)} 至 {_beijing(ends_at)}"
    ref = f"national-outage:{starts_at.isoformat()}:{ends_at.isoformat()}"
    sent = [
        post_notice(
            session,
            p,
            "outage",
            f"国家平台计划停用：{local}",
            f"停用时段（北京时间）：{local}\n影响：{what}\n停用期间前置机数据暂存本地，恢复后自动续传。",
            ref=ref,
        )
        for p in _provinces(session.connection, provinces)
    ]
    return [n for n in sent if n is not None]


def publish_notice_list(session: OpsSession, now: dt.datetime) -> list[Notice]:
    """Tell each province of its orders on the 通报 list (once per order and state)."""
    from ggzy.hub.ops.rectification import notice_list

    session.actor.check_national()
    sent = []
    for order in notice_list(session.connection, now):
        notice = post_notice(
            session,
            order["province"],
            "bulletin",
            f"通报：整改通知 #{order['id']}{order['notice_zh']}",
            f"第三十五条第{order['condition']}项（{order['condition_zh']}）\n依据：{order['basis']}\n"
            f"整改期限：{order['deadline_date']}（北京时间，含）\n情况：{order['notice_zh']}，列入通报名单。",
            link="/api/v1/ops/notices",
            ref=f"bulletin:rectification:{order['id']}:{order['status']}",
        )
        if notice is not None:
            sent.append(notice)
    return sent


def publish_assessments(session: OpsSession, assessments: Sequence[Any]) -> list[Notice]:
    """Tell each assessed province its result for the period (once per province and period)."""
    session.actor.check_national()
    sent = []
    for a in assessments:
        missed = [i for i in a.indicators if i.met is False]
        score = f"{a.score:.2%}" if a.score is not None else "无数据"
        lines = [f"考核期间：{a.period.label}", f"得分：{score}"]
        lines += [f"未达标：{i.name_zh}（{_show(i.value)}，目标 {_show(i.target)}）" for i in missed]
        notice = post_notice(
            session,
            a.province,
            "assessment",
            f"{a.period.label} 运行考核结果：得分 {score}，未达标 {len(missed)} 项",
            "\n".join(lines),
            link=f"/api/v1/ops/assessment?period={a.period.label}&province={a.province}",
            ref=f"assessment:{a.period.label}",
        )
        if notice is not None:
            sent.append(notice)
    return sent


def mark_read(session: OpsSession, notice_id: int) -> Notice:
    """The province's own staff have read the notice (the national side cannot read for them)."""
    notice = _get(session.connection, notice_id)
    if session.actor.province is None:
        raise OpsError(
            "E-OPS-NOTICE-READER",
            "通知由收到通知的省份人员标记已读",
            "a notice is marked read by the province it was sent to",
        )
    session.actor.check_province(notice.province)
    if notice.read_at is not None:
        return notice
    session.connection.execute(
        update(T).where(T.c.id == notice_id).values(read_at=session.now(), read_by=session.actor.account)
    )
    session.changed("ops.notice.read", f"notice:{notice_id}", {"province": notice.province})
    return _get(session.connection, notice_id)


def mark_all_read(session: OpsSession) -> int:
    province = session.actor.province
    if province is None:
        raise OpsError(
            "E-OPS-NOTICE-READER",
            "通知由收到通知的省份人员标记已读",
            "a notice is marked read by the province it was sent to",
        )
    ids = list(
        session.connection.execute(
            select(T.c.id).where(T.c.province == province, T.c.read_at.is_(None))
        ).scalars()
    )
    if ids:
        session.connection.execute(
            update(T).where(T.c.id.in_(ids)).values(read_at=session.now(), read_by=session.actor.account)
        )
        session.changed("ops.notice.read", f"notices:{province}", {"ids": ids})
    return len(ids)


def list_notices(
    connection: Connection,
    province: str | None = None,
    *,
    unread_only: bool = False,
    before: int | None = None,
    limit: int = 100,
) -> list[Notice]:
    """Newest first; ``before`` is the last id of the previous page."""
    where = []
    if province is not None:
        where.append(T.c.province == province)
    if unread_only:
        where.append(T.c.read_at.is_(None))
    if before is not None:
        where.append(T.c.id < before)
    rows = connection.execute(select(T).where(*where).order_by(T.c.id.desc()).limit(limit))
    return [_notice(r) for r in rows]


def unread_count(connection: Connection, province: str) -> int:
    return int(
        connection.execute(
            select(func.count()).where(T.c.province == province, T.c.read_at.is_(None))
        ).scalar_one()
    )


def deliver_pending(
    engine: Engine,
    audit: AuditLog,
    settings: OpsSettings,
    *,
    clock: Clock = system_clock,
    notifier: Notifier | None = None,
    limit: int = 200,
) -> dict[int, list[Delivery]]:
    """Mail and post every notice not yet delivered; record each attempt. Sends outside transactions."""
    notifier = notifier or Notifier(settings)
    with engine.connect() as connection:
        pending = [
            (n, recipients(connection, settings, n.province, national=False))
            for n in (
                _notice(r)
                for r in connection.execute(
                    select(T).where(T.c.delivered_at.is_(None)).order_by(T.c.id).limit(limit)
                )
            )
        ]
    done: dict[int, list[Delivery]] = {}
    for notice, to in pending:
        subject = f"【国家平台{KINDS.get(notice.kind, '通知')}】{notice.title}"
        body = f"{notice.body}\n\n发送时间：{_beijing(notice.created_at)}（北京时间）\n请登录运行监测门户“通知”页查看并标为已读。"
        payload = {"event": "ops.notice", "notice": notice.to_dict()}
        deliveries = notifier.send_message(subject, body, to, payload)
        done[notice.id] = deliveries
        with engine.connect() as plain:
            connection = plain.execution_options(sqlite_begin="IMMEDIATE")
            with connection.begin():
                now = clock()
                rows = [
                    {
                        "notice_id": notice.id,
                        "channel": d.channel,
                        "target": d.target,
                        "at": now,
                        "ok": d.ok,
                        "error": d.error,
                    }
                    for d in deliveries
                ]
                if rows:
                    connection.execute(insert(D), rows)
                connection.execute(update(T).where(T.c.id == notice.id).values(delivered_at=now))
                OpsSession(connection, audit, DELIVERER, settings, clock).changed(
                    "ops.notice.deliver",
                    f"notice:{notice.id}",
                    {
                        "deliveries": [
                            {"channel": d.channel, "ok": d.ok, "error": d.error} for d in deliveries
                        ]
                    },
                )
    return done


def _beijing(moment: dt.datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _show(value: Any) -> str:
    if isinstance(value, float) and 0 <= value <= 1:
        return f"{value:.2%}"
    return "无" if value is None else str(value)
