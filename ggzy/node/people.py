"""The node's people routes: the shared sign-in layer and what the node's staff read over HTTP.

``GET /api/v1/people/status`` (``ops:read``) is the same snapshot ``ggzy node status`` shows; every
read is audited in the node's own chain. The node's portal pages (``ggzy.node.portal``, under
``/portal``) are mounted here too.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool

from ggzy.node.context import NodeContext
from ggzy.node.models import account_tables
from ggzy.security.accounts import account_service
from ggzy.security.audit import AuditEntry
from ggzy.security.permissions import Permission, Principal, require
from ggzy.settings import SecuritySettings
from ggzy.web import caller_of, install_people_layer
from ggzy.web.routing import PeopleRoute

__all__ = ["install_node_people", "router"]

router = APIRouter(prefix="/api/v1/people", tags=["people"], route_class=PeopleRoute)


def install_node_people(app: FastAPI, ctx: NodeContext, security: SecuritySettings) -> None:
    service = account_service(
        ctx.engine,
        account_tables,
        ctx.audit,
        security,
        ctx.settings.key_file.parent / "accounts.key",
        national=False,
    )
    install_people_layer(app, service, security, site=f"交换前置系统 {ctx.settings.node_id}")
    app.include_router(router)
    from ggzy.node.portal import install as install_portal

    install_portal(app)


@router.get("/status", summary="节点状态：队列、速率、时延、磁盘、告警 (node status)")
async def read_status(
    request: Request, principal: Annotated[Principal, Depends(require(Permission.OPS_READ))]
) -> dict[str, Any]:
    from ggzy.node.status import snapshot

    ctx: NodeContext = request.app.state.node_ctx
    found = await run_in_threadpool(snapshot, ctx)
    caller = caller_of(request)

    def audit() -> None:
        with ctx.engine.connect() as plain:
            connection = plain.execution_options(sqlite_begin="IMMEDIATE")
            with connection.begin():
                ctx.audit.append(
                    connection,
                    AuditEntry(
                        action="status.read",
                        object=f"node:{ctx.settings.node_id}",
                        outcome="success",
                        account=principal.account,
                        role=principal.role.value,
                        source=caller.source,
                        request_id=caller.request_id,
                    ),
                )

    await run_in_threadpool(audit)
    return {"ok": True, "status": _plain(found)}


def _plain(value: Any) -> Any:
    """A dataclass snapshot as JSON-ready values."""
    import dataclasses
    import datetime as dt

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value
