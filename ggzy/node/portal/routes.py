"""The node portal's pages under ``/portal`` on the node's local app (the intake API's app).

Every route declares its permission with ``require(Permission.X)``; every page read (and every
export) is written to the node's own audit chain, as ``GET /api/v1/people/status`` is. An auditor
sees only 审计, an administrator only 系统管理, an operator the business pages.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine

from ggzy.node.context import NodeContext
from ggzy.node.portal import queries
from ggzy.security.audit import AuditEntry, AuditLog
from ggzy.security.audit_anchor import AnchorSet
from ggzy.security.permissions import Forbidden, Permission, Principal, require
from ggzy.store.database import writing
from ggzy.web import caller_of, people_of
from ggzy.web.audit_pages import AuditSite, audit_router
from ggzy.web.portal import (
    SHANGHAI,
    Anyone,
    DataReader,
    DateQuery,
    EndQuery,
    Exporter,
    NavItem,
    PageQuery,
    RuleQuery,
    download,
    portal_now,
    render_page,
)

__all__ = ["NAV", "install", "router"]

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"  # pages are "node/<name>.html"; layout, macros, audit page: ggzy/web
PAGE_SIZE = 50

# (path, label, permission): the navigation shows an entry only to a role that holds its permission.
NAV: tuple[NavItem, ...] = (
    ("/portal/overview", "总览", Permission.OPS_READ),
    ("/portal/rejects", "退回记录", Permission.DATA_READ),
    ("/portal/reconcile", "对账", Permission.DATA_READ),
    ("/portal/audit", "审计", Permission.AUDIT_READ),
    ("/portal/admin", "系统管理", Permission.ACCOUNTS_MANAGE),
)

router = APIRouter(prefix="/portal", tags=["portal"], include_in_schema=False)

OpsReader = Annotated[Principal, Depends(require(Permission.OPS_READ))]
Administrator = Annotated[Principal, Depends(require(Permission.ACCOUNTS_MANAGE))]

TableQuery = Annotated[str | None, Query(max_length=64, description="数据表名，如 SECTION")]


def _ctx(request: Request) -> NodeContext:
    ctx: NodeContext = request.app.state.node_ctx
    return ctx


def audit_read(
    request: Request, principal: Principal, action: str, obj: str, detail: dict[str, Any] | None = None
) -> None:
    """A person read (or exported) a page of the node portal: one entry in the node's audit chain."""
    ctx = _ctx(request)
    caller = caller_of(request)
    with writing(ctx.engine) as connection:
        ctx.audit.append(
            connection,
            AuditEntry(
                action=action,
                object=obj[:512],
                outcome="success",
                account=principal.account,
                role=principal.role.value,
                source=caller.source,
                request_id=caller.request_id,
                detail=detail or {},
            ),
        )


def render(request: Request, template: str, principal: Principal, **context: Any) -> HTMLResponse:
    return render_page(request, f"node/{template}", principal, NAV, **context)


@router.get("")
async def home(principal: Anyone) -> RedirectResponse:
    """Each role lands on the first page it may open."""
    for href, _, needed in NAV:
        if principal.may(needed):
            return RedirectResponse(href, status_code=303)
    return RedirectResponse("/auth/account", status_code=303)


# --- 总览 ---


def _breakers(request: Request) -> dict[int, str] | None:
    """The uploaders' breakers, when ``ggzy node run`` serves this app beside them (else unknown)."""
    service = getattr(request.app.state, "node_service", None)
    if service is None:
        return None
    return {channel: uploader.breaker.state.value for channel, uploader in service.uploaders.items()}


@router.get("/overview", response_class=HTMLResponse)
async def overview_page(request: Request, principal: OpsReader) -> HTMLResponse:
    ctx = _ctx(request)
    now = portal_now(request)
    usage = getattr(request.app.state, "disk_usage", None)

    def load() -> dict[str, Any]:
        options = {"usage": usage} if usage is not None else {}
        data = queries.overview(ctx, now, _breakers(request), **options)
        data["history"] = queries.history(ctx.engine, now)
        audit_read(request, principal, "status.read", f"node:{ctx.settings.node_id}", {"page": "overview"})
        return data

    data = await run_in_threadpool(load)
    charts = {
        "history": queries.history_chart(data["history"], data["disk"]),
        "waiting": queries.waiting_chart(data["history"]),
    }
    return render(
        request,
        "overview.html",
        principal,
        data=data,
        charts=charts,
        disk_level_zh=queries.DISK_LEVEL_ZH,
        breaker_zh=queries.BREAKER_ZH,
    )


# --- 退回记录 ---


def _reject_filter(table: str | None, rule: str | None, start: dt.date | None, end: dt.date | None) -> Any:
    from ggzy.node.corrections import RejectFilter

    if start and end and start > end:
        start, end = end, start
    return RejectFilter(table=table or None, rule=(rule or "").strip() or None, start=start, end=end)


