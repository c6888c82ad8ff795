"""The web layer's controls, each with a test that fails when the control is removed."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from signin_world import id_number
from sqlalchemy import select

from ggzy.hub.app import create_app
from ggzy.hub.models import audit_log
from ggzy.security.accounts import Caller, NewAccount
from ggzy.security.permissions import Role
from ggzy.settings import HubSettings
from ggzy.store.database import writing

INSIDE = ("127.0.0.1", 50000)  # as in conftest.py: inside the default allow-list
OUTSIDE = ("203.0.113.9", 50000)
STATS = "/api/v1/people/stats?from=2026-11-01&to=2026-11-30"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', html)
    assert found, html[:500]
    return found.group(1)


def test_security_headers_on_pages_and_api(hub_people: Any) -> None:
    for response in (
        hub_people.client().get("/auth/sign-in"),
        hub_people.client("operator").get(STATS),
        hub_people.client().get("/api/v1/people/stats"),
    ):
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
    static = hub_people.client().get("/static/ggzy.css")
    assert static.status_code == 200 and "no-store" not in static.headers.get("cache-control", "")


def test_base_template_uses_only_the_apps_own_static_files(hub_people: Any) -> None:
    page = hub_people.client().get("/auth/sign-in").text
    assert '<link rel="stylesheet" href="/static/ggzy.css">' in page
    assert "http://" not in page and "https://" not in page  # no CDN


def sign_in_with_form(http: TestClient, account: str, password: str) -> object:
    token = csrf_of(http.get("/auth/sign-in").text)
    return http.post(
        "/auth/sign-in",
        data={"account": account, "password": password, "csrf_token": token},
        follow_redirects=False,
    )


@pytest.fixture
def fresh(tmp_path: Path) -> tuple[TestClient, dict[str, str], object]:
    settings = HubSettings(db_url=f"sqlite:///{tmp_path / 'hub.db'}", key_dir=tmp_path / "keys")
    app = create_app(settings)
    service = app.state.hub.accounts
    passwords = service.bootstrap(
        NewAccount("admin", "管理员", Role.SYSADMIN, id_number=id_number(821)),
        NewAccount("audit", "审计员", Role.AUDITOR, id_number=id_number(822)),
        Caller(),
    )
    return TestClient(app, client=INSIDE), passwords, app


def test_the_pages_walk_a_first_sign_in_to_the_end(fresh: tuple[TestClient, dict[str, str], object]) -> None:
    http, passwords, _app = fresh
    first = sign_in_with_form(http, "admin", passwords["admin"])
    assert first.status_code == 303 and first.headers["location"] == "/auth/password"  # type: ignore[attr-defined]
    cookie = first.headers["set-cookie"]  # type: ignore[attr-defined]
    assert "ggzy_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain HTTP in this test: "auto" leaves it off
    page = http.get("/auth/password").text
    changed = http.post(
        "/auth/password",
        data={
            "current": passwords["admin"],
            "new": "Quiet-Lantern-58",
            "repeat": "Quiet-Lantern-58",
            "csrf_token": csrf_of(page),
        },
        follow_redirects=False,
    )
    assert changed.headers["location"] == "/auth/enrol"
    enrol = http.get("/auth/enrol").text
    assert "<svg" in enrol  # the QR code, inline
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', enrol).group(1)  # type: ignore[union-attr]
    done = http.post(
        "/auth/enrol",
        data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf_of(enrol)},
        follow_redirects=False,
    )
    assert done.headers["location"] == "/auth/account"
    me = http.get("/auth/api/me").json()
    assert (me["account"], me["role"]) == ("admin", "sysadmin")
    signed_out = http.post("/auth/sign-out", data={"csrf_token": me["csrf_token"]}, follow_redirects=False)
    assert signed_out.status_code == 303
    old_cookie = TestClient(_app, client=INSIDE)  # type: ignore[arg-type]
    old_cookie.cookies.set("ggzy_session", re.search(r"ggzy_session=([^;]+)", cookie).group(1))  # type: ignore[union-attr]
    assert old_cookie.get("/auth/api/me").json()["error"]["code"] == "E-AUTH-REQUIRED"  # ended on the server


def _walk_first_sign_in(http: TestClient, password: str, next_page: str) -> str:
    """Sign in through every stage from ``/auth/sign-in?next=…``; where the last stage lands."""
    token = csrf_of(http.get(f"/auth/sign-in?next={next_page}").text)
    http.post(
        "/auth/sign-in",
        data={"account": "admin", "password": password, "csrf_token": token, "next": next_page},
        follow_redirects=False,
    )
    page = http.get("/auth/password").text
    new = {"current": password, "new": "Quiet-Lantern-58", "repeat": "Quiet-Lantern-58"}
    http.post("/auth/password", data=new | {"csrf_token": csrf_of(page)}, follow_redirects=False)
    enrol = http.get("/auth/enrol").text
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', enrol).group(1)  # type: ignore[union-attr]
    code = {"code": pyotp.TOTP(secret).now(), "csrf_token": csrf_of(enrol)}
    return str(http.post("/auth/enrol", data=code, follow_redirects=False).headers["location"])


def test_the_last_stage_lands_on_the_page_first_asked_for(
    fresh: tuple[TestClient, dict[str, str], object],
) -> None:
    http, passwords, _app = fresh
    assert _walk_first_sign_in(http, passwords["admin"], "/portal/admin") == "/portal/admin"
    assert "ggzy_next" not in http.cookies  # used once


def test_an_offsite_next_is_not_followed(fresh: tuple[TestClient, dict[str, str], object]) -> None:
    http, passwords, _app = fresh
    assert _walk_first_sign_in(http, passwords["admin"], "//evil.example/x") == "/auth/account"


def test_cookies_are_secure_under_tls(fresh: tuple[TestClient, dict[str, str], object]) -> None:
    _http, passwords, app = fresh
    https = TestClient(app, base_url="https://hub.example", client=INSIDE)  # type: ignore[arg-type]
    response = sign_in_with_form(https, "admin", passwords["admin"])
    assert "Secure" in response.headers["set-cookie"]  # type: ignore[attr-defined]


def test_a_form_without_the_csrf_token_is_refused(fresh: tuple[TestClient, dict[str, str], object]) -> None:
    http, passwords, _app = fresh
    http.get("/auth/sign-in")  # has the pre-session cookie, but posts no token
    forged = http.post("/auth/sign-in", data={"account": "admin", "password": passwords["admin"]})
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "E-AUTH-CSRF"
    wrong = http.post(
        "/auth/sign-in", data={"account": "admin", "password": passwords["admin"], "csrf_token": "0" * 64}
    )
    assert wrong.json()["error"]["code"] == "E-AUTH-CSRF"


def test_cookie_calls_that_change_state_need_the_csrf_header(hub_people: Any) -> None:
    browser = hub_people.client("sysadmin", bearer=False)
    body = {"account": "new1", "name": "新人", "role": "auditor", "id_number": id_number(901)}
    refused = browser.post("/api/v1/people/accounts", json=body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "E-AUTH-CSRF"
    token = browser.get("/auth/api/me").json()["csrf_token"]
    accepted = browser.post("/api/v1/people/accounts", json=body, headers={"X-CSRF-Token": token})
    assert accepted.status_code == 200 and accepted.json()["one_time_password"]


def test_the_management_interface_answers_only_the_allow_list(hub_people: Any) -> None:
    outside = hub_people.client("operator", source=OUTSIDE)
    for path in (STATS, "/auth/sign-in", "/auth/api/me"):
        response = outside.get(path)
        assert response.status_code == 403 and response.json()["error"]["code"] == "E-AUTH-SOURCE", path
    assert hub_people.client("operator").get(STATS).status_code == 200
    assert outside.get("/healthz").status_code == 200  # monitoring and exchange are not management


def test_a_provinces_staff_see_only_their_province_and_reads_are_audited(hub_people: Any) -> None:
    provincial = hub_people.client("operator35")
    own = provincial.get(STATS)
    assert own.status_code == 200 and own.json()["province"] == "35"
    other = provincial.get(STATS + "&province=11")
    assert other.status_code == 403 and other.json()["error"]["code"] == "E-AUTH-SCOPE"
    assert provincial.get("/api/v1/people/reconcile?day=2026-11-26&province=11").status_code == 403
    national = hub_people.client("operator").get(STATS + "&province=11")
    assert national.status_code == 200
    with hub_people.service.engine.connect() as connection:
        reads = connection.execute(
            select(
                audit_log.c.action,
                audit_log.c.object,
                audit_log.c.outcome,
                audit_log.c.account,
                audit_log.c.source,
            )
            .where(audit_log.c.action.in_(["stats.read", "reconcile.read"]))
            .order_by(audit_log.c.id)
        ).all()
    assert ("stats.read", "stats:35:2026-11-01..2026-11-30", "success", "op35", "127.0.0.1") in reads
    assert ("stats.read", "province:11", "refused", "op35", "127.0.0.1") in reads
    assert ("reconcile.read", "province:11", "refused", "op35", "127.0.0.1") in reads


def test_the_node_has_the_same_layer_and_its_intake_needs_a_token(
    tmp_path: Path, first_sign_in: Callable[..., str]
) -> None:
    import datetime as dt

    from ggzy.node.context import build_context
    from ggzy.node.intake import Intake
    from ggzy.node.intake.push_api import create_intake_app
    from ggzy.node.models import api_tokens
    from ggzy.security.api_tokens import create_token, revoke_token
    from ggzy.settings import NodeSettings

    ctx = build_context(
        NodeSettings(db_url=f"sqlite:///{tmp_path / 'node.db'}", key_file=tmp_path / "node.key"),
        key=b"\x01" * 32,
    )
    try:
        app = create_intake_app(ctx, Intake(ctx, pseudonym_key=b"\x11" * 32))
        http = TestClient(app, client=INSIDE)
        assert http.get("/api/v1/people/status").json()["error"]["code"] == "E-AUTH-REQUIRED"
        assert "frame-ancestors 'none'" in http.get("/auth/sign-in").headers["content-security-policy"]
        anonymous = http.post("/api/v1/records", json={"table": "x"})
        assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "E-AUTH-TOKEN"
        with writing(ctx.engine) as connection:
            token = create_token(connection, api_tokens, "fj-system", "admin", dt.datetime.now(dt.UTC))
        accepted = http.post("/api/v1/records", json=[], headers={"Authorization": f"Bearer {token}"})
        assert accepted.status_code != 401
        with writing(ctx.engine) as connection:
            revoke_token(connection, api_tokens, "fj-system", dt.datetime.now(dt.UTC))
        revoked = http.post("/api/v1/records", json=[], headers={"Authorization": f"Bearer {token}"})
        assert revoked.status_code == 401
        service = app.state.people.service
        passwords = service.bootstrap(
            NewAccount("admin", "管理员", Role.SYSADMIN, id_number=id_number(821)),
            NewAccount("audit", "审计员", Role.AUDITOR, id_number=id_number(822)),
            Caller(),
        )
        from ggzy.security.permissions import Principal

        password = service.create(
            Principal("admin", Role.SYSADMIN),
            NewAccount("op", "操作员", Role.OPERATOR, staff_number="3"),
            Caller(),
        )
        operator = first_sign_in(service, "op", password)
        status = http.get("/api/v1/people/status", headers={"Authorization": f"Bearer {operator}"})
        assert status.status_code == 200 and status.json()["ok"] is True
        admin = first_sign_in(service, "admin", passwords["admin"])
        assert (
            http.get("/api/v1/people/status", headers={"Authorization": f"Bearer {admin}"}).status_code == 403
        )
    finally:
        ctx.engine.dispose()


def test_hub_and_node_apps_take_the_configured_security_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Built without an explicit SecuritySettings (as ``ggzy node run`` builds the intake API), an app
    follows the [security] configuration, not the bare defaults."""
    from ggzy.node.context import build_context
    from ggzy.node.intake import Intake
    from ggzy.node.intake.push_api import create_intake_app
    from ggzy.settings import NodeSettings, get_settings

    monkeypatch.setenv("GGZY_SECURITY__LOCKOUT_FAILURES", "3")
    get_settings.cache_clear()
    try:
        hub = create_app(HubSettings(db_url=f"sqlite:///{tmp_path / 'hub.db'}", key_dir=tmp_path / "keys"))
        hub.state.hub.engine.dispose()
        ctx = build_context(
            NodeSettings(db_url=f"sqlite:///{tmp_path / 'node.db'}", key_file=tmp_path / "node.key"),
            key=b"\x01" * 32,
        )
        node = create_intake_app(ctx, Intake(ctx, pseudonym_key=b"\x11" * 32))
        ctx.engine.dispose()
    finally:
        get_settings.cache_clear()
    assert hub.state.hub.accounts.sign_in_policy.lockout_failures == 3
    assert node.state.people.service.sign_in_policy.lockout_failures == 3
