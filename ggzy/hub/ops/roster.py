"""The duty roster (人员备案, Art. 12, 29–30): who runs, who answers, who stands in.

Every province files its 运行负责人, 技术负责人 and 值班人员 with phone, mobile and email, and a
primary and a backup person (主备制) for each key post: security, network, equipment, data exchange
and data backup. Each change is kept in ``ops_roster_history`` with before and after, visible to the
national side. :func:`roster_gaps` lists what is missing: an empty post, a key post without backup,
the same person as primary and backup, an incomplete contact.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from ggzy.hub.models import ops_tables
from ggzy.hub.ops.periods import utc
from ggzy.hub.ops.session import OpsError, OpsSession

__all__ = [
    "KEY_POSTS",
    "POSTS",
    "RosterEntry",
    "RosterGap",
    "remove_entry",
    "roster_at",
    "roster_gaps",
    "roster_history",
    "roster_of",
    "set_entry",
]

T = ops_tables.roster
H = ops_tables.roster_history

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
    session.actor.check_province(province)
    _check(post, rank)
    if not name.strip():
        raise OpsError("E-OPS-NAME", "请填写姓名", "a name is required")
    if email and "@" not in email:
        raise OpsError("E-OPS-EMAIL", f"邮箱“{email}”格式不正确", f"invalid email {email!r}")
    connection = session.connection
    key = (T.c.province == province, T.c.post == post, T.c.rank == rank)
    before = connection.execute(select(T).where(*key)).first()
    after = {"name": name.strip(), "phone": phone.strip(), "mobile": mobile.strip(), "email": email.strip()}
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
    connection: Connection, province: str, entries: list[RosterEntry] | None = None
) -> list[RosterGap]:
    """Everything the roster of ``province`` (or ``entries``) lacks (an empty list: complete)."""
    listed = roster_of(connection, province) if entries is None else entries
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
    return gaps
