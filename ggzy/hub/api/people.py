"""Read routes for people (the portal and scripts): statistics, reconciliation, feedback (Art. 8).

A province's staff (an operator account limited to a province) see only their own province: asking
for another is refused with ``E-AUTH-SCOPE`` and audited. Every read of business data by a person is
an audit entry (account, role, source, object, outcome, request id). The node-signed exchange
routes of the same data stay as they were.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from ggzy.hub.api.common import hub_of
from ggzy.hub.errors import HubError
from ggzy.hub.feedback import read_feed
from ggzy.hub.reconcile import day_summary
from ggzy.hub.registry import get_node
from ggzy.hub.stats import StatsRangeError, check_range, national_overview, province_summary
from ggzy.security.accounts import AuthError
from ggzy.security.audit import AuditEntry
from ggzy.security.crypto import Digest
from ggzy.security.permissions import Permission, Principal, require
from ggzy.web.bounds import FIRST_DAY, LAST_DAY
from ggzy.web.layer import caller_of
from ggzy.web.routing import PeopleRoute

router = APIRouter(prefix="/api/v1/people", tags=["people"], route_class=PeopleRoute)

Province = Annotated[
    str | None, Query(pattern=r"^\d{2}$", description="省份代码（两位）；省级账号只能看本省")
]


def _scope(principal: Principal, province: str | None, *, required: bool) -> str | None:
    """The province a read covers: the caller's own if limited, else the one asked for."""
    if principal.province is not None:
        if province is not None and province != principal.province:
            raise AuthError(
                403,
                "E-AUTH-SCOPE",
                f"本账号只能查看省份 {principal.province} 的数据",
                f"this account sees province {principal.province} only",
            )
        return principal.province
    if required and province is None:
        raise HubError(400, "E-REQ-PARAMETER", "请指定省份 province", "province is required")
    return province


def audit_read(
    request: Request, principal: Principal, action: str, target: str, outcome: str, **detail: Any
) -> None:
    hub = hub_of(request)
    caller = caller_of(request)
    with hub.engine.connect() as plain:
        connection = plain.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            hub.audit.append(
                connection,
                AuditEntry(
                    action=action,
                    object=target[:512],
                    outcome=outcome,
                    account=principal.account,
                    role=principal.role.value,
                    source=caller.source,
                    request_id=caller.request_id,
                    detail=detail,
                ),
            )


async def _scoped(
    request: Request, principal: Principal, action: str, province: str | None, *, required: bool
) -> str | None:
    try:
        return _scope(principal, province, required=required)
    except AuthError as error:
        await run_in_threadpool(
            audit_read, request, principal, action, f"province:{province}", "refused", code=error.code
        )
        raise


@router.get("/stats", summary="数据质量统计：合格率、及时报送率、修复成功率（省级账号只看本省）")
async def read_stats(
    request: Request,
    principal: Annotated[Principal, Depends(require(Permission.STATS_READ))],
    start: Annotated[
        dt.date,
        Query(alias="from", ge=FIRST_DAY, le=LAST_DAY, description="起始日期 YYYY-MM-DD（北京时间，含）"),
    ],
    end: Annotated[
        dt.date,
        Query(alias="to", ge=FIRST_DAY, le=LAST_DAY, description="截止日期 YYYY-MM-DD（北京时间，含）"),
    ],
    province: Province = None,
    table: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    scope = await _scoped(request, principal, "stats.read", province, required=False)
    try:
        check_range(start, end)
    except StatsRangeError as exc:
        raise HubError(400, exc.code, exc.message_zh, exc.message_en) from None
    hub = hub_of(request)

    def load() -> dict[str, Any]:
        with hub.engine.connect() as connection:
            if scope is None:
                return national_overview(connection, start, end, table).to_dict()
            return province_summary(connection, scope, start, end, table).to_dict()

    answer = await run_in_threadpool(load)
    await run_in_threadpool(
        audit_read, request, principal, "stats.read", f"stats:{scope or 'national'}:{start}..{end}", "success"
    )
    return {"ok": True, **answer}


@router.get("/reconcile", summary="对账：某省某日各表记录数和摘要（省级账号只看本省）")
async def read_reconcile(
    request: Request,
    principal: Annotated[Principal, Depends(require(Permission.DATA_READ))],
    day: Annotated[dt.date, Query(ge=FIRST_DAY, le=LAST_DAY, description="YYYY-MM-DD（北京时间）")],
    province: Province = None,
) -> dict[str, Any]:
    scope = await _scoped(request, principal, "reconcile.read", province, required=True)
    assert scope is not None
    hub = hub_of(request)

    def load() -> list[dict[str, Any]]:
        with hub.engine.connect() as connection:
            return day_summary(connection, scope, day, Digest.SHA256)

    tables = await run_in_threadpool(load)
    await run_in_threadpool(
        audit_read, request, principal, "reconcile.read", f"reconcile:{scope}:{day}", "success"
    )
    return {"ok": True, "province": scope, "day": day.isoformat(), "tables": tables}


@router.get("/feedback", summary="某节点的反馈（回执、补传要求、通知）（省级账号只看本省节点）")
async def read_feedback(
    request: Request,
    principal: Annotated[Principal, Depends(require(Permission.DATA_READ))],
    node_id: Annotated[str, Query(max_length=64, pattern=r"^[A-Za-z0-9._:-]{1,64}$")],
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    hub = hub_of(request)

    def node_province() -> str | None:
        with hub.engine.connect() as connection:
            node = get_node(connection, node_id)
        return node.province if node else None

    province = await run_in_threadpool(node_province)
    if province is None:
        raise HubError(404, "E-NODE-UNKNOWN", f"节点“{node_id}”不存在", f"no node {node_id}")
    await _scoped(request, principal, "feedback.read", province, required=False)

    def load() -> list[dict[str, Any]]:
        with hub.engine.connect() as connection:
            return read_feed(connection, node_id, after, limit)

    items = await run_in_threadpool(load)
    await run_in_threadpool(audit_read, request, principal, "feedback.read", f"feed:{node_id}", "success")
    return {"ok": True, "items": items, "next": items[-1]["cursor"] if items else after}
