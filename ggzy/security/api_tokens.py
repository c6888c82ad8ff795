"""Tokens for the provincial systems that push records to a node's local intake API.

The 系统管理员 creates one token per calling system (``ggzy admin token add``); it is printed once
and only its SHA-256 is stored. A caller sends ``Authorization: Bearer <token>``; the system's name
is recorded with every record it pushes. Revoking a token refuses its next request.

Each token may name the source networks (CIDR) its system pushes from (Art. 15: access policy by
source address, like the hub's per-node networks); a request from elsewhere is refused
(``E-AUTH-NETWORK``) even with the right token. A token without networks is not limited.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, Table, insert, select, update

__all__ = [
    "TOKEN_PREFIX",
    "TokenCaller",
    "TokenInfo",
    "check_token",
    "create_token",
    "list_tokens",
    "normalise_networks",
    "revoke_token",
    "token_caller",
]

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
    networks: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TokenCaller:
    """The system behind a live token, and where it may push from."""

    name: str
    networks: tuple[str, ...]

    def admits(self, address: str) -> bool:
        """Whether a request from ``address`` may carry this token (no networks: any address)."""
        if not self.networks:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False  # not an address (a test client's name, a Unix socket): fail closed
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in ipaddress.ip_network(net, strict=False) for net in self.networks)


def normalise_networks(networks: Sequence[str]) -> list[str]:
    """The CIDRs as the network addresses they denote; ``ValueError`` for anything else."""
    return [str(ipaddress.ip_network(n.strip(), strict=False)) for n in networks if n.strip()]


def create_token(
    connection: Connection,
    table: Table,
    name: str,
    created_by: str,
    now: dt.datetime,
    *,
    networks: Sequence[str] = (),
) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    connection.execute(
        insert(table).values(
            token_hash=_digest(token),
            name=name,
            created_at=now,
            created_by=created_by,
            networks=normalise_networks(networks),
        )
    )
    return token


def token_caller(connection: Connection, table: Table, token: str, now: dt.datetime) -> TokenCaller | None:
    """The system of a live token (its last use moved to ``now``), or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    digest = _digest(token)
    row = connection.execute(
        select(table.c.token_hash, table.c.name, table.c.revoked_at, table.c.networks).where(
            table.c.token_hash == digest
        )
    ).first()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.token_hash, digest):
        return None
    connection.execute(update(table).where(table.c.token_hash == digest).values(last_used_at=now))
    return TokenCaller(str(row.name), tuple(row.networks or ()))


def check_token(connection: Connection, table: Table, token: str, now: dt.datetime) -> str | None:
    """The name of the live token's system, or None."""
    found = token_caller(connection, table, token, now)
    return found.name if found is not None else None


def revoke_token(connection: Connection, table: Table, name: str, now: dt.datetime) -> bool:
    result = connection.execute(
        update(table).where(table.c.name == name, table.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    return result.rowcount > 0


def list_tokens(connection: Connection, table: Table) -> list[TokenInfo]:
    rows = connection.execute(select(table).order_by(table.c.name)).all()
    return [
        TokenInfo(r.name, r.created_at, r.created_by, r.revoked_at, r.last_used_at, list(r.networks or ()))
        for r in rows
    ]
