"""Accounts, sign-in and self-service, written once for the web layer and the command line.

Every sign-in, sign-out and change of an account goes into the audit chain in the same transaction
as the change itself; refusals are audited too (in their own transaction, committed before the
refusal is raised).
"""

from __future__ import annotations

import datetime as dt
import secrets
import string
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ggzy.security.accounts.errors import AuthError, bad_credentials
from ggzy.security.accounts.secrets import AccountSecrets
from ggzy.security.accounts.tables import AccountTables
from ggzy.security.audit import AuditEntry, AuditLog
from ggzy.security.passwords import PasswordPolicy, hash_password, verify_password
from ggzy.security.permissions import Permission, Principal, Role
from ggzy.security.sessions import (
    SessionPolicy,
    SessionRow,
    aware,
    end_account_sessions,
    end_session,
    hash_token,
    open_session,
    resolve_session,
    set_stage,
)
from ggzy.security.totp import new_secret, provisioning_uri, qr_svg, verify_code

__all__ = [
    "AccountInfo",
    "AccountService",
    "Caller",
    "Enrolment",
    "NewAccount",
    "SignIn",
    "SignInPolicy",
    "account_service",
]

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class Caller:
    """Where a request came from, for the audit entry."""

    source: str = "-"
    request_id: str = "-"


@dataclass(frozen=True, slots=True)
class SignInPolicy:
    lockout_failures: int = 5
    lockout: dt.timedelta = dt.timedelta(minutes=30)
    source_max_failures: int = 20
    source_window: dt.timedelta = dt.timedelta(minutes=15)
    totp_for_operators: bool = True
    totp_issuer: str = "ggzy-exchange"


@dataclass(frozen=True, slots=True)
class NewAccount:
    account: str
    name: str
    role: Role
    staff_number: str | None = None
    id_number: str | None = None
    province: str | None = None


@dataclass(frozen=True, slots=True)
class AccountInfo:
    account: str
    name: str
    role: Role
    province: str | None
    status: str
    locked: bool
    totp_enrolled: bool
    must_change_password: bool
    password_changed_at: dt.datetime
    last_sign_in_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class SignIn:
    """A session in progress: ``stage`` says what the person owes before it is ``full``."""

    token: str
    stage: str
    account: str
    role: Role


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str
    uri: str
    svg: str


def one_time_password() -> str:
    """16 characters from all four classes; printed once and replaced at first sign-in."""
    alphabet = string.ascii_letters + string.digits + "-_.+"
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(16))
        if (
            any(c.isupper() for c in candidate)
            and any(c.islower() for c in candidate)
            and any(c.isdigit() for c in candidate)
            and any(c in "-_.+" for c in candidate)
        ):
            return candidate


ACCOUNT_NAME_CHARS = frozenset(string.ascii_lowercase + string.digits + "._-")


