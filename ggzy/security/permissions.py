"""Roles, permissions and the one place a route or command says what it needs (三员分立).

Three roles for people, mutually exclusive on an account and on a person: the 系统管理员 manages
accounts, configuration, node credentials and backups but reads no business data and no audit
log; the 系统操作员 works with the data (records, corrections, statistics, operations management);
the 安全审计员 reads and exports the audit log only. No role holds ``accounts:manage`` and a role
at the same time as a grant over itself, so none can raise its own privileges.

Every HTTP route declares its permission with ``dependencies=[Depends(require(Permission.X))]``
and every CLI command with ``@cli_permission(Permission.X)``. Who the caller is comes from the
app's authenticator (``app.state.authenticate``, installed by the sign-in layer); without one,
every protected route refuses, so a route is never open by accident.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from fastapi import Request

__all__ = [
    "CLI_PERMISSIONS",
    "ROLE_PERMISSIONS",
    "Authenticator",
    "Forbidden",
    "NotSignedIn",
    "Permission",
    "Principal",
    "Role",
    "cli_permission",
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
    SELF_SERVICE = "self:service"  # own password, second factor, sign-out


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


Authenticator = Callable[[Request], Principal | None]


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

    def dependency(request: Request) -> Principal:
        principal = principal_of(request)
        if principal is None:
            raise NotSignedIn()
        if not principal.may(permission):
            raise Forbidden(principal, permission)
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]  # read by the route census test
    return dependency


F = TypeVar("F", bound=Callable[..., Any])

CLI_PERMISSIONS: dict[str, Permission] = {}


def cli_permission(permission: Permission) -> Callable[[F], F]:
    """Declare the permission a CLI command needs (``module.function`` → permission)."""

    def mark(function: F) -> F:
        CLI_PERMISSIONS[f"{function.__module__}.{function.__qualname__}"] = permission
        function.__ggzy_permission__ = permission  # type: ignore[attr-defined]
        return function

    return mark
