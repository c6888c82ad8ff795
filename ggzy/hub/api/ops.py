"""Operations management for people at the hub (Art. 12, 13, 18, 20, 25–35), and two signed node routes.

People's routes sit under ``/api/v1/ops``; each declares its permission (``ops:read``,
``ops:write``, ``ops:assess``, ``stats:read``). A provincial account (``principal.province`` set)
sees and changes its own province only; national accounts see all and alone hold ``ops:assess``
(inspections, orders). Every change runs in one transaction with its audit entry.

The node's routes, signed like the exchange: ``GET /api/v1/ops/node/conditions`` (what the hub
holds against the node's province, for ``ggzy node doctor``) and ``POST /api/v1/ops/node/drills``
(the result of ``ggzy drill hub-outage``).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Connection, select
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile as StarletteUpload

from ggzy.hub.api.common import hub_of, read_body, signed_node, source_of
from ggzy.hub.api.exchange import check_content_type, parse_json_body
from ggzy.hub.errors import HubError, error_body
from ggzy.hub.models import nodes
from ggzy.hub.ops.periods import SHANGHAI, Period, parse_period
from ggzy.hub.ops.session import Actor, OpsError, OpsSession, run_change
from ggzy.security.permissions import Forbidden, NotSignedIn, Permission, Principal, principal_of, require
from ggzy.web.bounds import FIRST_DAY, LAST_DAY, MAX_ID, Count, Day, IdPath, Moment, RowId, Seconds

__all__ = ["install", "router"]

router = APIRouter(prefix="/api/v1/ops", tags=["ops"])
READ = [Depends(require(Permission.OPS_READ))]
WRITE = [Depends(require(Permission.OPS_WRITE))]
ASSESS = [Depends(require(Permission.OPS_ASSESS))]
R = TypeVar("R")
Province = Annotated[
    str | None, Query(min_length=2, max_length=2, description="省份代码（两位）；省级账号只能看本省")
]
PeriodQuery = Annotated[str, Query(description="期间：YYYY、YYYY-MM 或 YYYY-MM-DD（北京时间）")]


def install(app: FastAPI) -> None:
    """Add the routes and the answers to sign-in refusals (unless the sign-in layer added its own)."""
    app.include_router(router)
    if NotSignedIn not in app.exception_handlers:

        async def not_signed_in(request: Request, _error: Exception) -> JSONResponse:
            body = error_body(
                "E-AUTH-REQUIRED", "请先登录", "sign-in required", getattr(request.state, "request_id", "-")
            )
            return JSONResponse(body, status_code=401)

        app.add_exception_handler(NotSignedIn, not_signed_in)
    if Forbidden not in app.exception_handlers:

        async def forbidden(request: Request, error: Exception) -> JSONResponse:
            needed = error.permission.value if isinstance(error, Forbidden) else "-"
            body = error_body(
                "E-AUTH-FORBIDDEN",
                f"当前角色无权执行此操作（需要 {needed}）",
                f"the role lacks {needed}",
                getattr(request.state, "request_id", "-"),
            )
            return JSONResponse(body, status_code=403)

        app.add_exception_handler(Forbidden, forbidden)


# --- plumbing ---


def _principal(request: Request) -> Principal:
    principal = principal_of(request)
    if principal is None:  # the route's dependency has already refused; this keeps mypy honest
        raise NotSignedIn()
    return principal


def _actor(request: Request) -> Actor:
    p = _principal(request)
    return Actor(
        p.account, p.role.value, p.province, source_of(request), getattr(request.state, "request_id", "-")
    )


def _scope(request: Request, province: str | None, *, required: bool = False) -> str | None:
    """The province a request may look at: a provincial account's own, or what a national one asked."""
    own = _principal(request).province
    if own is not None:
        if province not in (None, own):
            raise HubError(
                403,
                "E-OPS-SCOPE",
                f"只能查看本省（{own}）的数据",
                "provincial accounts see their own province only",
            )
        return own
    if required and province is None:
        raise HubError(400, "E-REQ-PARAMETER", "请指定省份 province", "province is required")
    return province


def _hub_error(exc: OpsError) -> HubError:
    return HubError(exc.status, exc.code, exc.message_zh, exc.message_en, problems=exc.problems)


def _period(text: str) -> Period:
    try:
        return parse_period(text)
    except ValueError as exc:
        raise HubError(400, "E-REQ-PERIOD", str(exc), "period must be YYYY, YYYY-MM or YYYY-MM-DD") from None


async def _read(request: Request, fn: Callable[[Connection], R]) -> R:
    hub = hub_of(request)

    def run() -> R:
        with hub.engine.connect() as connection:
            try:
                return fn(connection)
            except OpsError as exc:
                raise _hub_error(exc) from None

    return await run_in_threadpool(run)


async def _write(request: Request, fn: Callable[[OpsSession], R], actor: Actor | None = None) -> R:
    hub = hub_of(request)
    who = actor or _actor(request)

    def run() -> R:
        try:
            return run_change(hub.engine, hub.audit, who, hub.settings.ops, fn)
        except OpsError as exc:
            raise _hub_error(exc) from None

    return await run_in_threadpool(run)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _deliver_later(request: Request, tasks: BackgroundTasks) -> None:
    """Mail and post the notices just committed, after the answer is sent (``ggzy ops watch`` retries)."""
    from ggzy.hub.ops.notices import deliver_pending

    hub = hub_of(request)
    tasks.add_task(deliver_pending, hub.engine, hub.audit, hub.settings.ops)


# --- availability, statistics, backups ---


@router.get(
    "/availability", dependencies=READ, summary="可用率：前置机、网络、省级平台与故障数 (availability)"
)
async def read_availability(
    request: Request, period: PeriodQuery, province: Province = None
) -> dict[str, Any]:
    from ggzy.hub.ops.availability import province_availability

    scope = _scope(request, province, required=True)
    assert scope is not None
    ops = hub_of(request).settings.ops
    result = await _read(request, lambda c: province_availability(c, scope, _period(period), ops))
    return {"ok": True, **result.to_dict()}


