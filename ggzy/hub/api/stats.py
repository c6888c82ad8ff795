"""Statistics for a node: its own province's pass, timely and repair rates (Art. 8, 9, 11).

A province checks its uploads against what the hub counted; it sees its own province only, never
another's (the national overview is for the national operators, on the command line).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from ggzy.hub.api.common import hub_of, read_body, signed_node
from ggzy.hub.errors import HubError
from ggzy.hub.stats import StatsRangeError, check_range, province_summary
from ggzy.web.bounds import FIRST_DAY, LAST_DAY

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])


@router.get(
    "",
    summary="本省数据质量统计：合格率、及时报送率、修复成功率 (own province's rates)",
    responses={400: {"description": "统计期间无效（E-REQ-RANGE）"}},
)
async def own_statistics(
    request: Request,
    start: Annotated[
        dt.date,
        Query(alias="from", ge=FIRST_DAY, le=LAST_DAY, description="起始日期 YYYY-MM-DD（北京时间，含当日）"),
    ],
    end: Annotated[
        dt.date,
        Query(alias="to", ge=FIRST_DAY, le=LAST_DAY, description="截止日期 YYYY-MM-DD（北京时间，含当日）"),
    ],
    table: Annotated[str | None, Query(max_length=64, description="只看一张数据表（表名或 DATA_NO）")] = None,
    top: Annotated[int, Query(ge=1, le=200, description="返回的规则条数上限")] = 10,
) -> dict[str, Any]:
    hub = hub_of(request)
    node = await signed_node(request, await read_body(request, 0))
    try:
        check_range(start, end)
    except StatsRangeError as exc:
        raise HubError(400, exc.code, exc.message_zh, exc.message_en) from None

    def load() -> dict[str, Any]:
        with hub.engine.connect() as connection:
            summary = province_summary(connection, node.province, start, end, table, top_rules=top)
        return summary.to_dict()

    return {"ok": True, **await run_in_threadpool(load)}
