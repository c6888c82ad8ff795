"""Reconciliation endpoints: a node compares its counts and digests with the hub's (Art. 8)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, ValidationError

from ggzy.hub.api.common import hub_of, read_body, signed_node, source_of
from ggzy.hub.api.exchange import check_content_type, parse_json_body
from ggzy.hub.errors import HubError
from ggzy.hub.reconcile import (
    bucket_contents,
    bucket_digest,
    content_bucket_digest,
    day_summary,
    record_mismatch,
)
from ggzy.security.audit import AuditEntry
from ggzy.security.crypto import Digest

router = APIRouter(prefix="/api/v1/reconcile", tags=["reconcile"])


@router.get("", summary="对账：本省某日各数据表的记录数和摘要 (counts and digests of a day)")
async def reconcile_day(
    request: Request,
    day: Annotated[dt.date, Query(description="YYYY-MM-DD（北京时间，节点获取数据的日期）")],
    table: Annotated[str | None, Query(max_length=64, description="只看一张表；给出时可加 keys=true")] = None,
    keys: Annotated[
        bool, Query(description="同时返回该表该日的 key:version 列表及每条记录的内容摘要 records")
    ] = False,
    algorithm: Annotated[Digest, Query(description="摘要算法 SHA256 或 SM3")] = Digest.SHA256,
) -> dict[str, Any]:
    hub = hub_of(request)
    node = await signed_node(request, await read_body(request, 0))
    if keys and table is None:
        raise HubError(400, "E-REQ-PARAMETER", "keys=true 时必须指定 table", "keys=true needs a table")

    def load() -> dict[str, Any]:
        with hub.engine.connect() as connection:
            if table is None:
                return {
                    "day": day.isoformat(),
                    "algorithm": algorithm.value,
                    "tables": day_summary(connection, node.province, day, algorithm),
                }
            items = bucket_contents(connection, node.province, table, day)
            pairs = [(k, v) for k, v, _ in items]
            answer: dict[str, Any] = {
                "day": day.isoformat(),
                "algorithm": algorithm.value,
                "table": table,
                "count": len(items),
                "digest": bucket_digest(pairs, algorithm),
                "content_digest": content_bucket_digest(items, algorithm),
            }
            if keys:
                answer["keys"] = [f"{k}:{v}" for k, v in sorted(pairs)]
                answer["records"] = [[k, v, c] for k, v, c in sorted(items)]
            return answer

    return await run_in_threadpool(load)


class MismatchReport(BaseModel):
    table: str = Field(max_length=64)
    day: dt.date
    local_count: int = Field(ge=0, le=2**31 - 1)  # the column is a 32-bit INTEGER
    missing_at_hub: list[str] = Field(default_factory=list, max_length=100_000)
    unknown_locally: list[str] = Field(default_factory=list, max_length=100_000)
    content_differs: list[str] = Field(default_factory=list, max_length=100_000)
    note: str = Field("", max_length=2000)


@router.post("/mismatches", summary="报告对账不一致 (report a mismatch to the national operators)")
async def report_mismatch(request: Request) -> dict[str, Any]:
    hub = hub_of(request)
    body = await read_body(request, hub.settings.max_body_bytes)
    node = await signed_node(request, body)
    check_content_type(request)
    try:
        report = MismatchReport.model_validate(parse_json_body(body))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "$"
        raise HubError(
            400,
            "E-REQ-SHAPE",
            f"对账报告格式错误：{where} {first['msg']}",
            f"malformed mismatch report: {where}: {first['msg']}",
        ) from None

    def store() -> int:
        with hub.engine.connect() as plain:
            connection = plain.execution_options(sqlite_begin="IMMEDIATE")
            with connection.begin():
                report_id = record_mismatch(
                    connection,
                    node.node_id,
                    node.province,
                    report.table,
                    report.day,
                    report.local_count,
                    report.missing_at_hub,
                    report.unknown_locally,
                    report.note,
                    report.content_differs,
                )
                hub.audit.append(
                    connection,
                    AuditEntry(
                        action="reconcile.mismatch",
                        object=f"node:{node.node_id}/{report.table}/{report.day}",
                        outcome="success",
                        account=f"node:{node.node_id}",
                        role="node",
                        source=source_of(request),
                        request_id=request.state.request_id,
                        detail={
                            "local": report.local_count,
                            "missing_at_hub": len(report.missing_at_hub),
                            "content_differs": len(report.content_differs),
                        },
                    ),
                )
                return report_id

    return {"ok": True, "report_id": await run_in_threadpool(store)}
