"""三员分立 against a 系统管理员 who tries to become the auditor (Art. 22).

The administrator may create and disable accounts; resetting an auditor's credentials or changing
an auditor's role (to or from auditor) waits for another auditor's approval, recorded in the audit
log and used once. With no second auditor, only the offline recovery on the host (``ggzy admin
recover``) can do it, and every auditor is told at their next sign-in. One person holds one account,
and a privileged account is tied to the person's ID number, not to a staff number anyone can invent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from signin_world import Clock, id_number
from sqlalchemy import select

from ggzy.hub.app import MIGRATIONS
from ggzy.hub.models import account_tables, audit_log
from ggzy.security.accounts import AccountSecrets, AccountService, AuthError, Caller, NewAccount
from ggzy.security.audit import AuditLog
from ggzy.security.permissions import Principal, Role
from ggzy.store import make_engine
from ggzy.store.migrate import upgrade

CALLER = Caller(source="10.0.0.7", request_id="req-2")
ADMIN = Principal("admin", Role.SYSADMIN)
AUDITOR_B = Principal("audit-b", Role.AUDITOR)


# SQLite; the approval flow runs on PostgreSQL too (test_another_auditors_approval_…).
@pytest.fixture(params=["sqlite"])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AccountService]:
    if request.param == "sqlite":
        url = request.getfixturevalue("sqlite_templates").copy("hub", tmp_path / "hub.db")
    else:
        databases = request.getfixturevalue("postgres_databases")
        name = databases.create("hub")
        url = databases.url(name)
        request.addfinalizer(lambda: databases.drop(name))
    engine = make_engine(url)
    upgrade(engine, MIGRATIONS)
    accounts = AccountService(
        engine,
        account_tables,
        AuditLog(audit_log, b"k" * 32),
        AccountSecrets(b"s" * 32),
        clock=Clock(dt.datetime.now(dt.UTC)),
    )
    accounts.bootstrap(
        NewAccount("admin", "管理员", Role.SYSADMIN, id_number=id_number(11)),
        NewAccount("audit", "审计员甲", Role.AUDITOR, id_number=id_number(12)),
        CALLER,
    )
    accounts.create(ADMIN, NewAccount("audit-b", "审计员乙", Role.AUDITOR, id_number=id_number(13)), CALLER)
    yield accounts
    engine.dispose()


def _actions(service: AccountService) -> list[tuple[str, str, str, str]]:
    with service.engine.connect() as connection:
        rows = connection.execute(select(audit_log).order_by(audit_log.c.id)).all()
    return [(r.action, r.object, r.outcome, r.account) for r in rows]


ATTEMPTS: list[tuple[str, Any]] = [
    ("reset-password", lambda s: s.reset_password(ADMIN, "audit", CALLER)),
    ("reset-totp", lambda s: s.reset_totp(ADMIN, "audit", CALLER)),
    ("role", lambda s: s.set_role(ADMIN, "audit", Role.OPERATOR, None, CALLER)),
]


@pytest.mark.parametrize(("action", "attempt"), ATTEMPTS, ids=[a for a, _ in ATTEMPTS])
def test_the_administrator_alone_cannot_touch_an_auditors_credentials_or_role(
    service: AccountService, action: str, attempt: Any
) -> None:
    before = service.info("audit")
    with pytest.raises(AuthError) as waiting:
        attempt(service)
    assert waiting.value.code == "E-AUTH-APPROVAL" and waiting.value.status == 403
    assert service.info("audit") == before  # nothing changed
    pending = service.approvals(AUDITOR_B)
    assert [(p.account, p.action, p.requested_by, p.status) for p in pending] == [
        ("audit", action, "admin", "pending")
    ]
    with pytest.raises(AuthError) as again:  # asking twice does not make it pass
        attempt(service)
    assert again.value.code == "E-AUTH-APPROVAL"
    assert len(service.approvals(AUDITOR_B)) == 1


@pytest.mark.parametrize(
    "service", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_another_auditors_approval_lets_the_change_through_once(service: AccountService) -> None:
    with pytest.raises(AuthError):
        service.reset_password(ADMIN, "audit", CALLER)
    (request,) = service.approvals(AUDITOR_B)
    with pytest.raises(AuthError) as own:
        service.approve(Principal("audit", Role.AUDITOR), request.id, CALLER)  # the auditor concerned
    assert own.value.code == "E-AUTH-SELF"
    with pytest.raises(AuthError) as admin_self:
        service.approve(ADMIN, request.id, CALLER)  # the requester
    assert admin_self.value.code == "E-AUTH-FORBIDDEN"
    service.approve(AUDITOR_B, request.id, CALLER)
    password = service.reset_password(ADMIN, "audit", CALLER)
    assert len(password) == 16
    with pytest.raises(AuthError) as used:
        service.reset_password(ADMIN, "audit", CALLER)  # the approval is spent
    assert used.value.code == "E-AUTH-APPROVAL"
    trail = _actions(service)
    assert ("account.approval-request", "account:audit", "success", "admin") in trail
    assert ("account.approve", "account:audit", "success", "audit-b") in trail
    assert ("account.reset-password", "account:audit", "success", "admin") in trail


def test_an_approval_is_for_the_exact_change_asked(service: AccountService) -> None:
    with pytest.raises(AuthError):
        service.set_role(ADMIN, "audit", Role.OPERATOR, "35", CALLER)
    (request,) = service.approvals(AUDITOR_B)
    service.approve(AUDITOR_B, request.id, CALLER)
    with pytest.raises(AuthError) as other_change:
        service.reset_totp(ADMIN, "audit", CALLER)
    assert other_change.value.code == "E-AUTH-APPROVAL"
    with pytest.raises(AuthError) as other_province:
        service.set_role(ADMIN, "audit", Role.OPERATOR, "44", CALLER)
    assert other_province.value.code == "E-AUTH-APPROVAL"
    service.set_role(ADMIN, "audit", Role.OPERATOR, "35", CALLER)
    info = service.info("audit")
    assert info is not None and info.role is Role.OPERATOR and info.province == "35"


def test_an_approval_expires(service: AccountService) -> None:
    with pytest.raises(AuthError):
        service.reset_totp(ADMIN, "audit", CALLER)
    (request,) = service.approvals(AUDITOR_B)
    service.approve(AUDITOR_B, request.id, CALLER)
    service.clock.advance(hours=25)  # type: ignore[attr-defined]
    with pytest.raises(AuthError) as expired:
        service.reset_totp(ADMIN, "audit", CALLER)
    assert expired.value.code == "E-AUTH-APPROVAL"


def test_making_an_operator_an_auditor_needs_a_second_person_and_the_id_number(
    service: AccountService,
) -> None:
    service.create(ADMIN, NewAccount("op", "操作员", Role.OPERATOR, staff_number="S-3"), CALLER)
    with pytest.raises(AuthError) as no_id:
        service.set_role(ADMIN, "op", Role.AUDITOR, None, CALLER)
    assert no_id.value.code == "E-AUTH-PERSON-ID"
    service.create(ADMIN, NewAccount("op2", "操作员二", Role.OPERATOR, id_number=id_number(14)), CALLER)
    with pytest.raises(AuthError) as waiting:
        service.set_role(ADMIN, "op2", Role.AUDITOR, None, CALLER)
    assert waiting.value.code == "E-AUTH-APPROVAL"


def test_operators_and_administrators_remain_the_administrators_to_manage(service: AccountService) -> None:
    service.create(ADMIN, NewAccount("op", "操作员", Role.OPERATOR, staff_number="S-3"), CALLER)
    assert len(service.reset_password(ADMIN, "op", CALLER)) == 16
    service.reset_totp(ADMIN, "op", CALLER)
    service.disable(ADMIN, "audit", CALLER)  # disabling an auditor is the administrator's to do
    assert service.approvals(AUDITOR_B) == []


def test_privileged_accounts_need_the_persons_id_number(service: AccountService) -> None:
    with pytest.raises(AuthError) as invented:
        service.create(ADMIN, NewAccount("audit-c", "审计员丙", Role.AUDITOR, staff_number="X-999"), CALLER)
    assert invented.value.code == "E-AUTH-PERSON-ID"
    with pytest.raises(AuthError) as malformed:
        service.create(
            ADMIN, NewAccount("audit-c", "审计员丙", Role.AUDITOR, id_number="110105198001010000"), CALLER
        )
    assert malformed.value.code == "E-AUTH-PERSON-ID"


def test_one_person_never_holds_two_accounts_whatever_the_key(service: AccountService) -> None:
    service.create(
        ADMIN, NewAccount("op", "操作员", Role.OPERATOR, staff_number="S-3", id_number=id_number(15)), CALLER
    )
    with pytest.raises(AuthError) as second:  # the same person by ID number, a new staff number
        service.create(
            ADMIN,
            NewAccount("op-b", "操作员", Role.OPERATOR, staff_number="S-4", id_number=id_number(15)),
            CALLER,
        )
    assert second.value.code == "E-AUTH-SEPARATION"
    with pytest.raises(AuthError) as auditor_too:  # the auditor's ID on a new account
        service.create(ADMIN, NewAccount("xx", "x", Role.OPERATOR, id_number=id_number(12)), CALLER)
    assert auditor_too.value.code == "E-AUTH-SEPARATION"


def test_offline_recovery_is_audited_and_every_auditor_is_told(service: AccountService) -> None:
    password = service.recover("audit", "reset-password", operator="root", caller=CALLER)
    assert password is not None and len(password) == 16
    assert ("account.recover", "account:audit", "success", "recovery:root") in _actions(service)
    told = {notice.account for notice in service.all_notices()}
    assert told == {"audit", "audit-b"}
    notices = service.notices(AUDITOR_B)
    assert len(notices) == 1 and "audit" in notices[0].message and "root" in notices[0].message
    service.acknowledge_notices(AUDITOR_B, CALLER)
    assert service.notices(AUDITOR_B) == []


def test_the_last_administrator_is_recovered_only_offline(service: AccountService) -> None:
    with pytest.raises(AuthError) as self_reset:
        service.reset_password(ADMIN, "admin", CALLER)
    assert self_reset.value.code == "E-AUTH-SELF"
    password = service.recover("admin", "reset-totp", operator="root", caller=CALLER)
    assert password is None
    assert service.info("admin").totp_enrolled is False  # type: ignore[union-attr]


def test_the_second_auditor_approves_on_the_audit_page(tmp_path: Path, first_sign_in: Any) -> None:
    from fastapi.testclient import TestClient

    from ggzy.hub.app import create_app
    from ggzy.settings import HubSettings

    app = create_app(HubSettings(db_url=f"sqlite:///{tmp_path / 'hub.db'}", key_dir=tmp_path / "keys"))
    accounts = app.state.hub.accounts
    try:
        accounts.bootstrap(
            NewAccount("admin", "管理员", Role.SYSADMIN, id_number=id_number(21)),
            NewAccount("audit", "审计员甲", Role.AUDITOR, id_number=id_number(22)),
            CALLER,
        )
        second = accounts.create(
            ADMIN, NewAccount("audit-b", "审计员乙", Role.AUDITOR, id_number=id_number(23)), CALLER
        )
        token = first_sign_in(accounts, "audit-b", second)
        with pytest.raises(AuthError):
            accounts.reset_totp(ADMIN, "audit", CALLER)
        (request,) = accounts.approvals(AUDITOR_B)
        page = TestClient(app, client=("127.0.0.1", 5000), headers={"Authorization": f"Bearer {token}"})
        listed = page.get("/portal/audit")
        assert listed.status_code == 200 and f"/portal/audit/approvals/{request.id}/approve" in listed.text
        approved = page.post(f"/portal/audit/approvals/{request.id}/approve", follow_redirects=False)
        assert approved.status_code == 303, approved.text
        accounts.reset_totp(ADMIN, "audit", CALLER)  # goes through now, once
        again = page.post(f"/portal/audit/approvals/{request.id}/approve")
        assert again.status_code == 409 and again.json()["error"]["code"] == "E-AUTH-APPROVAL-CLOSED"
    finally:
        app.state.hub.engine.dispose()
