"""Tokens for the provincial systems that push records to a node's local intake API.

The 系统管理员 creates one token per calling system (``ggzy admin token add``); it is printed once
and only its SHA-256 is stored. A caller sends ``Authorization: Bearer <token>``; the system's name
is recorded with every record it pushes. Revoking a token refuses its next request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, Table, insert, select, update

__all__ = ["TOKEN_PREFIX", "TokenInfo", "check_token", "create_token", "list_tokens", "revoke_token"]

TOKEN_PREFIX = "ggzy_it_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    name: str
    created_at: dt.datetime
    created_by: str
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


def create_token(connection: Connection, table: Table, name: str, created_by: str, now: dt.datetime) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    connection.execute(
        insert(table).values(token_hash=_digest(token), name=name, created_at=now, created_by=created_by)
    )
    return token


def check_token(connection: Connection, table: Table, token: str, now: dt.datetime) -> str | None:
    """The name of the live token's system, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    digest = _digest(token)
    row = connection.execute(
        select(table.c.token_hash, table.c.name, table.c.revoked_at).where(table.c.token_hash == digest)
    ).first()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, digest):
        return None
    connection.execute(update(table).where(table.c.token_hash == digest).values(last_used_at=now))
    return str(row.name)


def revoke_token(connection: Connection, table: Table, name: str, now: dt.datetime) -> bool:
    result = connection.execute(
        update(table).where(table.c.name == name, table.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    return result.rowcount > 0


def list_tokens(connection: Connection, table: Table) -> list[TokenInfo]:
    rows = connection.execute(select(table).order_by(table.c.name)).all()
    return [TokenInfo(r.name, r.created_at, r.created_by, r.revoked_at, r.last_used_at) for r in rows]
