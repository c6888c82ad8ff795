"""审计 (auditor only) and 系统管理 (administrator only): the pages of the two roles that see no business data.

The auditor searches and exports the audit log and checks the chain. The administrator manages the
accounts (``ggzy/web/account_pages.py``, shared with the node), the node registry — registration,
suspension, key rotation, networks, through :mod:`ggzy.hub.node_admin` as ``ggzy hub node`` does,
a new key shown once on the answer to its form — and reads the settings in force, secrets hidden.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine

from ggzy.hub import node_admin
from ggzy.hub.registry import NodeRecord, RegistryError, list_nodes
from ggzy.security.audit import AuditLog
from ggzy.security.audit_anchor import AnchorSet
from ggzy.security.permissions import Permission, Principal, require
from ggzy.security.signing import SignatureAlgorithm
from ggzy.store.database import writing
from ggzy.web.audit_pages import AuditSite, audit_router
from ggzy.web.forms import FormInvalid, FormReader
from ggzy.web.layer import caller_of
from ggzy.web.settings_view import settings_rows

__all__ = ["ADMIN_TABS", "audit_pages", "router"]

router = APIRouter(prefix="/portal/admin", tags=["portal"], include_in_schema=False)

NodeManager = Annotated[Principal, Depends(require(Permission.NODES_MANAGE))]
SettingsReader = Annotated[Principal, Depends(require(Permission.CONFIG_MANAGE))]

ADMIN_TABS = (
    ("/portal/admin/accounts", "账号与角色"),
    ("/portal/admin/nodes", "交换前置节点"),
    ("/portal/admin/settings", "系统配置"),
)
NODE_DONE = {
    "suspend": "节点已暂停：其后的请求一律拒绝。",
    "activate": "节点已恢复。",
    "networks": "允许的来源网段已变更。",
}


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


# --- 交换前置节点 ---------------------------------------------------------------------------------


def _changer(request: Request, principal: Principal) -> node_admin.Changer:
    caller = caller_of(request)
    return node_admin.Changer(principal.account, principal.role.value, caller.source, caller.request_id)


async def _nodes_page(
    request: Request,
    principal: Principal,
    *,
    done: str | None = None,
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    error: RegistryError | None = None,
    new_key: NodeRecord | None = None,
) -> HTMLResponse:
    from ggzy.hub.portal.heartbeats import node_status
    from ggzy.hub.portal.routes import render
    from ggzy.spec import load_regions
    from ggzy.web.portal import portal_now

    hub = request.app.state.hub
    now = portal_now(request)

    def load() -> list[tuple[NodeRecord, dict[str, Any]]]:
        with hub.engine.connect() as connection:
            return [(node, node_status(connection, node.node_id, now)) for node in list_nodes(connection)]

    nodes = await run_in_threadpool(load)
    response = render(
        request,
        "admin_nodes.html",
        principal,
        tabs=ADMIN_TABS,
        nodes=nodes,
        provinces={k: v for k, v in load_regions().provinces().items() if k < "70"},
        algorithms={a.value: a.value for a in SignatureAlgorithm},
        flash=NODE_DONE.get(done or ""),
        values=values or {},
        errors=errors or {},
        error=error,
        new_key=new_key,
    )
    response.status_code = status
    return response


@router.get("/nodes", response_class=HTMLResponse)
async def nodes_page(request: Request, principal: NodeManager, done: str | None = None) -> HTMLResponse:
    return await _nodes_page(request, principal, done=done)


async def _registry_change(request: Request, fn: Any) -> NodeRecord:
    engine = request.app.state.hub.engine

    def run() -> NodeRecord:
        with writing(engine) as connection:
            record: NodeRecord = fn(connection)
            return record

    return await run_in_threadpool(run)


@router.post("/nodes", response_class=HTMLResponse)
async def node_register(request: Request, principal: NodeManager) -> Response:
    from ggzy.spec import load_regions

    hub = request.app.state.hub
    form = FormReader(await request.form())
    node_id = form.text("node_id", "节点编号", required=True, max_length=64)
    province = form.choice("province", "省份", load_regions().provinces())
    name = form.text("name", "节点名称", max_length=200)
    platforms = form.lines("platform_codes", "交易系统标识码", max_items=50)
    networks = form.lines("networks", "允许的来源网段", max_items=50)
    algorithm = form.choice("algorithm", "签名算法", {a.value: a.value for a in SignatureAlgorithm})
    who = _changer(request, principal)
    try:
        form.done()
        node = await _registry_change(
            request,
            lambda c: node_admin.register(
                c,
                hub.audit,
                who,
                node_id,
                province,
                name=name,
                platform_codes=platforms,
                networks=networks,
                algorithm=SignatureAlgorithm(algorithm),
            ),
        )
    except FormInvalid as invalid:
        return await _nodes_page(request, principal, status=400, values=form.values(), errors=invalid.errors)
    except RegistryError as refusal:
        return await _nodes_page(request, principal, status=400, values=form.values(), error=refusal)
    return await _nodes_page(request, principal, new_key=node)  # the key, on this answer only


@router.post("/nodes/{node_id}/{action}", response_class=HTMLResponse)
async def node_action(request: Request, principal: NodeManager, node_id: str, action: str) -> Response:
    hub = request.app.state.hub
    who = _changer(request, principal)
    form = FormReader(await request.form())
    try:
        if action == "suspend":
            await _registry_change(request, lambda c: node_admin.suspend(c, hub.audit, who, node_id))
        elif action == "activate":
            await _registry_change(request, lambda c: node_admin.activate(c, hub.audit, who, node_id))
        elif action == "rotate-key":
            node = await _registry_change(request, lambda c: node_admin.rotate(c, hub.audit, who, node_id))
            return await _nodes_page(request, principal, new_key=node)
        elif action == "networks":
            networks = form.lines("networks", "允许的来源网段", max_items=50)
            form.done()
            await _registry_change(
                request, lambda c: node_admin.change_networks(c, hub.audit, who, node_id, networks)
            )
        else:
            from fastapi import HTTPException

            raise HTTPException(404)
    except FormInvalid as invalid:
        return await _nodes_page(request, principal, status=400, errors=invalid.errors)
    except RegistryError as refusal:
        status = 404 if refusal.code == "E-NODE-UNKNOWN" else 400
        return await _nodes_page(request, principal, status=status, error=refusal)
    return RedirectResponse(f"/portal/admin/nodes?done={action}", status_code=303)


# --- 系统配置 -------------------------------------------------------------------------------------


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(request: Request, principal: SettingsReader) -> HTMLResponse:
    """The settings this hub process runs with (what it was started with, not the defaults)."""
    from ggzy.hub.portal.routes import audit_read, render
    from ggzy.settings import get_settings

    hub = request.app.state.hub
    current = get_settings()
    sections = [
        (("国家平台", "hub"), settings_rows("hub", hub.settings)),
        (("账号与登录", "security"), settings_rows("security", request.app.state.people.settings)),
        (("审计日志", "audit"), settings_rows("audit", current.audit)),
        (("备份", "backup"), settings_rows("backup", current.backup)),
        (("数据校验", "validation"), settings_rows("validation", current.validation)),
    ]
    await run_in_threadpool(audit_read, request, principal, "settings.read", "settings", {"page": "settings"})
    return render(request, "settings.html", principal, tabs=ADMIN_TABS, sections=sections)
