"""Who changes what, when, and the audit entry that goes with it, in one transaction.

Every mutating service of ``ggzy.hub.ops`` takes an :class:`OpsSession`: the open connection (inside
the caller's transaction), the hub's audit chain, the acting person and the clock. ``changed()``
appends the audit entry in the same transaction as the change, so a change without its trace (or a
trace without its change) cannot be committed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from ggzy.security.audit import AuditEntry, AuditLog
from ggzy.settings import OpsSettings

__all__ = ["Actor", "Clock", "OpsError", "OpsSession", "run_change", "system_clock"]

Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class OpsError(ValueError):
    """A refused operations request: stable code, Chinese and English message, HTTP status.

    ``problems`` names each refused field of a filing (``field``, ``code``, ``message_zh``,
    ``message_en``) so a form can mark every one; the code and messages sum them up.
    """

    def __init__(
        self,
        code: str,
        message_zh: str,
        message_en: str,
        status: int = 400,
        *,
        problems: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message_zh)
        self.code, self.message_zh, self.message_en, self.status = code, message_zh, message_en, status
        self.problems = problems or []


@dataclass(frozen=True, slots=True)
class Actor:
    """The person acting: an account, a role and (for provincial staff) a province."""

    account: str
    role: str
    province: str | None = None  # None: national scope
    source: str = "-"
    request_id: str = "-"

    def check_province(self, province: str) -> None:
        if self.province is not None and self.province != province:
            raise OpsError(
                "E-OPS-SCOPE",
                f"只能办理本省（{self.province}）的事项，不能办理省份 {province} 的事项",
                f"a provincial account of {self.province} cannot act for province {province}",
                403,
            )

    def check_national(self) -> None:
        if self.province is not None:
            raise OpsError(
                "E-OPS-NATIONAL",
                "此事项只能由国家平台运行管理人员办理",
                "only national operators may do this",
                403,
            )


@dataclass
class OpsSession:
    connection: Connection
    audit: AuditLog
    actor: Actor
    settings: OpsSettings = field(default_factory=OpsSettings)
    clock: Clock = system_clock

    def now(self) -> dt.datetime:
        return self.clock()

    def changed(self, action: str, target: str, detail: Mapping[str, Any] | None = None) -> None:
        """Append the audit entry of a change made in this session's transaction."""
        self.audit.append(
            self.connection,
            AuditEntry(
                action=action,
                object=target,
                outcome="success",
                account=self.actor.account,
                role=self.actor.role,
                source=self.actor.source,
                request_id=self.actor.request_id,
                detail=dict(detail or {}),
                at=self.now(),
            ),
        )


R = TypeVar("R")


def run_change(
    engine: Engine,
    audit: AuditLog,
    actor: Actor,
    settings: OpsSettings,
    change: Callable[[OpsSession], R],
    clock: Clock = system_clock,
) -> R:
    """Run ``change`` in one write transaction with its audit entries (the API and the portal alike);
    an :class:`OpsError` rolls everything back and reaches the caller."""
    with engine.connect() as plain:
        connection = plain.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            return change(OpsSession(connection, audit, actor, settings, clock))