class AccountService:
    def __init__(
        self,
        engine: Engine,
        tables: AccountTables,
        audit: AuditLog,
        secrets_: AccountSecrets,
        *,
        passwords: PasswordPolicy | None = None,
        sessions: SessionPolicy | None = None,
        sign_in: SignInPolicy | None = None,
        clock: Clock = utc_now,
        national: bool = True,
    ) -> None:
        self.engine = engine
        self.tables = tables
        self.audit = audit
        self.secrets = secrets_
        self.passwords = passwords or PasswordPolicy()
        self.session_policy = sessions or SessionPolicy()
        self.sign_in_policy = sign_in or SignInPolicy()
        self.clock = clock
        self.national = national  # hub: operators may be limited to a province; node: one province

    # -- plumbing -------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect() as plain:
            connection = plain.execution_options(sqlite_begin="IMMEDIATE")
            with connection.begin():
                yield connection

    def _audit(
        self,
        connection: Connection,
        caller: Caller,
        action: str,
        target: str,
        outcome: str,
        *,
        account: str = "-",
        role: str = "-",
        **detail: Any,
    ) -> None:
        self.audit.append(
            connection,
            AuditEntry(
                action=action,
                object=target,
                outcome=outcome,
                account=account,
                role=role,
                source=caller.source,
                request_id=caller.request_id,
                detail=detail,
                at=self.clock(),
            ),
        )

    def _refuse(self, caller: Caller, action: str, target: str, error: AuthError, **who: str) -> AuthError:
        with self._write() as connection:
            self._audit(connection, caller, action, target, "failure", code=error.code, **who)
        return error

    def _row(self, connection: Connection, account: str) -> Any:
        accounts = self.tables.accounts
        return connection.execute(select(accounts).where(accounts.c.account == account)).first()

    def _needs_totp(self, role: str) -> bool:
        return role != Role.OPERATOR.value or self.sign_in_policy.totp_for_operators

    def _next_stage(self, row: Any, *, after: str) -> str:
        """The first step the account still owes once ``after`` is done."""
        order = ["password-ok", "totp", "password", "enrol", "full"]
        for stage in order[order.index(after) + 1 :]:
            if stage == "totp" and row.totp_secret is not None and row.totp_last_step is not None:
                return "totp"
            if stage == "password" and self._password_due(row):
                return "password"
            if stage == "enrol" and self._needs_totp(row.role) and row.totp_last_step is None:
                return "enrol"
            if stage == "full":
                return "full"
        return "full"

    def _password_due(self, row: Any) -> bool:
        age = self.clock() - aware(row.password_changed_at)
        return bool(row.must_change_password) or age >= dt.timedelta(days=self.passwords.max_age_days)

    def _check_password(self, account: str, password: str) -> None:
        problems = self.passwords.problems(password, account)
        if problems:
            raise AuthError(
                400,
                "E-AUTH-PASSWORD-WEAK",
                "口令不符合要求：" + "；".join(p.message_zh for p in problems),
                "password refused: " + "; ".join(p.message_en for p in problems),
            )

    # -- accounts -------------------------------------------------------------------------------

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(select(func.count()).select_from(self.tables.accounts)).scalar_one()
            )

    def _insert(self, connection: Connection, new: NewAccount, created_by: str) -> str:
        name = new.account.strip().lower()
        if not (2 <= len(name) <= 64) or not set(name) <= ACCOUNT_NAME_CHARS:
            raise AuthError(
                400,
                "E-AUTH-ACCOUNT-NAME",
                "账号名应为2–64位小写字母、数字或 . _ -",
                "account names are 2-64 characters [a-z0-9._-]",
            )
        if new.province is not None and new.role is not Role.OPERATOR:
            raise AuthError(
                400,
                "E-AUTH-PROVINCE",
                "只有系统操作员账号可以限定省份",
                "only operator accounts can be limited to a province",
            )
        if new.province is not None and not (len(new.province) == 2 and new.province.isdigit()):
            raise AuthError(400, "E-AUTH-PROVINCE", "省份代码应为两位数字", "a province is two digits")
        if not self.national and new.province is not None:
            raise AuthError(
                400,
                "E-AUTH-PROVINCE",
                "交换前置系统的账号只属于本省，无需限定省份",
                "node accounts belong to the node's province",
            )
        try:
            person = self.secrets.person_key(new.staff_number, new.id_number)
        except ValueError:
            raise AuthError(
                400,
                "E-AUTH-PERSON",
                "须给出工号或身份证号以识别使用账号的人",
                "a staff number or ID number identifies the person",
            ) from None
        password = one_time_password()
        now = self.clock()
        try:
            with connection.begin_nested():
                connection.execute(
                    insert(self.tables.accounts).values(
                        account=name,
                        name=new.name[:100],
                        role=new.role.value,
                        province=new.province,
                        person_key=person,
                        status="active",
                        password_hash=hash_password(password),
                        password_changed_at=now,
                        must_change_password=True,
                        created_at=now,
                        created_by=created_by,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            raise AuthError(
                409,
                "E-AUTH-SEPARATION",
                "账号已存在，或此人已有账号（一人只能担任一种角色）",
                "the account exists, or this person already has an account (one role per person)",
            ) from None
        return password

    def bootstrap(self, sysadmin: NewAccount, auditor: NewAccount, caller: Caller) -> dict[str, str]:
        """The first 系统管理员 and 安全审计员, only while no account exists; their one-time passwords."""
        if sysadmin.role is not Role.SYSADMIN or auditor.role is not Role.AUDITOR:
            raise ValueError("bootstrap creates one sysadmin and one auditor")
        with self._write() as connection:
            if connection.execute(select(func.count()).select_from(self.tables.accounts)).scalar_one():
                raise AuthError(
                    409,
                    "E-AUTH-BOOTSTRAPPED",
                    "已有账号，不能再次初始化；请由系统管理员创建账号",
                    "accounts exist already; the sysadmin creates further accounts",
                )
            passwords = {}
            for new in (sysadmin, auditor):
                passwords[new.account] = self._insert(connection, new, "bootstrap")
                self._audit(
                    connection,
                    caller,
                    "account.bootstrap",
                    f"account:{new.account}",
                    "success",
                    account="bootstrap",
                    role="-",
                    new_role=new.role.value,
                )
        return passwords

    def create(self, actor: Principal, new: NewAccount, caller: Caller) -> str:
        """A new account with a one-time password (returned once)."""
        self._require(actor, Permission.ACCOUNTS_MANAGE)
        target = f"account:{new.account}"
        try:
            with self._write() as connection:
                actor_row = self._row(connection, actor.account)
                person = None
                with suppress(ValueError):  # a missing person is refused by _insert, with its own code
                    person = self.secrets.person_key(new.staff_number, new.id_number)
                if actor_row is not None and person == actor_row.person_key:
                    raise AuthError(
                        403,
                        "E-AUTH-SEPARATION",
                        "不能为自己再开设账号或授予其他角色",
                        "no one can give themselves another account or role",
                    )
                password = self._insert(connection, new, actor.account)
                self._audit(
                    connection,
                    caller,
                    "account.create",
                    target,
                    "success",
                    account=actor.account,
                    role=actor.role.value,
                    new_role=new.role.value,
                    province=new.province,
                )
        except AuthError as error:
            raise self._refuse(
                caller, "account.create", target, error, account=actor.account, role=actor.role.value
            ) from None
        return password

    def _require(self, actor: Principal, permission: Permission) -> None:
        if not actor.may(permission):
            raise AuthError(
                403, "E-AUTH-FORBIDDEN", "无权执行此操作", f"{actor.role.value} lacks {permission.value}"
            )

    def _change_other(
        self,
        actor: Principal,
        account: str,
        caller: Caller,
        action: str,
        change: Callable[[Connection, Any, dt.datetime], dict[str, Any]],
    ) -> dict[str, Any]:
        """Apply ``change`` to another person's account, audited; nobody changes their own this way."""
        target = f"account:{account}"
        try:
            self._require(actor, Permission.ACCOUNTS_MANAGE)
            if account == actor.account:
                raise AuthError(
                    403,
                    "E-AUTH-SELF",
                    "不能修改自己的账号状态或角色（口令请用“修改口令”）",
                    "no one changes their own account's state or role",
                )
            with self._write() as connection:
                row = self._row(connection, account)
                if row is None:
                    raise AuthError(404, "E-AUTH-UNKNOWN-ACCOUNT", "账号不存在", "no such account")
                now = self.clock()
                detail = change(connection, row, now)
                self._audit(
                    connection,
                    caller,
                    action,
                    target,
                    "success",
                    account=actor.account,
                    role=actor.role.value,
                    **detail,
                )
                return detail
        except AuthError as error:
            raise self._refuse(
                caller, action, target, error, account=actor.account, role=actor.role.value
            ) from None

    def _update(self, connection: Connection, account: str, now: dt.datetime, **values: Any) -> None:
        accounts = self.tables.accounts
        connection.execute(
            update(accounts).where(accounts.c.account == account).values(updated_at=now, **values)
        )

    def disable(self, actor: Principal, account: str, caller: Caller) -> None:
        def change(connection: Connection, row: Any, now: dt.datetime) -> dict[str, Any]:
            self._update(connection, account, now, status="disabled")
            ended = end_account_sessions(connection, self.tables.sessions, account, "account-disabled", now)
            return {"sessions_ended": ended}

        self._change_other(actor, account, caller, "account.disable", change)

    def enable(self, actor: Principal, account: str, caller: Caller) -> None:
        def change(connection: Connection, row: Any, now: dt.datetime) -> dict[str, Any]:
            self._update(connection, account, now, status="active")
            return {}

        self._change_other(actor, account, caller, "account.enable", change)

    def unlock(self, actor: Principal, account: str, caller: Caller) -> None:
        def change(connection: Connection, row: Any, now: dt.datetime) -> dict[str, Any]:
            self._update(connection, account, now, failed_attempts=0, locked_until=None)
            return {}

        self._change_other(actor, account, caller, "account.unlock", change)

    def set_role(
        self, actor: Principal, account: str, role: Role, province: str | None, caller: Caller
    ) -> None:
        """Give another account a different role (its one role); its sessions end."""

        def change(connection: Connection, row: Any, now: dt.datetime) -> dict[str, Any]:
            if province is not None and (role is not Role.OPERATOR or not self.national):
                raise AuthError(
                    400,
                    "E-AUTH-PROVINCE",
                    "只有国家平台的系统操作员账号可以限定省份",
                    "only hub operators have a province",
                )
            self._update(connection, account, now, role=role.value, province=province)
            end_account_sessions(connection, self.tables.sessions, account, "role-changed", now)
            return {"from_role": row.role, "to_role": role.value, "province": province}

        self._change_other(actor, account, caller, "account.role", change)

    def reset_password(self, actor: Principal, account: str, caller: Caller) -> str:
        password = one_time_password()

        def change(connection: Connection, row: Any, now: dt.datetime) -> dict[str, Any]:
            self._update(
                connection,
                account,
                now,
                password_hash=hash_password(password),
                password_changed_at=now,
                must_change_password=True,
                failed_attempts=0,
                locked_until=None,
            )
            end_account_sessions(connection, self.tables.sessions, account, "password-reset", now)
            return {}

        self._change_other(actor, account, caller, "account.reset-password", change)
        return password

    def reset_totp(self, actor: Principal, account: str, caller: Caller) -> None:
        """Forget the account's second factor (lost phone): it enrols again at its next sign-in."""

        def change(connection: Connection, row: Any, now: dt.datetime) -> dict[str, Any]:
            self._update(connection, account, now, totp_secret=None, totp_last_step=None)
            end_account_sessions(connection, self.tables.sessions, account, "totp-reset", now)
            return {}

        self._change_other(actor, account, caller, "account.reset-totp", change)

    def info(self, account: str) -> AccountInfo | None:
        with self.engine.connect() as connection:
            row = self._row(connection, account)
        return None if row is None else self._info(row)

    def _info(self, row: Any) -> AccountInfo:
        locked = row.locked_until is not None and aware(row.locked_until) > self.clock()
        return AccountInfo(
            account=row.account,
            name=row.name,
            role=Role(row.role),
            province=row.province,
            status=row.status,
            locked=locked,
            totp_enrolled=row.totp_last_step is not None,
            must_change_password=bool(row.must_change_password),
            password_changed_at=aware(row.password_changed_at),
            last_sign_in_at=aware(row.last_sign_in_at) if row.last_sign_in_at else None,
        )

    def list(self, actor: Principal) -> list[AccountInfo]:
        self._require(actor, Permission.ACCOUNTS_MANAGE)
        accounts = self.tables.accounts
        with self.engine.connect() as connection:
            rows = connection.execute(select(accounts).order_by(accounts.c.account)).all()
        return [self._info(row) for row in rows]

    # -- sign-in --------------------------------------------------------------------------------

    def _source_blocked(self, connection: Connection, source: str, now: dt.datetime) -> bool:
        attempts = self.tables.sign_in_attempts
        since = now - self.sign_in_policy.source_window
        failures = connection.execute(
            select(func.count())
            .select_from(attempts)
            .where(and_(attempts.c.source == source[:64], attempts.c.at >= since, attempts.c.ok.is_(False)))
        ).scalar_one()
        return int(failures) >= self.sign_in_policy.source_max_failures

    def _attempt(self, connection: Connection, source: str, account: str, ok: bool, now: dt.datetime) -> None:
        connection.execute(
            insert(self.tables.sign_in_attempts).values(
                at=now, source=source[:64], account=account[:64], ok=ok
            )
        )

    def sign_in(self, account: str, password: str, caller: Caller, *, kind: str = "web") -> SignIn:
        """Check the password; a session at the first stage the account still owes.

        Refused, each audited: too many failures from the source address (``E-AUTH-RATE``), unknown
        account or wrong password (``E-AUTH-CREDENTIALS``, counted toward the lockout), locked
        (``E-AUTH-LOCKED``), disabled (``E-AUTH-DISABLED``).
        """
        name = account.strip().lower()[:64]
        now = self.clock()
        error: AuthError | None = None
        result: SignIn | None = None
        with self._write() as connection:
            row = self._row(connection, name)
            who = {"account": name or "-", "role": row.role if row is not None else "-"}
            if self._source_blocked(connection, caller.source, now):
                error = AuthError(
                    429,
                    "E-AUTH-RATE",
                    "来自此地址的失败登录过多，请稍后再试",
                    "too many failed sign-ins from this address; try later",
                )
            elif row is None:
                verify_password(_dummy_hash(), password)  # same time as a real check
                error = bad_credentials()
            elif row.locked_until is not None and aware(row.locked_until) > now:
                error = AuthError(
                    423,
                    "E-AUTH-LOCKED",
                    f"连续登录失败，账号已锁定至{aware(row.locked_until).astimezone(_SHANGHAI):%H:%M}",
                    "the account is locked after repeated failures",
                )
            elif not verify_password(row.password_hash, password):
                failures = int(row.failed_attempts) + 1
                locked = failures >= self.sign_in_policy.lockout_failures
                self._update(
                    connection,
                    name,
                    now,
                    failed_attempts=0 if locked else failures,
                    locked_until=now + self.sign_in_policy.lockout if locked else row.locked_until,
                )
                if locked:
                    self._audit(connection, caller, "account.locked", f"account:{name}", "success", **who)
                    error = AuthError(
                        423,
                        "E-AUTH-LOCKED",
                        "连续登录失败，账号已锁定",
                        "the account is locked after repeated failures",
                    )
                else:
                    error = bad_credentials()
            elif row.status != "active":
                error = AuthError(403, "E-AUTH-DISABLED", "账号已停用", "the account is disabled")
            else:
                stage = self._next_stage(row, after="password-ok")
                token = open_session(
                    connection,
                    self.tables.sessions,
                    account=name,
                    role=row.role,
                    province=row.province,
                    stage=stage,
                    kind=kind,
                    source=caller.source,
                    now=now,
                )
                self._update(connection, name, now, failed_attempts=0, locked_until=None)
                if stage == "full":
                    self._update(connection, name, now, last_sign_in_at=now)
                result = SignIn(token, stage, name, Role(row.role))
            self._attempt(connection, caller.source, name, error is None, now)
            self._audit(
                connection,
                caller,
                "auth.sign-in",
                f"account:{name}",
                "success" if error is None else "failure",
                kind=kind,
                stage=result.stage if result else None,
                code=error.code if error else None,
                **who,
            )
        if error is not None:
            raise error
        assert result is not None
        return result

    def session(self, token: str) -> SessionRow | None:
        """The live session of ``token`` at any stage (idle time restarts)."""
        with self._write() as connection:
            return resolve_session(connection, self.tables.sessions, token, self.clock(), self.session_policy)

    def principal(self, token: str) -> Principal | None:
        """The signed-in person of a ``full`` session whose account is still active."""
        with self._write() as connection:
            found = resolve_session(
                connection, self.tables.sessions, token, self.clock(), self.session_policy
            )
            if found is None or found.stage != "full":
                return None
            row = self._row(connection, found.account)
            if row is None or row.status != "active" or row.role != found.role:
                end_session(
                    connection, self.tables.sessions, found.token_hash, "account-changed", self.clock()
                )
                return None
        return Principal(
            account=found.account,
            role=Role(found.role),
            province=found.province,
            session_id=found.token_hash[:16],
            extra={"name": row.name, "kind": found.kind, "token_hash": found.token_hash},
        )

    def _staged(self, token: str, stage: str) -> tuple[SessionRow, Any]:
        found = self.session(token)
        if found is None:
            raise AuthError(401, "E-AUTH-REQUIRED", "请先登录", "sign in first")
        if found.stage != stage:
            raise AuthError(
                409,
                "E-AUTH-STAGE",
                "登录步骤不符，请重新登录",
                f"this session is at stage {found.stage}, not {stage}",
            )
        with self.engine.connect() as connection:
            row = self._row(connection, found.account)
        if row is None or row.status != "active":
            raise AuthError(403, "E-AUTH-DISABLED", "账号已停用", "the account is disabled")
        return found, row

    def _advance(self, connection: Connection, found: SessionRow, row: Any, after: str) -> str:
        stage = self._next_stage(row, after=after)
        set_stage(connection, self.tables.sessions, found.token_hash, stage)
        if stage == "full":
            self._update(connection, found.account, self.clock(), last_sign_in_at=self.clock())
        return stage

    def verify_totp(self, token: str, code: str, caller: Caller) -> str:
        """The second step of a sign-in; returns the next stage."""
        found, row = self._staged(token, "totp")
        now = self.clock()
        secret = self.secrets.open(row.totp_secret, row.account)
        with self._write() as connection:
            fresh = self._row(connection, row.account)  # the last step, read under the write lock
            step = verify_code(secret, code, now, fresh.totp_last_step)
            who = {"account": row.account, "role": row.role}
            if step is None:
                failures = int(fresh.failed_attempts) + 1
                locked = failures >= self.sign_in_policy.lockout_failures
                self._update(
                    connection,
                    row.account,
                    now,
                    failed_attempts=0 if locked else failures,
                    locked_until=now + self.sign_in_policy.lockout if locked else fresh.locked_until,
                )
                if locked:
                    end_session(connection, self.tables.sessions, found.token_hash, "locked", now)
                self._attempt(connection, caller.source, row.account, False, now)
                self._audit(connection, caller, "auth.totp", f"account:{row.account}", "failure", **who)
                stage = None
            else:
                self._update(connection, row.account, now, totp_last_step=step, failed_attempts=0)
                fresh = self._row(connection, row.account)
                stage = self._advance(connection, found, fresh, "totp")
                self._audit(
                    connection, caller, "auth.totp", f"account:{row.account}", "success", stage=stage, **who
                )
        if stage is None:
            raise AuthError(401, "E-AUTH-TOTP", "动态口令错误或已使用", "wrong or already used one-time code")
        return stage

    def change_password(self, token: str, current: str, new: str, caller: Caller) -> str:
        """Replace the password (at the ``password`` stage, or any time when signed in)."""
        found = self.session(token)
        if found is None:
            raise AuthError(401, "E-AUTH-REQUIRED", "请先登录", "sign in first")
        if found.stage not in ("password", "full"):
            raise AuthError(409, "E-AUTH-STAGE", "请先完成登录", f"this session is at stage {found.stage}")
        target = f"account:{found.account}"
        who = {"account": found.account, "role": found.role}
        now = self.clock()
        try:
            with self._write() as connection:
                row = self._row(connection, found.account)
                if row is None or not verify_password(row.password_hash, current):
                    raise AuthError(
                        400, "E-AUTH-CREDENTIALS", "当前口令错误", "the current password is wrong"
                    )
                self._check_password(row.account, new)
                history = self.tables.password_history
                previous = connection.execute(
                    select(history.c.password_hash)
                    .where(history.c.account == row.account)
                    .order_by(history.c.id.desc())
                    .limit(max(self.passwords.history - 1, 0))
                ).scalars()
                if self.passwords.history and any(
                    verify_password(h, new) for h in [row.password_hash, *previous]
                ):
                    raise AuthError(
                        400,
                        "E-AUTH-PASSWORD-REUSED",
                        f"不得使用最近{self.passwords.history}次用过的口令",
                        f"none of the last {self.passwords.history} passwords may be used again",
                    )
                connection.execute(
                    insert(history).values(
                        account=row.account, password_hash=row.password_hash, retired_at=now
                    )
                )
                self._update(
                    connection,
                    row.account,
                    now,
                    password_hash=hash_password(new),
                    password_changed_at=now,
                    must_change_password=False,
                )
                ended = end_account_sessions(
                    connection,
                    self.tables.sessions,
                    row.account,
                    "password-changed",
                    now,
                    keep=found.token_hash,
                )
                stage = found.stage
                if found.stage == "password":
                    stage = self._advance(connection, found, self._row(connection, row.account), "password")
                self._audit(
                    connection, caller, "auth.password-change", target, "success", sessions_ended=ended, **who
                )
        except AuthError as error:
            raise self._refuse(caller, "auth.password-change", target, error, **who) from None
        return stage

    def begin_enrolment(self, token: str) -> Enrolment:
        """A new TOTP secret for the ``enrol`` stage, sealed into the account until confirmed."""
        _found, row = self._staged(token, "enrol")
        secret = new_secret()
        with self._write() as connection:
            self._update(
                connection, row.account, self.clock(), totp_secret=self.secrets.seal(secret, row.account)
            )
        uri = provisioning_uri(secret, row.account, self.sign_in_policy.totp_issuer)
        return Enrolment(secret, uri, qr_svg(uri))

    def confirm_enrolment(self, token: str, code: str, caller: Caller) -> str:
        found, row = self._staged(token, "enrol")
        who = {"account": row.account, "role": row.role}
        now = self.clock()
        step = None
        if row.totp_secret is not None:
            step = verify_code(self.secrets.open(row.totp_secret, row.account), code, now, None)
        with self._write() as connection:
            if step is None:
                self._audit(connection, caller, "auth.totp-enrol", f"account:{row.account}", "failure", **who)
                stage = None
            else:
                self._update(connection, row.account, now, totp_last_step=step)
                stage = self._advance(connection, found, self._row(connection, row.account), "enrol")
                self._audit(connection, caller, "auth.totp-enrol", f"account:{row.account}", "success", **who)
        if stage is None:
            raise AuthError(
                400, "E-AUTH-TOTP", "动态口令错误，请按二维码重新添加后再试", "wrong one-time code"
            )
        return stage

    def sign_out(self, token: str, caller: Caller) -> bool:
        digest = hash_token(token)
        sessions = self.tables.sessions
        with self._write() as connection:
            row = connection.execute(select(sessions).where(sessions.c.token_hash == digest)).first()
            if row is None:
                return False
            ended = end_session(connection, sessions, digest, "sign-out", self.clock())
            self._audit(
                connection,
                caller,
                "auth.sign-out",
                f"account:{row.account}",
                "success" if ended else "failure",
                account=row.account,
                role=row.role,
            )
        return ended


_SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@cache
def _dummy_hash() -> str:
    return hash_password("not-a-real-password-Aa1!")


def account_service(
    engine: Engine,
    tables: AccountTables,
    audit: AuditLog,
    settings: Any,
    key_path: Any,
    *,
    national: bool,
    clock: Clock = utc_now,
) -> AccountService:
    """The service configured from ``SecuritySettings`` with its key file (created 0600 if missing)."""
    from ggzy.security.keys import load_or_create_key
    from ggzy.security.passwords import configure_hasher

    configure_hasher(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)
    return AccountService(
        engine,
        tables,
        audit,
        AccountSecrets(load_or_create_key(key_path)),
        passwords=PasswordPolicy(
            settings.password_min_length,
            settings.password_min_classes,
            settings.password_max_age_days,
            settings.password_history,
        ),
        sessions=SessionPolicy(
            dt.timedelta(minutes=settings.session_idle_minutes),
            dt.timedelta(hours=settings.session_absolute_hours),
        ),
        sign_in=SignInPolicy(
            settings.lockout_failures,
            dt.timedelta(minutes=settings.lockout_minutes),
            settings.source_max_failures,
            dt.timedelta(minutes=settings.source_window_minutes),
            settings.totp_required_for_operators,
            settings.totp_issuer,
        ),
        clock=clock,
        national=national,
    )