@router.get(
    "/stats",
    dependencies=[Depends(require(Permission.STATS_READ))],
    summary="数据合格率、及时报送率、修复成功率（考核依据）",
)
async def read_stats(
    request: Request,
    start: Annotated[dt.date, Query(alias="from", ge=FIRST_DAY, le=LAST_DAY)],
    end: Annotated[dt.date, Query(alias="to", ge=FIRST_DAY, le=LAST_DAY)],
    province: Province = None,
) -> dict[str, Any]:
    from ggzy.hub.stats import StatsRangeError, province_summary

    scope = _scope(request, province, required=True)
    assert scope is not None

    def load(connection: Connection) -> dict[str, Any]:
        try:
            return province_summary(connection, scope, start, end, top_rules=20).to_dict()
        except StatsRangeError as exc:
            raise HubError(400, exc.code, exc.message_zh, exc.message_en) from None

    return {"ok": True, **await _read(request, load)}


@router.get("/backups", dependencies=READ, summary="最近一次备份验证时间（节点心跳上报）")
async def read_backups(request: Request, province: Province = None) -> dict[str, Any]:
    from ggzy.hub.ops.backups import HeartbeatBackupSource

    scope = _scope(request, province, required=True)
    assert scope is not None
    verified = await _read(request, lambda c: HeartbeatBackupSource().verified_at(c, scope, _now()))
    return {"ok": True, "province": scope, "verified_at": verified.isoformat() if verified else None}


# --- outage notices ---


class OutageIn(BaseModel):
    province: str = Field(min_length=2, max_length=2)
    kind: Literal["power", "relocation", "cutover", "maintenance"]
    starts_at: Moment
    ends_at: Moment
    impact: str = Field(min_length=1, max_length=2000)


@router.get("/outages", dependencies=READ, summary="计划停用通知（停电、搬迁、线路割接、设备检修）")
async def read_outages(request: Request, province: Province = None) -> dict[str, Any]:
    from ggzy.hub.ops.outages import list_notices

    scope = _scope(request, province)
    notices = await _read(request, lambda c: list_notices(c, scope, include_withdrawn=True))
    return {"ok": True, "data": [n.to_dict() for n in notices], "count": len(notices)}


@router.post("/outages", dependencies=WRITE, status_code=201, summary="提交计划停用通知（须提前通知）")
async def create_outage(request: Request, body: OutageIn) -> dict[str, Any]:
    from ggzy.hub.ops.outages import OutageKind, notify_outage

    notice = await _write(
        request,
        lambda s: notify_outage(
            s, body.province, OutageKind(body.kind), body.starts_at, body.ends_at, body.impact
        ),
    )
    return {"ok": True, **notice.to_dict()}


@router.post("/outages/{notice_id}/withdraw", dependencies=WRITE, summary="撤回停用通知")
async def withdraw_outage(request: Request, notice_id: IdPath) -> dict[str, Any]:
    from ggzy.hub.ops.outages import withdraw_notice

    return {"ok": True, **(await _write(request, lambda s: withdraw_notice(s, notice_id))).to_dict()}


# --- incidents and fault reports ---


class FaultReportIn(BaseModel):
    province: str = Field(min_length=2, max_length=2)
    title: str = Field(min_length=1, max_length=300)
    classification: Literal["power", "link", "equipment", "software", "security", "other"]
    started_at: Moment
    ended_at: Moment | None = None
    impact: str = Field("", max_length=5000)
    cause: str = Field("", max_length=5000)
    handling: str = Field("", max_length=5000)
    lessons: str = Field("", max_length=5000)
    corrective_actions: str = Field("", max_length=5000)
    incident_id: RowId | None = Field(None, description="为已自动立案的事件补报故障报告时填写")


class StatusIn(BaseModel):
    status: Literal["handling", "recovered", "closed"]


@router.get("/incidents", dependencies=READ, summary="运行事件与故障报告；unreported=true 只看未报告的")
async def read_incidents(
    request: Request,
    province: Province = None,
    unreported: bool | None = None,
    status: Literal["reported", "handling", "recovered", "closed"] | None = None,
) -> dict[str, Any]:
    from ggzy.hub.ops.incidents import list_incidents

    scope = _scope(request, province)
    found = await _read(request, lambda c: list_incidents(c, scope, status=status, unreported=unreported))
    return {"ok": True, "data": [i.to_dict() for i in found], "count": len(found)}


@router.post("/incidents", dependencies=WRITE, status_code=201, summary="省级平台提交故障报告")
async def create_fault_report(request: Request, body: FaultReportIn) -> dict[str, Any]:
    from ggzy.hub.ops.incidents import Classification, FaultReport, file_fault_report

    report = FaultReport(
        body.title,
        Classification(body.classification),
        body.started_at,
        body.ended_at,
        body.impact,
        body.cause,
        body.handling,
        body.lessons,
        body.corrective_actions,
    )
    incident = await _write(request, lambda s: file_fault_report(s, body.province, report, body.incident_id))
    return {"ok": True, **incident.to_dict()}


@router.post(
    "/incidents/{incident_id}/status", dependencies=WRITE, summary="事件流程：处置中、已恢复、已关闭"
)
async def update_incident_status(request: Request, incident_id: IdPath, body: StatusIn) -> dict[str, Any]:
    from ggzy.hub.ops.incidents import advance_incident

    return {
        "ok": True,
        **(await _write(request, lambda s: advance_incident(s, incident_id, body.status))).to_dict(),
    }


# --- plans and drills ---


class PlanIn(BaseModel):
    province: str = Field(min_length=2, max_length=2)
    title: str = Field(min_length=1, max_length=300)
    activation_procedure: str = Field(min_length=1)
    closing_procedure: str = Field(min_length=1)
    content: str = ""
    effective_on: Day | None = None


class DrillIn(BaseModel):
    province: str = Field(min_length=2, max_length=2)
    held_on: Day
    scenario: str = Field(min_length=1, max_length=300)
    participants: list[str] = Field(default_factory=list, max_length=200)
    recovery_seconds: Seconds | None = None
    data_loss_records: Count | None = None
    findings: str = ""
    plan_id: RowId | None = None


