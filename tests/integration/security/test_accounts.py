"""The account service's controls on both backends, with a clock the test moves (no sleeping).

Each test names the control it proves; removing that check makes the test fail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from signin_world import Clock, id_number
from sqlalchemy import select

from ggzy.hub.app import MIGRATIONS
from ggzy.hub.models import account_tables, audit_log
from ggzy.security.accounts import AccountSecrets, AccountService, AuthError, Caller, NewAccount, SignInPolicy
from ggzy.security.audit import AuditLog
from ggzy.security.permissions import Principal, Role
from ggzy.store import make_engine
from ggzy.store.migrate import upgrade

CALLER = Caller(source="10.0.0.7", request_id="req-1")
STRONG = "Quiet-Lantern-58"  # what first_sign_in sets


@dataclass
class World:
    service: AccountService
    clock: Clock
    passwords: dict[str, str]
    admin: Principal

    def audit(self) -> list[tuple[str, str, str, str]]:
        with self.service.engine.connect() as connection:
            rows = connection.execute(select(audit_log).order_by(audit_log.c.id)).all()
        return [(r.action, r.object, r.outcome, r.account) for r in rows]


@pytest.fixture
def world(hub_db_url: str, tmp_path: Path) -> Iterator[World]:
    engine = make_engine(hub_db_url)
    upgrade(engine, MIGRATIONS)
    clock = Clock(dt.datetime(2026, 11, 27, 1, 0, tzinfo=dt.UTC))
    service = AccountService(
        engine,
        account_tables,
        AuditLog(audit_log, b"k" * 32),
        AccountSecrets(b"s" * 32),
        sign_in=SignInPolicy(source_max_failures=8),
        clock=clock,
    )
    passwords = service.bootstrap(
        NewAccount("admin", "管理员", Role.SYSADMIN, id_number=id_number(831)),
        NewAccount("audit", "审计员", Role.AUDITOR, id_number=id_number(832)),
        CALLER,
    )
    yield World(service, clock, passwords, Principal("admin", Role.SYSADMIN))
    engine.dispose()


def test_bootstrap_works_once_and_no_account_exists_before(world: World) -> None:
    with pytest.raises(AuthError) as refused:
        world.service.bootstrap(
            NewAccount("admin2", "x", Role.SYSADMIN, id_number=id_number(833)),
            NewAccount("audit2", "y", Role.AUDITOR, id_number=id_number(834)),
            CALLER,
        )
    assert refused.value.code == "E-AUTH-BOOTSTRAPPED"
    assert [a.account for a in world.service.list(world.admin)] == ["admin", "audit"]


def test_one_time_password_must_be_changed_then_totp_enrolled(world: World) -> None:
    started = world.service.sign_in("admin", world.passwords["admin"], CALLER)
    assert started.stage == "password"
    assert world.service.principal(started.token) is None  # not signed in until every step is done
    with pytest.raises(AuthError) as weak:
        world.service.change_password(started.token, world.passwords["admin"], "password1", CALLER)
    assert weak.value.code == "E-AUTH-PASSWORD-WEAK"
    changed = world.service.change_password(started.token, world.passwords["admin"], STRONG, CALLER)
    assert changed.stage == "enrol"
    assert world.service.principal(changed.token) is None  # a sysadmin needs the second factor
    enrolment = world.service.begin_enrolment(changed.token)
    done = world.service.confirm_enrolment(
        changed.token, pyotp.TOTP(enrolment.secret).at(world.clock.now), CALLER
    )
    assert done.stage == "full"
    principal = world.service.principal(done.token)
    assert principal is not None and principal.role is Role.SYSADMIN


def test_totp_is_asked_at_every_later_sign_in_and_a_code_works_once(
    world: World, first_sign_in: Callable[..., str]
) -> None:
    first_sign_in(world.service, "admin", world.passwords["admin"])
    with world.service.engine.connect() as connection:
        accounts = account_tables.accounts
        sealed = connection.execute(
            select(accounts.c.totp_secret).where(accounts.c.account == "admin")
        ).scalar_one()
    secret = world.service.secrets.open(sealed, "admin")
    assert len(secret) == 32 and secret not in sealed  # kept encrypted, not in clear
    world.clock.now = dt.datetime.now(dt.UTC)
    again = world.service.sign_in("admin", STRONG, CALLER)
    assert again.stage == "totp"
    code = pyotp.TOTP(secret).at(world.clock.now)
    with pytest.raises(AuthError) as wrong:
        world.service.verify_totp(again.token, f"{(int(code) + 1) % 10**6:06d}", CALLER)
    assert wrong.value.code == "E-AUTH-TOTP"
    assert world.service.verify_totp(again.token, code, CALLER).stage == "full"
    third = world.service.sign_in("admin", STRONG, CALLER)
    with pytest.raises(AuthError):
        world.service.verify_totp(third.token, code, CALLER)  # the same code again: replay


def test_operators_can_be_let_off_totp_by_configuration(world: World) -> None:
    world.service.sign_in_policy = SignInPolicy(totp_for_operators=False)
    password = world.service.create(
        world.admin, NewAccount("op", "操作员", Role.OPERATOR, staff_number="3"), CALLER
    )
    started = world.service.sign_in("op", password, CALLER)
    assert world.service.change_password(started.token, password, STRONG, CALLER).stage == "full"


def test_five_failures_lock_the_account_for_thirty_minutes(world: World) -> None:
    for _ in range(4):
        with pytest.raises(AuthError) as wrong:
            world.service.sign_in("audit", "Wrong-Pass-1", CALLER)
        assert wrong.value.code == "E-AUTH-CREDENTIALS"
    with pytest.raises(AuthError) as fifth:
        world.service.sign_in("audit", "Wrong-Pass-1", CALLER)
    assert fifth.value.code == "E-AUTH-LOCKED"
    with pytest.raises(AuthError) as right_but_locked:
        world.service.sign_in("audit", world.passwords["audit"], CALLER)
    assert right_but_locked.value.code == "E-AUTH-LOCKED"
    world.clock.advance(minutes=29)
    with pytest.raises(AuthError):
        world.service.sign_in("audit", world.passwords["audit"], CALLER)
    world.clock.advance(minutes=2)
    assert world.service.sign_in("audit", world.passwords["audit"], CALLER).stage == "password"
    assert ("account.locked", "account:audit", "success", "audit") in world.audit()


def test_failures_are_rate_limited_per_source_address(world: World) -> None:
    other = Caller(source="10.0.0.8")
    for n in range(8):  # across accounts, so no single account locks
        with pytest.raises(AuthError):
            world.service.sign_in(f"nobody{n}", "Wrong-Pass-1", CALLER)
    with pytest.raises(AuthError) as limited:
        world.service.sign_in("admin", world.passwords["admin"], CALLER)
    assert limited.value.code == "E-AUTH-RATE" and limited.value.status == 429
    assert world.service.sign_in("admin", world.passwords["admin"], other).stage == "password"
    world.clock.advance(minutes=16)
    assert world.service.sign_in("admin", world.passwords["admin"], CALLER).stage == "password"


def test_sessions_end_when_idle_and_at_the_absolute_limit(
    world: World, first_sign_in: Callable[..., str]
) -> None:
    token = first_sign_in(world.service, "admin", world.passwords["admin"])
    for _ in range(23):  # used every 29 minutes: alive for 11 h 07 min
        world.clock.advance(minutes=29)
        assert world.service.principal(token) is not None
    world.clock.advance(minutes=29)  # 11 h 36 min: still within 12 h
    assert world.service.principal(token) is not None
    world.clock.advance(minutes=25)  # 12 h 01 min
    assert world.service.principal(token) is None
    second = world.service.sign_in("admin", STRONG, CALLER).token
    world.clock.advance(minutes=30)
    assert world.service.session(second) is None  # idle for 30 minutes


def test_sign_out_and_disabling_end_sessions_on_the_server(
    world: World, first_sign_in: Callable[..., str]
) -> None:
    token = first_sign_in(world.service, "audit", world.passwords["audit"])
    assert world.service.sign_out(token, CALLER)
    assert world.service.principal(token) is None
    password = world.service.create(
        world.admin, NewAccount("op", "操作员", Role.OPERATOR, staff_number="3"), CALLER
    )
    op_token = first_sign_in(world.service, "op", password)
    assert world.service.principal(op_token) is not None
    world.service.disable(world.admin, "op", CALLER)
    assert world.service.principal(op_token) is None
    with pytest.raises(AuthError) as disabled:
        world.service.sign_in("op", STRONG, CALLER)
    assert disabled.value.code == "E-AUTH-DISABLED"
    actions = [a[0] for a in world.audit()]
    assert "auth.sign-out" in actions and "account.disable" in actions


def test_passwords_expire_after_ninety_days_and_the_last_five_are_not_reused(
    world: World, first_sign_in: Callable[..., str]
) -> None:
    first_sign_in(world.service, "admin", world.passwords["admin"])
    world.clock.advance(days=90)
    expired = world.service.sign_in("admin", STRONG, CALLER)
    assert expired.stage in ("totp", "password")
    token = world.service.sign_in("admin", STRONG, CALLER).token
    with world.service._write() as connection:  # skip the TOTP step: this test is about the password
        from ggzy.security.sessions import hash_token, set_stage

        set_stage(connection, account_tables.sessions, hash_token(token), "password")
    history = ["Amber-Falcon-11", "Brisk-Meadow-22", "Cedar-Harbor-33", "Dusky-Orchid-44"]
    current = STRONG
    for new in history:
        token = world.service.change_password(token, current, new, CALLER).token
        current = new
    for old in [STRONG, *history]:  # the current one and the four before it
        with pytest.raises(AuthError) as reused:
            world.service.change_password(token, current, old, CALLER)
        assert reused.value.code in ("E-AUTH-PASSWORD-REUSED",)
    token = world.service.change_password(token, current, "Ember-Willow-55", CALLER).token
    world.service.change_password(token, "Ember-Willow-55", STRONG, CALLER)  # sixth back: allowed again


def test_one_person_one_account_and_nobody_changes_their_own_role(world: World) -> None:
    with pytest.raises(AuthError) as same_person:
        world.service.create(
            world.admin, NewAccount("op", "操作员", Role.OPERATOR, id_number=id_number(832)), CALLER
        )
    assert same_person.value.code == "E-AUTH-SEPARATION"  # the auditor's ID number
    with pytest.raises(AuthError) as self_grant:
        world.service.create(
            world.admin, NewAccount("me2", "管理员", Role.AUDITOR, id_number=id_number(831)), CALLER
        )
    assert self_grant.value.code == "E-AUTH-SEPARATION"
    with pytest.raises(AuthError) as own_role:
        world.service.set_role(world.admin, "admin", Role.AUDITOR, None, CALLER)
    assert own_role.value.code == "E-AUTH-SELF"
    with pytest.raises(AuthError) as not_admin:
        world.service.create(
            Principal("audit", Role.AUDITOR), NewAccount("x1", "x", Role.AUDITOR, staff_number="7"), CALLER
        )
    assert not_admin.value.code == "E-AUTH-FORBIDDEN"
    with pytest.raises(AuthError) as province:
        world.service.create(
            world.admin, NewAccount("a2", "x", Role.AUDITOR, staff_number="6", province="35"), CALLER
        )
    assert province.value.code == "E-AUTH-PROVINCE"
    refusals = [a for a in world.audit() if a[2] == "failure"]
    assert {a[0] for a in refusals} == {"account.create", "account.role"}


def test_role_change_ends_the_sessions_of_the_account(
    world: World, first_sign_in: Callable[..., str]
) -> None:
    password = world.service.create(
        world.admin, NewAccount("op", "操作员", Role.OPERATOR, staff_number="3"), CALLER
    )
    token = first_sign_in(world.service, "op", password)
    world.service.set_role(world.admin, "op", Role.OPERATOR, "35", CALLER)
    assert world.service.principal(token) is None
    assert world.service.info("op").province == "35"  # type: ignore[union-attr]


def test_every_sign_in_is_audited_with_outcome_source_and_request_id(world: World) -> None:
    with pytest.raises(AuthError):
        world.service.sign_in("admin", "Wrong-Pass-1", CALLER)
    world.service.sign_in("admin", world.passwords["admin"], CALLER)
    with world.service.engine.connect() as connection:
        rows = connection.execute(
            select(audit_log).where(audit_log.c.action == "auth.sign-in").order_by(audit_log.c.id)
        ).all()
    assert [(r.outcome, r.account, r.role, r.source, r.request_id) for r in rows] == [
        ("failure", "admin", "sysadmin", "10.0.0.7", "req-1"),
        ("success", "admin", "sysadmin", "10.0.0.7", "req-1"),
    ]
    assert world.passwords["admin"] not in str([tuple(r) for r in rows])
