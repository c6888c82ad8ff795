"""运行管理: where a province's operators (and the national operators, for any province) do their work.

Every form posts to a route that checks the same permission as the API (``ops:write``, ``ops:assess``
for the national side), builds the same :class:`~ggzy.hub.ops.session.Actor` and calls the same
service function of :mod:`ggzy.hub.ops` inside one transaction with its audit entry
(:func:`~ggzy.hub.ops.session.run_change`). Nothing here decides a rule: a refusal of the service
(:class:`~ggzy.hub.ops.session.OpsError`: a late notice, a workflow step out of order, another
province) comes back as a message above the form, with what was typed kept; a field left empty or
malformed is named beside the field (:class:`~ggzy.web.forms.FormReader`). After a change the page
redirects to itself (``?done=…``) so a reload never repeats it, and the result shows at once.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection, select

from ggzy.hub.ops.session import Actor, OpsError, OpsSession, run_change
from ggzy.hub.portal.scope import scope_of
from ggzy.security.permissions import Permission, Principal, require
from ggzy.web.bounds import IdPath
from ggzy.web.forms import FormInvalid, FormReader, local_input
from ggzy.web.layer import caller_of
from ggzy.web.portal import SHANGHAI, portal_now

__all__ = ["DONE", "TABS", "router"]

router = APIRouter(prefix="/portal/work", tags=["portal"], include_in_schema=False)

Reader = Annotated[Principal, Depends(require(Permission.OPS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.OPS_WRITE))]
Assessor = Annotated[Principal, Depends(require(Permission.OPS_ASSESS))]
ProvinceQuery = Annotated[str | None, Query(max_length=2, pattern=r"^\d{2}$")]
DoneQuery = Annotated[str | None, Query(max_length=40)]
R = TypeVar("R")

TABS = (
    ("/portal/work/outages", "计划停用"),
    ("/portal/work/incidents", "故障报告"),
    ("/portal/work/roster", "人员备案"),
    ("/portal/work/register", "信息报送"),
    ("/portal/work/preparedness", "预案与演练"),
    ("/portal/work/orders", "整改通知"),
)

# What a page says after the change it redirected from (``?done=key``).
DONE = {
    "outage": "计划停用通知已提交。",
    "outage-changed": "计划停用通知已变更：原通知已撤回，新通知已提交（提前时间从现在起算）。",
    "outage-withdrawn": "计划停用通知已撤回。",
    "incident": "故障报告已提交。",
    "incident-report": "故障报告已更新。",
    "incident-status": "事件流程已推进。",
    "roster": "人员备案已保存，变更已记入备案历史。",
    "roster-removed": "该岗位人员备案已撤销。",
    "register": "系统信息已登记（保留历史版本）。",
    "plan": "应急预案已备案（新版本）。",
    "plan-activated": "应急预案已启动。",
    "plan-closed": "应急预案已按关闭程序关闭。",
    "drill": "应急演练已登记。",
    "answer": "整改答复已提交。",
    "order": "整改通知已下达。",
    "orders-issued": "已按考核结果下达整改通知。",
    "order-closed": "整改通知已关闭。",
    "inspection": "检查已安排。",
    "inspection-result": "检查结果已登记。",
    "inspection-follow-up": "整改跟踪已登记。",
}


# --- plumbing ----------------------------------------------------------------------------------


def actor_of(request: Request, principal: Principal) -> Actor:
    caller = caller_of(request)
    return Actor(
        principal.account, principal.role.value, principal.province, caller.source, caller.request_id
    )


def chosen_province(request: Request, principal: Principal, asked: str | None) -> str:
    """A provincial account's own province; for a national one, what it asked for, or the first
    province with a registered node (or 北京 on an empty hub)."""
    scope = scope_of(principal)
    if principal.province is not None:
        scope.check(asked or principal.province)
        return principal.province
    if asked:
        return asked
    from ggzy.hub.models import nodes

    with request.app.state.hub.engine.connect() as connection:
        first = connection.execute(select(nodes.c.province).order_by(nodes.c.province).limit(1)).scalar()
    return str(first or "11")


async def change(request: Request, principal: Principal, fn: Callable[[OpsSession], R]) -> R:
    """``fn`` in one transaction with its audit entries, as the API runs it (raises OpsError)."""
    hub = request.app.state.hub
    clock = getattr(request.app.state, "portal_clock", None)
    actor = actor_of(request, principal)

    def run() -> R:
        if clock is None:
            return run_change(hub.engine, hub.audit, actor, hub.settings.ops, fn)
        return run_change(hub.engine, hub.audit, actor, hub.settings.ops, fn, clock)

    return await run_in_threadpool(run)


async def read(request: Request, fn: Callable[[Connection], R]) -> R:
    engine = request.app.state.hub.engine

    def run() -> R:
        with engine.connect() as connection:
            return fn(connection)

    return await run_in_threadpool(run)


def back(path: str, province: str, done: str, **extra: Any) -> RedirectResponse:
    query = urlencode({"province": province, "done": done, **extra})
    return RedirectResponse(f"{path}?{query}", status_code=303)


def page(
    request: Request,
    template: str,
    principal: Principal,
    province: str,
    *,
    done: str | None = None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    from ggzy.hub.portal.routes import render

    response = render(
        request,
        template,
        principal,
        province=province,
        scope=scope_of(principal),
        tabs=TABS,
        flash=DONE.get(done or ""),
        local_input=local_input,
        **context,
    )
    response.status_code = status
    return response


def refused(error: OpsError | FormInvalid, values: dict[str, str] | None = None) -> dict[str, Any]:
    """The context a form page shows a refusal with: the service's error, or the fields to correct."""
    if isinstance(error, FormInvalid):
        return {"errors": error.errors, "error": None, "status": 400}
    # a filing refused item by item: each message beside its field (where one page holds a form per
    # kind of system, its fields are named "<kind>.<item>", so both spellings are given)
    beside = {p["field"]: f"{p['message_zh']}（{p['code']}）" for p in error.problems if p.get("field")}
    if kind := (values or {}).get("kind"):
        beside |= {f"{kind}.{name}": text for name, text in list(beside.items())}
    return {"errors": beside, "error": error, "status": error.status}


