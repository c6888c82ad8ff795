"""Every HTTP route of the hub and node apps declares what it needs, and the declaration holds.

The census walks all routes of both apps: each one is either in ``EXEMPT`` (sign-in steps, health
and documentation, node-signed exchange endpoints, the token-authenticated intake push) or declares
a permission with ``require()``. The census test proves that each declared route refuses an
anonymous caller (401) and every role that lacks the permission (403); the matrix test runs every
role against every route and checks the outcome both ways (refused exactly when the role lacks the
permission). A route added without ``require()`` fails the first assertion of the census.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from ggzy.security.permissions import ROLE_PERMISSIONS, Permission, Principal, Role

# path → why it needs no signed-in person; the checks below still run on it where they apply.
EXEMPT = {
    "/healthz": "health (monitoring)",
    "/readyz": "health (monitoring)",
    "/metrics": "health (monitoring)",
    "/openapi.json": "documentation",
    "/docs": "documentation",
    "/docs/oauth2-redirect": "documentation",
    "/redoc": "documentation",
    "/auth/sign-in": "sign-in",
    "/auth/totp": "sign-in step (needs the session it continues)",
    "/auth/password": "sign-in step (needs the session it continues)",
    "/auth/enrol": "sign-in step (needs the session it continues)",
    "/auth/sign-out": "ends the caller's own session",
    "/auth/api/sign-in": "sign-in",
    "/auth/api/totp": "sign-in step (needs the session it continues)",
    "/auth/api/password": "sign-in step (needs the session it continues)",
    "/auth/api/sign-out": "ends the caller's own session",
    "/api/v1/channels/{channel}/batches": "node exchange (node signature)",
    "/api/v1/feedback": "node exchange (node signature)",
    "/api/v1/spec": "node exchange (node signature)",
    "/api/v1/heartbeat": "node exchange (node signature)",
    "/api/v1/reconcile": "node exchange (node signature)",
    "/api/v1/reconcile/mismatches": "node exchange (node signature)",
    "/api/v1/stats": "node exchange (node signature)",
    "/api/v1/records": "provincial systems' intake (intake token)",
    "/api/v1/ops/node/conditions": "node exchange (node signature)",
    "/api/v1/ops/node/drills": "node exchange (node signature)",
    "/api/v1/audit/anchors": "node exchange (node signature)",
}
# Exempt routes that still refuse an anonymous caller, with the status they answer.
ANONYMOUS_REFUSED = {
    "/auth/api/totp": 401,
    "/auth/api/password": 401,
    "/api/v1/channels/{channel}/batches": 401,
    "/api/v1/feedback": 401,
    "/api/v1/spec": 401,
    "/api/v1/heartbeat": 401,
    "/api/v1/reconcile": 401,
    "/api/v1/reconcile/mismatches": 401,
    "/api/v1/stats": 401,
    "/api/v1/records": 401,
    "/api/v1/ops/node/conditions": 401,
    "/api/v1/ops/node/drills": 401,
    "/api/v1/audit/anchors": 401,
}
QUERIES = {
    "/api/v1/people/stats": "?from=2026-11-01&to=2026-11-30",
    "/api/v1/people/reconcile": "?day=2026-11-26&province=35",
    "/api/v1/people/feedback": "?node_id=ghost-node",
    "/api/v1/reconcile": "?day=2026-11-26",
    "/api/v1/stats": "?from=2026-11-01&to=2026-11-30",
}
PATH_VALUES = {
    "account": "ghost",
    "channel": "1",
    "province": "35",
    "notice_id": "1",
    "incident_id": "1",
    "plan_id": "1",
    "activation_id": "1",
    "inspection_id": "1",
    "order_id": "1",
    "absence_id": "1",
    "approval_id": "1",
    "check_id": "1",
    "change_id": "1",
    "answer_id": "1",
    "action": "disable",
    "node_id": "ghost-node",
    "name": "ghost-system",
    "tab": "outages",
    "post": "security",
    "rank": "primary",
    "approval": "999999",
}
_counter = itertools.count()


def _bodies(path: str) -> dict[str, Any]:
    if path == "/api/v1/people/accounts":
        return {
            "account": f"census{next(_counter)}",
            "name": "普查",
            "role": "auditor",
            "staff_number": f"C{next(_counter)}",
        }
    if path.endswith("/role"):
        return {"role": "auditor"}
    if path == "/auth/api/totp":
        return {"code": "123456"}
    if path == "/auth/api/password":
        return {"current": "Old-Pass-123", "new": "New-Pass-456"}
    return {}


def declared(route: APIRoute) -> Permission | None:
    """The permission the route's dependencies require (searching nested dependencies)."""
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        permission = getattr(dependant.call, "permission", None)
        if permission is not None:
            return Permission(permission)
        pending.extend(dependant.dependencies)
    return None


