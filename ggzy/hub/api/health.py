"""Liveness, readiness and metrics (no authentication: monitored from the operations network)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from ggzy.hub.api.common import hub_of

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="存活检查 (liveness)")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="就绪检查：数据库可达、迁移为最新、非维护模式 (readiness)")
def readyz(request: Request) -> JSONResponse:
    from ggzy.hub.app import migrations_current

    hub = hub_of(request)
    checks: dict[str, str] = {}
    try:
        with hub.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
        checks["migrations"] = "ok" if migrations_current(hub) else "pending"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    checks["maintenance"] = "on" if hub.settings.maintenance else "off"
    ready = (
        checks.get("database") == "ok" and checks.get("migrations") == "ok" and not hub.settings.maintenance
    )
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus 指标")
def metrics(request: Request) -> Response:
    return Response(generate_latest(hub_of(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)
