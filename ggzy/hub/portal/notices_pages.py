"""通知: the notices the national side sends to provinces, as a portal page, with read/unread.

A province's staff see their province's notices (orders, 通报, national outages, assessment results,
messages), newest first, and mark them read one by one or all at once; while any is unread, every
page of the portal shows a banner (:func:`unread_for`, used by ``routes.render``). National operators
see every province's notices with whether each was read, and send a free notice to one province or
to all from a form on the same page. Every change goes through ``ggzy.hub.ops.notices`` in one
transaction with its audit entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ggzy.hub.ops.session import Actor, OpsError, OpsSession
from ggzy.hub.portal.scope import scope_of
from ggzy.security.permissions import Permission, Principal, require
from ggzy.web.bounds import IdPath

__all__ = ["router", "unread_for"]

router = APIRouter(prefix="/portal", tags=["portal"], include_in_schema=False)

OpsReader = Annotated[Principal, Depends(require(Permission.OPS_READ))]
OpsWriter = Annotated[Principal, Depends(require(Permission.OPS_WRITE))]
Sender = Annotated[Principal, Depends(require(Permission.OPS_ASSESS))]
R = TypeVar("R")


def unread_for(request: Request, principal: Principal) -> int | None:
    """How many notices the principal's province has not read (None for national accounts).

    Called while a page renders: one indexed count on ``ops_notices``.
    """
    if principal.province is None or not principal.may(Permission.OPS_READ):
        return None
    from ggzy.hub.ops.notices import unread_count

    with request.app.state.hub.engine.connect() as connection:
        return unread_count(connection, principal.province)


def _write(request: Request, principal: Principal, fn: Callable[[OpsSession], R]) -> R:
    hub = request.app.state.hub
    actor = Actor(
        principal.account,
        principal.role.value,
        principal.province,
        request.client.host if request.client else "-",
        getattr(request.state, "request_id", "-"),
    )
    with hub.engine.connect() as plain:
        connection = plain.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            return fn(OpsSession(connection, hub.audit, actor, hub.settings.ops))


async def _page(
    request: Request,
    principal: Principal,
    province: str | None,
    *,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    from ggzy.hub.ops.notices import list_notices
    from ggzy.hub.portal.routes import render

    scope = scope_of(principal)
    chosen = principal.province or province or None
    if chosen is not None:
        scope.check(chosen)
    hub = request.app.state.hub

    def load() -> list[dict[str, Any]]:
        with hub.engine.connect() as connection:
            return [n.to_dict() for n in list_notices(connection, chosen, limit=200)]

    notices = await run_in_threadpool(load)
    response = render(
        request,
        "notices.html",
        principal,
        notices=notices,
        province=chosen,
        may_send=principal.may(Permission.OPS_ASSESS),
        may_read=principal.province is not None and principal.may(Permission.OPS_WRITE),
        error=error,
        sent=request.query_params.get("sent"),
    )
    response.status_code = status
    return response


@router.get("/notices", response_class=HTMLResponse)
async def notices_page(
    request: Request,
    principal: OpsReader,
    province: Annotated[str | None, Query(max_length=2, pattern=r"^\d{2}$")] = None,
) -> HTMLResponse:
    return await _page(request, principal, province)


@router.post("/notices/{notice_id}/read")
async def read_notice(request: Request, principal: OpsWriter, notice_id: IdPath) -> Response:
    from ggzy.hub.ops.notices import mark_read

    try:
        await run_in_threadpool(_write, request, principal, lambda s: mark_read(s, notice_id))
    except OpsError as exc:
        return await _page(request, principal, None, error=f"{exc.code} {exc.message_zh}", status=exc.status)
    return RedirectResponse("/portal/notices", status_code=303)


@router.post("/notices/read-all")
async def read_all_notices(request: Request, principal: OpsWriter) -> Response:
    from ggzy.hub.ops.notices import mark_all_read

    try:
        await run_in_threadpool(_write, request, principal, mark_all_read)
    except OpsError as exc:
        return await _page(request, principal, None, error=f"{exc.code} {exc.message_zh}", status=exc.status)
    return RedirectResponse("/portal/notices", status_code=303)


@router.post("/notices/send")
async def send_notice(
    request: Request,
    principal: Sender,
    title: Annotated[str, Form(max_length=300)] = "",
    body: Annotated[str, Form(max_length=5000)] = "",
    province: Annotated[str, Form(max_length=2)] = "",
) -> Response:
    from ggzy.hub.ops.notices import deliver_pending, send_message

    try:
        sent = await run_in_threadpool(
            _write,
            request,
            principal,
            lambda s: send_message(s, [province] if province else None, title, body),
        )
    except OpsError as exc:
        return await _page(request, principal, None, error=f"{exc.code} {exc.message_zh}", status=exc.status)
    hub = request.app.state.hub
    from starlette.background import BackgroundTask

    return RedirectResponse(
        f"/portal/notices?sent={len(sent)}",
        status_code=303,
        background=BackgroundTask(deliver_pending, hub.engine, hub.audit, hub.settings.ops),
    )
