"""The portal's routes: HTML pages under ``/portal`` and the same data as JSON under ``/portal/api``.

Every route declares its permission with ``require(Permission.X)``; the province scope of the
caller is applied by the query services. Reading business data and exporting it are audited.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ggzy.hub.portal import charts
from ggzy.hub.portal.feedback import FeedbackFilter, export_xlsx, search
from ggzy.hub.portal.overview import overview
from ggzy.hub.portal.province import province_page
from ggzy.hub.portal.scope import OutOfScope, province_name, scope_of
from ggzy.hub.portal.trade import find_trade
from ggzy.hub.stats import MAX_SPAN_DAYS, TARGETS
from ggzy.security.audit import AuditEntry
from ggzy.security.permissions import Forbidden, Permission, Principal, require
from ggzy.spec import load_spec
from ggzy.validation import RULES
from ggzy.web import people_of
from ggzy.web.layer import wants_html
from ggzy.web.portal import (
    SHANGHAI,
    Anyone,
    DataReader,
    DateQuery,
    EndQuery,
    Exporter,
    NavItem,
    RuleQuery,
    download,
    portal_now,
    render_page,
)

__all__ = ["NAV", "api", "install", "pages"]

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"  # pages are "portal/<name>.html"; layout, macros, css, js: ggzy/web


# (path, label, permission): the navigation shows an entry only to a role that holds its permission.
NAV: tuple[NavItem, ...] = (
    ("/portal/overview", "总览", Permission.STATS_READ),
    ("/portal/trade", "交易查询", Permission.DATA_READ),
    ("/portal/feedback", "反馈查询", Permission.DATA_READ),
    ("/portal/ops", "运行监测", Permission.OPS_READ),
    ("/portal/work", "运行管理", Permission.OPS_WRITE),
    ("/portal/assessment", "检查考核", Permission.OPS_ASSESS),
    ("/portal/notices", "通知", Permission.OPS_READ),
    ("/portal/audit", "审计", Permission.AUDIT_READ),
    ("/portal/admin", "系统管理", Permission.ACCOUNTS_MANAGE),
)

api = APIRouter(prefix="/portal/api", tags=["portal"])
pages = APIRouter(prefix="/portal", tags=["portal"], include_in_schema=False)

StatsReader = Annotated[Principal, Depends(require(Permission.STATS_READ))]


def _engine(request: Request) -> Any:
    return request.app.state.hub.engine


def _today(request: Request) -> dt.date:
    return portal_now(request).astimezone(SHANGHAI).date()


def _period(request: Request, start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    """Default: this month so far. A period longer than the statistics allow is cut to its last days."""
    end = end or _today(request)
    start = start or end.replace(day=1)
    if start > end:
        start, end = end, start
    if (end - start).days >= MAX_SPAN_DAYS:
        start = end - dt.timedelta(days=MAX_SPAN_DAYS - 1)
    return start, end


def audit_read(request: Request, principal: Principal, action: str, obj: str, detail: dict[str, Any]) -> None:
    """A person read or exported business data (Art. 24): one audit entry."""
    hub = request.app.state.hub
    with hub.engine.connect() as plain:
        connection = plain.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            hub.audit.append(
                connection,
                AuditEntry(
                    action=action,
                    object=obj[:512],
                    outcome="success",
                    account=principal.account,
                    role=principal.role.value,
                    source=request.client.host if request.client else "-",
                    request_id=getattr(request.state, "request_id", "-"),
                    detail=detail,
                ),
            )


# --- query services behind the routes (run in the thread pool: the database calls block) ---


def _overview_data(request: Request, principal: Principal) -> dict[str, Any]:
    with _engine(request).connect() as connection:
        return overview(connection, scope_of(principal), portal_now(request))


def _province_data(
    request: Request, principal: Principal, province: str, start: dt.date, end: dt.date
) -> dict[str, Any]:
    with _engine(request).connect() as connection:
        return province_page(
            connection,
            scope_of(principal),
            province,
            start,
            end,
            portal_now(request),
            request.app.state.hub.settings.ops,
        )


def _trade_data(request: Request, principal: Principal, q: str) -> dict[str, Any]:
    with _engine(request).connect() as connection:
        answer = find_trade(connection, scope_of(principal), q)
    audit_read(request, principal, "data.read.trade", f"trade:{q}", {"found": answer["found"]})
    return answer


def _feedback_filter(
    request: Request,
    start: dt.date | None,
    end: dt.date | None,
    province: str | None,
    table: str | None,
    rule: str | None,
    key: str | None,
) -> FeedbackFilter:
    start, end = _period(request, start, end)
    return FeedbackFilter(start, end, province or None, table or None, rule or None, key or None)


def _feedback_data(
    request: Request, principal: Principal, flt: FeedbackFilter, before: int | None
) -> dict[str, Any]:
    with _engine(request).connect() as connection:
        answer = search(connection, scope_of(principal), flt, before=before)
    audit_read(request, principal, "data.read.feedback", "feedback", _filter_detail(flt) | {"before": before})
    return answer


def _filter_detail(flt: FeedbackFilter) -> dict[str, Any]:
    return {
        "from": flt.start.isoformat(),
        "to": flt.end.isoformat(),
        "province": flt.province,
        "table": flt.table,
        "rule": flt.rule,
        "key": flt.key,
    }


# --- JSON ---

ProvinceQuery = Annotated[str | None, Query(max_length=2, description="省份代码")]
TableQuery = Annotated[str | None, Query(max_length=64, description="数据表名或 DATA_NO")]
KeyQuery = Annotated[str | None, Query(max_length=512, description="业务主键（或其开头）")]
BeforeQuery = Annotated[int | None, Query(ge=1, le=2**62, description="上一页最后一条的编号")]
TradeQuery = Annotated[str, Query(max_length=64, description="统一交易标识码，或项目、招标项目、标段编号")]


@api.get("/overview", summary="总览：各省指标与全国合计 (overview)")
async def read_overview(request: Request, principal: StatsReader) -> dict[str, Any]:
    return await run_in_threadpool(_overview_data, request, principal)


@api.get("/provinces/{province}", summary="省份页：上传量、合格率、规则、时效、修复、对账、心跳 (province)")
async def read_province(
    request: Request, principal: StatsReader, province: str, start: DateQuery = None, end: EndQuery = None
) -> dict[str, Any]:
    start, end = _period(request, start, end)
    return await run_in_threadpool(_province_data, request, principal, province, start, end)


@api.get("/trade", summary="交易全流程查询 (one trade's lifecycle)")
async def read_trade(request: Request, principal: DataReader, q: TradeQuery) -> dict[str, Any]:
    return await run_in_threadpool(_trade_data, request, principal, q)


@api.get("/feedback", summary="拒收记录查询 (rejected records)")
async def read_feedback(
    request: Request,
    principal: DataReader,
    start: DateQuery = None,
    end: EndQuery = None,
    province: ProvinceQuery = None,
    table: TableQuery = None,
    rule: RuleQuery = None,
    key: KeyQuery = None,
    before: BeforeQuery = None,
) -> dict[str, Any]:
    flt = _feedback_filter(request, start, end, province, table, rule, key)
    return await run_in_threadpool(_feedback_data, request, principal, flt, before)


@api.get("/feedback.xlsx", summary="导出拒收记录 xlsx (export rejected records)")
async def export_feedback(
    request: Request,
    principal: Exporter,
    start: DateQuery = None,
    end: EndQuery = None,
    province: ProvinceQuery = None,
    table: TableQuery = None,
    rule: RuleQuery = None,
    key: KeyQuery = None,
) -> Response:
    if not principal.may(Permission.DATA_READ):
        raise Forbidden(principal, Permission.DATA_READ)
    flt = _feedback_filter(request, start, end, province, table, rule, key)

    def build() -> tuple[bytes, int]:
        with _engine(request).connect() as connection:
            content, rows = export_xlsx(connection, scope_of(principal), flt)
        audit_read(
            request, principal, "data.export.feedback", "feedback.xlsx", _filter_detail(flt) | {"rows": rows}
        )
        return content, rows

    content, _ = await run_in_threadpool(build)
    name = f"rejections-{flt.start:%Y%m%d}-{flt.end:%Y%m%d}.xlsx"
    return download(content, name)


# --- HTML ---


def render(request: Request, template: str, principal: Principal, **context: Any) -> HTMLResponse:
    from ggzy.hub.portal.notices_pages import unread_for

    # a province's pages carry a banner while it has unread notices from the national side
    context.setdefault("unread_notices", unread_for(request, principal))
    return render_page(request, f"portal/{template}", principal, NAV, province_name=province_name, **context)


@pages.get("")
async def home(principal: Anyone) -> RedirectResponse:
    """Each role lands on the first page it may open."""
    for href, _, needed in NAV:
        if principal.may(needed):
            return RedirectResponse(href, status_code=303)
    return RedirectResponse("/auth/account", status_code=303)


@pages.get("/overview", response_class=HTMLResponse)
async def overview_page(request: Request, principal: StatsReader) -> HTMLResponse:
    data = await run_in_threadpool(_overview_data, request, principal)
    return render(request, "overview.html", principal, data=data, targets=TARGETS)


@pages.get("/provinces/{province}", response_class=HTMLResponse)
async def province_html(
    request: Request, principal: StatsReader, province: str, start: DateQuery = None, end: EndQuery = None
) -> HTMLResponse:
    start, end = _period(request, start, end)
    data = await run_in_threadpool(_province_data, request, principal, province, start, end)
    option_set = {
        "volumes": charts.volumes_by_channel(data["channels"]),
        "trend": charts.rate_trend(data["days"], TARGETS, "合格率、及时率、修复率趋势"),
        "delays": charts.delay_histogram(data["timeliness"]),
        "rules": charts.rules_bar(data["rules"]),
        **{f"node-{i}": charts.heartbeat_history(node) for i, node in enumerate(data["nodes"])},
    }
    return render(request, "province.html", principal, data=data, charts=option_set, rules=RULES)


@pages.get("/trade", response_class=HTMLResponse)
async def trade_page(
    request: Request, principal: DataReader, q: Annotated[str, Query(max_length=64)] = ""
) -> HTMLResponse:
    data = await run_in_threadpool(_trade_data, request, principal, q) if q.strip() else None
    return render(request, "trade.html", principal, q=q, data=data)


@pages.get("/feedback", response_class=HTMLResponse)
async def feedback_page(
    request: Request,
    principal: DataReader,
    start: DateQuery = None,
    end: EndQuery = None,
    province: ProvinceQuery = None,
    table: TableQuery = None,
    rule: RuleQuery = None,
    key: KeyQuery = None,
    before: BeforeQuery = None,
) -> HTMLResponse:
    flt = _feedback_filter(request, start, end, province, table, rule, key)
    data = await run_in_threadpool(_feedback_data, request, principal, flt, before)
    query = {k: v for k, v in _filter_detail(flt).items() if v}
    return render(
        request,
        "feedback.html",
        principal,
        data=data,
        flt=flt,
        query=query,
        tables=sorted(load_spec().tables.values(), key=lambda t: int(t.data_no)),
        scope=scope_of(principal),
        may_export=principal.may(Permission.REPORTS_EXPORT),
    )


def _out_of_scope(request: Request, error: Exception) -> Response:
    assert isinstance(error, OutOfScope)
    message_zh = f"无权查看{province_name(error.province)}的数据"
    if wants_html(request):
        return people_of(request).error_page(request, 403, error.code, message_zh, str(error))
    body = {
        "ok": False,
        "error": {"code": error.code, "message_zh": message_zh, "message_en": str(error)},
        "request_id": getattr(request.state, "request_id", "-"),
    }
    return JSONResponse(body, status_code=403)


def _register_labels() -> None:
    """The Chinese labels the hub's operations management owns, into the one glossary pages use."""
    from ggzy.hub.ops.incidents import STATUS_ZH, TRIGGER_ZH, Classification
    from ggzy.hub.ops.inspections import CHECKLIST
    from ggzy.hub.ops.outages import OutageKind
    from ggzy.hub.ops.rectification import CONDITIONS
    from ggzy.hub.ops.register import SYSTEM_KINDS
    from ggzy.hub.ops.roster import POSTS
    from ggzy.web import glossary

    glossary.register("incident_status", STATUS_ZH)
    glossary.register("trigger", TRIGGER_ZH)
    glossary.register("classification", {c.value: c.label for c in Classification})
    glossary.register("outage_kind", {k.value: k.label for k in OutageKind})
    glossary.register("checklist", CHECKLIST)
    glossary.register("condition", CONDITIONS)
    glossary.register("register_kind", SYSTEM_KINDS)
    glossary.register("post", POSTS)


def install(app: FastAPI) -> None:
    """Mount the portal's routes, templates and error handling on the hub's app.

    Needs the web layer (:func:`ggzy.web.install_people_layer`) installed first: its sign-in,
    templates (``portal/_layout.html``, ``_macros.html``, ``audit.html``), static files (``portal.css``,
    ``portal.js``, ECharts under ``/static/vendor``), security headers and refusal handlers serve the
    portal too, as they serve the node's.
    """
    people = app.state.people
    people.add_templates(TEMPLATES)
    people.nav = NAV
    from ggzy.hub.portal.admin_pages import ADMIN_TABS

    people.admin_tabs = ADMIN_TABS
    people.record_read = audit_read
    people.env.filters["combine_before"] = lambda query, before: {**query, "before": before}
    _register_labels()
    from ggzy.hub.portal import admin_pages, inspect_pages, notices_pages, ops_pages, work

    app.include_router(api)
    app.include_router(pages)
    app.include_router(admin_pages.router)
    app.include_router(admin_pages.audit_pages)
    app.include_router(ops_pages.router)
    app.include_router(notices_pages.router)
    app.include_router(work.router)
    app.include_router(inspect_pages.router)
    app.add_exception_handler(OutOfScope, _out_of_scope)
