"""Shared fixtures: a database URL for each backend the project supports.

``db_url`` runs a test on SQLite (a file under tmp_path) and on PostgreSQL (a fresh database on the
server named by GGZY_TEST_POSTGRES_URL, default 127.0.0.1:5432). Without a reachable PostgreSQL the
PostgreSQL half is skipped with a message; with GGZY_REQUIRE_POSTGRES=1 (CI) it fails instead.
``hub_db_url`` and ``node_db_url`` do the same with a database already at the head of the hub's or the
node's migrations (copied from a template made once per session); a test of the migrations
themselves takes the empty ``db_url``.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ggzy.store import make_engine
from ggzy.store.migrate import upgrade

# Passwords are hashed with argon2id at the lowest cost SecuritySettings accepts (1 pass over 8 MiB)
# instead of the production 2 passes over 19 MiB: the suite hashes hundreds of passwords and tests
# what is done with them, not the cost. Set through the settings like any deployment would;
# test_passwords.py checks the production defaults. Child processes (hub, node) drop GGZY_* and run
# at production cost.
os.environ.setdefault("GGZY_SECURITY__ARGON2_TIME_COST", "1")
os.environ.setdefault("GGZY_SECURITY__ARGON2_MEMORY_KIB", str(8 * 1024))

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


@pytest.fixture(autouse=True)
def password_cost() -> None:
    """The hasher at the configured cost before each test (account services built directly, without
    ``account_service``, use whatever cost the process was last configured with)."""
    from ggzy.security.passwords import configure_hasher
    from ggzy.settings import get_settings

    security = get_settings().security
    configure_hasher(security.argon2_time_cost, security.argon2_memory_kib, security.argon2_parallelism)


class PostgresDatabases:
    """Makes the tests' databases on the server one step ahead, and drops them, on threads of their own.

    A database at the head of the hub's or the node's migrations is copied from a template migrated
    once per session (``CREATE DATABASE … TEMPLATE``): migrating costs more than creating, and most
    storage tests start from the head. While a test runs, the next database of its kind is being
    created and the previous test's is being dropped (server work: WAL, checkpoints, files), so a
    test waits for neither. Every test still gets a database nobody used before.
    """

    def __init__(self) -> None:
        self.admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        self.session = uuid.uuid4().hex[:8]
        self.templates: dict[str, str] = {}
        self.guard = threading.Lock()
        self.spares: dict[str, queue.Queue[str | Exception]] = {}  # made ahead, per kind ("" empty)
        self.wanted: queue.Queue[str | None] = queue.Queue()
        self.doomed: queue.Queue[str | None] = queue.Queue()
        self.failures: list[str] = []
        self.maker = threading.Thread(target=self._make_all, name="pg-maker", daemon=True)
        self.dropper = threading.Thread(target=self._drop_all, name="pg-dropper", daemon=True)
        self.maker.start()
        self.dropper.start()

    def url(self, name: str) -> str:
        return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)

    def _execute(self, statement: str) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(statement))

    def _template(self, kind: str) -> str:
        """The template database of ``kind`` ("hub" or "node"), migrated on first use."""
        if kind not in self.templates:
            name = f"ggzy_tmpl_{kind}_{self.session}"
            self._execute(f'CREATE DATABASE "{name}"')
            engine = make_engine(self.url(name))
            try:
                upgrade(engine, migrations_of(kind))
            finally:
                engine.dispose()  # a template must have no connections when it is copied
            self.templates[kind] = name
        return self.templates[kind]

    def create(self, kind: str | None = None) -> str:
        """A new database, empty (``kind`` None) or at the head of ``kind``'s migrations; its name."""
        key = kind or ""
        with self.guard:
            if key not in self.spares:
                self.spares[key] = queue.Queue()
                self.wanted.put(key)
        made = self.spares[key].get()
        self.wanted.put(key)  # the next test's, made while this one runs
        if isinstance(made, Exception):
            raise made
        return made

    def _make_all(self) -> None:
        while (key := self.wanted.get()) is not None:
            name = f"ggzy_t_{uuid.uuid4().hex[:12]}"
            try:
                template = f' TEMPLATE "{self._template(key)}"' if key else ""
                self._execute(f'CREATE DATABASE "{name}"{template}')
            except Exception as exc:  # raised in the test that takes it
                self.spares[key].put(exc)
            else:
                self.spares[key].put(name)

    def drop(self, name: str) -> None:
        self.doomed.put(name)

    def _drop_all(self) -> None:
        while (name := self.doomed.get()) is not None:
            try:
                self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:  # reported at the end of the session, the thread goes on
                self.failures.append(f"{name}: {exc}")

    def close(self) -> None:
        self.wanted.put(None)
        self.maker.join()
        for spares in self.spares.values():
            while not spares.empty():
                if isinstance(unused := spares.get(), str):
                    self.drop(unused)
        self.doomed.put(None)
        self.dropper.join()
        for name in self.templates.values():
            self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.dispose()
        assert not self.failures, f"test databases not dropped: {self.failures}"


