"""The ASGI application uvicorn imports in each worker (``ggzy.hub.server:app``).

``ggzy hub serve`` migrates the database once before the workers start, so workers do not.
"""

from __future__ import annotations

from ggzy.hub.app import create_app
from ggzy.runtime import settle_after_start
from ggzy.settings import get_settings

app = create_app(get_settings().hub, migrate=False, security=get_settings().security)
settle_after_start()  # the worker's application is built: a service process from here on
