"""审计 (auditor only) and 系统管理 (administrator only): the pages of the two roles that see no business data.

The auditor searches and exports the audit log and checks the chain; the administrator sees the
accounts, the node registry and the hub's settings (no key, no password, no business data).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from sqlalchemy import Engine

from ggzy.hub.registry import list_nodes
from ggzy.security.audit import AuditLog
from ggzy.security.audit_anchor import AnchorSet
from ggzy.security.permissions import Permission, Principal, require
from ggzy.web.audit_pages import AuditSite, audit_router
from ggzy.web.settings_view import settings_rows

__all__ = ["audit_pages", "router"]

router = APIRouter(prefix="/portal", tags=["portal"], include_in_schema=False)

Administrator = Annotated[Principal, Depends(require(Permission.ACCOUNTS_MANAGE))]


def _hub_store(request: Request) -> tuple[Engine, AuditLog]:
    hub = request.app.state.hub
    return hub.engine, hub.audit


def _record(request: Request, principal: Principal, action: str, detail: dict[str, Any]) -> None:
    from ggzy.hub.portal.routes import audit_read

    audit_read(request, principal, action, "audit_log", detail)


def _audit_page(request: Request, principal: Principal, **context: Any) -> HTMLResponse:
    from ggzy.hub.portal.routes import render

    return render(request, "audit.html", principal, **context)


def _hub_anchors(_request: Request) -> AnchorSet:
    """The hub's anchors off the host: the append-only file in ``backup.offsite_dir``."""
    from ggzy.hub.anchors import hub_sinks
    from ggzy.settings import get_settings

    configured = get_settings()
    return hub_sinks(configured.backup, configured.audit).anchors()


audit_pages = audit_router(AuditSite(_hub_store, _record, _audit_page, anchors=_hub_anchors))


@router.get("/admin", response_class=HTMLResponse)
async def admin_page(request: Request, principal: Administrator) -> HTMLResponse:
    from ggzy.hub.portal.routes import render

    hub = request.app.state.hub

    def load() -> tuple[Any, Any]:
        accounts = hub.accounts.list(principal)
        with hub.engine.connect() as connection:
            nodes = list_nodes(connection)
        return accounts, nodes

    accounts, nodes = await run_in_threadpool(load)
    return render(
        request,
        "admin.html",
        principal,
        accounts=accounts,
        nodes=nodes,
        settings=settings_rows(hub.settings, "hub"),  # secrets and where they live: hidden
    )
