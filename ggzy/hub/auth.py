"""Authenticate a node's exchange request: signature, clock, nonce, node status and source network."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import Connection, Engine, delete

from ggzy.hub.errors import HubError
from ggzy.hub.models import nonces
from ggzy.hub.registry import NodeRecord, get_node
from ggzy.security.signing import (
    HEADER_ALGORITHM,
    HEADER_NODE,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    SignatureAlgorithm,
    verify_signature,
)
from ggzy.store.database import writing
from ggzy.store.upsert import dialect_insert

__all__ = [
    "Authenticated",
    "authenticate",
    "authenticate_deferred",
    "claim_nonce",
    "purge_nonces",
    "remember_nonce",
    "replay_refusal",
]

_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
# ASCII digits only: str.isdigit() also accepts "²" (int() then fails) and 400-digit numbers overflow float.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def _refuse(status: int, code: str, zh: str, en: str) -> HubError:
    return HubError(status, code, zh, en, audit=True)


def request_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A node whose request passed every check but the nonce, which its caller claims (see below)."""

    node: NodeRecord
    nonce: str
    now: dt.datetime


def authenticate(
    request: Request, body: bytes, engine: Engine, skew_seconds: int, now: dt.datetime
) -> NodeRecord:
    """Every check of the request, the nonce last, remembered in a transaction of its own."""
    checked = authenticate_deferred(request, body, engine, skew_seconds, now)
    remember_nonce(engine, checked.node.node_id, checked.nonce, now)
    return checked.node


def authenticate_deferred(
    request: Request, body: bytes, engine: Engine, skew_seconds: int, now: dt.datetime
) -> Authenticated:
    """Every check but the nonce: the caller claims it with :func:`claim_nonce` in the transaction
    that acts on the request (an upload's batch transaction: one commit, one fsync, instead of two),
    or with :func:`remember_nonce` when it answers without acting, before its own refusal."""
    headers = request.headers
    node_id = headers.get(HEADER_NODE)
    stamp = headers.get(HEADER_TIMESTAMP)
    nonce = headers.get(HEADER_NONCE)
    signature = headers.get(HEADER_SIGNATURE)
    if not node_id or not stamp or not nonce or not signature:
        raise _refuse(
            401,
            "E-AUTH-MISSING",
            f"请求缺少签名头（{HEADER_NODE}、{HEADER_TIMESTAMP}、{HEADER_NONCE}、{HEADER_SIGNATURE}）",
            "the request is not signed: node, timestamp, nonce and signature headers are required",
        )
    try:
        algorithm = SignatureAlgorithm(headers.get(HEADER_ALGORITHM, SignatureAlgorithm.HMAC_SHA256.value))
    except ValueError:
        raise _refuse(
            400,
            "E-AUTH-ALGORITHM",
            "不支持的签名算法，应为 HMAC-SHA256 或 HMAC-SM3",
            "unsupported signature algorithm",
        ) from None
    if not _TIMESTAMP.fullmatch(stamp) or abs(now.timestamp() - int(stamp)) > skew_seconds:
        raise _refuse(
            401,
            "E-AUTH-TIMESTAMP",
            f"请求时间戳与服务器时间相差超过{skew_seconds}秒，请校准时钟",
            f"timestamp is more than {skew_seconds} s away from the server clock",
        )
    if not _NONCE.fullmatch(nonce):
        raise _refuse(
            400, "E-AUTH-NONCE-FORMAT", "随机数应为16–64位字母数字", "nonce must be 16-64 URL-safe characters"
        )
    with engine.connect() as connection:
        node = get_node(connection, node_id)
    if node is None:
        raise _refuse(401, "E-AUTH-NODE-UNKNOWN", f"未登记的节点“{node_id[:64]}”", "unknown node")
    if not verify_signature(
        bytes.fromhex(node.key),
        request.method,
        request_path(request),
        body,
        timestamp=stamp,
        nonce=nonce,
        signature=signature,
        algorithm=algorithm,
    ):
        raise _refuse(401, "E-AUTH-SIGNATURE", "签名校验失败", "signature does not verify")
    if algorithm is not node.algorithm:
        raise _refuse(
            401,
            "E-AUTH-ALGORITHM",
            f"本节点登记的签名算法为{node.algorithm.value}",
            "algorithm differs from the registered one",
        )
    if not node.active:
        raise _refuse(403, "E-AUTH-SUSPENDED", "节点已被暂停，请联系国家平台", "the node is suspended")
    address = request.client.host if request.client else ""
    if not node.allows(address):
        raise _refuse(
            403,
            "E-AUTH-NETWORK",
            f"来源地址{address}不在本节点登记的网段内",
            "source address outside the node's networks",
        )
    return Authenticated(node, nonce, now)


def claim_nonce(connection: Connection, node_id: str, nonce: str, now: dt.datetime) -> bool:
    """Remember the nonce in ``connection``'s transaction; False when this node used it before."""
    statement = (
        dialect_insert(connection, nonces)
        .on_conflict_do_nothing(index_elements=["node_id", "nonce"])
        .returning(nonces.c.nonce)
    )
    # RETURNING, not rowcount: psycopg reports rowcount -1 for this INSERT, which let every
    # replay through on PostgreSQL. A conflict returns no row.
    inserted = connection.execute(statement, {"node_id": node_id, "nonce": nonce, "seen_at": now}).first()
    return inserted is not None


def replay_refusal() -> HubError:
    return _refuse(
        401,
        "E-AUTH-REPLAY",
        "该请求已处理过（随机数重复），疑似重放",
        "nonce seen before: replayed request",
    )


def remember_nonce(engine: Engine, node_id: str, nonce: str, now: dt.datetime) -> None:
    """Claim the nonce in a transaction of its own; refuse the request when it is a replay."""
    with writing(engine) as connection:
        claimed = claim_nonce(connection, node_id, nonce, now)
    if not claimed:
        raise replay_refusal()


def purge_nonces(engine: Engine, older_than: dt.datetime) -> int:
    """Forget nonces older than the signature window: a replay of them fails on the timestamp."""
    with engine.connect() as plain:
        connection = plain.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            return connection.execute(delete(nonces).where(nonces.c.seen_at < older_than)).rowcount