def _filter_detail(flt: Any) -> dict[str, Any]:
    return {
        "table": flt.table,
        "rule": flt.rule,
        "from": flt.start.isoformat() if flt.start else None,
        "to": flt.end.isoformat() if flt.end else None,
    }


@router.get("/rejects", response_class=HTMLResponse)
async def rejects_page(
    request: Request,
    principal: DataReader,
    table: TableQuery = None,
    rule: RuleQuery = None,
    start: DateQuery = None,
    end: EndQuery = None,
    page: PageQuery = 1,
) -> HTMLResponse:
    from ggzy.node.corrections import REPAIR_TARGET, list_rejects, repair_summary

    ctx = _ctx(request)
    flt = _reject_filter(table, rule, start, end)

    def load() -> tuple[Any, int, Any]:
        rows, total = list_rejects(ctx.engine, flt, page, PAGE_SIZE)
        summary = repair_summary(ctx.engine, flt.start, flt.end)
        audit_read(request, principal, "data.read.rejects", "rejects", _filter_detail(flt) | {"page": page})
        return rows, total, summary

    rows, total, summary = await run_in_threadpool(load)
    query = {k: v for k, v in _filter_detail(flt).items() if v}
    return render(
        request,
        "rejects.html",
        principal,
        rows=rows,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        flt=flt,
        query=query,
        summary=summary,
        repair_target=REPAIR_TARGET,
        tables=sorted(ctx.spec.tables.values(), key=lambda t: int(t.data_no)),
        table_zh={t.name: t.name_zh for t in ctx.spec.tables.values()},
        may_export=principal.may(Permission.REPORTS_EXPORT),
    )


@router.get("/rejects.xlsx")
async def rejects_export(
    request: Request,
    principal: Exporter,
    table: TableQuery = None,
    rule: RuleQuery = None,
    start: DateQuery = None,
    end: EndQuery = None,
) -> Response:
    """The same workbook as ``ggzy node rejects export``: one row per finding."""
    from ggzy.node.corrections import export_rejects_xlsx

    if not principal.may(Permission.DATA_READ):
        raise Forbidden(principal, Permission.DATA_READ)
    ctx = _ctx(request)
    flt = _reject_filter(table, rule, start, end)

    def build() -> bytes:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "rejects.xlsx"
            written = export_rejects_xlsx(ctx.engine, flt, path, ctx.spec)
            content = path.read_bytes()
        audit_read(
            request, principal, "data.export.rejects", "rejects.xlsx", _filter_detail(flt) | {"rows": written}
        )
        return content

    content = await run_in_threadpool(build)
    today = portal_now(request).astimezone(SHANGHAI)
    name = f"rejects-{ctx.settings.node_id}-{today:%Y%m%d}.xlsx"
    return download(content, name)


# --- 对账 ---


@router.get("/reconcile", response_class=HTMLResponse)
async def reconcile_page(
    request: Request, principal: DataReader, days: Annotated[int, Query(ge=1, le=366)] = 31
) -> HTMLResponse:
    ctx = _ctx(request)
    today = portal_now(request).astimezone(SHANGHAI).date()

    def load() -> tuple[list[dict[str, Any]], list[Any]]:
        from ggzy.node.uploader import open_alerts

        results = queries.recent_reconciliations(ctx.engine, today, days)
        alerts = open_alerts(ctx.engine, "reconcile")
        audit_read(request, principal, "data.read.reconcile", "reconcile", {"days": days})
        return results, alerts

    results, alerts = await run_in_threadpool(load)
    return render(
        request,
        "reconcile.html",
        principal,
        results=results,
        alerts=alerts,
        days=days,
        today=today,
        table_zh={t.name: t.name_zh for t in ctx.spec.tables.values()},
        reconcile_at=ctx.settings.reconcile_at,
    )


# --- 审计 (auditor only) ---


def _node_store(request: Request) -> tuple[Engine, AuditLog]:
    ctx = _ctx(request)
    return ctx.engine, ctx.audit


def _record(request: Request, principal: Principal, action: str, detail: dict[str, Any]) -> None:
    audit_read(request, principal, action, "audit_log", detail)


def _audit_page(request: Request, principal: Principal, **context: Any) -> HTMLResponse:
    return render_page(request, "portal/audit.html", principal, NAV, **context)


def _node_anchors(request: Request) -> AnchorSet:
    """The anchors the hub keeps of this node's chain (fetched with the node's signed client)."""
    from ggzy.node.site import hub_anchors

    ctx = _ctx(request)
    with ctx.hub_client(timeout=httpx.Timeout(10.0)) as client:
        return hub_anchors(ctx.settings, 0, client)


audit_pages = audit_router(
    AuditSite(
        _node_store,
        _record,
        _audit_page,
        export_name=lambda request: f"audit-log-{_ctx(request).settings.node_id}",
        anchors=_node_anchors,
    )
)


# --- 系统管理 (administrator only): accounts are the shared pages (ggzy/web/account_pages.py) ---