async def form_of(request: Request) -> FormReader:
    return FormReader(await request.form())


def _today(request: Request) -> dt.date:
    return portal_now(request).astimezone(SHANGHAI).date()


# --- the pages: one list-and-forms page per tab ------------------------------------------------

ContextFactory = Callable[[Request, str], Callable[[Connection], dict[str, Any]]]


def _pages() -> dict[str, tuple[str, ContextFactory]]:
    return {
        "outages": ("work/outages.html", _outage_context),
        "incidents": ("work/incidents.html", _incidents_context),
        "roster": ("work/roster.html", _roster_context),
        "register": ("work/register.html", _register_context),
        "preparedness": ("work/preparedness.html", _preparedness_context),
        "orders": ("work/orders.html", _orders_context),
    }


async def show(
    request: Request,
    principal: Principal,
    tab: str,
    province: str,
    *,
    done: str | None = None,
    values: dict[str, str] | None = None,
    error: OpsError | FormInvalid | None = None,
) -> HTMLResponse:
    """A tab's page: its list, its forms, the message of the change just made or of the refusal."""
    template, context = _pages()[tab]
    data = await read(request, context(request, province))
    shown = refused(error, values) if error is not None else {"errors": {}, "error": None, "status": 200}
    return page(request, template, principal, province, done=done, values=values or {}, **shown, **data)


@router.get("/{tab}", response_class=HTMLResponse)
async def tab_page(
    request: Request,
    principal: Reader,
    tab: Annotated[str, Path(pattern="^(outages|incidents|roster|register|preparedness|orders)$")],
    province: ProvinceQuery = None,
    done: DoneQuery = None,
) -> HTMLResponse:
    return await show(request, principal, tab, chosen_province(request, principal, province), done=done)


Change = Callable[[OpsSession], Any]
Builder = Callable[[FormReader, str], "Change | Awaitable[Change]"]


