"""Shared fixtures: a database URL for each backend the project supports.

``db_url`` runs a test on SQLite (a file under tmp_path) and on PostgreSQL (a fresh database on the
server named by GGZY_TEST_POSTGRES_URL, default 127.0.0.1:5432). Without a reachable PostgreSQL the
PostgreSQL half is skipped with a message; with GGZY_REQUIRE_POSTGRES=1 (CI) it fails instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get("GGZY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("GGZY_REQUIRE_POSTGRES") == "1"


@cache
def postgres_problem() -> str | None:
    """None when the PostgreSQL server answers, else why not."""
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def require_postgres() -> None:
    problem = postgres_problem()
    if problem is None:
        return
    message = f"PostgreSQL at {make_url(POSTGRES_URL).render_as_string(hide_password=True)} is not reachable ({problem})"
    if REQUIRE_POSTGRES:
        pytest.fail(message + "; GGZY_REQUIRE_POSTGRES=1 demands it", pytrace=False)
    pytest.skip(message + "; PostgreSQL tests skipped")


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    require_postgres()
    name = f"ggzy_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


# --- people on the command line ------------------------------------------------------------------

STRONG_PASSWORD = "Quiet-Lantern-58"


def complete_sign_in(service: Any, account: str, one_time_password: str, *, kind: str = "web") -> str:
    """The first sign-in of a new account, step by step as a person does it; the session token.

    One-time password → new password → TOTP enrolment (code computed from the enrolled secret) → a
    ``full`` session. Works for every role (operators skip nothing: TOTP is on by default).
    """
    import pyotp

    from ggzy.security.accounts import Caller

    caller = Caller(source="127.0.0.1", request_id="test")
    started = service.sign_in(account, one_time_password, caller, kind=kind)
    assert started.stage == "password", started.stage
    assert service.change_password(started.token, one_time_password, STRONG_PASSWORD, caller) == "enrol"
    enrolment = service.begin_enrolment(started.token)
    assert (
        service.confirm_enrolment(started.token, pyotp.TOTP(enrolment.secret).at(service.clock()), caller)
        == "full"
    )
    token: str = started.token
    return token


@pytest.fixture
def cli_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """Sign a real person in for CLI commands: ``cli_session("operator", db=url)`` or ``config=path``.

    The account is created as in production (``ggzy admin bootstrap``'s service call, then the
    sysadmin's ``create``) and walks the real sign-in dialogue — one-time password, new password,
    TOTP enrolment with a code computed from the enrolled secret — and the session token is saved
    where ``ggzy login`` saves it. Returns the account name.
    """
    from ggzy.cli.session import SessionFile, target_for
    from ggzy.security.accounts import Caller, NewAccount
    from ggzy.security.permissions import Principal, Role
    from ggzy.settings import get_settings
    from ggzy.store.migrate import upgrade

    monkeypatch.setenv("GGZY_SESSION_FILE", str(tmp_path / "cli-session.json"))
    get_settings.cache_clear()
    caller = Caller(source="test", request_id="-")
    pending: dict[str, dict[str, str]] = {}  # one-time passwords not used yet, per database

    def sign_in(
        role: str, *, db: str | None = None, config: Path | None = None, province: str | None = None
    ) -> str:
        target = target_for(db, config, node=config is not None)
        try:
            if target.national:
                from ggzy.hub.app import MIGRATIONS
            else:
                from ggzy.node.context import MIGRATIONS
            upgrade(target.engine, MIGRATIONS)
            service = target.service
            passwords = pending.setdefault(target.name, {})
            if service.count() == 0:
                passwords.update(
                    service.bootstrap(
                        NewAccount("t-admin", "测试管理员", Role.SYSADMIN, staff_number="T1"),
                        NewAccount("t-audit", "测试审计员", Role.AUDITOR, staff_number="T2"),
                        caller,
                    )
                )
            wanted = Role(role)
            account = {Role.SYSADMIN: "t-admin", Role.AUDITOR: "t-audit"}.get(wanted, f"t-op{province or ''}")
            if account not in passwords and service.info(account) is None:
                admin = Principal("t-admin", Role.SYSADMIN)
                new = NewAccount(
                    account, "测试操作员", wanted, staff_number=f"T-{account}", province=province
                )
                passwords[account] = service.create(admin, new, caller)
            if account not in passwords:
                raise AssertionError(f"{account} is signed in already in this test")
            token = complete_sign_in(service, account, passwords.pop(account), kind="cli")
            SessionFile().save(target.name, token, account)
            return account
        finally:
            target.engine.dispose()

    yield sign_in
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def first_sign_in() -> Callable[..., str]:
    """:func:`complete_sign_in` for tests: ``first_sign_in(service, account, one_time_password)``."""
    return complete_sign_in