def migrations_of(kind: str) -> Path:
    if kind == "hub":
        from ggzy.hub.app import MIGRATIONS as HUB

        return HUB
    from ggzy.node.context import MIGRATIONS as NODE

    return NODE


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    require_postgres()
    databases = PostgresDatabases()
    yield databases
    databases.close()


@pytest.fixture
def postgres_database(postgres_databases: PostgresDatabases) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = postgres_databases.create()
    yield postgres_databases.url(name)
    postgres_databases.drop(name)


class SqliteTemplates:
    """SQLite files at the head of the hub's and the node's migrations, migrated on first use."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.made: dict[str, Path] = {}

    def copy(self, kind: str, target: Path) -> str:
        if kind not in self.made:
            path = self.folder / f"{kind}.db"
            engine = make_engine(f"sqlite:///{path}")
            try:
                upgrade(engine, migrations_of(kind))
            finally:
                engine.dispose()
            self.made[kind] = path
        # the backup API copies a consistent image, whatever is still in the template's WAL
        source = sqlite3.connect(self.made[kind])
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
        return f"sqlite:///{target}"


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplates:
    return SqliteTemplates(tmp_path_factory.mktemp("sqlite-templates"))


def _migrated_url(request: pytest.FixtureRequest, tmp_path: Path, kind: str) -> Iterator[str]:
    if request.param == "sqlite":
        templates: SqliteTemplates = request.getfixturevalue("sqlite_templates")
        yield templates.copy(kind, tmp_path / "test.db")
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    name = databases.create(kind)
    yield databases.url(name)
    databases.drop(name)


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture(params=BACKENDS)
def hub_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at the head of the hub's migrations, on each backend (migrating it again is a no-op)."""
    yield from _migrated_url(request, tmp_path, "hub")


@pytest.fixture(params=BACKENDS)
def node_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database at the head of the node's migrations, on each backend."""
    yield from _migrated_url(request, tmp_path, "node")


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
    changed = service.change_password(started.token, one_time_password, STRONG_PASSWORD, caller)
    assert changed.stage == "enrol"
    enrolment = service.begin_enrolment(changed.token)
    done = service.confirm_enrolment(changed.token, pyotp.TOTP(enrolment.secret).at(service.clock()), caller)
    assert done.stage == "full"
    token: str = done.token  # each step renewed the session's token
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
                        NewAccount("t-admin", "测试管理员", Role.SYSADMIN, id_number=id_number(901)),
                        NewAccount("t-audit", "测试审计员", Role.AUDITOR, id_number=id_number(902)),
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


def id_number(n: int) -> str:
    """A well-formed resident ID number (GB 11643) for test person ``n``: privileged accounts need one."""
    import datetime as dt
    import random

    from ggzy.identifiers.id_number import make_id_number

    return make_id_number(random.Random(n), "110105", dt.date(1980, 1, 1) + dt.timedelta(days=n))