async def submit(
    request: Request,
    principal: Principal,
    province: str | None,
    tab: str,
    done: str,
    build: Builder,
    keep: dict[str, str] | None = None,
) -> Response:
    """One form of a tab: ``build`` reads the fields and returns the service call; the call runs as
    the API runs it; the page comes back with the result, or with the refusal and what was typed
    (``keep`` says which of the page's forms it was)."""
    chosen = chosen_province(request, principal, province)
    form = await form_of(request)
    try:
        call = build(form, chosen)
        if inspect.isawaitable(call):
            call = await call
        form.done()
        await change(request, principal, call)
    except (OpsError, FormInvalid) as error:
        return await show(request, principal, tab, chosen, values=form.values() | (keep or {}), error=error)
    return back(f"/portal/work/{tab}", chosen, done)


# --- 计划停用 outage notices -----------------------------------------------------------------------


def _outage_context(request: Request, province: str) -> Callable[[Connection], dict[str, Any]]:
    def load(connection: Connection) -> dict[str, Any]:
        from ggzy.hub.ops.outages import OutageKind, list_notices

        return {
            "notices": list(reversed(list_notices(connection, province, include_withdrawn=True))),
            "kinds": {k.value: k.label for k in OutageKind},
            "lead_hours": request.app.state.hub.settings.ops.outage_lead_hours,
        }

    return load


@router.get("", response_class=HTMLResponse)
async def work_home(principal: Reader) -> RedirectResponse:
    return RedirectResponse(TABS[0][0], status_code=303)


def _read_outage(form: FormReader) -> tuple[Any, dt.datetime, dt.datetime, str]:
    from ggzy.hub.ops.outages import OutageKind

    kind = form.choice("kind", "停用类型", {k.value: k.label for k in OutageKind})
    starts = form.moment("starts_at", "开始时间", required=True)
    ends = form.moment("ends_at", "结束时间", required=True)
    impact = form.text("impact", "影响范围", required=True, max_length=2000)
    if starts and ends and ends <= starts:
        form.fail("ends_at", "结束时间应晚于开始时间")
    form.done()
    assert starts is not None and ends is not None
    return OutageKind(kind), starts, ends, impact


@router.post("/outages", response_class=HTMLResponse)
async def outage_submit(request: Request, principal: Writer, province: ProvinceQuery = None) -> Response:
    from ggzy.hub.ops.outages import notify_outage

    def build(form: FormReader, chosen: str) -> Change:
        kind, starts, ends, impact = _read_outage(form)
        return lambda s: notify_outage(s, chosen, kind, starts, ends, impact)

    return await submit(request, principal, province, "outages", "outage", build)


@router.post("/outages/{notice_id}/withdraw", response_class=HTMLResponse)
async def outage_withdraw(
    request: Request, principal: Writer, notice_id: IdPath, province: ProvinceQuery = None
) -> Response:
    from ggzy.hub.ops.outages import withdraw_notice

    return await submit(
        request,
        principal,
        province,
        "outages",
        "outage-withdrawn",
        lambda _f, _p: lambda s: withdraw_notice(s, notice_id),
    )


@router.post("/outages/{notice_id}/change", response_class=HTMLResponse)
async def outage_change(
    request: Request, principal: Writer, notice_id: IdPath, province: ProvinceQuery = None
) -> Response:
    """A change of a notice: the old one withdrawn and the new one filed, together or not at all."""
    from ggzy.hub.ops.outages import notify_outage, withdraw_notice

    def build(form: FormReader, chosen: str) -> Change:
        kind, starts, ends, impact = _read_outage(form)

        def replace(session: OpsSession) -> object:
            withdraw_notice(session, notice_id)
            return notify_outage(session, chosen, kind, starts, ends, impact)

        return replace

    keep = {"changing": str(notice_id)}
    return await submit(request, principal, province, "outages", "outage-changed", build, keep)


# --- 故障报告 fault reports and their progress -----------------------------------------------------

CLASSIFICATIONS_FIELD = "classification"


def _incidents_context(request: Request, province: str) -> Callable[[Connection], dict[str, Any]]:
    def load(connection: Connection) -> dict[str, Any]:
        from ggzy.hub.ops.incidents import Classification, list_incidents

        ops = request.app.state.hub.settings.ops
        now = portal_now(request)
        due = dt.timedelta(hours=ops.report_due_hours)
        incidents = list_incidents(connection, province, limit=200)
        overdue = {
            i.id for i in incidents if i.origin == "auto" and i.unreported and now - i.reported_at > due
        }
        return {
            "incidents": incidents,
            "overdue": overdue,
            "classifications": {c.value: c.label for c in Classification},
        }

    return load