@router.get("/plans", dependencies=READ, summary="应急预案（含历史版本）")
async def read_plans(request: Request, province: Province = None) -> dict[str, Any]:
    from ggzy.hub.ops.preparedness import list_plans

    scope = _scope(request, province)
    plans = await _read(request, lambda c: list_plans(c, scope))
    return {"ok": True, "data": [p.to_dict() for p in plans], "count": len(plans)}


@router.post("/plans", dependencies=WRITE, status_code=201, summary="备案应急预案（新版本）")
async def create_plan(request: Request, body: PlanIn) -> dict[str, Any]:
    from ggzy.hub.ops.preparedness import file_plan

    plan = await _write(
        request,
        lambda s: file_plan(
            s,
            body.province,
            body.title,
            body.activation_procedure,
            body.closing_procedure,
            content=body.content,
            effective_on=body.effective_on,
        ),
    )
    return {"ok": True, **plan.to_dict()}


class ActivationIn(BaseModel):
    incident_id: RowId | None = Field(None, description="启动预案所应对的事件")
    note: str = Field("", max_length=5000)


@router.post("/plans/{plan_id}/activate", dependencies=WRITE, status_code=201, summary="按启动程序启动预案")
async def activate(request: Request, plan_id: IdPath, body: ActivationIn) -> dict[str, Any]:
    from ggzy.hub.ops.preparedness import activate_plan

    activation_id = await _write(request, lambda s: activate_plan(s, plan_id, body.incident_id, body.note))
    return {"ok": True, "activation_id": activation_id}


@router.post("/plans/activations/{activation_id}/close", dependencies=WRITE, summary="按关闭程序关闭预案")
async def close_plan_activation(
    request: Request, activation_id: IdPath, body: ActivationIn
) -> dict[str, Any]:
    from ggzy.hub.ops.preparedness import close_activation

    await _write(request, lambda s: close_activation(s, activation_id, body.note))
    return {"ok": True, "activation_id": activation_id}


@router.get("/drills", dependencies=READ, summary="应急演练记录")
async def read_drills(request: Request, province: Province = None) -> dict[str, Any]:
    from ggzy.hub.ops.preparedness import list_drills

    scope = _scope(request, province)
    drills = await _read(request, lambda c: list_drills(c, scope))
    return {"ok": True, "data": [d.to_dict() for d in drills], "count": len(drills)}


@router.post("/drills", dependencies=WRITE, status_code=201, summary="登记应急演练")
async def create_drill(request: Request, body: DrillIn) -> dict[str, Any]:
    from ggzy.hub.ops.preparedness import record_drill

    drill = await _write(
        request,
        lambda s: record_drill(
            s,
            body.province,
            body.held_on,
            body.scenario,
            body.participants,
            recovery_seconds=body.recovery_seconds,
            data_loss_records=body.data_loss_records,
            findings=body.findings,
            plan_id=body.plan_id,
        ),
    )
    return {"ok": True, **drill.to_dict()}


@router.get("/drills/overdue", dependencies=READ, summary="12个月内未演练的省份")
async def read_overdue_drills(request: Request) -> dict[str, Any]:
    from ggzy.hub.ops.preparedness import provinces_without_drill

    ops = hub_of(request).settings.ops
    today = _now().astimezone(SHANGHAI).date()
    flagged = await _read(request, lambda c: provinces_without_drill(c, today, ops.drill_max_age_days))
    own = _principal(request).province
    flagged = [f for f in flagged if own is None or f["province"] == own]
    return {"ok": True, "data": flagged, "count": len(flagged)}


# --- roster ---


class RosterIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    phone: str = Field("", max_length=40)
    mobile: str = Field("", max_length=40)
    email: str = Field("", max_length=200)


@router.get(
    "/roster/{province}", dependencies=READ, summary="人员备案（运行、技术负责人，值班与关键岗位主备）"
)
async def read_roster(request: Request, province: str) -> dict[str, Any]:
    from ggzy.hub.ops.roster import roster_gaps, roster_of

    scope = _scope(request, province)
    assert scope is not None
    entries, gaps = await _read(request, lambda c: (roster_of(c, scope), roster_gaps(c, scope)))
    return {"ok": True, "data": [e.to_dict() for e in entries], "gaps": [g.to_dict() for g in gaps]}


@router.get("/roster/{province}/gaps", dependencies=READ, summary="人员备案缺项（含某一时刻外出造成的空岗）")
async def read_roster_gaps(
    request: Request,
    province: str,
    at: Annotated[
        Moment | None, Query(description="时刻（ISO 8601），默认现在；外出按北京时间日期计")
    ] = None,
) -> dict[str, Any]:
    from ggzy.hub.ops.roster import roster_gaps

    scope = _scope(request, province)
    assert scope is not None
    moment = (
        at if at is not None and at.tzinfo is not None else (at.replace(tzinfo=SHANGHAI) if at else _now())
    )
    gaps = await _read(request, lambda c: roster_gaps(c, scope, at=moment))
    return {"ok": True, "complete": not gaps, "gaps": [g.to_dict() for g in gaps]}


@router.get("/roster/{province}/history", dependencies=READ, summary="人员备案变更记录")
async def read_roster_history(request: Request, province: str) -> dict[str, Any]:
    from ggzy.hub.ops.roster import roster_history

    scope = _scope(request, province)
    history = await _read(request, lambda c: roster_history(c, scope))
    return {"ok": True, "data": history, "count": len(history)}


@router.put("/roster/{province}/{post}/{rank}", dependencies=WRITE, summary="备案或变更一名人员")
async def update_roster(
    request: Request, province: str, post: str, rank: str, body: RosterIn
) -> dict[str, Any]:
    from ggzy.hub.ops.roster import set_entry

    entry = await _write(
        request,
        lambda s: set_entry(
            s, province, post, rank, name=body.name, phone=body.phone, mobile=body.mobile, email=body.email
        ),
    )
    return {"ok": True, **entry.to_dict()}


@router.delete("/roster/{province}/{post}/{rank}", dependencies=WRITE, summary="撤销一名人员的备案")
async def delete_roster(request: Request, province: str, post: str, rank: str) -> dict[str, Any]:
    from ggzy.hub.ops.roster import remove_entry

    await _write(request, lambda s: remove_entry(s, province, post, rank))
    return {"ok": True}


class AbsenceIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    starts_on: Day
    ends_on: Day
    reason: str = Field("", max_length=2000)


class TrainingIn(BaseModel):
    held_on: Day
    subject: str = Field(min_length=1, max_length=300)
    topic: Literal["security", "sharing", "operations", "emergency"]
    participants: list[str] = Field(min_length=1, max_length=500)
    hours: float | None = Field(None, gt=0, le=1000)


@router.get("/roster/{province}/absences", dependencies=READ, summary="人员外出登记")
async def read_absences(request: Request, province: str) -> dict[str, Any]:
    from ggzy.hub.ops.roster import list_absences

    scope = _scope(request, province)
    found = await _read(request, lambda c: list_absences(c, scope))
    return {"ok": True, "data": found, "count": len(found)}


@router.post(
    "/roster/{province}/absences",
    dependencies=WRITE,
    status_code=201,
    summary="登记人员外出（日期，北京时间）",
)
async def create_absence(request: Request, province: str, body: AbsenceIn) -> dict[str, Any]:
    from ggzy.hub.ops.roster import record_absence

    absence = await _write(
        request, lambda s: record_absence(s, province, body.name, body.starts_on, body.ends_on, body.reason)
    )
    return {"ok": True, **absence}


@router.post("/roster/absences/{absence_id}/cancel", dependencies=WRITE, summary="撤销外出登记")
async def cancel_absence_route(request: Request, absence_id: IdPath) -> dict[str, Any]:
    from ggzy.hub.ops.roster import cancel_absence

    return {"ok": True, **await _write(request, lambda s: cancel_absence(s, absence_id))}


@router.get("/trainings", dependencies=READ, summary="运行安全与信息共享等培训记录")
async def read_trainings(request: Request, province: Province = None) -> dict[str, Any]:
    from ggzy.hub.ops.roster import list_trainings

    scope = _scope(request, province)
    found = await _read(request, lambda c: list_trainings(c, scope))
    return {"ok": True, "data": found, "count": len(found)}


@router.post(
    "/trainings/{province}",
    dependencies=WRITE,
    status_code=201,
    summary="登记一次培训（日期、内容、参训人员）",
)
async def create_training(request: Request, province: str, body: TrainingIn) -> dict[str, Any]:
    from ggzy.hub.ops.roster import record_training

    training = await _write(
        request,
        lambda s: record_training(
            s, province, body.held_on, body.subject, body.topic, body.participants, body.hours
        ),
    )
    return {"ok": True, **training}


# --- information register ---


class RegisterIn(BaseModel):
    kind: Literal["service", "trading", "expert"]
    code: str = Field(min_length=1, max_length=100)
    data: dict[str, Any]


@router.get("/register/{province}", dependencies=READ, summary="信息上报：电子服务系统、电子交易系统、专家库")
async def read_register(request: Request, province: str, history: bool = False) -> dict[str, Any]:
    from ggzy.hub.ops.register import register_history, register_of

    scope = _scope(request, province)
    assert scope is not None
    found = await _read(request, lambda c: register_history(c, scope) if history else register_of(c, scope))
    return {"ok": True, "data": found, "count": len(found)}


@router.post(
    "/register/{province}", dependencies=WRITE, status_code=201, summary="登记或更新系统基本信息（保留历史）"
)
async def create_register_entry(request: Request, province: str, body: RegisterIn) -> dict[str, Any]:
    from ggzy.hub.ops.register import register_system

    return {
        "ok": True,
        **await _write(request, lambda s: register_system(s, province, body.kind, body.code, body.data)),
    }


# --- inspections ---


class InspectionIn(BaseModel):
    province: str = Field(min_length=2, max_length=2)
    kind: Literal["scheduled", "spot"]
    planned_on: Day


class InspectionResultIn(BaseModel):
    checklist: dict[str, dict[str, str]]
    findings: str = ""
    follow_up: str = ""
    follow_up_due: Day | None = None


class NoteIn(BaseModel):
    note: str = Field(min_length=1, max_length=5000)


@router.get("/inspections", dependencies=READ, summary="定期检查与抽检")
async def read_inspections(request: Request, province: Province = None) -> dict[str, Any]:
    from ggzy.hub.ops.inspections import list_inspections

    scope = _scope(request, province)
    found = await _read(request, lambda c: list_inspections(c, scope))
    return {"ok": True, "data": found, "count": len(found)}


@router.get(
    "/inspections/{inspection_id}", dependencies=READ, summary="一次检查的检查表、发现与所下达的整改通知"
)
async def read_inspection(request: Request, inspection_id: IdPath) -> dict[str, Any]:
    from ggzy.hub.ops.inspections import get_inspection
    from ggzy.hub.ops.rectification import list_orders

    def load(connection: Connection) -> dict[str, Any]:
        found = get_inspection(connection, inspection_id)
        _scope(request, found["province"])
        orders = [
            o
            for o in list_orders(connection, _now(), found["province"])
            if o["period"] == f"insp-{inspection_id}"
        ]
        return {**found, "orders": orders}

    return {"ok": True, **await _read(request, load)}


@router.post("/inspections", dependencies=ASSESS, status_code=201, summary="安排检查（定期/抽检）")
async def create_inspection(request: Request, body: InspectionIn) -> dict[str, Any]:
    from ggzy.hub.ops.inspections import plan_inspection

    return {
        "ok": True,
        **await _write(request, lambda s: plan_inspection(s, body.province, body.kind, body.planned_on)),
    }


@router.post("/inspections/{inspection_id}/result", dependencies=ASSESS, summary="登记检查结果（逐项）")
async def update_inspection(
    request: Request, inspection_id: IdPath, body: InspectionResultIn, tasks: BackgroundTasks
) -> dict[str, Any]:
    from ggzy.hub.ops.inspections import perform_inspection

    done = await _write(
        request,
        lambda s: perform_inspection(
            s,
            inspection_id,
            body.checklist,
            body.findings,
            follow_up_text=body.follow_up,
            follow_up_due=body.follow_up_due,
        ),
    )
    _deliver_later(request, tasks)
    return {"ok": True, **done}


