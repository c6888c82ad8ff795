"""Server-side sessions of people (web and command line).

The cookie or session file holds only a random token; the database keeps its SHA-256 hash, so a
copy of the database does not let anyone sign in. A session ends after ``idle`` without use and
``absolute`` after it began, whatever its use; signing out, disabling the account or changing its
role or password ends it on the server.

Stages: a session starts at the first step its account still owes — ``totp`` (the code),
``password`` (replace a one-time or expired password), ``enrol`` (set up the second factor) — and
only a ``full`` session is a signed-in principal.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update

__all__ = [
    "SessionPolicy",
    "SessionRow",
    "aware",
    "end_account_sessions",
    "end_session",
    "hash_token",
    "new_token",
    "open_session",
    "renew_session",
    "resolve_session",
    "set_stage",
]

STAGES = ("totp", "password", "enrol", "full")


def aware(moment: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes for UTC columns."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: dt.timedelta = dt.timedelta(minutes=30)
    absolute: dt.timedelta = dt.timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class SessionRow:
    token_hash: str
    account: str
    role: str
    province: str | None
    stage: str
    kind: str
    source: str
    created_at: dt.datetime

    @classmethod
    def of(cls, row: Any) -> SessionRow:
        return cls(
            row.token_hash,
            row.account,
            row.role,
            row.province,
            row.stage,
            row.kind,
            row.source,
            aware(row.created_at),
        )


def open_session(
    connection: Connection,
    sessions: Table,
    *,
    account: str,
    role: str,
    province: str | None,
    stage: str,
    kind: str,
    source: str,
    now: dt.datetime,
) -> str:
    """A new session; returns its token (shown to the caller once, never stored)."""
    token = new_token()
    connection.execute(
        insert(sessions).values(
            token_hash=hash_token(token),
            account=account,
            role=role,
            province=province,
            stage=stage,
            kind=kind,
            source=source[:64],
            created_at=now,
            last_seen_at=now,
        )
    )
    return token


def resolve_session(
    connection: Connection, sessions: Table, token: str, now: dt.datetime, policy: SessionPolicy
) -> SessionRow | None:
    """The live session of ``token`` (its last use moved to ``now``), or None; ends it when expired."""
    if not token or len(token) > 128:
        return None
    digest = hash_token(token)
    row = connection.execute(select(sessions).where(sessions.c.token_hash == digest)).first()
    if row is None or row.ended_at is not None:
        return None
    if now - aware(row.created_at) >= policy.absolute:
        end_session(connection, sessions, digest, "absolute-timeout", now)
        return None
    if now - aware(row.last_seen_at) >= policy.idle:
        end_session(connection, sessions, digest, "idle-timeout", now)
        return None
    connection.execute(update(sessions).where(sessions.c.token_hash == digest).values(last_seen_at=now))
    return SessionRow.of(row)


def set_stage(connection: Connection, sessions: Table, token_hash: str, stage: str) -> None:
    connection.execute(update(sessions).where(sessions.c.token_hash == token_hash).values(stage=stage))


def renew_session(
    connection: Connection, sessions: Table, found: SessionRow, stage: str, now: dt.datetime
) -> str:
    """Replace the session's token after a step of the sign-in; the old token is dead from now on.

    The new session keeps the old one's start, so the absolute limit still counts from the sign-in:
    a token seen before a step (a shared screen, a proxy log) cannot ride on the step's success.
    """
    token = new_token()
    connection.execute(
        insert(sessions).values(
            token_hash=hash_token(token),
            account=found.account,
            role=found.role,
            province=found.province,
            stage=stage,
            kind=found.kind,
            source=found.source[:64],
            created_at=found.created_at,
            last_seen_at=now,
        )
    )
    end_session(connection, sessions, found.token_hash, "renewed", now)
    return token


def end_session(
    connection: Connection, sessions: Table, token_hash: str, reason: str, now: dt.datetime
) -> bool:
    result = connection.execute(
        update(sessions)
        .where(sessions.c.token_hash == token_hash, sessions.c.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
    )
    return result.rowcount > 0


def end_account_sessions(
    connection: Connection,
    sessions: Table,
    account: str,
    reason: str,
    now: dt.datetime,
    *,
    keep: str | None = None,
) -> int:
    """End every live session of ``account`` (except ``keep``, a token hash); returns how many."""
    condition = [sessions.c.account == account, sessions.c.ended_at.is_(None)]
    if keep is not None:
        condition.append(sessions.c.token_hash != keep)
    result = connection.execute(update(sessions).where(*condition).values(ended_at=now, end_reason=reason))
    return result.rowcount
