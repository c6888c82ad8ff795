"""运行监测 and 考核: one province's operations (issue 6's services) as pages for the operators.

A page shows one province and one month at a time: availability reads that province's heartbeats
of the month, which stays bounded where a page of every province would not. A province's own
staff see only their province; the assessment page (national judgement) needs ``ops:assess``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

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
    now = portal_now(request).astimezone(SHANGHAI)
    if not month:
        return chosen, month_period(now.year, now.month)
    try:
        return chosen, parse_period(month)  # the pattern admits 0000-00 and 9999-12: refused there
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


@router.get("/assessment", response_class=HTMLResponse)
async def assessment_page(
    request: Request, principal: Assessor, province: ProvinceQuery = None, month: MonthQuery = None
) -> HTMLResponse:
    from ggzy.hub.ops.assessment import assess_province
    from ggzy.hub.ops.rectification import check_article35, list_orders, notice_list
    from ggzy.hub.portal.routes import render

    chosen, period = _choose(request, principal, province, month)
    hub = request.app.state.hub
    now = portal_now(request)

    def load() -> dict[str, Any]:
        with hub.engine.connect() as connection:
            assessment = assess_province(connection, chosen, period, hub.settings.ops, clock=lambda: now)
            return {
                "assessment": assessment.to_dict(),
                "violations": check_article35(assessment),
                "orders": list_orders(connection, now, chosen),
                "notices": notice_list(connection, now),
            }

    data = await run_in_threadpool(load)
    return render(
        request,
        "assessment.html",
        principal,
        province=chosen,
        period=period,
        scope=scope_of(principal),
        **data,
    )
