"""审计 (auditor only) and 系统管理 (administrator only): the pages of the two roles that see no business data.

The auditor searches and exports the audit log and checks the chain; the administrator sees the
accounts, the node registry and the hub's settings (no key, no password, no business data).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from ggzy.hub.registry import list_nodes
from ggzy.security.audit_search import COLUMNS, AuditQuery, ExportFormat, export_audit, search_audit
from ggzy.security.permissions import Permission, Principal, require

__all__ = ["router"]

router = APIRouter(prefix="/portal", tags=["portal"], include_in_schema=False)
SHANGHAI = dt.timezone(dt.timedelta(hours=8))

AuditReader = Annotated[Principal, Depends(require(Permission.AUDIT_READ))]
AuditExporter = Annotated[Principal, Depends(require(Permission.AUDIT_EXPORT))]
Administrator = Annotated[Principal, Depends(require(Permission.ACCOUNTS_MANAGE))]
Day = Annotated[dt.date | None, Query(description="北京时间日期 YYYY-MM-DD")]
Text = Annotated[str | None, Query(max_length=128)]


def _query(
    since: dt.date | None, until: dt.date | None, account: str | None, action: str | None, outcome: str | None
) -> AuditQuery:
    def moment(day: dt.date | None) -> dt.datetime | None:
        return dt.datetime.combine(day, dt.time(), SHANGHAI).astimezone(dt.UTC) if day else None

    return AuditQuery(
        since=moment(since),
        until=moment(until + dt.timedelta(days=1)) if until else None,
        account=account or None,
        action=action or None,
        outcome=outcome or None,
    )


def _audit(request: Request, principal: Principal, action: str, detail: dict[str, Any]) -> None:
    from ggzy.hub.portal.routes import audit_read

    audit_read(request, principal, action, "audit_log", detail)


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    principal: AuditReader,
    since: Day = None,
    until: Day = None,
    account: Text = None,
    action: Text = None,
    outcome: Text = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    verify: bool = False,
) -> HTMLResponse:
    from ggzy.hub.portal.routes import render

    hub = request.app.state.hub
    query = _query(since, until, account, action, outcome)

    def load() -> tuple[Any, Any]:
        with hub.engine.connect() as connection:
            found = search_audit(connection, hub.audit.table, query, page=page, page_size=50)
            problem = hub.audit.verify(connection) if verify else None
        return found, problem

    found, problem = await run_in_threadpool(load)
    filters = {"since": since, "until": until, "account": account, "action": action, "outcome": outcome}
    await run_in_threadpool(
        _audit, request, principal, "audit.search", {k: str(v) for k, v in filters.items() if v}
    )
    return render(
        request,
        "audit.html",
        principal,
        found=found,
        columns=COLUMNS,
        filters={k: v for k, v in filters.items() if v},
        verified=verify,
        problem=problem,
    )


@router.get("/audit/export")
async def audit_export(
    request: Request,
    principal: AuditExporter,
    since: Day = None,
    until: Day = None,
    account: Text = None,
    action: Text = None,
    outcome: Text = None,
    fmt: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.XLSX,
) -> Response:
    hub = request.app.state.hub
    query = _query(since, until, account, action, outcome)

    def build() -> tuple[bytes, int]:
        with tempfile.TemporaryDirectory() as folder, hub.engine.connect() as connection:
            path = Path(folder) / f"audit.{fmt.value}"
            count = export_audit(connection, hub.audit.table, query, path, fmt)
            return path.read_bytes(), count

    content, count = await run_in_threadpool(build)
    await run_in_threadpool(_audit, request, principal, "audit.export", {"format": fmt.value, "rows": count})
    media = (
        "text/csv"
        if fmt is ExportFormat.CSV
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return Response(
        content,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="audit-log.{fmt.value}"',
            "Cache-Control": "no-store",
        },
    )


_HIDDEN = {"key_dir", "tls_key", "smtp_password"}  # where secrets live is not shown either


def _settings_rows(settings: Any, prefix: str = "hub") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for name, value in settings.model_dump().items():
        if name in _HIDDEN or "password" in name or "secret" in name:
            continue
        if isinstance(value, dict) and hasattr(getattr(settings, name), "model_dump"):
            rows.extend(_settings_rows(getattr(settings, name), f"{prefix}.{name}"))
        else:
            rows.append((f"{prefix}.{name}", str(value)))
    return rows


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
        settings=_settings_rows(hub.settings),
    )
