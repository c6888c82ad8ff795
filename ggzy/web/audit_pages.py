"""审计 (auditor only), the same on the hub's portal and the node's: search the site's own audit log,
check its chain against its off-host anchors, export it as xlsx or CSV, and approve, as the second
person, an administrator's change of another auditor's account. Every search, export and approval
is itself audited.

A site describes itself with an :class:`AuditSite` (its database and chain, how it records a read,
how it renders a page) and mounts :func:`audit_router`.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine

from ggzy.security.audit import AuditLog
from ggzy.security.audit_anchor import AnchorSet
from ggzy.security.audit_search import COLUMNS, AuditQuery, ExportFormat, export_audit, search_audit
from ggzy.security.permissions import Permission, Principal, require
from ggzy.web.bounds import FIRST_DAY, LAST_DAY
from ggzy.web.glossary import AUDIT_ACTIONS
from ggzy.web.layer import caller_of, people_of
from ggzy.web.portal import SHANGHAI, XLSX, download

__all__ = ["AuditSite", "audit_query", "audit_router"]

PAGE_SIZE = 50
_MEDIA = {
    ExportFormat.CSV: "text/csv",
    ExportFormat.XLSX: XLSX,
}

AuditReader = Annotated[Principal, Depends(require(Permission.AUDIT_READ))]
Approver = Annotated[Principal, Depends(require(Permission.ACCOUNTS_APPROVE))]
AuditExporter = Annotated[Principal, Depends(require(Permission.AUDIT_EXPORT))]
Day = Annotated[dt.date | None, Query(ge=FIRST_DAY, le=LAST_DAY, description="北京时间日期 YYYY-MM-DD")]
Text = Annotated[str | None, Query(max_length=128)]


@dataclass(frozen=True)
class AuditSite:
    store: Callable[[Request], tuple[Engine, AuditLog]]  # the site's database and its chain
    record: Callable[[Request, Principal, str, dict[str, Any]], None]  # audit a search or an export
    page: Callable[..., HTMLResponse]  # page(request, principal, **context) renders portal/audit.html
    export_name: Callable[[Request], str] = lambda _request: "audit-log"  # the file name, no suffix
    # the anchors of the site's chain kept off its host, compared when the chain is verified
    anchors: Callable[[Request], AnchorSet] | None = None


def audit_query(
    since: dt.date | None, until: dt.date | None, account: str | None, action: str | None, outcome: str | None
) -> AuditQuery:
    """The filters of the page as a query: days are Beijing calendar days, both ends included."""

    def moment(day: dt.date | None) -> dt.datetime | None:
        """Midnight of a Beijing day in UTC; None (no bound) at the ends of the calendar, which
        0001-01-01 and 9999-12-31 reach (nothing in the log is older or newer than either)."""
        if day is None:
            return None
        try:
            return dt.datetime.combine(day, dt.time(), SHANGHAI).astimezone(dt.UTC)
        except OverflowError:
            return None

    following = until + dt.timedelta(days=1) if until is not None and until < dt.date.max else None
    return AuditQuery(
        since=moment(since),
        until=moment(following),
        account=account or None,
        action=action or None,
        outcome=outcome or None,
    )


def audit_router(site: AuditSite, prefix: str = "/portal") -> APIRouter:
    router = APIRouter(prefix=prefix, tags=["portal"], include_in_schema=False)

    @router.get("/audit", response_class=HTMLResponse)
    async def audit_page(
        request: Request,
        principal: AuditReader,
        since: Day = None,
        until: Day = None,
        account: Text = None,
        action: Text = None,
        outcome: Text = None,
        page: Annotated[int, Query(ge=1, le=100_000, description="页码")] = 1,
        verify: bool = False,
    ) -> HTMLResponse:
        query = audit_query(since, until, account, action, outcome)
        filters = {"since": since, "until": until, "account": account, "action": action, "outcome": outcome}
        shown = {k: v for k, v in filters.items() if v}

        def load() -> tuple[Any, Any, Any, Any]:
            engine, chain = site.store(request)
            anchors = (site.anchors(request) if site.anchors is not None else AnchorSet()) if verify else None
            with engine.connect() as connection:
                found = search_audit(connection, chain.table, query, page=page, page_size=PAGE_SIZE)
                report = chain.report(connection, anchors.anchors) if anchors is not None else None
            detail = {k: str(v) for k, v in shown.items()} | ({"verify": True} if verify else {})
            site.record(request, principal, "audit.search", detail)
            return found, report.problem if report else None, report, anchors

        found, problem, report, anchors = await run_in_threadpool(load)
        approvals = []
        if principal.may(Permission.ACCOUNTS_APPROVE):
            approvals = await run_in_threadpool(people_of(request).service.approvals, principal)
        return site.page(
            request,
            principal,
            found=found,
            columns=COLUMNS,
            filters=shown,
            verified=verify,
            problem=problem,
            report=report,
            anchors=anchors,
            approvals=approvals,
            actions=AUDIT_ACTIONS,
        )

    @router.post("/audit/approvals/{approval}/approve")
    async def approve(
        request: Request, principal: Approver, approval: Annotated[int, Path(ge=1, le=2**62)]
    ) -> Response:
        """The second person: another auditor approves an administrator's change of an auditor's
        account (the service refuses one's own account, a closed or expired request)."""
        await run_in_threadpool(people_of(request).service.approve, principal, approval, caller_of(request))
        return RedirectResponse(f"{prefix}/audit#approvals", status_code=303)

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
        query = audit_query(since, until, account, action, outcome)

        def build() -> bytes:
            engine, chain = site.store(request)
            with tempfile.TemporaryDirectory() as folder, engine.connect() as connection:
                path = FilePath(folder) / f"audit.{fmt.value}"
                count = export_audit(connection, chain.table, query, path, fmt)
                content = path.read_bytes()
            site.record(request, principal, "audit.export", {"format": fmt.value, "rows": count})
            return content

        content = await run_in_threadpool(build)
        return download(content, f"{site.export_name(request)}.{fmt.value}", _MEDIA[fmt])

    return router
