"""Heartbeat endpoint: each node reports its health every few seconds (Art. 13, 16)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from sqlalchemy import Connection

from ggzy.hub.anchors import record_anchor
from ggzy.hub.api.common import hub_of, read_body, signed_node
from ggzy.hub.api.exchange import check_content_type, parse_json_body
from ggzy.hub.errors import HubError
from ggzy.hub.heartbeat import AuditCheckpointReport, HeartbeatReport, record_heartbeat, update_metrics
from ggzy.hub.ops.uptime import coverage_of
from ggzy.security.audit import AuditEntry
from ggzy.security.audit_anchor import Anchor
from ggzy.web.network import source_of

router = APIRouter(prefix="/api/v1/heartbeat", tags=["heartbeat"])

# A heartbeat is a few hundred bytes; anything near this is not one.
MAX_HEARTBEAT_BYTES = 64 * 1024


@router.post("", summary="节点心跳：版本、队列深度、磁盘、链路与省级平台状态 (node heartbeat)")
async def heartbeat(request: Request) -> dict[str, Any]:
    hub = hub_of(request)
    body = await read_body(request, MAX_HEARTBEAT_BYTES)
    node = await signed_node(request, body)
    check_content_type(request)
    try:
        report = HeartbeatReport.model_validate(parse_json_body(body))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "$"
        raise HubError(
            400,
            "E-REQ-SHAPE",
            f"心跳报文格式错误：{where} {first['msg']}",
            f"malformed heartbeat: {where}: {first['msg']}",
        ) from None
    received_at = dt.datetime.now(dt.UTC)

    def store() -> int:
        with hub.engine.connect() as plain:
            connection = plain.execution_options(sqlite_begin="IMMEDIATE")
            with connection.begin():
                heartbeat_id = record_heartbeat(
                    connection,
                    node.node_id,
                    node.province,
                    report,
                    received_at,
                    coverage=coverage_of(hub.settings.ops),
                )
                if report.audit_checkpoint is not None:
                    _anchor(connection, report.audit_checkpoint)
                return heartbeat_id

    def _anchor(connection: Connection, checkpoint: AuditCheckpointReport) -> None:
        """Keep the node's newest audit checkpoint off its host; a rewritten one is refused and audited."""
        anchor = Anchor(checkpoint.sequence, checkpoint.entry, checkpoint.hash, checkpoint.at)
        if record_anchor(connection, node.node_id, anchor, received_at) == "conflict":
            hub.audit.append(
                connection,
                AuditEntry(
                    action="audit.anchor-conflict",
                    object=f"node:{node.node_id}",
                    outcome="refused",
                    account=f"node:{node.node_id}",
                    role="node",
                    source=source_of(request),
                    request_id=getattr(request.state, "request_id", "-"),
                    detail={"sequence": anchor.sequence, "entry": anchor.entry_id, "hash": anchor.entry_hash},
                ),
            )

    heartbeat_id = await run_in_threadpool(store)
    update_metrics(hub.metrics, node.node_id, report)
    # The node compares server_time with its own clock: signatures fail beyond the allowed skew.
    return {"ok": True, "heartbeat_id": heartbeat_id, "server_time": received_at.isoformat()}
