"""检查 (Art. 32–33): the national operators plan scheduled and spot inspections, fill in the checklist
item by item, record findings and follow the rectification up — through :mod:`ggzy.hub.ops.inspections`,
as ``/api/v1/ops/inspections`` does, each change with its audit entry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ggzy.hub.ops.session import OpsError
from ggzy.hub.portal.ops_pages import ASSESS_TABS
from ggzy.hub.portal.scope import scope_of
from ggzy.hub.portal.work import DONE, change, read, refused
from ggzy.security.permissions import Permission, Principal, require
from ggzy.web.bounds import IdPath
from ggzy.web.forms import FormInvalid, FormReader

__all__ = ["router"]

router = APIRouter(prefix="/portal/inspections", tags=["portal"], include_in_schema=False)

Assessor = Annotated[Principal, Depends(require(Permission.OPS_ASSESS))]
ProvinceQuery = Annotated[str | None, Query(max_length=2, pattern=r"^\d{2}$")]
KINDS = {"scheduled": "定期检查", "spot": "抽检"}
RESULTS = {"pass": "符合", "fail": "不符合", "na": "不适用"}


def _render(
    request: Request, template: str, principal: Principal, status: int = 200, **context: Any
) -> HTMLResponse:
    from ggzy.hub.ops.inspections import CHECKLIST
    from ggzy.hub.portal.routes import render
    from ggzy.spec import load_regions

    response = render(
        request,
        template,
        principal,
        tabs=ASSESS_TABS,
        kinds=KINDS,
        results=RESULTS,
        checklist=CHECKLIST,
        provinces={k: v for k, v in load_regions().provinces().items() if k < "70"},
        scope=scope_of(principal),
        **context,
    )
    response.status_code = status
    return response


@router.get("", response_class=HTMLResponse)
async def inspections_page(
    request: Request, principal: Assessor, province: ProvinceQuery = None, done: str | None = None
) -> HTMLResponse:
    from ggzy.hub.ops.inspections import list_inspections

    found = await read(request, lambda c: list_inspections(c, province))
    return _render(
        request,
        "inspections.html",
        principal,
        inspections=found,
        province=province,
        flash=DONE.get(done or ""),
        values={},
        errors={},
        error=None,
    )


@router.post("", response_class=HTMLResponse)
async def inspection_plan(request: Request, principal: Assessor) -> Response:
    from ggzy.hub.ops.inspections import list_inspections, plan_inspection
    from ggzy.spec import load_regions

    form = FormReader(await request.form())
    province = form.choice("province", "省份", load_regions().provinces())
    kind = form.choice("kind", "检查方式", KINDS)
    planned = form.date("planned_on", "计划日期", required=True)
    try:
        form.done()
        assert planned is not None
        done = await change(request, principal, lambda s: plan_inspection(s, province, kind, planned))
    except (OpsError, FormInvalid) as error:
        found = await read(request, lambda c: list_inspections(c, None))
        shown = refused(error)
        return _render(request, "inspections.html", principal, inspections=found, province=None, flash=None,
                       values=form.values(), **shown)  # fmt: skip
    return RedirectResponse(f"/portal/inspections/{done['id']}?done=inspection", status_code=303)


async def _inspection(request: Request, inspection_id: int) -> dict[str, Any]:
    from ggzy.hub.ops.inspections import get_inspection

    try:
        found: dict[str, Any] = await read(request, lambda c: get_inspection(c, inspection_id))
    except OpsError:
        raise HTTPException(404) from None
    return found


@router.get("/{inspection_id}", response_class=HTMLResponse)
async def inspection_page(
    request: Request, principal: Assessor, inspection_id: IdPath, done: str | None = None
) -> HTMLResponse:
    found = await _inspection(request, inspection_id)
    return _render(request, "inspection.html", principal, inspection=found, flash=DONE.get(done or ""),
                   values={}, errors={}, error=None)  # fmt: skip


@router.post("/{inspection_id}/result", response_class=HTMLResponse)
async def inspection_result(request: Request, principal: Assessor, inspection_id: IdPath) -> Response:
    from ggzy.hub.ops.inspections import CHECKLIST, perform_inspection

    found = await _inspection(request, inspection_id)
    form = FormReader(await request.form())
    results = {
        item: {
            "result": form.choice(f"{item}.result", label, RESULTS),
            "note": form.text(f"{item}.note", "说明", max_length=2000),
        }
        for item, label in CHECKLIST.items()
    }
    findings = form.text("findings", "检查发现", max_length=20000)
    follow_text = form.text("follow_up", "整改要求", max_length=20000)
    due = form.date("follow_up_due", "整改期限")
    try:
        form.done()
        await change(
            request,
            principal,
            lambda s: perform_inspection(
                s, inspection_id, results, findings, follow_up_text=follow_text, follow_up_due=due
            ),
        )
    except (OpsError, FormInvalid) as error:
        return _render(request, "inspection.html", principal, inspection=found, flash=None,
                       values=form.values(), **refused(error))  # fmt: skip
    return RedirectResponse(f"/portal/inspections/{inspection_id}?done=inspection-result", status_code=303)


@router.post("/{inspection_id}/follow-up", response_class=HTMLResponse)
async def inspection_follow_up(request: Request, principal: Assessor, inspection_id: IdPath) -> Response:
    from ggzy.hub.ops.inspections import follow_up

    found = await _inspection(request, inspection_id)
    form = FormReader(await request.form())
    note = form.text("note", "整改跟踪情况", required=True, max_length=5000)
    try:
        form.done()
        await change(request, principal, lambda s: follow_up(s, inspection_id, note))
    except (OpsError, FormInvalid) as error:
        return _render(request, "inspection.html", principal, inspection=found, flash=None,
                       values=form.values(), **refused(error))  # fmt: skip
    return RedirectResponse(f"/portal/inspections/{inspection_id}?done=inspection-follow-up", status_code=303)
