"""Roles, permissions and the one place a route or command says what it needs (三员分立).

Three roles for people, mutually exclusive on an account and on a person: the 系统管理员 manages
accounts, configuration, node credentials and backups but reads no business data and no audit
log; the 系统操作员 works with the data (records, corrections, statistics, operations management);
the 安全审计员 reads and exports the audit log and is the second person who approves a change of
another auditor's (or the last administrator's) credentials or role. No role holds
``accounts:manage`` and a role at the same time as a grant over itself, so none can raise its own
privileges.

Every HTTP route declares its permission with ``dependencies=[Depends(require(Permission.X))]``
and every CLI command with ``@cli_permission(Permission.X)``. Who the caller is comes from the
app's authenticator (``app.state.authenticate``, installed by the sign-in layer); without one,
every protected route refuses, so a route is never open by accident.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # the web framework is imported by the apps, not by every command line start
    from fastapi import Request

__all__ = [
    "CLI_EXEMPTIONS",
    "CLI_PERMISSIONS",
    "DEMO_EXEMPTION",
    "INSTALL_EXEMPTION",
    "OFFLINE_EXEMPTION",
    "PERMISSION_MEANING",
    "RECOVERY_EXEMPTION",
    "ROLE_PERMISSIONS",
    "SERVICE_EXEMPTION",
    "Authenticator",
    "CliGuard",
    "Forbidden",
    "NotSignedIn",
    "Permission",
    "Principal",
    "Role",
    "cli_exempt",
    "cli_permission",
    "cli_principal",
    "install_cli_guard",
    "principal_of",
    "require",
]


class Role(StrEnum):
    SYSADMIN = "sysadmin"  # 系统管理员
    OPERATOR = "operator"  # 系统操作员
    AUDITOR = "auditor"  # 安全审计员

    @property
    def label(self) -> str:
        return {"sysadmin": "系统管理员", "operator": "系统操作员", "auditor": "安全审计员"}[self.value]


class Permission(StrEnum):
    ACCOUNTS_MANAGE = "accounts:manage"  # create, disable, reset accounts; assign roles
    CONFIG_MANAGE = "config:manage"  # settings, allow-lists, security parameters
    NODES_MANAGE = "nodes:manage"  # node registry and credentials
    BACKUP_MANAGE = "backup:manage"  # create, verify, restore backups
    DATA_READ = "data:read"  # business records, verdicts, rejects, transactions
    DATA_CORRECT = "data:correct"  # corrections, re-upload (补传), reconciliation
    STATS_READ = "stats:read"  # pass, timeliness and repair rates
    REPORTS_EXPORT = "reports:export"  # xlsx/PDF exports of business data and reports
    OPS_READ = "ops:read"  # availability, incidents, outages, plans, drills, roster, register
    OPS_WRITE = "ops:write"  # fault reports, outage notices, drills, roster, register
    OPS_ASSESS = "ops:assess"  # inspections, assessments, rectification orders (national scope)
    AUDIT_READ = "audit:read"  # search the audit log, verify the chain
    AUDIT_EXPORT = "audit:export"  # export the audit log
    AUDIT_ARCHIVE = "audit:archive"  # archive entries past the retention period
    # be the second person: approve an administrator's change of an auditor's (or the last
    # administrator's) credentials or role
    ACCOUNTS_APPROVE = "accounts:approve"
    SELF_SERVICE = "self:service"  # own password, second factor, sign-out


# What a permission lets a person do (docs/roles.md is generated from this and ROLE_PERMISSIONS).
PERMISSION_MEANING: Mapping[Permission, str] = {
    Permission.ACCOUNTS_MANAGE: "create, disable, enable, unlock accounts; reset operators' and other "
    "administrators' passwords and second factors; change roles; set end dates (a change of an auditor's "
    "credentials or role needs a second person)",
    Permission.CONFIG_MANAGE: "settings, allow-lists, security parameters (secrets are never shown)",
    Permission.NODES_MANAGE: "node registry and credentials, intake tokens and their source networks",
    Permission.BACKUP_MANAGE: "create, verify, restore and prune backups",
    Permission.DATA_READ: "business records, verdicts, rejected records, transactions",
    Permission.DATA_CORRECT: "corrections, re-upload (补传), reconciliation",
    Permission.STATS_READ: "pass, timeliness and repair rates",
    Permission.REPORTS_EXPORT: "xlsx/PDF exports of business data and reports",
    Permission.OPS_READ: "availability, incidents, outages, plans, drills, roster, register",
    Permission.OPS_WRITE: "fault reports, outage notices, drills, roster, register (own province only)",
    Permission.OPS_ASSESS: "inspections, assessments, rectification orders (national scope only)",
    Permission.AUDIT_READ: "search the audit log, verify the chain and its off-host anchors",
    Permission.AUDIT_EXPORT: "export the audit log",
    Permission.AUDIT_ARCHIVE: "archive entries past the retention period (never earlier)",
    Permission.ACCOUNTS_APPROVE: "be the second person: approve an administrator's change of another "
    "auditor's (or the last administrator's) credentials or role",
    Permission.SELF_SERVICE: "own password, second factor, sign-out, own security notices",
}

ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.SYSADMIN: frozenset(
        {
            Permission.ACCOUNTS_MANAGE,
            Permission.CONFIG_MANAGE,
            Permission.NODES_MANAGE,
            Permission.BACKUP_MANAGE,
            Permission.SELF_SERVICE,
        }
    ),
    Role.OPERATOR: frozenset(
        {
            Permission.DATA_READ,
            Permission.DATA_CORRECT,
            Permission.STATS_READ,
            Permission.REPORTS_EXPORT,
            Permission.OPS_READ,
            Permission.OPS_WRITE,
            Permission.OPS_ASSESS,
            Permission.SELF_SERVICE,
        }
    ),
    Role.AUDITOR: frozenset(
        {
            Permission.AUDIT_READ,
            Permission.AUDIT_EXPORT,
            Permission.AUDIT_ARCHIVE,
            Permission.ACCOUNTS_APPROVE,
            Permission.SELF_SERVICE,
        }
    ),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in person: one account, one role, optionally limited to one province."""

    account: str
    role: Role
    province: str | None = None  # None: national scope (hub) or the node's own province
    session_id: str = "-"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def permissions(self) -> frozenset[Permission]:
        permissions = ROLE_PERMISSIONS[self.role]
        if self.province is not None:  # a province's staff cannot judge provinces
            permissions = permissions - {Permission.OPS_ASSESS}
        return permissions

    def may(self, permission: Permission) -> bool:
        return permission in self.permissions

    def sees_province(self, province: str) -> bool:
        return self.province is None or self.province == province