def _read_report(form: FormReader) -> Any:
    from ggzy.hub.ops.incidents import Classification, FaultReport

    title = form.text("title", "标题", required=True, max_length=300)
    classification = form.choice(
        CLASSIFICATIONS_FIELD, "故障分类", {c.value: c.label for c in Classification}
    )
    started = form.moment("started_at", "开始时间", required=True)
    ended = form.moment("ended_at", "结束时间")
    texts = {
        name: form.text(name, label, max_length=5000)
        for name, label in (
            ("impact", "影响"),
            ("cause", "原因"),
            ("handling", "处置经过"),
            ("lessons", "经验教训"),
            ("corrective_actions", "整改措施"),
        )
    }
    form.done()
    assert started is not None
    return FaultReport(title, Classification(classification), started, ended, **texts)


@router.post("/incidents", response_class=HTMLResponse)
async def incident_submit(request: Request, principal: Writer, province: ProvinceQuery = None) -> Response:
    from ggzy.hub.ops.incidents import file_fault_report

    chosen = chosen_province(request, principal, province)
    form = await form_of(request)
    try:
        report = _read_report(form)
        incident = await change(request, principal, lambda s: file_fault_report(s, chosen, report))
    except (OpsError, FormInvalid) as error:
        return await show(request, principal, "incidents", chosen, values=form.values(), error=error)
    return RedirectResponse(
        f"/portal/work/incidents/{incident.id}?{urlencode({'province': chosen, 'done': 'incident'})}", 303
    )


def _incident_context(request: Request, incident_id: int) -> Callable[[Connection], dict[str, Any]]:
    def load(connection: Connection) -> dict[str, Any]:
        from ggzy.hub.ops.incidents import STATUS_ORDER, Classification, get_incident

        incident = get_incident(connection, incident_id)
        position = STATUS_ORDER.index(incident.status)
        return {
            "incident": incident,
            "next_statuses": list(STATUS_ORDER[position + 1 :]),
            "classifications": {c.value: c.label for c in Classification},
        }

    return load


async def _incident(request: Request, principal: Principal, incident_id: int) -> dict[str, Any]:
    try:
        data = await read(request, _incident_context(request, incident_id))
    except OpsError:
        data = {}
    if not data or not scope_of(principal).allows(data["incident"].province):
        from fastapi import HTTPException

        raise HTTPException(404)
    return data


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
async def incident_page(
    request: Request, principal: Reader, incident_id: IdPath, done: DoneQuery = None
) -> HTMLResponse:
    data = await _incident(request, principal, incident_id)
    incident = data["incident"]
    values = _report_values(incident)
    return page(
        request,
        "work/incident.html",
        principal,
        incident.province,
        done=done,
        values=values,
        errors={},
        **data,
    )


def _report_values(incident: Any) -> dict[str, str]:
    return {
        "title": incident.title,
        "classification": incident.classification.value if incident.classification else "",
        "started_at": local_input(incident.started_at),
        "ended_at": local_input(incident.ended_at),
        "impact": incident.impact,
        "cause": incident.cause,
        "handling": incident.handling,
        "lessons": incident.lessons,
        "corrective_actions": incident.corrective_actions,
    }


@router.post("/incidents/{incident_id}/report", response_class=HTMLResponse)
async def incident_report(request: Request, principal: Writer, incident_id: IdPath) -> Response:
    from ggzy.hub.ops.incidents import file_fault_report

    data = await _incident(request, principal, incident_id)
    province = data["incident"].province
    form = await form_of(request)
    try:
        report = _read_report(form)
        await change(request, principal, lambda s: file_fault_report(s, province, report, incident_id))
    except (OpsError, FormInvalid) as error:
        shown = refused(error)
        return page(request, "work/incident.html", principal, province, values=form.values(), **shown, **data)
    return RedirectResponse(f"/portal/work/incidents/{incident_id}?done=incident-report", 303)