@router.post("/inspections/{inspection_id}/follow-up", dependencies=ASSESS, summary="登记整改跟踪")
async def follow_up_inspection(request: Request, inspection_id: IdPath, body: NoteIn) -> dict[str, Any]:
    from ggzy.hub.ops.inspections import follow_up

    return {"ok": True, **await _write(request, lambda s: follow_up(s, inspection_id, body.note))}


# --- assessment, orders, notices ---


def _provinces(connection: Connection) -> list[str]:
    return sorted(set(connection.execute(select(nodes.c.province).distinct()).scalars()))


def _export(report: Any, fmt: str, filename: str) -> FileResponse:
    from ggzy.hub.ops.exports import write_pdf, write_xlsx

    handle = tempfile.NamedTemporaryFile(suffix=f".{fmt}", delete=False)  # noqa: SIM115 (removed after sending)
    handle.close()
    path = Path(handle.name)
    (write_xlsx if fmt == "xlsx" else write_pdf)(report, path)
    media = (
        "application/pdf"
        if fmt == "pdf"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return FileResponse(
        path, media_type=media, filename=filename, background=BackgroundTask(path.unlink, missing_ok=True)
    )


Format = Annotated[Literal["json", "xlsx", "pdf"], Query(description="json / xlsx / pdf")]


@router.get("/assessment", dependencies=READ, summary="考核：各项指标、目标、结论与依据；可导出 xlsx/pdf")
async def read_assessment(
    request: Request, period: PeriodQuery, province: Province = None, format: Format = "json"
) -> Any:
    from ggzy.hub.ops.assessment import assess_province
    from ggzy.hub.ops.exports import assessment_report

    scope = _scope(request, province)
    ops = hub_of(request).settings.ops
    chosen = _period(period)

    def load(connection: Connection) -> list[Any]:
        provinces = [scope] if scope is not None else _provinces(connection)
        return [assess_province(connection, p, chosen, ops) for p in provinces]

    assessments = await _read(request, load)
    if format != "json":
        if not assessments:
            raise HubError(404, "E-OPS-NOT-FOUND", "没有可考核的省份", "nothing to assess")
        return _export(assessment_report(assessments), format, f"assessment-{chosen.label}.{format}")
    return {"ok": True, "period": chosen.label, "data": [a.to_dict() for a in assessments]}


class OrderIn(BaseModel):
    province: str = Field(min_length=2, max_length=2)
    condition: int = Field(ge=1, le=8)
    basis: str = Field(min_length=1, max_length=5000)
    deadline_days: int | None = Field(
        None, ge=0, le=365, description="整改期限天数（北京时间自然日，0 为当天内）"
    )
    evidence: str = ""


@router.get("/rectifications", dependencies=READ, summary="责令限期改正通知")
async def read_orders(request: Request, province: Province = None, format: Format = "json") -> Any:
    from ggzy.hub.ops.exports import orders_report
    from ggzy.hub.ops.rectification import list_orders

    scope = _scope(request, province)
    orders = await _read(request, lambda c: list_orders(c, _now(), scope))
    if format != "json":
        return _export(orders_report(orders), format, f"rectifications.{format}")
    return {"ok": True, "data": orders, "count": len(orders)}


@router.post(
    "/rectifications",
    dependencies=ASSESS,
    status_code=201,
    summary="检查人员下达整改通知（第三十五条任一项）",
)
async def create_order(request: Request, body: OrderIn, tasks: BackgroundTasks) -> dict[str, Any]:
    from ggzy.hub.ops.rectification import issue_order

    order = await _write(
        request,
        lambda s: issue_order(
            s,
            body.province,
            body.condition,
            body.basis,
            evidence=body.evidence,
            deadline_days=body.deadline_days,
        ),
    )
    _deliver_later(request, tasks)
    return {"ok": True, **order}


@router.post("/rectifications/issue", dependencies=ASSESS, summary="按考核结果自动下达整改通知")
async def issue_orders_for_period(
    request: Request, period: PeriodQuery, tasks: BackgroundTasks
) -> dict[str, Any]:
    from ggzy.hub.ops.assessment import assess_province
    from ggzy.hub.ops.rectification import issue_orders

    chosen = _period(period)

    def issue(session: OpsSession) -> list[dict[str, Any]]:
        issued: list[dict[str, Any]] = []
        for province in _provinces(session.connection):
            issued += issue_orders(
                session, assess_province(session.connection, province, chosen, session.settings)
            )
        return issued

    issued = await _write(request, issue)
    _deliver_later(request, tasks)
    return {"ok": True, "data": issued, "count": len(issued)}


@router.post("/rectifications/{order_id}/close", dependencies=ASSESS, summary="确认整改完成，关闭通知")
async def close_rectification(request: Request, order_id: IdPath, body: NoteIn) -> dict[str, Any]:
    from ggzy.hub.ops.rectification import close_order

    return {"ok": True, **await _write(request, lambda s: close_order(s, order_id, body.note))}


async def read_upload(upload: StarletteUpload | None, limit: int) -> Any:
    """The uploaded evidence, read up to one byte past ``limit`` (the service refuses what is larger)."""
    from ggzy.hub.ops.answers import Evidence

    if upload is None or not upload.filename:
        return None
    content = await upload.read(limit + 1)
    return Evidence(upload.filename, content)


@router.get("/rectifications/{order_id}/answers", dependencies=READ, summary="整改通知的答复（不含附件内容）")
async def read_answers(request: Request, order_id: IdPath) -> dict[str, Any]:
    from ggzy.hub.ops.answers import answers_of
    from ggzy.hub.ops.rectification import list_orders

    def load(connection: Connection) -> list[dict[str, Any]]:
        own = _principal(request).province
        if own is not None and order_id not in {o["id"] for o in list_orders(connection, _now(), own)}:
            raise OpsError("E-OPS-NOT-FOUND", f"整改通知 {order_id} 不存在", f"no order {order_id}", 404)
        return answers_of(connection, [order_id])[order_id]

    answers = await _read(request, load)
    return {"ok": True, "data": answers, "count": len(answers)}


@router.post(
    "/rectifications/{order_id}/answers",
    dependencies=WRITE,
    status_code=201,
    summary="省级平台答复整改通知，可附证明材料（multipart：text、evidence）",
)
async def create_answer(
    request: Request,
    order_id: IdPath,
    text: Annotated[str, Form(max_length=10000)],
    evidence: Annotated[UploadFile | None, File()] = None,
) -> dict[str, Any]:
    from ggzy.hub.ops.answers import answer_order

    upload = await read_upload(evidence, hub_of(request).settings.ops.evidence_max_bytes)
    return {"ok": True, **await _write(request, lambda s: answer_order(s, order_id, text, upload))}


@router.get("/evidence/{answer_id}", dependencies=READ, summary="下载整改答复的证明材料")
async def read_evidence(request: Request, answer_id: IdPath) -> Response:
    from ggzy.hub.ops.answers import evidence_file

    def load(connection: Connection) -> tuple[str, str, bytes, str]:
        found = evidence_file(connection, answer_id)
        own = _principal(request).province
        if own is not None and found[3] != own:  # another province's: as if it did not exist
            raise OpsError("E-OPS-NOT-FOUND", f"答复 {answer_id} 没有证明材料", "no such evidence", 404)
        return found

    name, media, content, _ = await _read(request, load)
    from urllib.parse import quote

    disposition = f"attachment; filename=\"evidence\"; filename*=UTF-8''{quote(name)}"
    return Response(
        content, media_type=media, headers={"Content-Disposition": disposition, "Cache-Control": "no-store"}
    )


@router.get("/notices", dependencies=READ, summary="通报名单：逾期未改正的整改通知；可导出 xlsx/pdf")
async def read_notices(request: Request, format: Format = "json") -> Any:
    from ggzy.hub.ops.exports import notice_report
    from ggzy.hub.ops.rectification import notice_list

    listed = await _read(request, lambda c: notice_list(c, _now()))
    own = _principal(request).province
    listed = [o for o in listed if own is None or o["province"] == own]
    if format != "json":
        return _export(notice_report(listed), format, f"notices.{format}")
    return {"ok": True, "data": listed, "count": len(listed)}


# --- node versions (Art. 13) ---


class ApprovalIn(BaseModel):
    component: Literal["software", "os", "python", "database"]
    pattern: str = Field(min_length=1, max_length=200, description="版本，或带 * 的通配，如 PostgreSQL 16.*")
    note: str = Field("", max_length=2000)


class UpgradeIn(BaseModel):
    node_id: str = Field(min_length=1, max_length=64)
    component: Literal["software", "os", "python", "database"]
    to_version: str = Field(min_length=1, max_length=200)
    from_version: str = Field("", max_length=200)
    note: str = Field("", max_length=2000)
    change_id: RowId | None = Field(None, description="所依据的已批准变更申请")


@router.get(
    "/versions", dependencies=READ, summary="前置机软件、操作系统、Python、数据库版本；未审批与未登记的变更"
)
async def read_versions(request: Request, province: Province = None) -> dict[str, Any]:
    from ggzy.hub.ops.versions import approved_versions, current_versions, list_upgrades, version_flags

    scope = _scope(request, province)

    def load(connection: Connection) -> dict[str, Any]:
        return {
            "data": current_versions(connection, scope),
            "flags": version_flags(connection, scope),
            "approved": approved_versions(connection),
            "upgrades": list_upgrades(connection, province=scope),
        }

    return {"ok": True, **await _read(request, load)}


@router.get("/versions/history", dependencies=READ, summary="前置机版本变化历史")
async def read_version_history(
    request: Request, province: Province = None, node_id: Annotated[str | None, Query(max_length=64)] = None
) -> dict[str, Any]:
    from ggzy.hub.ops.versions import version_history

    scope = _scope(request, province)
    found = await _read(request, lambda c: version_history(c, node_id=node_id, province=scope))
    return {"ok": True, "data": found, "count": len(found)}


@router.post("/versions/approved", dependencies=ASSESS, status_code=201, summary="国家平台审批一个版本")
async def create_approval(request: Request, body: ApprovalIn) -> dict[str, Any]:
    from ggzy.hub.ops.versions import approve_version

    return {
        "ok": True,
        **await _write(request, lambda s: approve_version(s, body.component, body.pattern, body.note)),
    }


@router.post("/versions/approved/{approval_id}/withdraw", dependencies=ASSESS, summary="撤销版本审批")
async def withdraw_version_approval(request: Request, approval_id: IdPath) -> dict[str, Any]:
    from ggzy.hub.ops.versions import withdraw_approval

    return {"ok": True, **await _write(request, lambda s: withdraw_approval(s, approval_id))}


@router.post("/versions/upgrades", dependencies=ASSESS, status_code=201, summary="登记国家平台对前置机的升级")
async def create_upgrade(request: Request, body: UpgradeIn) -> dict[str, Any]:
    from ggzy.hub.ops.versions import record_upgrade

    upgrade = await _write(
        request,
        lambda s: record_upgrade(
            s,
            body.node_id,
            body.component,
            body.to_version,
            from_version=body.from_version,
            note=body.note,
            change_id=body.change_id,
        ),
    )
    return {"ok": True, **upgrade}


# --- security self-checks and the 信息安全通报 (Art. 20) ---


class SelfCheckScheduleIn(BaseModel):
    province: str = Field(min_length=2, max_length=2)
    first_due: Day
    every_months: int = Field(3, ge=1, le=12)
    count: int = Field(4, ge=1, le=24)


class SelfCheckResultIn(BaseModel):
    province: str | None = Field(None, min_length=2, max_length=2, description="不定期自查时填写省份")
    items: dict[str, dict[str, str]]
    findings: str = Field("", max_length=5000)
    performed_on: Day | None = None


@router.get("/self-checks", dependencies=READ, summary="安全自查计划与结果（逾期标记）")
async def read_self_checks(request: Request, province: Province = None) -> dict[str, Any]:
    from ggzy.hub.ops.selfchecks import list_self_checks

    scope = _scope(request, province)
    today = _now().astimezone(SHANGHAI).date()
    found = await _read(request, lambda c: list_self_checks(c, scope, today))
    return {"ok": True, "data": found, "count": len(found)}


@router.post("/self-checks", dependencies=WRITE, status_code=201, summary="制定安全自查计划（每N个月一次）")
async def create_self_check_schedule(request: Request, body: SelfCheckScheduleIn) -> dict[str, Any]:
    from ggzy.hub.ops.selfchecks import schedule_self_checks

    planned = await _write(
        request,
        lambda s: schedule_self_checks(s, body.province, body.first_due, body.every_months, body.count),
    )
    return {"ok": True, "data": planned, "count": len(planned)}


@router.post(
    "/self-checks/{check_id}/result", dependencies=WRITE, summary="登记一次计划内安全自查的结果（逐项）"
)
async def update_self_check(request: Request, check_id: IdPath, body: SelfCheckResultIn) -> dict[str, Any]:
    from ggzy.hub.ops.selfchecks import record_self_check

    done = await _write(
        request,
        lambda s: record_self_check(
            s, body.items, body.findings, check_id=check_id, performed_on=body.performed_on
        ),
    )
    return {"ok": True, **done}


@router.post("/self-checks/ad-hoc", dependencies=WRITE, status_code=201, summary="登记一次不定期安全自查")
async def create_ad_hoc_self_check(request: Request, body: SelfCheckResultIn) -> dict[str, Any]:
    from ggzy.hub.ops.selfchecks import record_self_check

    done = await _write(
        request,
        lambda s: record_self_check(
            s, body.items, body.findings, province=body.province, performed_on=body.performed_on
        ),
    )
    return {"ok": True, **done}


@router.get(
    "/security-bulletin",
    dependencies=READ,
    summary="信息安全通报：安全事件、审计发现、安全自查；可导出 xlsx/pdf",
)
async def read_security_bulletin(
    request: Request, period: PeriodQuery, province: Province = None, format: Format = "json"
) -> Any:
    from ggzy.hub.ops.selfchecks import security_bulletin

    scope = _scope(request, province)
    chosen = _period(period)
    report = await _read(request, lambda c: security_bulletin(c, chosen, _now(), scope))
    if format != "json":
        return _export(report, format, f"security-bulletin-{chosen.label}.{format}")
    return {
        "ok": True,
        "title": report.title,
        "sections": [{"heading": x.heading, "headers": x.headers, "rows": x.rows} for x in report.sections],
    }


@router.post("/security-bulletin/publish", dependencies=ASSESS, summary="发布信息安全通报，通知各省")
async def publish_bulletin(request: Request, period: PeriodQuery, tasks: BackgroundTasks) -> dict[str, Any]:
    from ggzy.hub.ops.selfchecks import publish_security_bulletin

    chosen = _period(period)
    sent = await _write(request, lambda s: publish_security_bulletin(s, chosen))
    _deliver_later(request, tasks)
    return {"ok": True, "data": [n.to_dict() for n in sent], "count": len(sent)}


# --- change requests and the pre-launch security check (Art. 22) ---


class ChangeIn(BaseModel):
    province: str = Field(min_length=2, max_length=2)
    kind: Literal["launch", "upgrade"]
    title: str = Field(min_length=1, max_length=300)
    description: str = Field("", max_length=5000)
    node_id: str | None = Field(None, max_length=64, description="前置机升级时填写（国家平台）")
    component: Literal["software", "os", "python", "database"] | None = None
    to_version: str | None = Field(None, max_length=200)


class ChangeCheckIn(BaseModel):
    items: dict[str, dict[str, str]]


class DecisionIn(BaseModel):
    note: str = Field("", max_length=5000)


class ChangeResultIn(BaseModel):
    succeeded: bool
    note: str = Field("", max_length=5000)


@router.get("/changes", dependencies=READ, summary="系统上线与升级的变更申请")
async def read_changes(request: Request, province: Province = None) -> dict[str, Any]:
    from ggzy.hub.ops.changes import list_changes

    scope = _scope(request, province)
    found = await _read(request, lambda c: list_changes(c, scope))
    return {"ok": True, "data": found, "count": len(found)}


@router.post("/changes", dependencies=WRITE, status_code=201, summary="提出系统上线或升级申请")
async def create_change(request: Request, body: ChangeIn) -> dict[str, Any]:
    from ggzy.hub.ops.changes import request_change

    change = await _write(
        request,
        lambda s: request_change(
            s,
            body.province,
            body.kind,
            body.title,
            body.description,
            node_id=body.node_id,
            component=body.component,
            to_version=body.to_version,
        ),
    )
    return {"ok": True, **change}


@router.post("/changes/{change_id}/check", dependencies=WRITE, summary="登记上线前安全检查（逐项）")
async def check_change(request: Request, change_id: IdPath, body: ChangeCheckIn) -> dict[str, Any]:
    from ggzy.hub.ops.changes import record_prelaunch_check

    return {"ok": True, **await _write(request, lambda s: record_prelaunch_check(s, change_id, body.items))}


@router.post("/changes/{change_id}/approve", dependencies=WRITE, summary="审核通过（须由申请人以外的人员）")
async def approve(request: Request, change_id: IdPath, body: DecisionIn) -> dict[str, Any]:
    from ggzy.hub.ops.changes import approve_change

    return {"ok": True, **await _write(request, lambda s: approve_change(s, change_id, body.note))}


@router.post(
    "/changes/{change_id}/reject", dependencies=WRITE, summary="驳回（须由申请人以外的人员，写明理由）"
)
async def reject(request: Request, change_id: IdPath, body: DecisionIn) -> dict[str, Any]:
    from ggzy.hub.ops.changes import reject_change

    return {"ok": True, **await _write(request, lambda s: reject_change(s, change_id, body.note))}


@router.post("/changes/{change_id}/result", dependencies=WRITE, summary="登记实施结果")
async def change_result(request: Request, change_id: IdPath, body: ChangeResultIn) -> dict[str, Any]:
    from ggzy.hub.ops.changes import record_result

    return {
        "ok": True,
        **await _write(request, lambda s: record_result(s, change_id, body.succeeded, body.note)),
    }


# --- notices to provinces ---


class MessageIn(BaseModel):
    provinces: list[str] | None = Field(
        None, max_length=40, description="收件省份代码；不填即发给所有已登记节点的省份"
    )
    title: str = Field(min_length=1, max_length=300)
    body: str = Field("", max_length=5000)


class NationalOutageIn(BaseModel):
    starts_at: Moment
    ends_at: Moment
    impact: str = Field(min_length=1, max_length=2000)
    provinces: list[str] | None = Field(None, max_length=40, description="不填即通知所有省份")


@router.get(
    "/province-notices", dependencies=READ, summary="国家平台发给省份的通知（整改、通报、停用、考核、通知）"
)
async def read_province_notices(
    request: Request,
    province: Province = None,
    unread: bool = False,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="上一页最后一条的编号")] = None,
) -> dict[str, Any]:
    from ggzy.hub.ops.notices import list_notices, unread_count

    scope = _scope(request, province)

    def load(connection: Connection) -> dict[str, Any]:
        found = list_notices(connection, scope, unread_only=unread, before=before)
        counted = unread_count(connection, scope) if scope is not None else None
        return {"data": [n.to_dict() for n in found], "count": len(found), "unread": counted}

    return {"ok": True, **await _read(request, load)}


