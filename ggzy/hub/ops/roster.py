"""The duty roster (人员备案, Art. 12, 29–30): who runs, who answers, who stands in.

Every province files its 运行负责人, 技术负责人 and 值班人员 with phone, mobile and email, and a
primary and a backup person (主备制) for each key post: security, network, equipment, data exchange
and data backup. Each change is kept in ``ops_roster_history`` with before and after, visible to the
national side. :func:`roster_gaps` lists what is missing: an empty post, a key post without backup,
the same person as primary and backup, an incomplete contact and, at a given time, a post whose
primary is away (外出, :func:`record_absence`) without a backup present. One person is never filed
as both primary and backup of one post (``E-OPS-ROSTER-SAME-PERSON``). Training (Art. 29–30:
date, subject, participants) is kept with :func:`record_training`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from ggzy.hub.models import ops_tables
from ggzy.hub.ops.fields import Problems, beijing_today, check_province
from ggzy.hub.ops.periods import utc
from ggzy.hub.ops.session import OpsError, OpsSession

__all__ = [
    "KEY_POSTS",
    "POSTS",
    "TRAINING_TOPICS",
    "RosterEntry",
    "RosterGap",
    "cancel_absence",
    "list_absences",
    "list_trainings",
    "record_absence",
    "record_training",
    "remove_entry",
    "roster_at",
    "roster_gaps",
    "roster_history",
    "roster_of",
    "set_entry",
]

T = ops_tables.roster
H = ops_tables.roster_history
ABSENCES = ops_tables.absences
TRAININGS = ops_tables.trainings
TRAINING_TOPICS = {
    "security": "运行安全",
    "sharing": "信息共享",
    "operations": "运行维护",
    "emergency": "应急处置",
}

POSTS = {
    "lead_ops": "运行负责人",
    "lead_tech": "技术负责人",
    "duty": "值班人员",
    "security": "安全",
    "network": "网络",
    "equipment": "设备",
    "exchange": "数据交换",
    "backup": "数据备份",
}
KEY_POSTS = ("security", "network", "equipment", "exchange", "backup")  # 主备制
RANKS = {"primary": "主", "backup": "备"}


@dataclass(frozen=True, slots=True)
class RosterEntry:
    province: str
    post: str
    rank: str
    name: str
    phone: str
    mobile: str
    email: str

    def contact(self) -> dict[str, str]:
        return {"name": self.name, "phone": self.phone, "mobile": self.mobile, "email": self.email}

    def to_dict(self) -> dict[str, Any]:
        return {
            "province": self.province,
            "post": self.post,
            "post_zh": POSTS[self.post],
            "rank": self.rank,
            "rank_zh": RANKS[self.rank],
            **self.contact(),
        }


@dataclass(frozen=True, slots=True)
class RosterGap:
    post: str
    rank: str | None
    code: str
    message_zh: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "post": self.post,
            "post_zh": POSTS[self.post],
            "rank": self.rank,
            "code": self.code,
            "message_zh": self.message_zh,
        }


def _check(post: str, rank: str) -> None:
    if post not in POSTS:
        raise OpsError("E-OPS-POST", f"未知岗位“{post}”，可用：{', '.join(POSTS)}", f"unknown post {post!r}")
    if rank not in RANKS:
        raise OpsError("E-OPS-RANK", "主备应为 primary 或 backup", "rank must be primary or backup")


def roster_of(connection: Connection, province: str) -> list[RosterEntry]:
    order = {post: index for index, post in enumerate(POSTS)}
    rows = connection.execute(select(T).where(T.c.province == province))
    entries = [RosterEntry(r.province, r.post, r.rank, r.name, r.phone, r.mobile, r.email) for r in rows]
    return sorted(entries, key=lambda e: (order.get(e.post, 99), e.rank != "primary"))


def set_entry(
    session: OpsSession,
    province: str,
    post: str,
    rank: str,
    *,
    name: str,
    phone: str,
    mobile: str,
    email: str,
) -> RosterEntry:
    """File or change one person of the roster; the change goes to the history with before and after."""
    check_province(province)
    session.actor.check_province(province)
    _check(post, rank)
    after = _contact(name, phone, mobile, email)
    connection = session.connection
    key = (T.c.province == province, T.c.post == post, T.c.rank == rank)
    other = connection.execute(
        select(T).where(
            T.c.province == province,
            T.c.post == post,
            T.c.rank == ("backup" if rank == "primary" else "primary"),
        )
    ).first()
    if other is not None and _same_person(after, other):
        raise OpsError(
            "E-OPS-ROSTER-SAME-PERSON",
            f"“{after['name']}”已是{POSTS[post]}岗位的{RANKS[other.rank]}岗人员，主岗与备岗须为两个人（主备制）",
            f"{after['name']!r} already holds the {other.rank} rank of post {post}; primary and backup must differ",
            409,
        )
    before = connection.execute(select(T).where(*key)).first()
    now = session.now()
    connection.execute(delete(T).where(*key))
    connection.execute(
        insert(T),
        {
            "province": province,
            "post": post,
            "rank": rank,
            **after,
            "updated_at": now,
            "updated_by": session.actor.account,
        },
    )
    previous = {k: getattr(before, k) for k in after} if before is not None else None
    connection.execute(
        insert(H),
        {
            "province": province,
            "post": post,
            "rank": rank,
            "action": "set",
            "before": previous,
            "after": after,
            "at": now,
            "by": session.actor.account,
        },
    )
    session.changed(
        "ops.roster.set", f"roster:{province}:{post}:{rank}", {"before": previous, "after": after}
    )
    return RosterEntry(province, post, rank, **after)


def _contact(name: str, phone: str, mobile: str, email: str) -> dict[str, str]:
    """The person's name and contacts, each checked (the roster is what the duty is reached by)."""
    problems = Problems()
    cleaned = {
        "name": problems.text("name", "姓名", name, max_length=100),
        "phone": problems.phone("phone", "电话", phone),
        "mobile": problems.phone("mobile", "手机", mobile, mobile=True),
        "email": problems.email("email", "邮件", email),
    }
    if cleaned["name"] is None and not any(p.field == "name" for p in problems.found):
        problems.add("name", "E-OPS-NAME", "请填写姓名", "a name is required")
    problems.raise_if_any()
    return {key: value or "" for key, value in cleaned.items()}


