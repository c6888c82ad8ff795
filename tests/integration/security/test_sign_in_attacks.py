"""Sign-in as someone who tries to get around it: each test is the attack, and the control that stops it.

Guessing the second factor after a right password, from a second half-signed-in session or from many
accounts at one address; probing which names exist through the lockout; guessing the current password
on the password-change form; riding a token seen before a sign-in step; signing in after the end of a
privileged term. SQLite here (the storage of accounts runs on both backends in test_accounts.py and
in the PostgreSQL cases at the end).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from signin_world import STRONG_PASSWORD, Clock, id_number
from sqlalchemy import select

from ggzy.hub.app import MIGRATIONS
from ggzy.hub.models import account_tables, audit_log
from ggzy.security import passwords as password_module
from ggzy.security.accounts import AccountSecrets, AccountService, AuthError, Caller, NewAccount, SignInPolicy
from ggzy.security.audit import AuditLog
from ggzy.security.permissions import Principal, Role
from ggzy.store import make_engine
from ggzy.store.migrate import upgrade

CALLER = Caller(source="10.0.0.7", request_id="req-1")


class World:
    def __init__(self, service: AccountService, clock: Clock, passwords: dict[str, str]) -> None:
        self.service = service
        self.clock = clock
        self.passwords = passwords
        self.admin = Principal("admin", Role.SYSADMIN)
        self.secrets: dict[str, str] = {}

    def enrolled(self, account: str) -> str:
        """Walk the first sign-in of ``account``; its TOTP secret (the session is signed out)."""
        service, caller = self.service, CALLER
        one_time = self.passwords.pop(account)
        started = service.sign_in(account, one_time, caller)
        token = started.token
        step = service.change_password(token, one_time, STRONG_PASSWORD, caller)
        token = getattr(step, "token", token)
        enrolment = service.begin_enrolment(token)
        done = service.confirm_enrolment(token, pyotp.TOTP(enrolment.secret).at(self.clock()), caller)
        service.sign_out(getattr(done, "token", token), caller)
        self.secrets[account] = enrolment.secret
        self.clock.advance(seconds=61)  # the enrolment code's time step is used up
        return enrolment.secret

    def code(self, account: str) -> str:
        return pyotp.TOTP(self.secrets[account]).at(self.clock())

    def wrong_code(self, account: str) -> str:
        return f"{(int(self.code(account)) + 1) % 10**6:06d}"


@pytest.fixture
def world(sqlite_templates: Any, tmp_path: Path) -> Iterator[World]:
    yield from _world(sqlite_templates.copy("hub", tmp_path / "hub.db"))


def _world(url: str) -> Iterator[World]:
    engine = make_engine(url)
    upgrade(engine, MIGRATIONS)
    clock = Clock(dt.datetime.now(dt.UTC).replace(microsecond=0))
    service = AccountService(
        engine,
        account_tables,
        AuditLog(audit_log, b"k" * 32),
        AccountSecrets(b"s" * 32),
        sign_in=SignInPolicy(source_max_failures=50),
        clock=clock,
    )
    passwords = service.bootstrap(
        NewAccount("admin", "管理员", Role.SYSADMIN, id_number=id_number(1)),
        NewAccount("audit", "审计员", Role.AUDITOR, id_number=id_number(2)),
        CALLER,
    )
    yield World(service, clock, dict(passwords))
    engine.dispose()


def _code(error: pytest.ExceptionInfo[AuthError]) -> str:
    return error.value.code


# -- the second factor -----------------------------------------------------------------------------


def test_a_right_password_does_not_reset_the_count_of_wrong_codes(world: World) -> None:
    world.enrolled("audit")
    answers = []
    for _round in range(2):  # "password, 4 wrong codes" over and over
        started = world.service.sign_in("audit", STRONG_PASSWORD, CALLER)
        assert started.stage == "totp"
        for _ in range(3):
            with pytest.raises(AuthError) as wrong:
                world.service.verify_totp(started.token, world.wrong_code("audit"), CALLER)
            answers.append(_code(wrong))
    assert answers[:4] == ["E-AUTH-TOTP"] * 4
    assert answers[4] == "E-AUTH-LOCKED"  # the fifth wrong code in a row, across two password successes
    with pytest.raises(AuthError) as locked:
        world.service.sign_in("audit", STRONG_PASSWORD, CALLER)
    assert _code(locked) == "E-AUTH-LOCKED"


def test_a_lock_refuses_every_half_signed_in_session_of_the_account(world: World) -> None:
    world.enrolled("audit")
    first = world.service.sign_in("audit", STRONG_PASSWORD, CALLER)
    second = world.service.sign_in("audit", STRONG_PASSWORD, CALLER)
    for _ in range(5):
        with pytest.raises(AuthError):
            world.service.verify_totp(first.token, world.wrong_code("audit"), CALLER)
    with pytest.raises(AuthError) as refused:  # the right code, on the other session
        world.service.verify_totp(second.token, world.code("audit"), CALLER)
    assert _code(refused) in ("E-AUTH-LOCKED", "E-AUTH-REQUIRED")
    assert world.service.principal(second.token) is None


def test_the_address_limit_applies_to_the_second_factor(world: World) -> None:
    world.service.sign_in_policy = SignInPolicy(source_max_failures=6, lockout_failures=100)
    world.enrolled("audit")
    started = world.service.sign_in("audit", STRONG_PASSWORD, CALLER)
    for _ in range(6):
        with pytest.raises(AuthError):
            world.service.verify_totp(started.token, world.wrong_code("audit"), CALLER)
    with pytest.raises(AuthError) as limited:
        world.service.verify_totp(started.token, world.code("audit"), CALLER)
    assert _code(limited) == "E-AUTH-RATE" and limited.value.status == 429


def test_the_address_limit_applies_to_enrolment_and_password_change(world: World) -> None:
    world.service.sign_in_policy = SignInPolicy(source_max_failures=4, lockout_failures=100)
    password = world.passwords["audit"]
    started = world.service.sign_in("audit", password, CALLER)
    for _ in range(4):
        with pytest.raises(AuthError) as wrong:
            world.service.change_password(started.token, "Not-The-One-1", STRONG_PASSWORD, CALLER)
        assert _code(wrong) == "E-AUTH-CREDENTIALS"
    with pytest.raises(AuthError) as limited:
        world.service.change_password(started.token, password, STRONG_PASSWORD, CALLER)
    assert _code(limited) == "E-AUTH-RATE"
    other = Caller(source="10.0.0.99")
    step = world.service.change_password(started.token, password, STRONG_PASSWORD, other)
    enrolment = world.service.begin_enrolment(step.token)
    for _ in range(4):
        with pytest.raises(AuthError):
            world.service.confirm_enrolment(step.token, "000000", other)
    with pytest.raises(AuthError) as limited_enrol:
        world.service.confirm_enrolment(step.token, pyotp.TOTP(enrolment.secret).at(world.clock()), other)
    assert _code(limited_enrol) == "E-AUTH-RATE"


def test_wrong_current_passwords_on_the_change_form_count_toward_the_lock(world: World) -> None:
    world.enrolled("audit")
    started = world.service.sign_in("audit", STRONG_PASSWORD, CALLER)
    full = world.service.verify_totp(started.token, world.code("audit"), CALLER)
    token = full.token
    answers = []
    for _ in range(5):
        with pytest.raises(AuthError) as wrong:
            world.service.change_password(token, "Guess-Number-7", "Brand-New-Pass-9", CALLER)
        answers.append(_code(wrong))
    assert answers == ["E-AUTH-CREDENTIALS"] * 4 + ["E-AUTH-LOCKED"]
    with pytest.raises(AuthError) as locked:
        world.service.sign_in("audit", STRONG_PASSWORD, CALLER)
    assert _code(locked) == "E-AUTH-LOCKED"


# -- which names exist -----------------------------------------------------------------------------


def test_an_unknown_name_gets_the_same_answers_and_the_same_work_as_a_known_one(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []
    real = password_module.verify_password

    def counting(stored: str, password: str) -> bool:
        verified.append(stored)
        return real(stored, password)

    monkeypatch.setattr("ggzy.security.accounts.service.verify_password", counting)

    def attempts(name: str) -> list[tuple[int, str, str, int]]:
        answers = []
        for _ in range(7):
            verified.clear()
            with pytest.raises(AuthError) as refused:
                world.service.sign_in(name, "Wrong-Pass-1", CALLER)
            error = refused.value
            answers.append((error.status, error.code, error.message_zh, len(verified)))
        return answers

    known, unknown = attempts("audit"), attempts("ghost")
    assert known == unknown
    assert [a[1] for a in known] == ["E-AUTH-CREDENTIALS"] * 4 + ["E-AUTH-LOCKED"] * 3
    assert all(a[3] == 1 for a in known)  # one argon2 verification per attempt, locked or not


# -- the token of each step --------------------------------------------------------------------------


def test_each_step_of_the_sign_in_gives_a_new_token_and_kills_the_old(world: World) -> None:
    password = world.passwords["audit"]
    started = world.service.sign_in("audit", password, CALLER)
    changed = world.service.change_password(started.token, password, STRONG_PASSWORD, CALLER)
    assert changed.stage == "enrol" and changed.token != started.token
    assert world.service.session(started.token) is None
    enrolment = world.service.begin_enrolment(changed.token)
    done = world.service.confirm_enrolment(
        changed.token, pyotp.TOTP(enrolment.secret).at(world.clock()), CALLER
    )
    assert done.stage == "full" and done.token != changed.token
    assert world.service.session(changed.token) is None
    assert world.service.principal(done.token) is not None
    world.clock.advance(seconds=61)
    again = world.service.sign_in("audit", STRONG_PASSWORD, CALLER)
    full = world.service.verify_totp(again.token, pyotp.TOTP(enrolment.secret).at(world.clock()), CALLER)
    assert world.service.principal(again.token) is None  # the token seen before the code is dead
    assert world.service.principal(full.token) is not None


# -- 任期 (end of the term) ---------------------------------------------------------------------------


def test_a_privileged_account_has_an_end_date_and_cannot_sign_in_after_it(world: World) -> None:
    assert all(info.valid_until is not None for info in world.service.list(world.admin))
    end = world.clock() + dt.timedelta(days=10)
    password = world.service.create(
        world.admin,
        NewAccount("audit2", "审计员乙", Role.AUDITOR, id_number=id_number(3), valid_until=end),
        CALLER,
    )
    assert world.service.sign_in("audit2", password, CALLER).stage == "password"
    world.clock.advance(days=11)
    with pytest.raises(AuthError) as ended:
        world.service.sign_in("audit2", password, CALLER)
    assert _code(ended) == "E-AUTH-EXPIRED"
    with pytest.raises(AuthError) as too_long:
        world.service.create(
            world.admin,
            NewAccount(
                "audit3",
                "审计员丙",
                Role.AUDITOR,
                id_number=id_number(4),
                valid_until=world.clock() + dt.timedelta(days=5000),
            ),
            CALLER,
        )
    assert _code(too_long) == "E-AUTH-TERM"


def test_the_portal_is_told_thirty_days_before_the_end(world: World) -> None:
    info = world.service.info("audit")
    assert info is not None and info.valid_until is not None
    world.clock.now = info.valid_until - dt.timedelta(days=31)
    assert world.service.term_warning("audit") is None
    world.clock.now = info.valid_until - dt.timedelta(days=29)
    warning = world.service.term_warning("audit")
    assert warning is not None and "29" in warning


def _audit(world: World) -> list[tuple[str, str, str]]:
    with world.service.engine.connect() as connection:
        rows = connection.execute(select(audit_log).order_by(audit_log.c.id)).all()
    return [(r.action, r.object, r.outcome) for r in rows]


def test_a_locked_name_is_audited_once_whether_it_exists_or_not(world: World) -> None:
    for name in ("audit", "ghost"):
        for _ in range(5):
            with pytest.raises(AuthError):
                world.service.sign_in(name, "Wrong-Pass-1", CALLER)
    locks = [entry for entry in _audit(world) if entry[0] == "account.locked"]
    assert locks == [
        ("account.locked", "account:audit", "success"),
        ("account.locked", "account:ghost", "success"),
    ]
