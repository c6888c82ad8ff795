"""A hub app with one signed-in person per role, for the web-layer, census and matrix tests.

The storage of accounts runs on both backends in test_accounts.py; these tests are about HTTP and
use SQLite only, building the people once per module (argon2 is slow on purpose).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from signin_world import id_number

from ggzy.hub.app import create_app
from ggzy.security.accounts import AccountService, Caller, NewAccount
from ggzy.security.permissions import Principal, Role
from ggzy.settings import HubSettings

INSIDE = ("127.0.0.1", 50000)  # inside the default management allow-list
OUTSIDE = ("203.0.113.9", 50000)


@dataclass
class People:
    app: FastAPI
    service: AccountService
    tokens: dict[str, str] = field(default_factory=dict)  # "sysadmin", "auditor", "operator", "operator35"

    def client(
        self, who: str | None = None, *, source: tuple[str, int] = INSIDE, bearer: bool = True
    ) -> TestClient:
        """A client as ``who`` (None: anonymous); with a bearer token, so no CSRF token is needed."""
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who and bearer else {}
        http = TestClient(self.app, client=source, headers=headers, raise_server_exceptions=False)
        if who and not bearer:
            http.cookies.set("ggzy_session", self.tokens[who])
        return http


def make_people(
    tmp: Path, first_sign_in: Callable[..., str], app: FastAPI, service: AccountService
) -> People:
    caller = Caller(source="127.0.0.1")
    passwords = service.bootstrap(
        NewAccount("admin", "管理员", Role.SYSADMIN, id_number=id_number(841)),
        NewAccount("audit", "审计员", Role.AUDITOR, id_number=id_number(842)),
        caller,
    )
    admin = Principal("admin", Role.SYSADMIN)
    national = service.create(admin, NewAccount("op", "操作员", Role.OPERATOR, staff_number="3"), caller)
    people = People(app, service)
    people.tokens["sysadmin"] = first_sign_in(service, "admin", passwords["admin"])
    people.tokens["auditor"] = first_sign_in(service, "audit", passwords["audit"])
    people.tokens["operator"] = first_sign_in(service, "op", national)
    if service.national:
        provincial = service.create(
            admin, NewAccount("op35", "福建操作员", Role.OPERATOR, staff_number="4", province="35"), caller
        )
        people.tokens["operator35"] = first_sign_in(service, "op35", provincial)
    return people


@pytest.fixture(scope="module")
def hub_people(
    tmp_path_factory: pytest.TempPathFactory, first_sign_in: Callable[..., str]
) -> Iterator[People]:
    tmp = tmp_path_factory.mktemp("hub-people")
    settings = HubSettings(db_url=f"sqlite:///{tmp / 'hub.db'}", key_dir=tmp / "keys")
    app = create_app(settings)
    yield make_people(tmp, first_sign_in, app, app.state.hub.accounts)
    app.state.hub.engine.dispose()


@pytest.fixture(scope="module")
def node_app_people(
    tmp_path_factory: pytest.TempPathFactory, first_sign_in: Callable[..., str]
) -> Iterator[People]:
    from ggzy.node.context import build_context
    from ggzy.node.intake import Intake
    from ggzy.node.intake.push_api import create_intake_app
    from ggzy.settings import NodeSettings

    tmp = tmp_path_factory.mktemp("node-people")
    ctx = build_context(
        NodeSettings(db_url=f"sqlite:///{tmp / 'node.db'}", key_file=tmp / "node.key"), key=b"\x01" * 32
    )
    app = create_intake_app(ctx, Intake(ctx, pseudonym_key=b"\x11" * 32))
    yield make_people(tmp, first_sign_in, app, app.state.people.service)
    ctx.engine.dispose()