@router.post("/incidents/{incident_id}/status", response_class=HTMLResponse)
async def incident_status(request: Request, principal: Writer, incident_id: IdPath) -> Response:
    from ggzy.hub.ops.incidents import STATUS_ORDER, advance_incident

    data = await _incident(request, principal, incident_id)
    form = await form_of(request)
    status = form.choice("status", "流程状态", {s: s for s in STATUS_ORDER})
    try:
        form.done()
        await change(request, principal, lambda s: advance_incident(s, incident_id, status))
    except (OpsError, FormInvalid) as error:
        values = _report_values(data["incident"])
        return page(
            request,
            "work/incident.html",
            principal,
            data["incident"].province,
            values=values,
            **refused(error),
            **data,
        )
    return RedirectResponse(f"/portal/work/incidents/{incident_id}?done=incident-status", 303)


# --- 人员备案 roster -----------------------------------------------------------------------------


def _roster_context(request: Request, province: str) -> Callable[[Connection], dict[str, Any]]:
    def load(connection: Connection) -> dict[str, Any]:
        from ggzy.hub.ops.roster import KEY_POSTS, POSTS, RANKS, roster_gaps, roster_history, roster_of

        entries = roster_of(connection, province)
        filed = {(e.post, e.rank): e for e in entries}
        slots = [
            (post, label, rank, filed.get((post, rank)))
            for post, label in POSTS.items()
            for rank in (("primary", "backup") if post in KEY_POSTS else ("primary",))
        ]
        return {
            "slots": slots,
            "gaps": roster_gaps(connection, province),
            "history": roster_history(connection, province, limit=20),
            "posts": POSTS,
            "ranks": RANKS,
        }

    return load


@router.post("/roster", response_class=HTMLResponse)
async def roster_submit(request: Request, principal: Writer, province: ProvinceQuery = None) -> Response:
    from ggzy.hub.ops.roster import POSTS, RANKS, set_entry

    def build(form: FormReader, chosen: str) -> Change:
        post, rank = form.choice("post", "岗位", POSTS), form.choice("rank", "主备", RANKS)
        name = form.text("name", "姓名", required=True, max_length=100)
        contact = {
            k: form.text(k, zh, max_length=200)
            for k, zh in (("phone", "电话"), ("mobile", "手机"), ("email", "邮箱"))
        }
        return lambda s: set_entry(s, chosen, post, rank, name=name, **contact)

    return await submit(request, principal, province, "roster", "roster", build)


@router.post("/roster/remove", response_class=HTMLResponse)
async def roster_remove(request: Request, principal: Writer, province: ProvinceQuery = None) -> Response:
    from ggzy.hub.ops.roster import POSTS, RANKS, remove_entry

    def build(form: FormReader, chosen: str) -> Change:
        post, rank = form.choice("post", "岗位", POSTS), form.choice("rank", "主备", RANKS)
        return lambda s: remove_entry(s, chosen, post, rank)

    return await submit(request, principal, province, "roster", "roster-removed", build)


# --- 信息报送 register (Art. 12) ------------------------------------------------------------------


def _register_fields() -> dict[str, list[tuple[str, str, bool, str]]]:
    """The items of each kind of system as the service defines them (``ggzy.hub.ops.register.FIELDS``):
    ``(name, label, required, check)``, so the form asks exactly what the service checks."""
    from ggzy.hub.ops.register import FIELDS, SYSTEM_KINDS

    return {
        kind: [(f.name, f.label_zh, kind in f.required, f.check) for f in FIELDS if kind in f.kinds]
        for kind in SYSTEM_KINDS
    }


def _register_context(request: Request, province: str) -> Callable[[Connection], dict[str, Any]]:
    def load(connection: Connection) -> dict[str, Any]:
        from ggzy.hub.ops.register import SYSTEM_KINDS, register_of, trade_classes

        return {
            "entries": register_of(connection, province),
            "kinds": SYSTEM_KINDS,
            "fields": _register_fields(),
            "trade_classes": trade_classes(),
        }

    return load