Authenticator = Callable[["Request"], Principal | None]


class NotSignedIn(Exception):
    """No valid session: HTTP 401, ``E-AUTH-REQUIRED``."""


class Forbidden(Exception):
    """Signed in, but the role lacks the permission: HTTP 403, ``E-AUTH-FORBIDDEN``."""

    def __init__(self, principal: Principal, permission: Permission) -> None:
        super().__init__(f"{principal.role.value} lacks {permission.value}")
        self.principal = principal
        self.permission = permission


def principal_of(request: Request) -> Principal | None:
    """The caller of ``request`` as the app's authenticator sees it (cached on the request)."""
    if hasattr(request.state, "principal"):
        cached: Principal | None = request.state.principal
        return cached
    authenticate: Authenticator | None = getattr(request.app.state, "authenticate", None)
    principal = authenticate(request) if authenticate is not None else None
    request.state.principal = principal
    return principal


def require(permission: Permission) -> Callable[[Request], Principal]:
    """A FastAPI dependency: the signed-in principal holding ``permission``, or 401/403."""

    from fastapi import Request

    def dependency(request: Request) -> Principal:
        principal = principal_of(request)
        if principal is None:
            raise NotSignedIn()
        if not principal.may(permission):
            raise Forbidden(principal, permission)
        return principal

    # FastAPI reads the annotation to inject the request: give it the class, not the name
    dependency.__annotations__ = {"request": Request, "return": Principal}
    dependency.permission = permission  # type: ignore[attr-defined]  # read by the route census test
    return dependency


F = TypeVar("F", bound=Callable[..., Any])

CLI_PERMISSIONS: dict[str, Permission] = {}
CLI_EXEMPTIONS: dict[str, str] = {}

# The only reasons a command may run without a signed-in person (docs/architecture.md, Security).
SERVICE_EXEMPTION = (
    "starts a service as the operating-system service account; people reach its data only through "
    "its own signed-in routes, and host access control guards who may start it"
)
INSTALL_EXEMPTION = (
    "installs or upgrades the schema as the service account; reads and changes no business data"
)
DEMO_EXEMPTION = "runs a throw-away demonstration on its own fresh SQLite files"
OFFLINE_EXEMPTION = (
    "works only on files the caller names and on the bundled specification; no system database"
)
RECOVERY_EXEMPTION = (
    "offline recovery when no second person can approve: needs the accounts key file on the host, "
    "is audited and is reported to every auditor at their next sign-in"
)

# The guard resolves the caller of a command from its options (which database it acts on) and the
# person's signed-in CLI session; installed by ``ggzy.cli``. Without one every guarded command is
# refused, so a command is never open by accident.
CliGuard = Callable[[Permission, str, Mapping[str, Any]], Principal]
_cli_guard: list[CliGuard] = []
_cli_principal: ContextVar[Principal | None] = ContextVar("ggzy_cli_principal", default=None)


def install_cli_guard(guard: CliGuard) -> None:
    _cli_guard[:] = [guard]


def cli_principal() -> Principal | None:
    """The person running the current CLI command (inside a ``@cli_permission`` command)."""
    return _cli_principal.get()


def cli_permission(permission: Permission) -> Callable[[F], F]:
    """Declare, and check before it runs, the permission a CLI command needs."""

    def mark(function: F) -> F:
        name = f"{function.__module__}.{function.__qualname__}"

        @functools.wraps(function)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if any(getattr(value, "invoked_subcommand", None) for value in kwargs.values()):
                # a group run as a command (``ggzy node rejects``), passed through on its way to one
                # of its subcommands (``… rejects export``): that subcommand checks its own permission
                return function(*args, **kwargs)
            if not _cli_guard:
                raise NotSignedIn()
            principal = _cli_guard[0](permission, name, kwargs)
            if not principal.may(permission):
                raise Forbidden(principal, permission)
            reset = _cli_principal.set(principal)
            try:
                return function(*args, **kwargs)
            finally:
                _cli_principal.reset(reset)

        CLI_PERMISSIONS[name] = permission
        guarded.__ggzy_permission__ = permission  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return mark


def cli_exempt(reason: str) -> Callable[[F], F]:
    """Declare that a CLI command needs no signed-in person, and why (checked by the census test)."""

    def mark(function: F) -> F:
        CLI_EXEMPTIONS[f"{function.__module__}.{function.__qualname__}"] = reason
        function.__ggzy_exempt__ = reason  # type: ignore[attr-defined]
        return function

    return mark
