"""Requests crafted to get around the web layer: a malformed Cookie header, forged forwarding headers,
the API documentation and metrics from outside the management networks.

Each test is the attack; the comment says what it did on the code before the fix.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from signin_world import id_number

OUTSIDE = ("203.0.113.9", 50000)


def test_a_malformed_cookie_does_not_skip_the_csrf_check(hub_people: Any) -> None:
    """``SimpleCookie`` refused the whole header, the CSRF middleware saw no session and let the call
    through, while Starlette still signed the caller in from the same header."""
    http = hub_people.client()  # no bearer token: the browser's cookie is the credential
    body = {"account": "forged1", "name": "伪造", "role": "auditor", "id_number": id_number(951)}
    for header in (
        f"ggzy_session={hub_people.tokens['sysadmin']}; a@b=1",
        f'a@b=1; ggzy_session={hub_people.tokens["sysadmin"]}; x="unterminated',
    ):
        forged = http.post("/api/v1/people/accounts", json=body, headers={"Cookie": header})
        assert forged.status_code == 403, forged.text
        assert forged.json()["error"]["code"] == "E-AUTH-CSRF"
    assert hub_people.service.info("forged1") is None


def test_a_session_cookie_without_a_token_is_refused_on_every_unsafe_method(hub_people: Any) -> None:
    http = hub_people.client()
    cookie = {"Cookie": f"ggzy_session={hub_people.tokens['sysadmin']}"}
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = http.request(method, "/api/v1/people/accounts/op/disable", headers=cookie)
        assert response.status_code == 403 and response.json()["error"]["code"] == "E-AUTH-CSRF", method


def test_x_forwarded_for_does_not_move_a_caller_into_the_management_network(hub_people: Any) -> None:
    """From outside, a forged ``X-Forwarded-For: 127.0.0.1`` is only a header: with no trusted proxy
    configured (the default) the peer address decides."""
    outside = hub_people.client("operator", source=OUTSIDE)
    forged = outside.get("/auth/api/me", headers={"X-Forwarded-For": "127.0.0.1"})
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "E-AUTH-SOURCE"


def test_api_documentation_and_schema_only_from_the_management_networks(hub_people: Any) -> None:
    outside = TestClient(hub_people.app, client=OUTSIDE, raise_server_exceptions=False)
    for path in ("/docs", "/openapi.json", "/metrics", "/docs/oauth2-redirect", "/redoc"):
        refused = outside.get(path)
        assert refused.status_code in (403, 404), (path, refused.status_code)
        if refused.status_code == 403:
            assert refused.json()["error"]["code"] == "E-AUTH-SOURCE"
    inside = hub_people.client()
    assert inside.get("/openapi.json").status_code == 200
    assert inside.get("/metrics").status_code == 200


def test_the_docs_page_loads_its_assets_from_the_package(hub_people: Any) -> None:
    """An intranet has no CDN: the Swagger UI script and style come from the app's own static files."""
    inside = hub_people.client()
    page = inside.get("/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text and "https://" not in page.text and "http://" not in page.text
    for asset in (
        "/static/vendor/swagger-ui/swagger-ui-bundle.js",
        "/static/vendor/swagger-ui/swagger-ui.css",
    ):
        assert asset in page.text
        assert inside.get(asset).status_code == 200, asset
    csp = page.headers["content-security-policy"]
    assert "cdn.jsdelivr.net" not in csp and "script-src 'self';" in csp  # no inline or foreign script


def test_the_nodes_api_documentation_is_guarded_the_same_way(node_app_people: Any) -> None:
    outside = TestClient(node_app_people.app, client=OUTSIDE, raise_server_exceptions=False)
    for path in ("/docs", "/openapi.json"):
        refused = outside.get(path)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "E-AUTH-SOURCE", path
    inside = node_app_people.client()
    assert inside.get("/openapi.json").status_code == 200
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in inside.get("/docs").text


def test_a_metrics_token_opens_metrics_only(hub_people: Any, tmp_path: Any) -> None:
    from ggzy.hub.app import create_app
    from ggzy.settings import HubSettings, SecuritySettings

    security = SecuritySettings(metrics_token="scrape-Secret-123")
    app = create_app(
        HubSettings(db_url=f"sqlite:///{tmp_path / 'hub.db'}", key_dir=tmp_path / "keys"), security=security
    )
    try:
        prometheus = TestClient(app, client=OUTSIDE, headers={"Authorization": "Bearer scrape-Secret-123"})
        assert prometheus.get("/metrics").status_code == 200
        assert prometheus.get("/openapi.json").status_code == 403
        wrong = TestClient(app, client=OUTSIDE, headers={"Authorization": "Bearer scrape-Secret-124"})
        assert wrong.get("/metrics").status_code == 403
    finally:
        app.state.hub.engine.dispose()


def test_edge_input_on_the_pages_gets_an_answer_not_a_server_error(hub_people: Any) -> None:
    """The issue's cases (500 before): the audit page and export until 9999-12-31, and U+10FFFF as the
    last character of a trade search (the SQLite prefix range computed chr(0x110000))."""
    auditor = hub_people.client("auditor")
    for path in ("/portal/audit", "/portal/audit/export"):
        for day in ("9999-12-31", "0001-01-01"):
            answer = auditor.get(path, params={"until": day, "since": day})
            assert answer.status_code < 500 and answer.status_code in (200, 422), (
                path,
                day,
                answer.text[:200],
            )
    operator = hub_people.client("operator")
    for query in ("\U0010ffff", "35\U0010ffff", "\U0010ffff\U0010ffff"):
        for path in ("/portal/trade", "/portal/api/trade"):
            found = operator.get(path, params={"q": query})
            assert found.status_code == 200, (path, found.text[:200])
