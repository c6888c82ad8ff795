"""Statistics endpoints (filled in by ggzy/hub/stats.py)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])