ADMIN_TABS = (
    ("/portal/admin/accounts", "账号与角色"),
    ("/portal/admin/tokens", "接收接口令牌"),
    ("/portal/admin/settings", "系统配置"),
)
TokenManager = Annotated[Principal, Depends(require(Permission.NODES_MANAGE))]
SettingsReader = Annotated[Principal, Depends(require(Permission.CONFIG_MANAGE))]


async def _tokens_page(
    request: Request,
    principal: Principal,
    *,
    done: str | None = None,
    status: int = 200,
    error: Any = None,
    new_token: tuple[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> HTMLResponse:
    from ggzy.node.models import api_tokens
    from ggzy.security.api_tokens import list_tokens

    ctx = _ctx(request)

    def load() -> Any:
        with ctx.engine.connect() as connection:
            return list_tokens(connection, api_tokens)

    tokens = await run_in_threadpool(load)
    response = render(
        request,
        "tokens.html",
        principal,
        tabs=ADMIN_TABS,
        tokens=tokens,
        flash={"revoked": "令牌已吊销：该系统其后的推送一律拒绝。"}.get(done or ""),
        error=error,
        new_token=new_token,
        values=values or {},
        errors={},
    )
    response.status_code = status
    return response


@router.get("/admin/tokens", response_class=HTMLResponse)
async def tokens_page(request: Request, principal: TokenManager, done: str | None = None) -> HTMLResponse:
    return await _tokens_page(request, principal, done=done)


def _issuer(request: Request, principal: Principal) -> Any:
    from ggzy.node.intake_tokens import TokenIssuer

    caller = caller_of(request)
    return TokenIssuer(principal.account, principal.role.value, caller.source, caller.request_id)


@router.post("/admin/tokens", response_class=HTMLResponse)
async def token_add(request: Request, principal: TokenManager) -> Response:
    from ggzy.node.intake_tokens import TokenError, add_token

    ctx = _ctx(request)
    from ggzy.security.api_tokens import normalise_networks

    form = await request.form()
    name = str(form.get("name") or "").strip()
    written = str(form.get("networks") or "")
    values = {"name": name, "networks": written}
    who = _issuer(request, principal)
    try:
        networks = normalise_networks(written.replace(",", " ").split())
    except ValueError as exc:
        refusal = TokenError("E-INPUT-NETWORK", f"来源网段格式错误：{exc}")
        return await _tokens_page(request, principal, status=400, error=refusal, values=values)

    def run() -> str:
        with writing(ctx.engine) as connection:
            return add_token(connection, ctx.audit, who, name, portal_now(request), networks=networks)

    try:
        token = await run_in_threadpool(run)
    except TokenError as refusal:
        return await _tokens_page(request, principal, status=400, error=refusal, values=values)
    return await _tokens_page(request, principal, new_token=(name, token))  # on this answer only


@router.post("/admin/tokens/{name}/revoke", response_class=HTMLResponse)
async def token_revoke(request: Request, principal: TokenManager, name: str) -> Response:
    from ggzy.node.intake_tokens import TokenError, revoke

    ctx = _ctx(request)
    who = _issuer(request, principal)

    def run() -> None:
        with writing(ctx.engine) as connection:
            revoke(connection, ctx.audit, who, name, portal_now(request))

    try:
        await run_in_threadpool(run)
    except TokenError as refusal:
        return await _tokens_page(request, principal, status=404, error=refusal)
    return RedirectResponse("/portal/admin/tokens?done=revoked", status_code=303)


@router.get("/admin/settings", response_class=HTMLResponse)
async def settings_page(request: Request, principal: SettingsReader) -> HTMLResponse:
    """The settings this node runs with (its node.toml, environment and defaults), secrets hidden."""
    from ggzy.settings import get_settings
    from ggzy.web.settings_view import settings_rows

    ctx = _ctx(request)
    current = get_settings()
    sections = [
        (("交换前置节点", "node"), settings_rows("node", ctx.settings)),
        (("账号与登录", "security"), settings_rows("security", people_of(request).settings)),
        (("审计日志", "audit"), settings_rows("audit", current.audit)),
        (("备份", "backup"), settings_rows("backup", current.backup)),
        (("数据校验", "validation"), settings_rows("validation", current.validation)),
    ]
    await run_in_threadpool(audit_read, request, principal, "settings.read", "settings", {"page": "settings"})
    return render_page(request, "portal/settings.html", principal, NAV, tabs=ADMIN_TABS, sections=sections)


def install(app: FastAPI) -> None:
    """Mount the node portal on the node's app (after :func:`ggzy.node.people.install_node_people`)."""
    from ggzy.node.status import STATE_ZH
    from ggzy.web import glossary

    app.state.people.add_templates(TEMPLATES)
    app.state.people.nav = NAV
    app.state.people.admin_tabs = ADMIN_TABS
    app.state.people.record_read = audit_read
    glossary.register("outbox_state", STATE_ZH)
    glossary.register("disk_level", queries.DISK_LEVEL_ZH)
    app.include_router(router)
    app.include_router(audit_pages)