@router.post("/province-notices/{notice_id}/read", dependencies=WRITE, summary="本省人员将通知标为已读")
async def read_province_notice(request: Request, notice_id: IdPath) -> dict[str, Any]:
    from ggzy.hub.ops.notices import mark_read

    return {"ok": True, **(await _write(request, lambda s: mark_read(s, notice_id))).to_dict()}


@router.post("/province-notices/read-all", dependencies=WRITE, summary="本省人员将全部通知标为已读")
async def read_all_province_notices(request: Request) -> dict[str, Any]:
    from ggzy.hub.ops.notices import mark_all_read

    return {"ok": True, "marked": await _write(request, mark_all_read)}


@router.post(
    "/province-notices", dependencies=ASSESS, status_code=201, summary="国家平台向一个或所有省份发通知"
)
async def create_message(request: Request, body: MessageIn, tasks: BackgroundTasks) -> dict[str, Any]:
    from ggzy.hub.ops.notices import send_message

    sent = await _write(request, lambda s: send_message(s, body.provinces, body.title, body.body))
    _deliver_later(request, tasks)
    return {"ok": True, "data": [n.to_dict() for n in sent], "count": len(sent)}


@router.post("/national-outages", dependencies=ASSESS, status_code=201, summary="国家平台计划停用，通知各省")
async def create_national_outage(
    request: Request, body: NationalOutageIn, tasks: BackgroundTasks
) -> dict[str, Any]:
    from ggzy.hub.ops.notices import announce_national_outage

    sent = await _write(
        request,
        lambda s: announce_national_outage(s, body.starts_at, body.ends_at, body.impact, body.provinces),
    )
    _deliver_later(request, tasks)
    return {"ok": True, "data": [n.to_dict() for n in sent], "count": len(sent)}


