"""Schemathesis over every route a person reaches, hub and node, signed in as a role that holds the
route's permission: not one server error.

FastAPI's own /openapi.json leaves out the pages (``include_in_schema=False``), so the schema fuzzed
here is built from every route of the app. Each request carries the session of a role allowed on the
route (found the way the route census finds it), so the cases get past sign-in to the code behind;
sign-in steps and sign-out go anonymous (a fuzzed sign-out would end the session the other cases use).
Bounded: a few examples per operation, so the run fits the suite's time.
"""

from __future__ import annotations

import atexit
import copy
import dataclasses
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import schemathesis
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from hypothesis import HealthCheck, settings
from starlette.types import Receive, Scope, Send

from ggzy.security.permissions import Permission

EXAMPLES = 2  # per operation and route: bounded to the suite's time; the sweep below adds the ends
ANONYMOUS_PREFIXES = ("/auth/",)  # sign-in, its steps and sign-out: never with a live session
SKIP = ("/static", "/docs", "/openapi.json", "/redoc")


def _api_routes(app: FastAPI) -> list[RouteContext]:
    return [c for c in iter_route_contexts(app.routes) if isinstance(c.original_route, APIRoute)]


def full_schema(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI description of every route of ``app``, pages included (copies of the routes'
    contexts marked as in the schema; the app itself is not changed)."""
    shown = []
    for context in _api_routes(app):
        if str(context.path).startswith(SKIP):
            continue
        effective = context._route_context
        if effective is not None:
            shown.append(RouteContext(context.route, dataclasses.replace(effective, include_in_schema=True)))
        else:
            route = copy.copy(context.original_route)
            route.include_in_schema = True  # type: ignore[attr-defined]
            shown.append(RouteContext(route))
    return get_openapi(title="people", version="1", routes=shown)


def role_for(permission: Permission | None) -> str | None:
    if permission is None:
        return None
    if permission in (
        Permission.ACCOUNTS_MANAGE,
        Permission.CONFIG_MANAGE,
        Permission.NODES_MANAGE,
        Permission.BACKUP_MANAGE,
    ):
        return "sysadmin"
    if permission in (
        Permission.AUDIT_READ,
        Permission.AUDIT_EXPORT,
        Permission.AUDIT_ARCHIVE,
        Permission.ACCOUNTS_APPROVE,
    ):
        return "auditor"
    return "operator"


def signed_in(app: FastAPI, tokens: dict[str, str]) -> Callable[[Scope, Receive, Send], Any]:
    """``app`` as seen from the management network, each request as a role allowed on its route."""
    from test_route_census import declared

    matchers = [
        (context.path_regex, set(context.methods or ()), declared(context.original_route))  # type: ignore[arg-type]
        for context in _api_routes(app)
    ]

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            headers = [(k, v) for k, v in scope["headers"] if k not in (b"authorization", b"cookie")]
            if not path.startswith(ANONYMOUS_PREFIXES):
                for regex, methods, permission in matchers:
                    if regex.match(path) and scope["method"] in methods:
                        who = role_for(permission)
                        if who is not None:
                            headers.append((b"authorization", f"Bearer {tokens[who]}".encode()))
                        break
            scope = {**scope, "client": ("127.0.0.1", 40000), "headers": headers}
        await app(scope, receive, send)

    return asgi


def _people(app: FastAPI, national: bool) -> dict[str, str]:
    """An administrator, an auditor and an operator, each through the real first sign-in."""
    import pyotp
    from signin_world import STRONG_PASSWORD, id_number

    from ggzy.security.accounts import Caller, NewAccount
    from ggzy.security.permissions import Principal, Role

    service = app.state.people.service
    caller = Caller(source="127.0.0.1")
    passwords = service.bootstrap(
        NewAccount("admin", "管理员", Role.SYSADMIN, id_number=id_number(501 + national)),
        NewAccount("audit", "审计员", Role.AUDITOR, id_number=id_number(511 + national)),
        caller,
    )
    passwords["op"] = service.create(
        Principal("admin", Role.SYSADMIN),
        NewAccount("op", "操作员", Role.OPERATOR, staff_number="F3"),
        caller,
    )
    tokens = {}
    for who, account in (("sysadmin", "admin"), ("auditor", "audit"), ("operator", "op")):
        started = service.sign_in(account, passwords[account], caller)
        changed = service.change_password(started.token, passwords[account], STRONG_PASSWORD, caller)
        secret = service.begin_enrolment(changed.token).secret
        tokens[who] = service.confirm_enrolment(
            changed.token, pyotp.TOTP(secret).at(service.clock()), caller
        ).token
    return tokens


def _hub_app() -> FastAPI:
    from ggzy.hub.app import create_app
    from ggzy.settings import HubSettings

    return create_app(HubSettings(db_url=f"sqlite:///{_WORK / 'hub.db'}", key_dir=_WORK / "hub-keys"))


def _node_app() -> FastAPI:
    from ggzy.node.context import build_context
    from ggzy.node.intake import Intake
    from ggzy.node.intake.push_api import create_intake_app
    from ggzy.settings import NodeSettings

    ctx = build_context(
        NodeSettings(db_url=f"sqlite:///{_WORK / 'node.db'}", key_file=_WORK / "node" / "node.key"),
        key=b"\x01" * 32,
    )
    return create_intake_app(ctx, Intake(ctx, pseudonym_key=b"\x11" * 32))


def _load(app: FastAPI, national: bool) -> tuple[Any, Any]:
    """Two views of one schema: reading routes with random examples only (the sweep below gives their
    parameters' ends), and every other route also with schemathesis' coverage phase, which derives
    the boundary values of a body from its schema (where an id past 64 bits or the year 1 hid)."""
    from schemathesis.config import SchemathesisConfig

    described, tokens = full_schema(app), _people(app, national)
    plain = SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}})
    loaded = []
    for config in (plain, None):
        schema = schemathesis.openapi.from_dict(described, config=config)
        schema.app = signed_in(app, tokens)
        schema.location = "/openapi.json"
        loaded.append(schema)
    return loaded[0].include(method="GET"), loaded[1].exclude(method="GET")


_WORK = Path(
    tempfile.mkdtemp(prefix="ggzy-fuzz-people-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
)
atexit.register(shutil.rmtree, _WORK, True)
hub_reads, hub_writes = _load(_hub_app(), True)
node_reads, node_writes = _load(_node_app(), False)


def _no_server_error(case: Any) -> None:
    response = case.call()
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:400])


BOUNDED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=True,
)


@hub_reads.parametrize()
@BOUNDED
def test_no_server_error_reading_any_hub_route_a_person_reaches(case: Any) -> None:
    _no_server_error(case)


@hub_writes.parametrize()
@BOUNDED
def test_no_server_error_changing_through_any_hub_route_a_person_reaches(case: Any) -> None:
    _no_server_error(case)


@node_reads.parametrize()
@BOUNDED
def test_no_server_error_reading_any_node_route_a_person_reaches(case: Any) -> None:
    _no_server_error(case)


@node_writes.parametrize()
@BOUNDED
def test_no_server_error_changing_through_any_node_route_a_person_reaches(case: Any) -> None:
    _no_server_error(case)


def _edge_values(spec: dict[str, Any]) -> list[Any]:
    """The values at the ends of a parameter's type that random examples rarely reach."""
    kind, fmt = spec.get("type"), spec.get("format")
    if "anyOf" in spec:
        return [v for option in spec["anyOf"] for v in _edge_values(option)]
    if fmt == "date":
        return ["0001-01-01", "9999-12-31"]
    if fmt == "date-time":
        return ["0001-01-01T00:00:00", "9999-12-31T23:59:59"]
    if kind == "integer":
        return [spec.get("maximum", 2**64), spec.get("minimum", -(2**64))]
    if kind == "number":
        return ["1e308", "-1e308"]
    if kind == "string":
        return ["\U0010ffff", "\U0010ffff" * 2, "%00", "0000-00"]
    return []


def _plain(spec: dict[str, Any]) -> Any:
    """An ordinary value for the other required parameters."""
    if "anyOf" in spec:
        return _plain(next(o for o in spec["anyOf"] if o.get("type") != "null"))
    return {"date": "2026-11-02", "date-time": "2026-11-02T08:00:00"}.get(spec.get("format", "")) or {
        "integer": 1,
        "number": 1,
        "boolean": "true",
    }.get(spec.get("type", ""), "35")


def _resolve(raw: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in spec:
        spec = raw["components"]["schemas"][spec["$ref"].rsplit("/", 1)[-1]]
    return spec


def _plain_body(raw: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    spec = _resolve(raw, spec)
    body: dict[str, Any] = {}
    for name in spec.get("required", []):
        field = _resolve(raw, spec["properties"][name])
        if "enum" in field:
            body[name] = field["enum"][0]
        elif field.get("type") == "array":
            body[name] = []
        elif field.get("type") == "object":
            body[name] = {}
        else:
            body[name] = _plain(field)
    return body


def _sweep(schema: Any) -> list[tuple[str, int]]:
    """Every route, each of its parameters and body fields at the ends of its type in turn (the
    others plain): the server errors found."""
    from urllib.parse import quote

    from fastapi.testclient import TestClient

    raw = schema.raw_schema
    http = TestClient(schema.app, raise_server_exceptions=False)
    failures = []
    for path, operations in raw["paths"].items():
        for method, operation in operations.items():
            if path.startswith(ANONYMOUS_PREFIXES):
                continue  # sign-in steps: their limits are the account service's (test_sign_in_attacks)
            parameters = operation.get("parameters", [])
            plain = {p["name"]: _plain(p.get("schema", {})) for p in parameters if p.get("required")}
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            body_spec = _resolve(raw, content["schema"]) if content else None
            body = _plain_body(raw, body_spec) if body_spec else None
            trials: list[tuple[dict[str, Any], Any]] = [
                ({**plain, p["name"]: v}, body) for p in parameters for v in _edge_values(p.get("schema", {}))
            ]
            if body_spec is not None and body is not None:
                for name, field in body_spec.get("properties", {}).items():
                    for value in _edge_values(_resolve(raw, field)):
                        trials.append((plain, {**body, name: value}))
            for values, payload in trials:
                url = path
                for name, given in values.items():
                    url = url.replace("{" + name + "}", quote(str(given), safe=""))
                query = {k: str(v) for k, v in values.items() if "{" + k + "}" not in path}
                response = http.request(method.upper(), url, params=query, json=payload)
                if response.status_code >= 500:
                    failures.append((f"{method.upper()} {url} {query} {payload}"[:300], response.status_code))
    return failures


def test_the_ends_of_every_parameter_and_field_on_every_hub_route() -> None:
    assert _sweep(hub_writes) == []  # the raw schema: reading and changing routes alike


def test_the_ends_of_every_parameter_and_field_on_every_node_route() -> None:
    assert _sweep(node_writes) == []