def _same_person(person: dict[str, str], row: Any) -> bool:
    """The same person under another rank: same name, or the same mobile or e-mail."""
    return (
        person["name"] == row.name
        or (bool(person["mobile"]) and person["mobile"] == row.mobile)
        or (bool(person["email"]) and person["email"].lower() == (row.email or "").lower())
    )


def remove_entry(session: OpsSession, province: str, post: str, rank: str) -> None:
    session.actor.check_province(province)
    _check(post, rank)
    connection = session.connection
    key = (T.c.province == province, T.c.post == post, T.c.rank == rank)
    before = connection.execute(select(T).where(*key)).first()
    if before is None:
        raise OpsError("E-OPS-NOT-FOUND", "该岗位无人备案", "nobody is filed for this post", 404)
    previous = {k: getattr(before, k) for k in ("name", "phone", "mobile", "email")}
    connection.execute(delete(T).where(*key))
    connection.execute(
        insert(H),
        {
            "province": province,
            "post": post,
            "rank": rank,
            "action": "remove",
            "before": previous,
            "after": None,
            "at": session.now(),
            "by": session.actor.account,
        },
    )
    session.changed("ops.roster.remove", f"roster:{province}:{post}:{rank}", {"before": previous})


def roster_history(
    connection: Connection, province: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    where = [H.c.province == province] if province is not None else []
    rows = connection.execute(select(H).where(*where).order_by(H.c.at.desc(), H.c.id.desc()).limit(limit))
    return [
        {
            "province": r.province,
            "post": r.post,
            "post_zh": POSTS.get(r.post, r.post),
            "rank": r.rank,
            "action": r.action,
            "before": r.before,
            "after": r.after,
            "at": utc(r.at).isoformat(),
            "by": r.by,
        }
        for r in rows
    ]


def roster_at(connection: Connection, province: str, at: dt.datetime) -> list[RosterEntry]:
    """The roster of ``province`` as it stood at ``at``, replayed from its history."""
    rows = connection.execute(
        select(H).where(H.c.province == province, H.c.at <= at).order_by(H.c.at, H.c.id)
    )
    state: dict[tuple[str, str], RosterEntry | None] = {}
    for r in rows:
        state[(r.post, r.rank)] = RosterEntry(province, r.post, r.rank, **r.after) if r.after else None
    return [entry for entry in state.values() if entry is not None]


def roster_gaps(
    connection: Connection,
    province: str,
    entries: list[RosterEntry] | None = None,
    *,
    at: dt.datetime | None = None,
) -> list[RosterGap]:
    """Everything the roster of ``province`` (or ``entries``) lacks (an empty list: complete).

    With ``at``, also every post whose primary is away on that Beijing day without a backup present.
    """
    listed = roster_of(connection, province) if entries is None else entries
    away = _away(connection, province, at) if at is not None else {}
    filed = {(e.post, e.rank): e for e in listed}
    gaps: list[RosterGap] = []
    for post, label in POSTS.items():
        ranks = ("primary", "backup") if post in KEY_POSTS else ("primary",)
        for rank in ranks:
            entry = filed.get((post, rank))
            if entry is None:
                gaps.append(RosterGap(post, rank, "E-ROSTER-EMPTY", f"{label}岗位未备案{RANKS[rank]}岗人员"))
                continue
            missing = [
                zh
                for zh, value in (("电话", entry.phone), ("手机", entry.mobile), ("邮件", entry.email))
                if not value
            ]
            if missing:
                gaps.append(
                    RosterGap(
                        post,
                        rank,
                        "E-ROSTER-CONTACT",
                        f"{label}{RANKS[rank]}岗“{entry.name}”缺少{'、'.join(missing)}",
                    )
                )
        primary, backup = filed.get((post, "primary")), filed.get((post, "backup"))
        if post in KEY_POSTS and primary and backup and primary.name == backup.name:
            gaps.append(RosterGap(post, None, "E-ROSTER-SAME", f"{label}岗位主备为同一人“{primary.name}”"))
        if primary is not None and primary.name in away and (backup is None or backup.name in away):
            why = "未备案备岗" if backup is None else f"备岗“{backup.name}”也外出"
            gaps.append(
                RosterGap(
                    post,
                    "primary",
                    "E-ROSTER-ABSENT",
                    f"{label}主岗“{primary.name}”外出（{away[primary.name]}），{why}，岗位无人在岗",
                )
            )
    return gaps


def _away(connection: Connection, province: str, at: dt.datetime) -> dict[str, str]:
    """Who of ``province`` is away on the Beijing day of ``at``: name → the dates of the absence."""
    day = beijing_today(at)
    a = ABSENCES.c
    rows = connection.execute(
        select(a.name, a.starts_on, a.ends_on).where(
            a.province == province, a.starts_on <= day, a.ends_on >= day, a.cancelled_at.is_(None)
        )
    )
    return {r.name: f"{r.starts_on.isoformat()} 至 {r.ends_on.isoformat()}" for r in rows}


def record_absence(
    session: OpsSession,
    province: str,
    name: str,
    starts_on: dt.date | str,
    ends_on: dt.date | str,
    reason: str = "",
) -> dict[str, Any]:
    """Tell the national side a filed person is away (外出, Art. 30 (2)) from ``starts_on`` to ``ends_on``."""
    check_province(province)
    session.actor.check_province(province)
    problems = Problems()
    who = problems.text("name", "姓名", name, max_length=100)
    why = problems.text("reason", "外出事由", reason, max_length=2000) or ""
    first = problems.date("starts_on", "外出开始日期", starts_on)
    last = problems.date("ends_on", "外出结束日期", ends_on)
    if first and last and last < first:
        problems.add(
            "ends_on", "E-OPS-FIELD-ORDER", "外出结束日期早于开始日期", "the absence ends before it starts"
        )
    problems.raise_if_any()
    assert first is not None and last is not None
    filed = {e.name for e in roster_of(session.connection, province)}
    if who not in filed:
        raise OpsError(
            "E-OPS-ROSTER-UNKNOWN-PERSON",
            f"“{who}”不在本省人员备案中，只能登记已备案人员的外出",
            f"{who!r} is not on the roster of province {province}",
            404,
        )
    absence_id = session.connection.execute(
        insert(ABSENCES).returning(ABSENCES.c.id),
        {
            "province": province,
            "name": who,
            "starts_on": first,
            "ends_on": last,
            "reason": why,
            "created_at": session.now(),
            "created_by": session.actor.account,
        },
    ).scalar_one()
    session.changed(
        "ops.roster.absence",
        f"absence:{absence_id}",
        {"province": province, "name": who, "from": first.isoformat(), "to": last.isoformat()},
    )
    return _absence(session.connection.execute(select(ABSENCES).where(ABSENCES.c.id == absence_id)).one())


def cancel_absence(session: OpsSession, absence_id: int) -> dict[str, Any]:
    row = session.connection.execute(select(ABSENCES).where(ABSENCES.c.id == absence_id)).first()
    if row is None:
        raise OpsError("E-OPS-NOT-FOUND", f"外出登记 {absence_id} 不存在", f"no absence {absence_id}", 404)
    session.actor.check_province(row.province)
    if row.cancelled_at is not None:
        raise OpsError("E-OPS-WORKFLOW", "该外出登记已撤销", "the absence is already cancelled", 409)
    session.connection.execute(
        update(ABSENCES).where(ABSENCES.c.id == absence_id).values(cancelled_at=session.now())
    )
    session.changed("ops.roster.absence_cancel", f"absence:{absence_id}", {"province": row.province})
    return _absence(session.connection.execute(select(ABSENCES).where(ABSENCES.c.id == absence_id)).one())


def _absence(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "province": row.province,
        "name": row.name,
        "starts_on": row.starts_on.isoformat(),
        "ends_on": row.ends_on.isoformat(),
        "reason": row.reason,
        "created_at": utc(row.created_at).isoformat(),
        "created_by": row.created_by,
        "cancelled": row.cancelled_at is not None,
    }


def list_absences(connection: Connection, province: str | None = None) -> list[dict[str, Any]]:
    where = [ABSENCES.c.province == province] if province is not None else []
    rows = connection.execute(
        select(ABSENCES).where(*where).order_by(ABSENCES.c.starts_on.desc(), ABSENCES.c.id.desc())
    )
    return [_absence(r) for r in rows]


def record_training(
    session: OpsSession,
    province: str,
    held_on: dt.date | str,
    subject: str,
    topic: str,
    participants: list[str] | str,
    hours: float | None = None,
) -> dict[str, Any]:
    """A training of the operations staff (Art. 29–30; its absence is Art. 35 (6))."""
    check_province(province)
    session.actor.check_province(province)
    problems = Problems()
    day = problems.date("held_on", "培训日期", held_on, not_after=beijing_today(session.now()))
    title = problems.text("subject", "培训内容", subject, max_length=300)
    kind = problems.choices("topic", "培训类别", topic, TRAINING_TOPICS)
    people = problems.items("participants", "参训人员", participants)
    if hours is not None and not (isinstance(hours, int | float) and 0 < hours <= 1000):
        problems.add(
            "hours", "E-OPS-FIELD-NUMBER", "培训学时应为 0–1000 之间的数", "hours must be in (0, 1000]"
        )
    for name, label, value in (("held_on", "培训日期", day), ("subject", "培训内容", title)):
        if value is None and not any(p.field == name for p in problems.found):
            problems.add(name, "E-OPS-FIELD-REQUIRED", f"请填写{label}", f"{name} is required")
    if not people and not any(p.field == "participants" for p in problems.found):
        problems.add("participants", "E-OPS-FIELD-REQUIRED", "请填写参训人员", "participants are required")
    problems.raise_if_any()
    training_id = session.connection.execute(
        insert(TRAININGS).returning(TRAININGS.c.id),
        {
            "province": province,
            "held_on": day,
            "subject": title,
            "topic": kind,
            "participants": people,
            "hours": float(hours) if hours is not None else None,
            "created_at": session.now(),
            "created_by": session.actor.account,
        },
    ).scalar_one()
    session.changed("ops.training.record", f"training:{training_id}", {"province": province, "topic": kind})
    rows = list_trainings(session.connection, province)
    return next(t for t in rows if t["id"] == training_id)


def list_trainings(
    connection: Connection, province: str | None = None, since: dt.date | None = None
) -> list[dict[str, Any]]:
    t = TRAININGS.c
    where = [t.province == province] if province is not None else []
    if since is not None:
        where.append(t.held_on >= since)
    rows = connection.execute(select(TRAININGS).where(*where).order_by(t.held_on.desc(), t.id.desc()))
    return [
        {
            "id": r.id,
            "province": r.province,
            "held_on": r.held_on.isoformat(),
            "subject": r.subject,
            "topic": r.topic,
            "topic_zh": TRAINING_TOPICS.get(r.topic, r.topic),
            "participants": list(r.participants or []),
            "hours": r.hours,
        }
        for r in rows
    ]
