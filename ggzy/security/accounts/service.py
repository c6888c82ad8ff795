"""Accounts, sign-in and self-service, written once for the web layer and the command line.

Every sign-in, sign-out and change of an account goes into the audit chain in the same transaction
as the change itself; refusals are audited too (in their own transaction, committed before the
refusal is raised). Every rule lives here, so any caller (pages, JSON API, command line) gets it:

- **Lockout**: five wrong passwords in a row, and separately five wrong second-factor codes in a row
  (a right password does not reset those), lock the account for 30 minutes; a lock ends every
  unfinished sign-in of the account and every later step is refused. Names that are no account
  are counted the same way, with the same argon2 work, so the answers do not tell which exist.
  Every step (password, code, enrolment, password change) counts toward the per-address limit.
- **Token per step**: each step of the sign-in replaces the session's token; the old one is dead.
- **三员分立 second person**: the 系统管理员 creates, disables and enables accounts, but resetting an
  auditor's password or second factor, or changing a role to or from auditor (or the last active
  administrator's), waits for another auditor's approval (:meth:`AccountService.approve`), used
  once; without a second auditor only :meth:`AccountService.recover` (offline, on the host with the
  accounts key) can do it, and every auditor is told at their next sign-in.
- **One person, one account**: a staff number and the keyed hash of the ID number each identify a
  person once; 系统管理员 and 安全审计员 accounts need the ID number and carry an end date (任期).
"""

from __future__ import annotations

import datetime as dt
import secrets
import string
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import Connection, Engine, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ggzy.identifiers.id_number import is_valid_id_number
from ggzy.security.accounts.errors import AuthError, bad_credentials
from ggzy.security.accounts.secrets import AccountSecrets
from ggzy.security.accounts.tables import AccountTables
from ggzy.security.audit import AuditEntry, AuditLog
from ggzy.security.passwords import PasswordPolicy, dummy_hash, hash_password, verify_password
from ggzy.security.permissions import Permission, Principal, Role
from ggzy.security.sessions import (
    SessionPolicy,
    SessionRow,
    aware,
    end_account_sessions,
    end_session,
    hash_token,
    open_session,
    renew_session,
    resolve_session,
)
from ggzy.security.totp import new_secret, provisioning_uri, qr_svg, verify_code
from ggzy.store.upsert import upsert

__all__ = [
    "PRIVILEGED_ROLES",
    "AccountInfo",
    "AccountService",
    "Approval",
    "Caller",
    "Enrolment",
    "NewAccount",
    "Notice",
    "SignIn",
    "SignInPolicy",
    "account_service",
]

Clock = Callable[[], dt.datetime]
PRIVILEGED_ROLES = frozenset({Role.SYSADMIN, Role.AUDITOR})
# The changes of another person's account that need a second person when that account is an
# auditor's (or the last active administrator's), and what an offline recovery may do.
SECOND_PERSON_ACTIONS = ("reset-password", "reset-totp", "role")
RECOVERY_ACTIONS = ("reset-password", "reset-totp", "role", "unlock", "enable")
_UNFINISHED = ("totp", "password", "enrol")
_SHANGHAI = dt.timezone(dt.timedelta(hours=8))


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
    privileged_term: dt.timedelta = dt.timedelta(days=365)  # longest 任期 of a sysadmin or auditor
    term_warning: dt.timedelta = dt.timedelta(days=30)  # the portal warns this long before the end
    approval_valid: dt.timedelta = dt.timedelta(hours=24)  # a second person's approval, unused


@dataclass(frozen=True, slots=True)
class NewAccount:
    account: str
    name: str
    role: Role
    staff_number: str | None = None
    id_number: str | None = None
    province: str | None = None
    valid_until: dt.datetime | None = None  # end of the term; privileged roles get one by default


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
    valid_until: dt.datetime | None = None
    id_bound: bool = False  # the person is identified by the keyed hash of the ID number


@dataclass(frozen=True, slots=True)
class SignIn:
    """A session in progress: ``stage`` says what the person owes before it is ``full``.

    Every step returns a new one: its ``token`` replaces the one the step was given.
    """

    token: str
    stage: str
    account: str
    role: Role


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str
    uri: str
    svg: str


@dataclass(frozen=True, slots=True)
class Approval:
    """A change of an auditor's (or the last administrator's) account waiting for a second person."""

    id: int
    account: str
    action: str
    change: Mapping[str, Any]
    requested_by: str
    requested_at: dt.datetime
    expires_at: dt.datetime
    approved_by: str | None
    approved_at: dt.datetime | None
    used_at: dt.datetime | None
    now: dt.datetime

    @property
    def status(self) -> str:
        if self.used_at is not None:
            return "used"
        if self.expires_at <= self.now:
            return "expired"
        return "approved" if self.approved_at is not None else "pending"

    @property
    def label_zh(self) -> str:
        what = {"reset-password": "重置口令", "reset-totp": "清除动态口令", "role": "更改角色"}[self.action]
        if self.action == "role":
            role = Role(str(self.change.get("role")))
            what += f"为{role.label}" + (
                f"（省份 {self.change['province']}）" if self.change.get("province") else ""
            )
        return what


@dataclass(frozen=True, slots=True)
class Notice:
    id: int
    account: str
    at: dt.datetime
    kind: str
    message: str
    seen_at: dt.datetime | None


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


