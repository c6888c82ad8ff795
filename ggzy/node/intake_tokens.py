"""The intake API tokens of a node's provincial systems, created and revoked with their audit entry.

``ggzy admin token`` and the node portal's 系统管理 page call these, so either way leaves the same
trace in the node's audit chain. A new token is returned once, to be given to that system, and only
its SHA-256 is kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Connection, select

from ggzy.node.models import api_tokens
from ggzy.security.api_tokens import create_token, revoke_token
from ggzy.security.audit import AuditActor, AuditLog

__all__ = ["TokenError", "TokenIssuer", "add_token", "revoke"]


class TokenError(ValueError):
    def __init__(self, code: str, message_zh: str) -> None:
        super().__init__(message_zh)
        self.code, self.message_zh = code, message_zh


TokenIssuer = AuditActor  # who creates or revokes a token, as the audit entry names them


def _audit(connection: Connection, audit: AuditLog, who: TokenIssuer, action: str, name: str) -> None:
    audit.append(connection, who.success(action, f"intake-token:{name}"))


def add_token(
    connection: Connection,
    audit: AuditLog,
    who: TokenIssuer,
    name: str,
    now: dt.datetime,
    *,
    networks: Sequence[str] = (),
) -> str:
    """A new token for the system ``name`` (returned once), accepted only from ``networks`` when any
    are given (Art. 15); a name already used is refused."""
    name = name.strip()
    if not name or len(name) > 64:
        raise TokenError("E-TOKEN-NAME", "请填写调用系统名称（最长 64 个字符）")
    if connection.execute(select(api_tokens.c.name).where(api_tokens.c.name == name)).first() is not None:
        raise TokenError("E-TOKEN-EXISTS", f"已有名为“{name}”的令牌")
    token = create_token(connection, api_tokens, name, who.account, now, networks=networks)
    _audit(connection, audit, who, "token.add", name)
    return token


def revoke(connection: Connection, audit: AuditLog, who: TokenIssuer, name: str, now: dt.datetime) -> None:
    """Revoke the live token of ``name``: its later pushes are refused (``E-AUTH-TOKEN``)."""
    if not revoke_token(connection, api_tokens, name, now):
        raise TokenError("E-TOKEN-UNKNOWN", f"没有名为“{name}”的有效令牌")
    _audit(connection, audit, who, "token.revoke", name)
