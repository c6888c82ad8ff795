"""What every exchange route needs: the hub state, the signed body, the authenticated node."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from ggzy.hub.auth import Authenticated, authenticate, authenticate_deferred
from ggzy.hub.errors import HubError
from ggzy.hub.registry import NodeRecord
from ggzy.security.audit import AuditEntry

if TYPE_CHECKING:
    from ggzy.hub.app import HubState

__all__ = ["audit_refusal", "hub_of", "read_body", "signed_node", "signed_node_deferred"]


def hub_of(request: Request) -> HubState:
    state: HubState = request.app.state.hub
    return state


def source_of(request: Request) -> str:
    return request.client.host if request.client else "-"


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise HubError(
            413, "E-REQ-TOO-LARGE", f"请求体超过{limit}字节上限", f"request body exceeds {limit} bytes"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HubError(
                413, "E-REQ-TOO-LARGE", f"请求体超过{limit}字节上限", f"request body exceeds {limit} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def signed_node(request: Request, body: bytes) -> NodeRecord:
    hub = hub_of(request)
    now = dt.datetime.now(dt.UTC)
    return await run_in_threadpool(
        authenticate, request, body, hub.engine, hub.settings.clock_skew_seconds, now
    )


async def signed_node_deferred(request: Request, body: bytes) -> Authenticated:
    """As :func:`signed_node`, but the nonce is left for the caller to claim (see ``authenticate_deferred``)."""
    hub = hub_of(request)
    now = dt.datetime.now(dt.UTC)
    return await run_in_threadpool(
        authenticate_deferred, request, body, hub.engine, hub.settings.clock_skew_seconds, now
    )


def audit_refusal(request: Request, hub: HubState, error: HubError) -> None:
    """Forged, replayed and out-of-scope requests leave a trace (Art. 24)."""
    hub.metrics.refusals.labels(error.code).inc()
    claimed = request.headers.get("X-GGZY-Node", "-")[:64]
    with hub.engine.connect() as plain:
        connection = plain.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            hub.audit.append(
                connection,
                AuditEntry(
                    action="exchange.refused",
                    object=f"{request.method} {request.url.path}"[:512],
                    outcome="refused",
                    account=f"node:{claimed}",
                    role="node",
                    source=source_of(request),
                    request_id=getattr(request.state, "request_id", "-"),
                    detail={"code": error.code, "message": error.message_en},
                ),
            )