def routes(app: FastAPI) -> Iterator[tuple[str, str, Permission | None]]:
    for context in iter_route_contexts(app.routes):
        original = context.original_route
        if not isinstance(original, APIRoute):
            continue  # the /static mount and FastAPI's own documentation routes
        path = context.path
        assert path is not None
        for method in sorted(original.methods - {"HEAD"}):
            yield method, path, declared(original)


def call(http: Any, method: str, path: str) -> int:
    url = path.format(**PATH_VALUES) + QUERIES.get(path, "")
    if method == "GET":
        return int(http.get(url).status_code)
    return int(http.request(method, url, json=_bodies(path)).status_code)


def principal_for(who: str) -> Principal:
    role = Role.OPERATOR if who.startswith("operator") else Role(who)
    return Principal(who, role, "35" if who == "operator35" else None)


def check_census(people: Any) -> int:
    anonymous = people.client()
    checked = 0
    for method, path, permission in routes(people.app):
        if path in EXEMPT:
            assert permission is None or path.startswith("/auth/"), path
            if path in ANONYMOUS_REFUSED:
                assert call(anonymous, method, path) == ANONYMOUS_REFUSED[path], (method, path)
            continue
        assert permission is not None, f"{method} {path} declares no permission and is not exempt"
        assert call(anonymous, method, path) == 401, (method, path)
        for who in people.tokens:
            if not principal_for(who).may(permission):
                assert call(people.client(who), method, path) == 403, (who, method, path)
        checked += 1
    return checked


def check_matrix(people: Any) -> list[tuple[str, str, str, bool]]:
    seen = []
    for method, path, permission in routes(people.app):
        if permission is None:
            continue
        for who in people.tokens:
            allowed = principal_for(who).may(permission)
            status = call(people.client(who), method, path)
            assert (status in (401, 403)) != allowed, (who, method, path, status)
            assert status < 500, (who, method, path, status)
            seen.append((who, method, path, allowed))
    return seen


def test_every_hub_route_refuses_anonymous_callers_and_roles_without_the_permission(hub_people: Any) -> None:
    assert check_census(hub_people) >= 10


def test_hub_role_by_route_matrix(hub_people: Any) -> None:
    seen = check_matrix(hub_people)
    # every role is allowed somewhere and refused somewhere: the matrix is not one-sided
    for who in hub_people.tokens:
        outcomes = {allowed for w, _m, _p, allowed in seen if w == who}
        assert outcomes == {True, False}, who


def test_node_routes_census_and_matrix(node_app_people: Any) -> None:
    assert check_census(node_app_people) >= 1
    assert check_matrix(node_app_people)


def test_role_permissions_keep_the_three_roles_apart() -> None:
    sysadmin, operator, auditor = (ROLE_PERMISSIONS[r] for r in (Role.SYSADMIN, Role.OPERATOR, Role.AUDITOR))
    assert sysadmin & operator == sysadmin & auditor == operator & auditor == {Permission.SELF_SERVICE}
    assert not sysadmin & {Permission.DATA_READ, Permission.STATS_READ, Permission.AUDIT_READ}
    assert auditor - {Permission.SELF_SERVICE} <= {
        Permission.AUDIT_READ,
        Permission.AUDIT_EXPORT,
        Permission.AUDIT_ARCHIVE,
        Permission.ACCOUNTS_APPROVE,  # the second person of a change of another auditor's account
    }
    assert Permission.ACCOUNTS_MANAGE not in operator | auditor
    assert set(Permission) == sysadmin | operator | auditor  # no permission nobody holds
