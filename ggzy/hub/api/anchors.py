"""``GET /api/v1/audit/anchors``: a node reads back the anchors of its own audit chain (signed)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from ggzy.hub.anchors import anchors_for
from ggzy.hub.api.common import hub_of, read_body, signed_node

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get(
    "/anchors", summary="本节点审计检查点的异地锚点，供 ggzy audit verify 比对 (the node's audit anchors)"
)
async def read_anchors(
    request: Request,
    after: Annotated[
        int, Query(ge=0, le=2**62, description="只返回记录编号大于此值的锚点（已归档部分不必比对）")
    ] = 0,
) -> dict[str, Any]:
    hub = hub_of(request)
    node = await signed_node(request, await read_body(request, 0))

    def load() -> list[dict[str, Any]]:
        with hub.engine.connect() as connection:
            return [a.to_dict() for a in anchors_for(connection, node.node_id, after)]

    return {"ok": True, "node_id": node.node_id, "anchors": await run_in_threadpool(load)}