@router.post("/notices/publish", dependencies=ASSESS, summary="将通报名单通知到各相关省份")
async def publish_notices(request: Request, tasks: BackgroundTasks) -> dict[str, Any]:
    from ggzy.hub.ops.notices import publish_notice_list

    sent = await _write(request, lambda s: publish_notice_list(s, s.now()))
    _deliver_later(request, tasks)
    return {"ok": True, "data": [n.to_dict() for n in sent], "count": len(sent)}


@router.post("/assessment/publish", dependencies=ASSESS, summary="将考核结果通知到各省")
async def publish_assessment(request: Request, period: PeriodQuery, tasks: BackgroundTasks) -> dict[str, Any]:
    from ggzy.hub.ops.assessment import assess_province
    from ggzy.hub.ops.notices import publish_assessments

    chosen = _period(period)

    def publish(session: OpsSession) -> list[Any]:
        assessments = [
            assess_province(session.connection, p, chosen, session.settings)
            for p in _provinces(session.connection)
        ]
        return publish_assessments(session, assessments)

    sent = await _write(request, publish)
    _deliver_later(request, tasks)
    return {"ok": True, "data": [n.to_dict() for n in sent], "count": len(sent)}


# --- signed node routes ---


class NodeDrillIn(BaseModel):
    held_on: Day
    scenario: str = Field(min_length=1, max_length=300)
    participants: list[str] = Field(default_factory=list, max_length=200)
    recovery_seconds: Seconds | None = None
    data_loss_records: Count | None = None
    findings: str = Field("", max_length=5000)
    detail: dict[str, Any] = Field(default_factory=dict)


