"""What the hub's portal and the node's smaller one share, besides the sign-in layer itself.

- templates under ``ggzy/web/templates/portal/``: ``_layout.html`` (navigation, the portal's css and
  scripts), ``_macros.html`` (rate cells, charts, durations, page links) and ``audit.html`` (the
  安全审计员's search page, the same on both sides);
- static files under ``/static``: ``portal.css``, ``portal.js`` (draws every chart from the JSON option
  embedded beside it) and ``vendor/echarts.min.js`` (built by ``make assets``, never from a CDN);
- :func:`base_option` and :func:`percent` for ECharts options built as plain dicts;
- :func:`beijing`, the template filter showing a stored UTC time as Beijing wall-clock time;
- :func:`nav_for` and :func:`render_page` for a portal's navigation and pages;
- :func:`portal_now` (the clock a test may set on ``app.state.portal_clock``) and the request
  parameters and principals both portals' routes declare (``DateQuery``, ``DataReader`` …).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from ggzy.security.permissions import Permission, Principal, require
from ggzy.web.bounds import FIRST_DAY, LAST_DAY

__all__ = [
    "ECHARTS",
    "MARK_LABEL",
    "SHANGHAI",
    "XLSX",
    "Anyone",
    "DataReader",
    "DateQuery",
    "EndQuery",
    "Exporter",
    "NavItem",
    "PageQuery",
    "RuleQuery",
    "base_option",
    "beijing",
    "beijing_hour",
    "download",
    "nav_for",
    "percent",
    "portal_now",
    "render_page",
]

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
# Where `make assets` puts the charting library both portals load (git-ignored, package data).
ECHARTS = Path(__file__).parent / "static" / "vendor" / "echarts.min.js"

NavItem = tuple[str, str, Permission]  # (path, label, permission needed to see the entry)

DataReader = Annotated[Principal, Depends(require(Permission.DATA_READ))]
Exporter = Annotated[Principal, Depends(require(Permission.REPORTS_EXPORT))]
Anyone = Annotated[Principal, Depends(require(Permission.SELF_SERVICE))]

DateQuery = Annotated[
    dt.date | None,
    Query(alias="from", ge=FIRST_DAY, le=LAST_DAY, description="起始日期 YYYY-MM-DD（北京时间，含）"),
]
EndQuery = Annotated[
    dt.date | None,
    Query(alias="to", ge=FIRST_DAY, le=LAST_DAY, description="截止日期 YYYY-MM-DD（北京时间，含）"),
]
RuleQuery = Annotated[str | None, Query(max_length=48, description="规则代码，如 E-FIELD-REQUIRED")]
PageQuery = Annotated[int, Query(ge=1, le=100_000, description="页码")]

_PALETTE = ["#1f6fb2", "#e07b39", "#3a9d5d", "#c0392b", "#7e57c2", "#8d6e63"]
_TEXT = {"fontFamily": "inherit"}


def portal_now(request: Request) -> dt.datetime:
    """Now, or the moment a test set on ``app.state.portal_clock``."""
    clock: Callable[[], dt.datetime] | None = getattr(request.app.state, "portal_clock", None)
    return clock() if clock is not None else dt.datetime.now(dt.UTC)


def beijing(value: str | dt.datetime | None) -> str:
    """An ISO time (or an aware/UTC datetime) as Beijing wall-clock time, the way operators read it.

    Pages say once (in the footer) that their times are Beijing time, so the value carries no label.
    """
    if not value:
        return "—"
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def base_option(title: str) -> dict[str, Any]:
    """The common frame of every chart: title, legend, palette, tooltip, grid, accessible decals.

    Title, legend and the axes' names each have a band of their own (title at the top, the legend
    under it, the plot below both), so none draws over another; target lines label themselves inside
    the plot, where they are never clipped at its right edge.
    """
    return {
        "title": {"text": title, "left": 8, "top": 6, "textStyle": {"fontSize": 15, **_TEXT}},
        "legend": {"top": 34, "left": 8, "type": "scroll"},
        "color": _PALETTE,
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 16, "right": 24, "top": 92, "bottom": 16, "containLabel": True},
        "textStyle": _TEXT,
        "aria": {"enabled": True, "decal": {"show": True}},
    }


MARK_LABEL = {"position": "insideEndTop", "fontSize": 11}  # a target line's label, inside the plot


def beijing_hour(value: str | dt.datetime) -> str:
    """An hour bucket (ISO, UTC) as a chart's axis label in Beijing time: ``12-08 07时``."""
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(SHANGHAI).strftime("%m-%d %H时")


def percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 2)


def nav_for(items: Sequence[NavItem], principal: Principal) -> list[dict[str, str]]:
    """The entries of ``items`` the principal's role may open (the others are not even shown)."""
    return [{"href": href, "label": label} for href, label, needed in items if principal.may(needed)]


def render_page(
    request: Request, template: str, principal: Principal, nav: Sequence[NavItem], **context: Any
) -> HTMLResponse:
    from ggzy.web.layer import people_of

    values = {"nav": nav_for(nav, principal), "path": request.url.path, **context}
    response = people_of(request).render(request, template, values)
    response.headers["Cache-Control"] = "no-store"
    return response


def download(content: bytes, name: str, media_type: str = XLSX) -> Response:
    """A file a person exported: saved under ``name``, never kept by a cache (it holds business data)."""
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
