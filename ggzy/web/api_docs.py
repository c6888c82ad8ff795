"""``/docs``: Swagger UI from the package's own static files (an intranet has no CDN).

FastAPI's built-in page loads Swagger UI from a CDN with an inline script; this one loads
``/static/vendor/swagger-ui/`` (built from the npm package ``swagger-ui-dist`` by ``make``, like
ECharts) and a small start script of its own, so the page needs no inline script. The app is
created with ``docs_url=None, redoc_url=None`` and calls :func:`install_api_docs`; the operations
guard (``ggzy.web.network``) keeps ``/docs`` and ``/openapi.json`` to the management networks.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from markupsafe import escape

__all__ = ["install_api_docs"]

VENDOR = Path(__file__).parent / "static" / "vendor" / "swagger-ui"

_PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
  <meta charset="utf-8">
  <title>{title} · 接口文档</title>
  <link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">
</head>
<body>
  {missing}
  <div id="swagger-ui" data-openapi="{openapi}"></div>
  <script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
  <script src="/static/api-docs.js"></script>
</body>
</html>
"""

_MISSING = (
    '<p style="padding:12px">接口文档的页面文件尚未构建（运行 make assets）；'
    '接口说明见 <a href="/openapi.json">/openapi.json</a>。</p>'
)


def install_api_docs(app: FastAPI, title: str) -> None:
    openapi = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        built = (VENDOR / "swagger-ui-bundle.js").is_file()
        return HTMLResponse(
            _PAGE.format(title=escape(title), openapi=escape(openapi), missing="" if built else _MISSING)
        )
