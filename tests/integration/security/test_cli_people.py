"""People on the command line: every command declares its permission or its exemption, guarded
commands refuse a caller without a session or with the wrong role, and ``ggzy login`` works."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
import typer
from signin_world import id_number
from typer.testing import CliRunner

from ggzy.cli import app
from ggzy.cli.session import SessionFile, target_for
from ggzy.security.accounts import Caller
from ggzy.security.permissions import (
    CLI_EXEMPTIONS,
    DEMO_EXEMPTION,
    INSTALL_EXEMPTION,
    OFFLINE_EXEMPTION,
    RECOVERY_EXEMPTION,
    SERVICE_EXEMPTION,
)
from ggzy.settings import get_settings

runner = CliRunner()
REASONS = {SERVICE_EXEMPTION, INSTALL_EXEMPTION, DEMO_EXEMPTION, OFFLINE_EXEMPTION, RECOVERY_EXEMPTION}


def commands(group: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if hasattr(command, "commands"):
            yield from commands(command, f"{prefix}{name} ")


def test_every_cli_command_declares_a_permission_or_an_exemption() -> None:
    root = typer.main.get_command(app)
    seen = 0
    for name, command in commands(root):
        callback = command.callback
        if callback is None:
            continue  # a plain group without its own callback
        seen += 1
        permission = getattr(callback, "__ggzy_permission__", None)
        exemption = getattr(callback, "__ggzy_exempt__", None)
        assert (permission is None) != (exemption is None), f"ggzy {name}: declare exactly one"
        if exemption is not None:
            assert exemption in REASONS or name in ("login", "logout", "admin bootstrap"), name
        if permission is not None:  # the guard finds the database from the command's own options
            options = {p.name for p in command.params}
            assert options & {"db", "config"}, (
                f"ggzy {name} has no --db/--config to check the session against"
            )
    assert seen >= 25 and len(CLI_EXEMPTIONS) >= 9


@pytest.fixture
def hub_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("GGZY_HUB__KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("GGZY_SESSION_FILE", str(tmp_path / "session.json"))
    get_settings.cache_clear()
    yield f"sqlite:///{tmp_path / 'hub.db'}"
    get_settings.cache_clear()


def test_guarded_commands_refuse_without_a_session_and_with_the_wrong_role(
    hub_db: str, cli_session: Callable[..., str]
) -> None:
    anonymous = runner.invoke(app, ["hub", "node", "list", "--db", hub_db])
    assert anonymous.exit_code == 77 and "E-AUTH-REQUIRED" in anonymous.output
    cli_session("auditor", db=hub_db)
    wrong = runner.invoke(app, ["hub", "node", "list", "--db", hub_db])
    assert wrong.exit_code == 77 and "E-AUTH-FORBIDDEN" in wrong.output
    cli_session("sysadmin", db=hub_db)
    assert runner.invoke(app, ["hub", "node", "list", "--db", hub_db]).exit_code == 0
    stats = runner.invoke(app, ["hub", "stats", "--db", hub_db])
    assert stats.exit_code == 77 and "E-AUTH-FORBIDDEN" in stats.output  # the sysadmin reads no data


def test_a_provinces_operator_gets_only_their_province_on_the_cli(
    hub_db: str, cli_session: Callable[..., str]
) -> None:
    cli_session("operator", db=hub_db, province="35")
    other = runner.invoke(app, ["hub", "stats", "--province", "11", "--db", hub_db])
    assert other.exit_code == 77 and "E-AUTH-SCOPE" in other.output
    own = runner.invoke(app, ["hub", "stats", "--format", "json", "--db", hub_db])
    assert own.exit_code == 0, own.output
    assert '"province": "35"' in own.stdout


def test_bootstrap_login_whoami_logout(hub_db: str, tmp_path: Path) -> None:
    made = runner.invoke(
        app,
        ["admin", "bootstrap", "--admin", "zhang", "--admin-name", "张三", "--admin-id-number", id_number(861),
         "--auditor", "li", "--auditor-name", "李四", "--auditor-id-number", id_number(862), "--db", hub_db],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    passwords = dict(line.split() for line in made.output.splitlines() if line.startswith("  "))
    again = runner.invoke(
        app,
        ["admin", "bootstrap", "--admin", "a2", "--admin-name", "x", "--admin-id-number", id_number(863),
         "--auditor", "b2", "--auditor-name", "y", "--auditor-id-number", id_number(864), "--db", hub_db],
    )  # fmt: skip
    assert again.exit_code == 2 and "E-AUTH-BOOTSTRAPPED" in again.output
    # The first sign-in needs a TOTP code from the secret shown during enrolment; enrol through the
    # service first (the same steps), then sign in on the command line with password and code.
    target = target_for(hub_db)
    service = target.service
    caller = Caller(source="test")
    started = service.sign_in("zhang", passwords["zhang"], caller)
    changed = service.change_password(started.token, passwords["zhang"], "Quiet-Lantern-58", caller)
    secret = service.begin_enrolment(changed.token).secret
    import datetime as dt

    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)
    service.confirm_enrolment(changed.token, pyotp.TOTP(secret).at(earlier), caller)
    target.engine.dispose()
    login = runner.invoke(
        app, ["login", "--db", hub_db, "-u", "zhang"], input=f"Quiet-Lantern-58\n{pyotp.TOTP(secret).now()}\n"
    )
    assert login.exit_code == 0, login.output
    session_file = Path(os.environ["GGZY_SESSION_FILE"])
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    assert "Quiet-Lantern-58" not in session_file.read_text()
    who = runner.invoke(app, ["whoami", "--db", hub_db])
    assert who.exit_code == 0 and "zhang" in who.output and "系统管理员" in who.output
    added = runner.invoke(
        app,
        [
            "admin",
            "account",
            "add",
            "wang",
            "--name",
            "王五",
            "--role",
            "operator",
            "--staff",
            "1003",
            "--db",
            hub_db,
        ],
    )
    assert added.exit_code == 0, added.output
    self_role = runner.invoke(app, ["admin", "account", "role", "zhang", "--role", "auditor", "--db", hub_db])
    assert self_role.exit_code == 77 and "E-AUTH-SELF" in self_role.output
    assert runner.invoke(app, ["logout", "--db", hub_db]).exit_code == 0
    after = runner.invoke(app, ["whoami", "--db", hub_db])
    assert after.exit_code == 77 and "E-AUTH-REQUIRED" in after.output


def test_a_session_file_others_can_read_is_refused(hub_db: str, cli_session: Callable[..., str]) -> None:
    cli_session("sysadmin", db=hub_db)
    path = SessionFile().path
    path.chmod(0o644)
    refused = runner.invoke(app, ["hub", "node", "list", "--db", hub_db])
    assert refused.exit_code == 77 and "E-CLI-SESSION-FILE" in refused.output


def test_intake_tokens_are_managed_by_the_sysadmin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_session: Callable[..., str]
) -> None:
    config = tmp_path / "node.toml"
    config.write_text(
        f'[node]\ndb_url = "sqlite:///{tmp_path / "node.db"}"\nkey_file = "{tmp_path / "node" / "node.key"}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("GGZY_CONFIG", str(config))
    cli_session("operator", config=config)
    refused = runner.invoke(app, ["admin", "token", "add", "fj-system", "--config", str(config)])
    assert refused.exit_code == 77
    cli_session("sysadmin", config=config)
    added = runner.invoke(app, ["admin", "token", "add", "fj-system", "--config", str(config)])
    assert added.exit_code == 0 and "ggzy_it_" in added.output
    assert "fj-system" in runner.invoke(app, ["admin", "token", "list", "--config", str(config)]).output
    assert (
        runner.invoke(app, ["admin", "token", "revoke", "fj-system", "--config", str(config)]).exit_code == 0
    )


def test_an_auditors_reset_waits_for_a_second_auditor_on_the_cli(
    hub_db: str, cli_session: Callable[..., str], first_sign_in: Callable[..., str]
) -> None:
    """The administrator's reset of an auditor is a request; another auditor approves it with
    ``ggzy audit approve``; the second run goes through, once."""
    cli_session("sysadmin", db=hub_db)
    added = runner.invoke(
        app,
        ["admin", "account", "add", "audit2", "--name", "审计员乙", "--role", "auditor",
         "--id-number", id_number(871), "--db", hub_db],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    waiting = runner.invoke(app, ["admin", "account", "reset-password", "t-audit", "--db", hub_db])
    assert waiting.exit_code == 77 and "E-AUTH-APPROVAL" in waiting.output
    second_password = added.output.strip().splitlines()[-1]
    target = target_for(hub_db)
    admin_token = SessionFile().token(target.name)
    try:
        token = first_sign_in(target.service, "audit2", second_password, kind="cli")
    finally:
        target.engine.dispose()
    SessionFile().save(target.name, token, "audit2")
    listed = runner.invoke(app, ["audit", "approvals", "--db", hub_db])
    assert listed.exit_code == 0 and "t-audit" in listed.output and "重置口令" in listed.output
    request = listed.output.split("│")[1].strip() if "│" in listed.output else "1"
    approved = runner.invoke(app, ["audit", "approve", request, "--db", hub_db])
    assert approved.exit_code == 0, approved.output
    SessionFile().save(target.name, admin_token or "", "t-admin")
    done = runner.invoke(app, ["admin", "account", "reset-password", "t-audit", "--db", hub_db])
    assert done.exit_code == 0, done.output
    again = runner.invoke(app, ["admin", "account", "reset-password", "t-audit", "--db", hub_db])
    assert again.exit_code == 77 and "E-AUTH-APPROVAL" in again.output


def test_offline_recovery_needs_the_key_file_and_confirmation(
    hub_db: str, cli_session: Callable[..., str]
) -> None:
    cli_session("auditor", db=hub_db)  # makes the accounts (and the key) as in production
    unconfirmed = runner.invoke(
        app, ["admin", "recover", "t-audit", "--action", "reset-totp", "--db", hub_db]
    )
    assert unconfirmed.exit_code == 2 and "--yes" in unconfirmed.output
    recovered = runner.invoke(
        app, ["admin", "recover", "t-audit", "--action", "reset-totp", "--yes", "--db", hub_db]
    )
    assert recovered.exit_code == 0, recovered.output
    key = get_settings().hub.key_dir / "accounts.key"
    key.rename(key.with_suffix(".moved"))
    without_key = runner.invoke(
        app, ["admin", "recover", "t-audit", "--action", "unlock", "--yes", "--db", hub_db]
    )
    assert without_key.exit_code == 77 and "E-AUTH-KEY" in without_key.output
