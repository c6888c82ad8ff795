"""How a person is signed in on the command line, and the guard every ``@cli_permission`` runs.

``ggzy login --db URL`` (hub) or ``ggzy login --config node.toml`` (node) signs in against the
accounts of that database — password, TOTP, and at first sign-in the new password and the TOTP
enrolment — and keeps the session token in a file only its owner can read
(``GGZY_SESSION_FILE``, default ``~/.config/ggzy/session.json``, mode 0600; a file readable by
others is refused). The token is one entry per database, so one person can be signed in to a
hub and a node. The database keeps only the token's hash; the session ends like a web session
(30 minutes idle, 12 hours at most, ``ggzy logout``, account disabled).

Before a guarded command runs, the guard finds the database the command acts on from its own
options (``--db`` for the hub, ``--config`` for a node), looks the token up there, checks the
permission, and writes an audit entry ``cli.run`` (or ``cli.refused``) with the account and role.
Refusals print ``E-AUTH-REQUIRED`` or ``E-AUTH-FORBIDDEN`` and exit with 77 (EX_NOPERM).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from sqlalchemy import Engine

from ggzy.cli.console import err
from ggzy.security.accounts import AccountService, AuthError, Caller, account_service
from ggzy.security.audit import AuditEntry, AuditLog
from ggzy.security.permissions import Permission, Principal, install_cli_guard

__all__ = ["EXIT_NOPERM", "SessionFile", "Target", "cli_caller", "guard", "install", "target_for"]

EXIT_NOPERM = 77


def cli_caller() -> Caller:
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "-"
    return Caller(source=f"cli:{user}"[:64], request_id="-")


class SessionFile:
    """``{target: {"token", "account", "database"}}`` in a 0600 file."""

    def __init__(self, path: Path | None = None) -> None:
        named = os.environ.get("GGZY_SESSION_FILE")
        self.path = path or (Path(named) if named else Path.home() / ".config" / "ggzy" / "session.json")

    def _load(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        mode = self.path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise AuthError(
                401,
                "E-CLI-SESSION-FILE",
                f"会话文件 {self.path} 可被他人读取，已拒绝使用；请删除后重新登录",
                f"session file {self.path} is readable by others; delete it and sign in again",
            )
        try:
            loaded: dict[str, dict[str, str]] = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return loaded

    def token(self, target: str) -> str | None:
        entry = self._load().get(target)
        return entry.get("token") if entry else None

    def save(self, target: str, token: str, account: str) -> None:
        entries = self._load()
        entries[target] = {"token": token, "account": account, "database": target}
        self._write(entries)

    def forget(self, target: str) -> str | None:
        entries = self._load()
        entry = entries.pop(target, None)
        self._write(entries)
        return entry.get("token") if entry else None

    def _write(self, entries: dict[str, dict[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(entries, handle)
        os.chmod(temporary, 0o600)
        os.replace(temporary, self.path)


@dataclass
class Target:
    """The database a command acts on, with its account service and audit chain."""

    name: str  # "hub:<url>" or "node:<url>" (password hidden): the session file's key
    engine: Engine
    service: AccountService
    audit: AuditLog
    national: bool


def target_for(db: str | None = None, config: Path | None = None, *, node: bool = False) -> Target:
    """The hub's database (``--db``, or ``[hub]`` of the settings) or a node's (``node``, or a
    ``--config`` file of a node), with the keys of that same site."""
    from ggzy.cli.config import is_node_config, use_config
    from ggzy.security.keys import load_or_create_key
    from ggzy.settings import get_settings
    from ggzy.store import make_engine, redact_url

    use_config(config)
    security = get_settings().security
    if node or (config is not None and is_node_config(config)):
        from ggzy.cli.node import load_node_settings
        from ggzy.node.models import account_tables, audit_log
        from ggzy.security.crypto import Digest

        settings = load_node_settings(None)
        engine = make_engine(settings.db_url)
        key_dir = settings.key_file.parent
        audit = AuditLog(audit_log, load_or_create_key(key_dir / "audit.key"), Digest.SM3)
        service = account_service(
            engine, account_tables, audit, security, key_dir / "accounts.key", national=False
        )
        return Target(f"node:{redact_url(settings.db_url)}", engine, service, audit, False)
    from ggzy.hub.models import account_tables as hub_tables
    from ggzy.hub.models import audit_log as hub_audit

    hub = get_settings().hub
    if db:
        hub = hub.model_copy(update={"db_url": db})
    engine = make_engine(hub.db_url)
    audit = AuditLog(hub_audit, load_or_create_key(hub.key_dir / "audit.key"), hub.audit_digest)
    service = account_service(
        engine, hub_tables, audit, security, hub.key_dir / "accounts.key", national=True
    )
    return Target(f"hub:{redact_url(hub.db_url)}", engine, service, audit, True)


def _target_of(name: str, options: Mapping[str, Any]) -> Target:
    config = options.get("config")
    node_only = "config" in options and "db" not in options  # a command of the node alone
    if node_only or options.get("side") == "node":
        return target_for(config=config, node=True)
    return target_for(db=options.get("db"), config=config)  # a node's file still means the node


def _audit(target: Target, principal: Principal | None, command: str, outcome: str, **detail: Any) -> None:
    caller = cli_caller()
    with target.engine.connect() as plain:
        connection = plain.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            target.audit.append(
                connection,
                AuditEntry(
                    action="cli.run" if outcome == "success" else "cli.refused",
                    object=command[:512],
                    outcome=outcome,
                    account=principal.account if principal else "-",
                    role=principal.role.value if principal else "-",
                    source=caller.source,
                    detail=detail,
                ),
            )


def guard(permission: Permission, command: str, options: Mapping[str, Any]) -> Principal:
    """Installed as the CLI guard: the signed-in principal allowed to run ``command``, or exit 77."""
    from sqlalchemy.exc import SQLAlchemyError

    target = _target_of(command, options)
    try:
        token = SessionFile().token(target.name)
        principal = target.service.principal(token) if token else None
    except AuthError as error:
        err.print(f"[red]{error.code}[/] {error.message_zh}")
        target.engine.dispose()
        raise typer.Exit(EXIT_NOPERM) from None
    except SQLAlchemyError:
        principal = None  # no account tables yet: nobody can be signed in
    try:
        if principal is None:
            err.print(
                f"[red]E-AUTH-REQUIRED[/] 请先登录：ggzy login -u 账号 --config 配置文件（与本命令相同的配置）"
                f"（{escape(target.name)}）"
            )
            raise typer.Exit(EXIT_NOPERM)
        if not principal.may(permission):
            _audit(target, principal, command, "refused", permission=permission.value)
            err.print(
                f"[red]E-AUTH-FORBIDDEN[/] {principal.role.label}无权执行此命令（需要 {permission.value}）"
            )
            raise typer.Exit(EXIT_NOPERM)
        _audit(target, principal, command, "success", permission=permission.value)
        return principal
    finally:
        target.engine.dispose()


def install() -> None:
    install_cli_guard(guard)
