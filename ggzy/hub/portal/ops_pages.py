"""运行监测 and 考核: one province's operations (issue 6's services) as pages for the operators.

A page shows one province and one month at a time: availability reads that province's heartbeats
of the month, which stays bounded where a page of every province would not. A province's own
staff see only their province; the assessment page (national judgement) needs ``ops:assess``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import HTTPException
from fastapi.responses import HTMLResponse, RedirectResponse

from ggzy.hub.ops.periods import Period, month_period, parse_period
from ggzy.hub.portal.scope import scope_of
from ggzy.security.permissions import Permission, Principal, require
from ggzy.web.portal import SHANGHAI, portal_now

__all__ = ["router"]

router = APIRouter(prefix="/portal", tags=["portal"], include_in_schema=False)

OpsReader = Annotated[Principal, Depends(require(Permission.OPS_READ))]
Assessor = Annotated[Principal, Depends(require(Permission.OPS_ASSESS))]
ProvinceQuery = Annotated[str | None, Query(max_length=2, pattern=r"^\d{2}$")]
MonthQuery = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")]


def _choose(
    request: Request, principal: Principal, province: str | None, month: str | None
) -> tuple[str, Period]:

    scope = scope_of(principal)
    chosen = province or principal.province or "11"
    scope.check(chosen)
    return chosen, _month(request, month)


def _month(request: Request, month: str | None) -> Period:
    """The month asked for (this Beijing month without one); 0000-00 or 2026-13 is a 422, not a 500."""
    if not month:
        now = portal_now(request).astimezone(SHANGHAI)
        return month_period(now.year, now.month)
    try:
        return parse_period(month)  # the pattern admits 0000-00 and 9999-12: refused there
    except ValueError as exc:
        from ggzy.hub.errors import HubError

        raise HubError(422, "E-REQ-PARAMETER", f"月份无效：{exc}", f"invalid month {month!r}") from None


@router.get("/ops", response_class=HTMLResponse)
async def ops_page(
    request: Request, principal: OpsReader, province: ProvinceQuery = None, month: MonthQuery = None
) -> HTMLResponse:
    from ggzy.hub.ops.availability import province_availability
    from ggzy.hub.ops.incidents import list_incidents
    from ggzy.hub.ops.outages import list_notices
    from ggzy.hub.portal.routes import render

    chosen, period = _choose(request, principal, province, month)
    hub = request.app.state.hub
    now = portal_now(request)

    def load() -> dict[str, Any]:
        with hub.engine.connect() as connection:
            availability = province_availability(
                connection, chosen, period, hub.settings.ops, clock=lambda: now
            )
            return {
                "availability": availability.to_dict(),
                "incidents": list_incidents(connection, chosen, period.interval(), limit=100),
                "notices": list_notices(connection, chosen, period.interval()),
            }

    data = await run_in_threadpool(load)
    return render(
        request, "ops.html", principal, province=chosen, period=period, scope=scope_of(principal), **data
    )


ASSESS_TABS = (
    ("/portal/assessment", "考核"),
    ("/portal/inspections", "检查"),
    ("/portal/work/orders", "整改通知"),
)


def evidence_page(evidence: str, province: str, period: Period) -> str:
    """Where a person reads an indicator's evidence: the portal page showing it (the JSON API is for
    scripts). Unknown evidence keeps its own address."""
    month = period.label[:7]
    pages = {
        "/api/v1/ops/stats": f"/portal/provinces/{province}?from={period.first_day}&to={period.last_day}",
        "/api/v1/ops/availability": f"/portal/ops?province={province}&month={month}",
        "/api/v1/ops/backups": f"/portal/provinces/{province}",
        "/api/v1/ops/drills": f"/portal/work/preparedness?province={province}",
        "/api/v1/ops/roster": f"/portal/work/roster?province={province}",
        "/api/v1/ops/incidents": f"/portal/work/incidents?province={province}",
    }
    path = evidence.split("?", 1)[0]
    return next((page for prefix, page in pages.items() if path.startswith(prefix)), evidence)


def judged(assessment: dict[str, Any]) -> bool:
    """Whether the period holds anything to score a province on: records received, or heartbeats of
    its node. A province with neither (no node, or a node that never connected) gets no score: a
    figure computed from what is absent would only mislead."""
    value = {i["key"]: i["value"] for i in assessment["indicators"]}
    return value.get("pass_rate") is not None or bool(value.get("frontend_deployed"))


@router.get("/assessment", response_class=HTMLResponse)
async def assessment_page(
    request: Request, principal: Assessor, province: ProvinceQuery = None, month: MonthQuery = None
) -> HTMLResponse:
    """One province's assessment with its evidence; without a province, every province's score
    (national). A province with no node and no data gets no score, only the note why."""
    from ggzy.hub.ops.assessment import assess_province
    from ggzy.hub.ops.rectification import check_article35, list_orders, notice_list
    from ggzy.hub.portal.routes import render

    hub = request.app.state.hub
    now = portal_now(request)
    period = _month(request, month)
    scope = scope_of(principal)
    if province:
        scope.check(province)

    def summary() -> dict[str, Any]:
        from sqlalchemy import func, select

        from ggzy.hub.models import nodes

        with hub.engine.connect() as connection:
            counts = dict(
                connection.execute(select(nodes.c.province, func.count()).group_by(nodes.c.province)).all()
            )
            rows = []
            for code in [c for c in scope.provinces() if c < "70"]:
                registered = int(counts.get(code, 0))
                if not registered:
                    rows.append({"province": code, "registered": 0, "assessment": None})
                    continue
                found = assess_province(
                    connection, code, period, hub.settings.ops, clock=lambda: now
                ).to_dict()
                rows.append(
                    {"province": code, "registered": registered, "assessment": found, "scored": judged(found)}
                )
            return {"rows": rows, "notices": notice_list(connection, now)}

    def detail(chosen: str) -> dict[str, Any]:
        with hub.engine.connect() as connection:
            assessment = assess_province(connection, chosen, period, hub.settings.ops, clock=lambda: now)
            found = assessment.to_dict()
            for indicator in found["indicators"]:
                indicator["page"] = evidence_page(indicator["evidence"], chosen, period)
            return {
                "assessment": found,
                "scored": judged(found),
                "violations": check_article35(assessment),
                "orders": list_orders(connection, now, chosen),
                "notices": notice_list(connection, now),
            }

    if province is None:
        data = await run_in_threadpool(summary)
        return render(
            request,
            "assessment_summary.html",
            principal,
            period=period,
            scope=scope,
            tabs=ASSESS_TABS,
            **data,
        )
    data = await run_in_threadpool(detail, province)
    return render(
        request,
        "assessment.html",
        principal,
        province=province,
        period=period,
        scope=scope,
        tabs=ASSESS_TABS,
        evidence_page=lambda e: evidence_page(e, province, period),
        **data,
    )


@router.post("/assessment/issue", response_class=HTMLResponse)
async def assessment_issue(
    request: Request, principal: Assessor, province: ProvinceQuery = None, month: MonthQuery = None
) -> RedirectResponse:
    """Orders for what the province's assessment of the month shows, as ``ggzy ops orders issue`` does."""
    from ggzy.hub.ops.assessment import assess_province
    from ggzy.hub.ops.rectification import issue_orders
    from ggzy.hub.portal.work import change

    if province is None or month is None:
        raise HTTPException(400)
    period = _month(request, month)
    now = portal_now(request)

    def issue(session: Any) -> list[dict[str, Any]]:
        return issue_orders(
            session,
            assess_province(session.connection, province, period, session.settings, clock=lambda: now),
        )

    await change(request, principal, issue)
    return RedirectResponse(f"/portal/work/orders?province={province}&done=orders-issued", status_code=303)
