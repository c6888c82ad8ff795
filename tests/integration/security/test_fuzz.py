"""API fuzz run: schemathesis against the hub's /openapi.json, bounded (~15 cases per operation).

No case may end in a 5xx, and no people's route may answer an anonymous caller with anything but
401/403 (an authorisation bypass would show as a 2xx or a 4xx past the sign-in check).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from starlette.types import Receive, Scope, Send

from ggzy.hub.app import create_app
from ggzy.settings import HubSettings

_WORKDIR = Path(tempfile.mkdtemp(prefix="ggzy-fuzz-"))
_HUB = create_app(
    HubSettings(db_url=f"sqlite:///{_WORKDIR / 'hub.db'}", key_dir=_WORKDIR / "keys"),
)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The hub as seen from inside the management network (so refusals are about sessions)."""
    if scope["type"] == "http":
        scope = {**scope, "client": ("127.0.0.1", 40000)}
    await _HUB(scope, receive, send)


schema = schemathesis.openapi.from_asgi("/openapi.json", app)
PEOPLE = ("/api/v1/people/", "/auth/api/me")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_server_error_and_no_authorisation_bypass(case: Any) -> None:
    response = case.call()
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
    if case.path.startswith(PEOPLE):
        wrong_method = case.method.upper() != case.operation.method.upper()  # schemathesis also tries these
        allowed = (401, 403, 405) if wrong_method else (401, 403)
        assert response.status_code in allowed, (case.method, case.formatted_path, response.status_code)