def _rate_limited() -> AuthError:
    return AuthError(
        429,
        "E-AUTH-RATE",
        "来自此地址的失败登录过多，请稍后再试",
        "too many failed sign-ins from this address; try later",
    )


def _locked(until: dt.datetime) -> AuthError:
    return AuthError(
        423,
        "E-AUTH-LOCKED",
        f"连续登录失败，账号已锁定至{aware(until).astimezone(_SHANGHAI):%H:%M}（北京时间）",
        "the account is locked after repeated failures",
    )


def _disabled() -> AuthError:
    return AuthError(403, "E-AUTH-DISABLED", "账号已停用", "the account is disabled")


def _expired(until: dt.datetime) -> AuthError:
    return AuthError(
        403,
        "E-AUTH-EXPIRED",
        f"账号任期已于{aware(until).astimezone(_SHANGHAI):%Y-%m-%d}届满，请联系系统管理员",
        "the account's term has ended",
    )


def _required() -> AuthError:
    return AuthError(401, "E-AUTH-REQUIRED", "请先登录", "sign in first")


@dataclass(frozen=True, slots=True)
class _Counter:
    """The failures in a row of a name (account or not) and its lock."""

    failed: int
    locked_until: dt.datetime | None

    def locked(self, now: dt.datetime) -> bool:
        return self.locked_until is not None and aware(self.locked_until) > now


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

    def _update(self, connection: Connection, account: str, now: dt.datetime, **values: Any) -> None:
        accounts = self.tables.accounts
        connection.execute(
            update(accounts).where(accounts.c.account == account).values(updated_at=now, **values)
        )

    def _require(self, actor: Principal, permission: Permission) -> None:
        if not actor.may(permission):
            raise AuthError(
                403, "E-AUTH-FORBIDDEN", "无权执行此操作", f"{actor.role.value} lacks {permission.value}"
            )

    # -- who a person is, and for how long --------------------------------------------------------

    def _identity(self, new: NewAccount) -> tuple[str, str | None]:
        """``(person_key, id_key)`` of a new account; privileged roles need a valid ID number."""
        id_key = None
        if new.id_number and new.id_number.strip():
            normalised = new.id_number.strip().upper()
            if not is_valid_id_number(normalised):
                raise AuthError(
                    400,
                    "E-AUTH-PERSON-ID",
                    "身份证号无效（18位，校验码、出生日期须正确）",
                    "the ID number is not a valid resident ID number",
                )
            id_key = self.secrets.person_key(id_number=normalised)
        if new.role in PRIVILEGED_ROLES and id_key is None:
            raise self._id_required()
        if new.staff_number and new.staff_number.strip():
            return self.secrets.person_key(staff_number=new.staff_number), id_key
        if id_key is None:
            raise AuthError(
                400,
                "E-AUTH-PERSON",
                "须给出工号或身份证号以识别使用账号的人",
                "a staff number or ID number identifies the person",
            )
        return id_key, id_key

    @staticmethod
    def _id_required() -> AuthError:
        return AuthError(
            400,
            "E-AUTH-PERSON-ID",
            "系统管理员和安全审计员账号须登记本人身份证号（只保存其带密钥的杂凑），不能只用工号",
            "sysadmin and auditor accounts need the person's ID number, not only a staff number",
        )

    def _term(self, role: Role, wanted: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
        """The end date of an account of ``role``: required (by default the longest term) for
        privileged roles, in the future and no later than the longest term."""
        longest = self.sign_in_policy.privileged_term
        if wanted is None:
            return now + longest if role in PRIVILEGED_ROLES else None
        wanted = aware(wanted)
        if wanted <= now or (role in PRIVILEGED_ROLES and wanted > now + longest):
            raise AuthError(
                400,
                "E-AUTH-TERM",
                f"账号截止日期须晚于今天，系统管理员和安全审计员的任期不超过{longest.days}天",
                f"the end date must be in the future and privileged terms at most {longest.days} days",
            )
        return wanted

    def term_warning(self, account: str) -> str | None:
        """The portal's warning when the account's term ends within 30 days (None otherwise)."""
        info = self.info(account)
        if info is None or info.valid_until is None:
            return None
        left = info.valid_until - self.clock()
        if left > self.sign_in_policy.term_warning:
            return None
        day = info.valid_until.astimezone(_SHANGHAI)
        return (
            f"账号任期将于{day:%Y-%m-%d}届满（还有{max(left.days, 0)}天），请及时联系系统管理员办理续期或交接"
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
        person, id_key = self._identity(new)
        now = self.clock()
        valid_until = self._term(new.role, new.valid_until, now)
        password = one_time_password()
        try:
            with connection.begin_nested():
                connection.execute(
                    insert(self.tables.accounts).values(
                        account=name,
                        name=new.name[:100],
                        role=new.role.value,
                        province=new.province,
                        person_key=person,
                        id_key=id_key,
                        status="active",
                        password_hash=hash_password(password),
                        password_changed_at=now,
                        must_change_password=True,
                        valid_until=valid_until,
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
        """A new account with a one-time password (returned once); every auditor is told of a new
        privileged account."""
        self._require(actor, Permission.ACCOUNTS_MANAGE)
        target = f"account:{new.account}"
        try:
            with self._write() as connection:
                actor_row = self._row(connection, actor.account)
                person, id_key = None, None
                with suppress(AuthError):  # a missing or bad identity is refused by _insert, with its code
                    person, id_key = self._identity(new)
                if actor_row is not None and (
                    person == actor_row.person_key or (id_key is not None and id_key == actor_row.id_key)
                ):
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
                if new.role in PRIVILEGED_ROLES:
                    self._tell_auditors(
                        connection,
                        "privileged-account",
                        f"{actor.account} 新建了{new.role.label}账号 {new.account}（{new.name[:100]}）",
                        besides=new.account.strip().lower(),
                    )
        except AuthError as error:
            raise self._refuse(
                caller, "account.create", target, error, account=actor.account, role=actor.role.value
            ) from None
        return password

    def _active_admins(self, connection: Connection, *, besides: str) -> int:
        accounts = self.tables.accounts
        return int(
            connection.execute(
                select(func.count())
                .select_from(accounts)
                .where(
                    accounts.c.role == Role.SYSADMIN.value,
                    accounts.c.status == "active",
                    accounts.c.account != besides,
                )
            ).scalar_one()
        )

    def _needs_second_person(
        self, connection: Connection, row: Any, action: str, change: Mapping[str, Any]
    ) -> bool:
        if action not in SECOND_PERSON_ACTIONS:
            return False
        if row.role == Role.AUDITOR.value or change.get("role") == Role.AUDITOR.value:
            return True
        return row.role == Role.SYSADMIN.value and self._active_admins(connection, besides=row.account) == 0

    def _change_other(
        self,
        actor: Principal,
        account: str,
        caller: Caller,
        action: str,
        change: Callable[[Connection, Any, dt.datetime], dict[str, Any]],
        *,
        asked: Mapping[str, Any] | None = None,
        check: Callable[[Any], None] | None = None,
    ) -> dict[str, Any]:
        """Apply ``change`` to another person's account, audited; nobody changes their own this way.

        ``asked`` is what a second person approves (the new role, say); a change that needs one and
        has no unused approval of exactly that is recorded as a request and refused
        (``E-AUTH-APPROVAL``). ``check`` refuses a change before any request is made.
        """
        target = f"account:{account}"
        waiting: AuthError | None = None
        detail: dict[str, Any] = {}
        who = {"account": actor.account, "role": actor.role.value}
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
                if check is not None:
                    check(row)
                now = self.clock()
                wanted = dict(asked or {})
                approved_by = None
                if self._needs_second_person(connection, row, action.removeprefix("account."), wanted):
                    approved_by = self._spend_approval(
                        connection, account, action.removeprefix("account."), wanted, actor.account, now
                    )
                    if approved_by is None:
                        waiting = self._ask_second_person(
                            connection, caller, actor, row, action.removeprefix("account."), wanted, now
                        )
                if waiting is None:
                    detail = change(connection, row, now)
                    if approved_by is not None:
                        detail["approved_by"] = approved_by
                    self._audit(connection, caller, action, target, "success", **who, **detail)
        except AuthError as error:
            raise self._refuse(caller, action, target, error, **who) from None
        if waiting is not None:  # the request is committed; the change waits for the second person
            raise self._refuse(caller, action, target, waiting, **who)
        return detail

    # -- the second person ------------------------------------------------------------------------

    def _spend_approval(
        self,
        connection: Connection,
        account: str,
        action: str,
        change: Mapping[str, Any],
        by: str,
        now: dt.datetime,
    ) -> str | None:
        """Use an approved, unused, unexpired approval of exactly this change; the approver."""
        table = self.tables.approvals
        rows = connection.execute(
            select(table).where(
                table.c.account == account,
                table.c.action == action,
                table.c.requested_by == by,
                table.c.approved_at.is_not(None),
                table.c.used_at.is_(None),
                table.c.expires_at > now,
            )
        ).all()
        for row in rows:
            if dict(row.change) == dict(change):
                connection.execute(update(table).where(table.c.id == row.id).values(used_at=now))
                return str(row.approved_by)
        return None

    def _ask_second_person(
        self,
        connection: Connection,
        caller: Caller,
        actor: Principal,
        row: Any,
        action: str,
        change: Mapping[str, Any],
        now: dt.datetime,
    ) -> AuthError:
        table = self.tables.approvals
        pending = [
            r
            for r in connection.execute(
                select(table).where(
                    table.c.account == row.account,
                    table.c.action == action,
                    table.c.requested_by == actor.account,
                    table.c.used_at.is_(None),
                    table.c.expires_at > now,
                )
            ).all()
            if dict(r.change) == dict(change)
        ]
        if pending:
            request_id = int(pending[0].id)
        else:
            request_id = int(
                connection.execute(
                    insert(table).returning(table.c.id),
                    {
                        "account": row.account,
                        "action": action,
                        "change": dict(change),
                        "requested_by": actor.account,
                        "requested_at": now,
                        "expires_at": now + self.sign_in_policy.approval_valid,
                    },
                ).scalar_one()
            )
            self._audit(
                connection,
                caller,
                "account.approval-request",
                f"account:{row.account}",
                "success",
                account=actor.account,
                role=actor.role.value,
                request=request_id,
                change_action=action,
                change=dict(change),
            )
        return AuthError(
            403,
            "E-AUTH-APPROVAL",
            f"变更{Role(row.role).label}账号 {row.account} 需另一名安全审计员批准（申请编号 {request_id}，"
            f"{int(self.sign_in_policy.approval_valid.total_seconds() // 3600)}小时内有效）；批准后请再次执行。"
            "没有其他审计员时，只能在主机上用 ggzy admin recover 离线恢复",
            f"changing this account needs another auditor's approval (request {request_id}); run it again once approved",
        )

    def _approval(self, row: Any) -> Approval:
        return Approval(
            id=int(row.id),
            account=row.account,
            action=row.action,
            change=dict(row.change),
            requested_by=row.requested_by,
            requested_at=aware(row.requested_at),
            expires_at=aware(row.expires_at),
            approved_by=row.approved_by,
            approved_at=aware(row.approved_at) if row.approved_at else None,
            used_at=aware(row.used_at) if row.used_at else None,
            now=self.clock(),
        )

    def approvals(self, actor: Principal, *, open_only: bool = True) -> list[Approval]:
        """The requests a second person can approve (auditors) or is waiting for (administrators)."""
        if not (actor.may(Permission.ACCOUNTS_APPROVE) or actor.may(Permission.ACCOUNTS_MANAGE)):
            raise AuthError(
                403, "E-AUTH-FORBIDDEN", "无权查看审批申请", f"{actor.role.value} sees no approval requests"
            )
        table = self.tables.approvals
        with self.engine.connect() as connection:
            rows = connection.execute(select(table).order_by(table.c.id.desc()).limit(200)).all()
        found = [self._approval(row) for row in rows]
        return [a for a in found if a.status in ("pending", "approved")] if open_only else found

    def approve(self, actor: Principal, approval_id: int, caller: Caller) -> Approval:
        """Another auditor approves a request; the administrator then runs the change again (once)."""
        table = self.tables.approvals
        target = f"approval:{approval_id}"
        try:
            self._require(actor, Permission.ACCOUNTS_APPROVE)
            with self._write() as connection:
                row = connection.execute(select(table).where(table.c.id == approval_id)).first()
                if row is None:
                    raise AuthError(404, "E-AUTH-APPROVAL-UNKNOWN", "没有这个审批申请", "no such request")
                if row.account == actor.account:
                    raise AuthError(
                        403,
                        "E-AUTH-SELF",
                        "不能批准对自己账号的变更，须由另一名安全审计员批准",
                        "no one approves a change of their own account",
                    )
                if self._approval(row).status != "pending":
                    raise AuthError(
                        409,
                        "E-AUTH-APPROVAL-CLOSED",
                        "该申请已批准、已使用或已过期",
                        "the request is approved, used or expired already",
                    )
                now = self.clock()
                connection.execute(
                    update(table)
                    .where(table.c.id == approval_id)
                    .values(approved_by=actor.account, approved_at=now)
                )
                self._audit(
                    connection,
                    caller,
                    "account.approve",
                    f"account:{row.account}",
                    "success",
                    account=actor.account,
                    role=actor.role.value,
                    request=approval_id,
                    change_action=row.action,
                    requested_by=row.requested_by,
                )
                fresh = connection.execute(select(table).where(table.c.id == approval_id)).one()
        except AuthError as error:
            raise self._refuse(
                caller, "account.approve", target, error, account=actor.account, role=actor.role.value
            ) from None
        return self._approval(fresh)

    # -- what auditors are told -------------------------------------------------------------------

    def _tell_auditors(self, connection: Connection, kind: str, message: str, *, besides: str = "") -> int:
        accounts = self.tables.accounts
        auditors = connection.execute(
            select(accounts.c.account).where(
                accounts.c.role == Role.AUDITOR.value,
                accounts.c.status == "active",
                accounts.c.account != besides,
            )
        ).scalars()
        rows = [
            {"account": name, "at": self.clock(), "kind": kind, "message": message[:2000]}
            for name in auditors
        ]
        if rows:
            connection.execute(insert(self.tables.notices), rows)
        return len(rows)

    def _notice(self, row: Any) -> Notice:
        return Notice(
            int(row.id),
            row.account,
            aware(row.at),
            row.kind,
            row.message,
            aware(row.seen_at) if row.seen_at else None,
        )

    def notices(self, actor: Principal, *, unseen_only: bool = True) -> list[Notice]:
        """What the signed-in person was told (offline recoveries, new privileged accounts)."""
        table = self.tables.notices
        where = [table.c.account == actor.account]
        if unseen_only:
            where.append(table.c.seen_at.is_(None))
        with self.engine.connect() as connection:
            rows = connection.execute(select(table).where(*where).order_by(table.c.id)).all()
        return [self._notice(row) for row in rows]

    def all_notices(self) -> list[Notice]:
        table = self.tables.notices
        with self.engine.connect() as connection:
            return [self._notice(r) for r in connection.execute(select(table).order_by(table.c.id))]

    def acknowledge_notices(self, actor: Principal, caller: Caller) -> int:
        table = self.tables.notices
        with self._write() as connection:
            seen = connection.execute(
                update(table)
                .where(table.c.account == actor.account, table.c.seen_at.is_(None))
                .values(seen_at=self.clock())
            ).rowcount
            if seen:
                self._audit(
                    connection,
                    caller,
                    "account.notices-read",
                    f"account:{actor.account}",
                    "success",
                    account=actor.account,
                    role=actor.role.value,
                    notices=seen,
                )
        return int(seen)

    # -- changes of other accounts ----------------------------------------------------------------

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
            self._update(connection, account, now, failed_attempts=0, totp_failures=0, locked_until=None)
            return {}

        self._change_other(actor, account, caller, "account.unlock", change)

    def set_valid_until(self, actor: Principal, account: str, until: dt.datetime, caller: Caller) -> None:
        """Set another account's end date (任期): renewal or an earlier end."""

        def change(connection: Connection, row: Any, now: dt.datetime) -> dict[str, Any]:
            valid_until = self._term(Role(row.role), until, now)
            self._update(connection, account, now, valid_until=valid_until)
            return {"valid_until": valid_until.isoformat() if valid_until else None}

        self._change_other(actor, account, caller, "account.term", change)

    def _role_change(
        self, role: Role, province: str | None
    ) -> Callable[[Connection, Any, dt.datetime], dict[str, Any]]:
        def change(connection: Connection, row: Any, now: dt.datetime) -> dict[str, Any]:
            if province is not None and (role is not Role.OPERATOR or not self.national):
                raise AuthError(
                    400,
                    "E-AUTH-PROVINCE",
                    "只有国家平台的系统操作员账号可以限定省份",
                    "only hub operators have a province",
                )
            values: dict[str, Any] = {"role": role.value, "province": province}
            if role in PRIVILEGED_ROLES:
                if row.id_key is None:
                    raise self._id_required()
                current = aware(row.valid_until) if row.valid_until else None
                if current is None or current > now + self.sign_in_policy.privileged_term:
                    values["valid_until"] = now + self.sign_in_policy.privileged_term
            self._update(connection, row.account, now, **values)
            end_account_sessions(connection, self.tables.sessions, row.account, "role-changed", now)
            return {"from_role": row.role, "to_role": role.value, "province": province}

        return change

    def set_role(
        self, actor: Principal, account: str, role: Role, province: str | None, caller: Caller
    ) -> None:
        """Give another account a different role (its one role); its sessions end."""

        def check(row: Any) -> None:
            if role in PRIVILEGED_ROLES and row.id_key is None:
                raise self._id_required()

        self._change_other(
            actor,
            account,
            caller,
            "account.role",
            self._role_change(role, province),
            asked={"role": role.value, "province": province},
            check=check,
        )

    def _password_reset(self, password: str) -> Callable[[Connection, Any, dt.datetime], dict[str, Any]]:
        def change(connection: Connection, row: Any, now: dt.datetime) -> dict[str, Any]:
            self._update(
                connection,
                row.account,
                now,
                password_hash=hash_password(password),
                password_changed_at=now,
                must_change_password=True,
                failed_attempts=0,
                locked_until=None,
            )
            end_account_sessions(connection, self.tables.sessions, row.account, "password-reset", now)
            return {}

        return change

    def _totp_reset(self, connection: Connection, row: Any, now: dt.datetime) -> dict[str, Any]:
        self._update(connection, row.account, now, totp_secret=None, totp_last_step=None, totp_failures=0)
        end_account_sessions(connection, self.tables.sessions, row.account, "totp-reset", now)
        return {}

    def reset_password(self, actor: Principal, account: str, caller: Caller) -> str:
        password = one_time_password()
        self._change_other(
            actor, account, caller, "account.reset-password", self._password_reset(password), asked={}
        )
        return password

    def reset_totp(self, actor: Principal, account: str, caller: Caller) -> None:
        """Forget the account's second factor (lost phone): it enrols again at its next sign-in."""
        self._change_other(actor, account, caller, "account.reset-totp", self._totp_reset, asked={})

    # -- offline recovery -------------------------------------------------------------------------

    def recover(
        self,
        account: str,
        action: str,
        *,
        operator: str,
        caller: Caller,
        role: Role | None = None,
        province: str | None = None,
    ) -> str | None:
        """The offline recovery of ``ggzy admin recover``, run on the host with the accounts key.

        For when no second person can act (the only auditor, the last administrator). The accounts
        key must open the second factors already sealed in the database (a copied database with a
        new key proves nothing); the recovery is audited and every active auditor is told at their
        next sign-in. Returns the one-time password of a ``reset-password``.
        """
        if action not in RECOVERY_ACTIONS:
            raise ValueError(f"unknown recovery action {action!r}")
        target = f"account:{account}"
        who = {"account": f"recovery:{operator}"[:64], "role": "-"}
        password = one_time_password() if action == "reset-password" else None
        try:
            with self._write() as connection:
                self._prove_key(connection)
                row = self._row(connection, account)
                if row is None:
                    raise AuthError(404, "E-AUTH-UNKNOWN-ACCOUNT", "账号不存在", "no such account")
                now = self.clock()
                if action == "reset-password":
                    assert password is not None
                    detail = self._password_reset(password)(connection, row, now)
                elif action == "reset-totp":
                    detail = self._totp_reset(connection, row, now)
                elif action == "role":
                    if role is None:
                        raise ValueError("a role recovery needs the role")
                    detail = self._role_change(role, province)(connection, row, now)
                elif action == "unlock":
                    self._update(
                        connection, account, now, failed_attempts=0, totp_failures=0, locked_until=None
                    )
                    detail = {}
                else:
                    self._update(connection, account, now, status="active")
                    detail = {}
                self._audit(
                    connection, caller, "account.recover", target, "success", recovery=action, **detail, **who
                )
                told = self._tell_auditors(
                    connection,
                    "recovery",
                    f"{now.astimezone(_SHANGHAI):%Y-%m-%d %H:%M} 主机操作员 {operator} 以离线恢复方式对账号 "
                    f"{account}（{Role(row.role).label}）执行了“{_RECOVERY_ZH[action]}”，未经第二人批准；"
                    "请核实是否为授权操作",
                )
                self._audit(
                    connection, caller, "account.notice", target, "success", notified_auditors=told, **who
                )
        except AuthError as error:
            raise self._refuse(caller, "account.recover", target, error, **who) from None
        return password

    def _prove_key(self, connection: Connection) -> None:
        accounts = self.tables.accounts
        sealed = connection.execute(
            select(accounts.c.account, accounts.c.totp_secret)
            .where(accounts.c.totp_secret.is_not(None))
            .limit(1)
        ).first()
        if sealed is None:
            return
        try:
            self.secrets.open(sealed.totp_secret, sealed.account)
        except (InvalidTag, ValueError):
            raise AuthError(
                403,
                "E-AUTH-KEY",
                "账号密钥文件与数据库不符：离线恢复须在保存账号密钥的主机上进行",
                "the accounts key does not match this database",
            ) from None

    # -- reading accounts -------------------------------------------------------------------------

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
            valid_until=aware(row.valid_until) if row.valid_until else None,
            id_bound=row.id_key is not None,
        )

    def list(self, actor: Principal) -> list[AccountInfo]:
        self._require(actor, Permission.ACCOUNTS_MANAGE)
        accounts = self.tables.accounts
        with self.engine.connect() as connection:
            rows = connection.execute(select(accounts).order_by(accounts.c.account)).all()
        return [self._info(row) for row in rows]

    # -- failures, locks and the address limit ----------------------------------------------------

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

    def _counter(self, connection: Connection, name: str, row: Any) -> _Counter:
        if row is not None:
            return _Counter(int(row.failed_attempts), row.locked_until)
        unknown = self.tables.unknown_names
        found = connection.execute(select(unknown).where(unknown.c.name == name)).first()
        return _Counter(int(found.failed_attempts), found.locked_until) if found else _Counter(0, None)

    def _lock(
        self, connection: Connection, caller: Caller, name: str, row: Any, now: dt.datetime
    ) -> AuthError:
        """Lock ``name`` now: every unfinished sign-in of the account ends; audited."""
        until = now + self.sign_in_policy.lockout
        if row is not None:
            sessions = self.tables.sessions
            connection.execute(
                update(sessions)
                .where(
                    sessions.c.account == name,
                    sessions.c.ended_at.is_(None),
                    sessions.c.stage.in_(_UNFINISHED),
                )
                .values(ended_at=now, end_reason="locked")
            )
        who = {"account": name or "-", "role": row.role if row is not None else "-"}
        self._audit(connection, caller, "account.locked", f"account:{name}", "success", **who)
        return _locked(until)

    def _password_failure(
        self, connection: Connection, caller: Caller, name: str, row: Any, counter: _Counter, now: dt.datetime
    ) -> AuthError:
        """A wrong password for ``name`` (an account or not, counted alike): the answer to give."""
        failures = counter.failed + 1
        locked = failures >= self.sign_in_policy.lockout_failures
        until = now + self.sign_in_policy.lockout if locked else None
        if row is not None:
            self._update(
                connection,
                name,
                now,
                failed_attempts=0 if locked else failures,
                locked_until=until if locked else row.locked_until,
            )
        else:
            unknown = self.tables.unknown_names
            connection.execute(
                delete(unknown).where(unknown.c.locked_until < now, unknown.c.failed_attempts == 0)
            )
            upsert(
                connection,
                unknown,
                [
                    {
                        "name": name,
                        "failed_attempts": 0 if locked else failures,
                        "locked_until": until,
                        "updated_at": now,
                    }
                ],
                ["name"],
                replace=["failed_attempts", "locked_until", "updated_at"],
            )
        return self._lock(connection, caller, name, row, now) if locked else bad_credentials()

    def _code_failure(
        self, connection: Connection, caller: Caller, row: Any, now: dt.datetime
    ) -> AuthError | None:
        """A wrong second-factor code: its own counter, which a right password does not reset.
        The lock error when this one locks the account, else None."""
        failures = int(row.totp_failures) + 1
        locked = failures >= self.sign_in_policy.lockout_failures
        self._update(
            connection,
            row.account,
            now,
            totp_failures=0 if locked else failures,
            locked_until=now + self.sign_in_policy.lockout if locked else row.locked_until,
        )
        return self._lock(connection, caller, row.account, row, now) if locked else None

    def _step_refusal(
        self, connection: Connection, row: Any, caller: Caller, now: dt.datetime
    ) -> AuthError | None:
        """What refuses any step of a sign-in before it is tried: a lock, the address limit, the
        account's state or term."""
        if row is None or row.status != "active":
            return _disabled()
        if row.locked_until is not None and aware(row.locked_until) > now:
            return _locked(aware(row.locked_until))
        if self._source_blocked(connection, caller.source, now):
            return _rate_limited()
        if row.valid_until is not None and aware(row.valid_until) <= now:
            return _expired(aware(row.valid_until))
        return None

    # -- sign-in --------------------------------------------------------------------------------

    def sign_in(self, account: str, password: str, caller: Caller, *, kind: str = "web") -> SignIn:
        """Check the password; a session at the first stage the account still owes.

        Refused, each audited: too many failures from the source address (``E-AUTH-RATE``), unknown
        account or wrong password (``E-AUTH-CREDENTIALS``, counted toward the lockout for any name),
        locked (``E-AUTH-LOCKED``), disabled (``E-AUTH-DISABLED``), term ended (``E-AUTH-EXPIRED``).
        """
        name = account.strip().lower()[:64]
        now = self.clock()
        error: AuthError | None = None
        result: SignIn | None = None
        with self._write() as connection:
            row = self._row(connection, name)
            who = {"account": name or "-", "role": row.role if row is not None else "-"}
            if self._source_blocked(connection, caller.source, now):
                error = _rate_limited()
            else:
                counter = self._counter(connection, name, row)
                # One argon2 verification for every name, known or not, locked or not: the time and
                # the answer say nothing about which names exist.
                matches = verify_password(row.password_hash if row is not None else dummy_hash(), password)
                if counter.locked(now):
                    assert counter.locked_until is not None
                    error = _locked(aware(counter.locked_until))
                elif row is None or not matches:
                    error = self._password_failure(connection, caller, name, row, counter, now)
                elif row.status != "active":
                    error = _disabled()
                elif row.valid_until is not None and aware(row.valid_until) <= now:
                    error = _expired(aware(row.valid_until))
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
                    self._update(connection, name, now, failed_attempts=0)
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
        """The signed-in person of a ``full`` session whose account is still active and in its term."""
        with self._write() as connection:
            now = self.clock()
            found = resolve_session(connection, self.tables.sessions, token, now, self.session_policy)
            if found is None or found.stage != "full":
                return None
            row = self._row(connection, found.account)
            if (
                row is None
                or row.status != "active"
                or row.role != found.role
                or (row.valid_until is not None and aware(row.valid_until) <= now)
            ):
                end_session(connection, self.tables.sessions, found.token_hash, "account-changed", now)
                return None
        return Principal(
            account=found.account,
            role=Role(found.role),
            province=found.province,
            session_id=found.token_hash[:16],
            extra={"name": row.name, "kind": found.kind, "token_hash": found.token_hash},
        )

    def _run_step(
        self,
        token: str,
        stages: tuple[str, ...],
        caller: Caller,
        action: str,
        body: Callable[[Connection, SessionRow, Any], SignIn | AuthError],
    ) -> SignIn:
        """One step of a sign-in in one write transaction: ``body`` gets the session (at one of
        ``stages``) and its account, and returns the next session or its refusal, which is raised
        once the transaction (with its counters and audit entries) is committed. A lock, the address
        limit, a disabled account or an ended term refuse the step before ``body`` runs."""
        with self._write() as connection:
            now = self.clock()
            found = resolve_session(connection, self.tables.sessions, token, now, self.session_policy)
            if found is None:
                outcome: SignIn | AuthError = _required()
            elif found.stage not in stages:
                outcome = AuthError(
                    409,
                    "E-AUTH-STAGE",
                    "登录步骤不符，请重新登录",
                    f"this session is at stage {found.stage}, not {'/'.join(stages)}",
                )
            else:
                row = self._row(connection, found.account)
                stop = self._step_refusal(connection, row, caller, now)
                if stop is not None:
                    who = {"account": found.account, "role": found.role}
                    self._audit(
                        connection,
                        caller,
                        action,
                        f"account:{found.account}",
                        "failure",
                        code=stop.code,
                        **who,
                    )
                    outcome = stop
                else:
                    outcome = body(connection, found, row)
        if isinstance(outcome, AuthError):
            raise outcome
        return outcome

    def _advance(self, connection: Connection, found: SessionRow, after: str) -> SignIn:
        """The next stage, under a new token (the step's token ends)."""
        now = self.clock()
        row = self._row(connection, found.account)
        stage = self._next_stage(row, after=after)
        token = renew_session(connection, self.tables.sessions, found, stage, now)
        if stage == "full":
            self._update(connection, found.account, now, last_sign_in_at=now)
        return SignIn(token, stage, found.account, Role(found.role))

    def verify_totp(self, token: str, code: str, caller: Caller) -> SignIn:
        """The second step of a sign-in; the next stage under a new token."""

        def step(connection: Connection, found: SessionRow, row: Any) -> SignIn | AuthError:
            now = self.clock()
            who = {"account": row.account, "role": row.role}
            matched = verify_code(
                self.secrets.open(row.totp_secret, row.account), code, now, row.totp_last_step
            )
            if matched is None:
                locked = self._code_failure(connection, caller, row, now)
                self._attempt(connection, caller.source, row.account, False, now)
                self._audit(connection, caller, "auth.totp", f"account:{row.account}", "failure", **who)
                return locked or AuthError(
                    401, "E-AUTH-TOTP", "动态口令错误或已使用", "wrong or already used one-time code"
                )
            self._update(connection, row.account, now, totp_last_step=matched, totp_failures=0)
            result = self._advance(connection, found, "totp")
            self._audit(
                connection,
                caller,
                "auth.totp",
                f"account:{row.account}",
                "success",
                stage=result.stage,
                **who,
            )
            return result

        return self._run_step(token, ("totp",), caller, "auth.totp", step)

    def change_password(self, token: str, current: str, new: str, caller: Caller) -> SignIn:
        """Replace the password (at the ``password`` stage, or any time when signed in); the session
        goes on under a new token, the account's other sessions end. A wrong current password
        counts toward the lock like a wrong password at sign-in."""
        action = "auth.password-change"

        def step(connection: Connection, found: SessionRow, row: Any) -> SignIn | AuthError:
            now = self.clock()
            target = f"account:{row.account}"
            who = {"account": row.account, "role": row.role}
            if not verify_password(row.password_hash, current):
                error = self._password_failure(
                    connection, caller, row.account, row, _Counter(int(row.failed_attempts), None), now
                )
                if error.code == "E-AUTH-LOCKED":
                    end_session(connection, self.tables.sessions, found.token_hash, "locked", now)
                else:
                    error = AuthError(
                        400, "E-AUTH-CREDENTIALS", "当前口令错误", "the current password is wrong"
                    )
                self._attempt(connection, caller.source, row.account, False, now)
                self._audit(connection, caller, action, target, "failure", code=error.code, **who)
                return error
            try:
                self._check_new_password(connection, row, new)
            except AuthError as weak:
                self._audit(connection, caller, action, target, "failure", code=weak.code, **who)
                return weak
            history = self.tables.password_history
            connection.execute(
                insert(history).values(account=row.account, password_hash=row.password_hash, retired_at=now)
            )
            self._update(
                connection,
                row.account,
                now,
                password_hash=hash_password(new),
                password_changed_at=now,
                must_change_password=False,
                failed_attempts=0,
            )
            ended = end_account_sessions(
                connection, self.tables.sessions, row.account, "password-changed", now, keep=found.token_hash
            )
            if found.stage == "password":
                result = self._advance(connection, found, "password")
            else:
                renewed = renew_session(connection, self.tables.sessions, found, "full", now)
                result = SignIn(renewed, "full", found.account, Role(found.role))
            self._audit(connection, caller, action, target, "success", sessions_ended=ended, **who)
            return result

        return self._run_step(token, ("password", "full"), caller, action, step)

    def _check_new_password(self, connection: Connection, row: Any, new: str) -> None:
        self._check_password(row.account, new)
        history = self.tables.password_history
        previous = connection.execute(
            select(history.c.password_hash)
            .where(history.c.account == row.account)
            .order_by(history.c.id.desc())
            .limit(max(self.passwords.history - 1, 0))
        ).scalars()
        if self.passwords.history and any(verify_password(h, new) for h in [row.password_hash, *previous]):
            raise AuthError(
                400,
                "E-AUTH-PASSWORD-REUSED",
                f"不得使用最近{self.passwords.history}次用过的口令",
                f"none of the last {self.passwords.history} passwords may be used again",
            )

    def begin_enrolment(self, token: str, caller: Caller | None = None) -> Enrolment:
        """A new TOTP secret for the ``enrol`` stage, sealed into the account until confirmed."""
        secret = new_secret()

        def step(connection: Connection, found: SessionRow, row: Any) -> SignIn:
            self._update(
                connection, row.account, self.clock(), totp_secret=self.secrets.seal(secret, row.account)
            )
            return SignIn(token, found.stage, row.account, Role(row.role))

        started = self._run_step(token, ("enrol",), caller or Caller(), "auth.totp-enrol", step)
        uri = provisioning_uri(secret, started.account, self.sign_in_policy.totp_issuer)
        return Enrolment(secret, uri, qr_svg(uri))

    def confirm_enrolment(self, token: str, code: str, caller: Caller) -> SignIn:
        action = "auth.totp-enrol"

        def step(connection: Connection, found: SessionRow, row: Any) -> SignIn | AuthError:
            now = self.clock()
            who = {"account": row.account, "role": row.role}
            matched = None
            if row.totp_secret is not None:
                matched = verify_code(self.secrets.open(row.totp_secret, row.account), code, now, None)
            if matched is None:
                locked = self._code_failure(connection, caller, row, now)
                self._attempt(connection, caller.source, row.account, False, now)
                self._audit(connection, caller, action, f"account:{row.account}", "failure", **who)
                return locked or AuthError(
                    400, "E-AUTH-TOTP", "动态口令错误，请按二维码重新添加后再试", "wrong one-time code"
                )
            self._update(connection, row.account, now, totp_last_step=matched, totp_failures=0)
            result = self._advance(connection, found, "enrol")
            self._audit(connection, caller, action, f"account:{row.account}", "success", **who)
            return result

        return self._run_step(token, ("enrol",), caller, action, step)

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


_RECOVERY_ZH = {
    "reset-password": "重置口令",
    "reset-totp": "清除动态口令",
    "role": "更改角色",
    "unlock": "解锁",
    "enable": "启用",
}


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
            dt.timedelta(days=settings.privileged_term_days),
        ),
        clock=clock,
        national=national,
    )
