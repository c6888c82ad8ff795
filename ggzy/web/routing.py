"""``PeopleRoute``: check who is calling before FastAPI reads the request body.

FastAPI parses a JSON body before it runs dependencies, so without this an anonymous caller who sends
a malformed body would learn "422" where they must only learn "401". A router of people's routes is
``APIRouter(route_class=PeopleRoute)``; the check is the route's own ``require()`` dependency, run
once more up front (the principal is cached on the request, so the session is read once).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

__all__ = ["PeopleRoute"]


class PeopleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        checks = [
            dependant.call
            for dependant in self.dependant.dependencies
            if dependant.call is not None and getattr(dependant.call, "permission", None) is not None
        ]

        async def checked(request: Request) -> Response:
            from fastapi.concurrency import run_in_threadpool

            for check in checks:
                await run_in_threadpool(check, request)
            return await handler(request)

        return checked