@router.post("/register", response_class=HTMLResponse)
async def register_submit(request: Request, principal: Writer, province: ProvinceQuery = None) -> Response:
    from ggzy.hub.ops.register import SYSTEM_KINDS, register_system

    def build(form: FormReader, chosen: str) -> Change:
        kind = form.choice("kind", "系统类别", SYSTEM_KINDS)
        code = form.text("code", "系统编号", required=True, max_length=100)
        data: dict[str, Any] = {}
        for name, label, _required, check in _register_fields().get(kind, ()):
            field = f"{kind}.{name}"
            if check == "count":
                if (number := form.integer(field, label, maximum=10_000_000)) is not None:
                    data[name] = number
            elif check in ("trade_classes", "regions"):
                if items := form.lines(field, label):
                    data[name] = items
            elif text := form.text(field, label, max_length=2000):
                data[name] = text
        # the service checks every item and names each refused one (OpsError.problems)
        return lambda s: register_system(s, chosen, kind, code, data)

    return await submit(request, principal, province, "register", "register", build)


# --- 预案与演练 plans and drills ------------------------------------------------------------------


def _preparedness_context(request: Request, province: str) -> Callable[[Connection], dict[str, Any]]:
    def load(connection: Connection) -> dict[str, Any]:
        from ggzy.hub.models import ops_tables
        from ggzy.hub.ops.preparedness import list_drills, list_plans

        plans = list_plans(connection, province)
        a = ops_tables.plan_activations
        activations = connection.execute(
            select(a).where(a.c.plan_id.in_([p.id for p in plans] or [0])).order_by(a.c.activated_at.desc())
        ).all()
        newest = sorted(plans, key=lambda p: -p.version)
        return {
            "plans": newest,
            "plan_options": {str(p.id): f"v{p.version} {p.title}" for p in newest},
            "drills": list_drills(connection, province),
            "activations": activations,
        }

    return load


@router.post("/plans", response_class=HTMLResponse)
async def plan_submit(request: Request, principal: Writer, province: ProvinceQuery = None) -> Response:
    from ggzy.hub.ops.preparedness import file_plan

    def build(form: FormReader, chosen: str) -> Change:
        title = form.text("title", "预案名称", required=True, max_length=300)
        activation = form.text("activation_procedure", "启动程序", required=True, max_length=20000)
        closing = form.text("closing_procedure", "关闭程序", required=True, max_length=20000)
        content = form.text("content", "预案内容", max_length=100000)
        effective = form.date("effective_on", "生效日期")
        return lambda s: file_plan(
            s, chosen, title, activation, closing, content=content, effective_on=effective
        )

    return await submit(request, principal, province, "preparedness", "plan", build)


@router.post("/plans/{plan_id}/activate", response_class=HTMLResponse)
async def plan_activate(
    request: Request, principal: Writer, plan_id: IdPath, province: ProvinceQuery = None
) -> Response:
    from ggzy.hub.ops.preparedness import activate_plan

    def build(form: FormReader, _chosen: str) -> Change:
        incident = form.integer("incident_id", "事件编号", minimum=1)
        note = form.text("note", "说明", max_length=5000)
        return lambda s: activate_plan(s, plan_id, incident, note)

    return await submit(request, principal, province, "preparedness", "plan-activated", build)


@router.post("/activations/{activation_id}/close", response_class=HTMLResponse)
async def activation_close(
    request: Request, principal: Writer, activation_id: IdPath, province: ProvinceQuery = None
) -> Response:
    from ggzy.hub.ops.preparedness import close_activation

    def build(form: FormReader, _chosen: str) -> Change:
        note = form.text("note", "说明", max_length=5000)
        return lambda s: close_activation(s, activation_id, note)

    return await submit(request, principal, province, "preparedness", "plan-closed", build)


@router.post("/drills", response_class=HTMLResponse)
async def drill_submit(request: Request, principal: Writer, province: ProvinceQuery = None) -> Response:
    from ggzy.hub.ops.preparedness import record_drill

    def build(form: FormReader, chosen: str) -> Change:
        held_on = form.date("held_on", "演练日期", required=True)
        scenario = form.text("scenario", "演练场景", required=True, max_length=300)
        participants = form.lines("participants", "参加人员")
        minutes = form.number("recovery_minutes", "恢复用时（分钟）")
        options: dict[str, Any] = {
            "recovery_seconds": minutes * 60 if minutes is not None else None,
            "data_loss_records": form.integer("data_loss_records", "丢失记录数"),
            "findings": form.text("findings", "发现的问题与改进", max_length=10000),
            "plan_id": form.integer("plan_id", "依据预案", minimum=1),
        }
        if held_on is not None and held_on > _today(request):
            form.fail("held_on", "演练日期不能晚于今天")
        day = held_on or _today(request)  # a missing date is refused before the call runs
        return lambda s: record_drill(s, chosen, day, scenario, participants, **options)

    return await submit(request, principal, province, "preparedness", "drill", build)