@router.get("/node/conditions", summary="节点自检：国家平台掌握的本省运行管理问题（签名）")
async def node_conditions(request: Request) -> dict[str, Any]:
    from ggzy.hub.ops.doctor import hub_findings

    node = await signed_node(request, await read_body(request, 0))
    ops = hub_of(request).settings.ops
    findings = await _read(request, lambda c: hub_findings(c, node.province, ops, _now()))
    return {"ok": True, "province": node.province, "node_id": node.node_id, **findings}


@router.post("/node/drills", status_code=201, summary="节点上报应急演练结果（ggzy drill，签名）")
async def node_drill(request: Request) -> dict[str, Any]:
    from ggzy.hub.ops.preparedness import record_drill

    body = await read_body(request, 64 * 1024)
    node = await signed_node(request, body)
    check_content_type(request)
    try:
        drill = NodeDrillIn.model_validate(parse_json_body(body))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "$"
        raise HubError(
            400, "E-REQ-SHAPE", f"演练报文格式错误：{where} {first['msg']}", f"malformed drill: {where}"
        ) from None
    actor = Actor(
        f"node:{node.node_id}",
        "node",
        node.province,
        source_of(request),
        getattr(request.state, "request_id", "-"),
    )
    recorded = await _write(
        request,
        lambda s: record_drill(
            s,
            node.province,
            drill.held_on,
            drill.scenario,
            drill.participants,
            recovery_seconds=drill.recovery_seconds,
            data_loss_records=drill.data_loss_records,
            findings=drill.findings,
            origin="tool",
            detail={**drill.detail, "node_id": node.node_id},
        ),
        actor,
    )
    return {"ok": True, **recorded.to_dict()}
