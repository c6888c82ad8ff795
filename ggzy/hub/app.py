"""The hub's web application: ``create_app(settings)`` builds everything a process needs.

The process keeps no state that matters between requests (nonces, batches, statistics live in the
database), so several processes or hosts can serve one PostgreSQL database behind a load balancer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ggzy import __version__
from ggzy.hub.errors import HubError, error_body, error_response
from ggzy.hub.metrics import HubMetrics
from ggzy.hub.models import account_tables, audit_tables
from ggzy.security.accounts import AccountService, account_service
from ggzy.security.audit import AuditLog, open_audit_log
from ggzy.security.fieldcrypt import FieldEncryptor, install_field_encryption
from ggzy.settings import HubSettings, SecuritySettings, get_settings
from ggzy.store import check_durability, make_engine
from ggzy.store.migrate import is_current, upgrade
from ggzy.validation import Validator

__all__ = ["MIGRATIONS", "HubState", "create_app"]

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class HubState:
    settings: HubSettings
    engine: Engine
    validator: Validator
    audit: AuditLog
    metrics: HubMetrics
    accounts: AccountService


def build_state(
    settings: HubSettings, *, migrate: bool = True, security: SecuritySettings | None = None
) -> HubState:
    engine = make_engine(settings.db_url)
    check_durability(engine)
    if migrate:
        upgrade(engine, MIGRATIONS)
    audit = open_audit_log(audit_tables, settings.key_dir, settings.audit_digest)
    install_field_encryption(
        FieldEncryptor.from_key_file(settings.key_dir / "field.key", settings.field_cipher)
    )
    return HubState(
        settings=settings,
        engine=engine,
        validator=Validator(),
        audit=audit,
        metrics=HubMetrics(),
        accounts=account_service(
            engine,
            account_tables,
            audit,
            security or get_settings().security,
            settings.key_dir / "accounts.key",
            national=True,
        ),
    )


def create_app(
    settings: HubSettings,
    *,
    migrate: bool = True,
    state: HubState | None = None,
    security: SecuritySettings | None = None,
) -> FastAPI:
    # without an explicit one, the configured [security] section (env, ggzy.toml), not bare defaults
    security = security or get_settings().security
    hub = state or build_state(settings, migrate=migrate, security=security)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        from ggzy.hub.anchors import anchor_periodically, hub_sinks
        from ggzy.hub.portal.projection import run_periodically

        projection = asyncio.create_task(run_periodically(hub.engine, settings.portal_refresh_seconds))
        configured = get_settings()
        anchoring = asyncio.create_task(
            anchor_periodically(
                hub, hub_sinks(configured.backup, configured.audit), configured.audit.checkpoint_minutes * 60
            )
        )
        yield
        projection.cancel()
        anchoring.cancel()
        hub.engine.dispose()

    app = FastAPI(
        title="ggzy-exchange 国家平台数据交换接口",
        version=__version__,
        description="省级交换前置系统向国家平台上传数据、获取反馈与对账的接口。协议说明见 docs/protocol.md。",
        lifespan=lifespan,
        docs_url=None,  # ggzy.web.api_docs: Swagger UI from the package, not a CDN
        redoc_url=None,
    )
    app.state.hub = hub

    app.add_middleware(RequestIdMiddleware, metrics=hub.metrics)

    def page(request: Request, status: int, code: str, zh: str, en: str) -> Response | None:
        """A person's browser on a page gets a page; nodes and scripts keep the JSON shape."""
        from ggzy.web.layer import wants_html

        return app.state.people.error_page(request, status, code, zh, en) if wants_html(request) else None

    @app.exception_handler(HubError)
    async def hub_error(request: Request, error: HubError) -> Response:
        if error.audit:
            from ggzy.hub.api.common import audit_refusal

            audit_refusal(request, hub, error)
        shown = page(request, error.status, error.code, error.message_zh, error.message_en)
        return shown or error_response(request, error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        shown = page(request, 422, "E-REQ-PARAMETER", f"请求参数有误：{where}", str(first.get("msg", "")))
        if shown is not None:
            return shown
        body = error_body(
            "E-REQ-PARAMETER",
            f"请求参数错误：{where} {first.get('msg', '')}",
            f"invalid request parameter: {where} {first.get('msg', '')}",
            getattr(request.state, "request_id", "-"),
        )
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        from ggzy.web.layer import HTTP_ERRORS

        if (
            shown := page(
                request,
                error.status_code,
                *HTTP_ERRORS.get(error.status_code, (f"E-HTTP-{error.status_code}", "请求错误", "")),
            )
        ) is not None:
            return shown
        code = {404: "E-HTTP-NOT-FOUND", 405: "E-HTTP-METHOD"}.get(
            error.status_code, f"E-HTTP-{error.status_code}"
        )
        zh = {404: "接口不存在", 405: "请求方法不被允许"}.get(error.status_code, "请求错误")
        body = error_body(code, zh, str(error.detail), getattr(request.state, "request_id", "-"))
        return JSONResponse(body, status_code=error.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> Response:
        # A failure of the hub itself keeps the one error shape, so a node can tell it apart from a
        # refusal by status alone (5xx: retry later with the same batch id). The server logs the trace.
        # A person on a page reads a page instead, with the request id to quote.
        request_id = getattr(request.state, "request_id", "-")
        from ggzy.web.layer import HTTP_ERRORS

        code, zh, en = HTTP_ERRORS[500]
        if (shown := page(request, 500, code, zh, f"{en} ({type(error).__name__})")) is not None:
            return shown
        body = error_body(
            "E-HUB-INTERNAL",
            "国家平台内部错误，请稍后用同一批次号重试",
            f"internal error of the hub ({type(error).__name__}); retry later with the same batch id",
            request_id,
        )
        return JSONResponse(body, status_code=500, headers={"X-Request-ID": request_id})

    from ggzy.hub.api import anchors, exchange, health, heartbeat, ops, people, reconcile, stats
    from ggzy.web import install_people_layer

    install_people_layer(app, hub.accounts, security, site="国家平台")
    app.include_router(health.router)
    app.include_router(exchange.router)
    app.include_router(reconcile.router)
    app.include_router(heartbeat.router)
    app.include_router(anchors.router)
    app.include_router(stats.router)
    ops.install(app)
    app.include_router(people.router)
    from ggzy.hub.portal.routes import install as install_portal

    install_portal(app)
    from ggzy.web.api_docs import install_api_docs
    from ggzy.web.network import guard_operations_paths, trust_proxies

    install_api_docs(app, "国家平台数据交换接口")
    guard_operations_paths(app, security.management_networks, security.metrics_token)
    trust_proxies(app, settings.trusted_proxies)  # last: outermost, every part sees the resolved address
    return app


class RequestIdMiddleware:
    """Give every request an id (the caller's ``X-Request-ID`` when usable) and count it by route.

    A plain ASGI middleware: ``@app.middleware("http")`` would stream every body through a task
    and a queue of its own, and an upload is a megabyte or more.
    """

    def __init__(self, app: ASGIApp, metrics: HubMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode("latin-1")
        request_id = given if 0 < len(given) <= 64 and given.isprintable() else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = [500]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)
        route = scope.get("route")
        self.metrics.requests.labels(
            scope["method"], getattr(route, "path", "unmatched"), str(status[0])
        ).inc()


def migrations_current(hub: HubState) -> bool:
    return is_current(hub.engine, MIGRATIONS)