# --- 整改通知 rectification orders: answers (province), issuing and closing (national) ------------


def _orders_context(request: Request, province: str) -> Callable[[Connection], dict[str, Any]]:
    def load(connection: Connection) -> dict[str, Any]:
        from ggzy.hub.ops.answers import EVIDENCE_TYPES, answers_of
        from ggzy.hub.ops.rectification import CONDITIONS, list_orders

        orders = list_orders(connection, portal_now(request), province)
        return {
            "orders": orders,
            "answers": answers_of(connection, [o["id"] for o in orders]),
            "conditions_options": {str(k): f"第{k}项 {v}" for k, v in CONDITIONS.items()},
            "evidence_types": "、".join(sorted(EVIDENCE_TYPES)),
            "evidence_limit_mb": request.app.state.hub.settings.ops.evidence_max_bytes / 1048576,
            "rectification_days": request.app.state.hub.settings.ops.rectification_days,
        }

    return load


@router.post("/orders/{order_id}/answer", response_class=HTMLResponse)
async def order_answer(
    request: Request, principal: Writer, order_id: IdPath, province: ProvinceQuery = None
) -> Response:
    from ggzy.hub.api.ops import read_upload
    from ggzy.hub.ops.answers import answer_order

    limit = request.app.state.hub.settings.ops.evidence_max_bytes

    async def build(form: FormReader, _chosen: str) -> Change:
        text = form.text("text", "整改情况", required=True, max_length=10000)
        evidence = await read_upload(form.upload("evidence"), limit)
        return lambda s: answer_order(s, order_id, text, evidence)

    keep = {"answering": str(order_id)}
    return await submit(request, principal, province, "orders", "answer", build, keep)


@router.get("/evidence/{answer_id}")
async def evidence_download(request: Request, principal: Reader, answer_id: IdPath) -> Response:
    from urllib.parse import quote

    from fastapi import HTTPException

    from ggzy.hub.ops.answers import evidence_file

    try:
        name, media, content, owner = await read(request, lambda c: evidence_file(c, answer_id))
    except OpsError:
        raise HTTPException(404) from None
    if not scope_of(principal).allows(owner):
        raise HTTPException(404)
    disposition = f"attachment; filename=\"evidence\"; filename*=UTF-8''{quote(name)}"
    return Response(
        content, media_type=media, headers={"Content-Disposition": disposition, "Cache-Control": "no-store"}
    )


@router.post("/orders", response_class=HTMLResponse)
async def order_issue(request: Request, principal: Assessor, province: ProvinceQuery = None) -> Response:
    from ggzy.hub.ops.rectification import CONDITIONS, issue_order

    def build(form: FormReader, chosen: str) -> Change:
        condition = form.choice("condition", "第三十五条情形", {str(k): v for k, v in CONDITIONS.items()})
        basis = form.text("basis", "依据", required=True, max_length=5000)
        days = form.integer("deadline_days", "整改期限（天）", minimum=1, maximum=365)
        evidence = form.text("evidence", "证据（如检查记录编号）", max_length=500)
        return lambda s: issue_order(
            s, chosen, int(condition or 0), basis, evidence=evidence, deadline_days=days
        )

    return await submit(request, principal, province, "orders", "order", build)


@router.post("/orders/{order_id}/close", response_class=HTMLResponse)
async def order_close(
    request: Request, principal: Assessor, order_id: IdPath, province: ProvinceQuery = None
) -> Response:
    from ggzy.hub.ops.rectification import close_order

    def build(form: FormReader, _chosen: str) -> Change:
        note = form.text("note", "整改情况核实", required=True, max_length=5000)
        return lambda s: close_order(s, order_id, note)

    keep = {"closing": str(order_id)}
    return await submit(request, principal, province, "orders", "order-closed", build, keep)
