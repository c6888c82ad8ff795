"""``ggzy audit``: verify reports tampering in Chinese with exit code 1; search and export select by
account, action, outcome and time; every command is declared with its permission."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import text
from typer.testing import CliRunner

from ggzy.cli import app
from ggzy.hub.app import build_state
from ggzy.security.audit import AuditEntry, drop_append_only_ddl
from ggzy.security.permissions import CLI_PERMISSIONS, Permission
from ggzy.settings import HubSettings, get_settings
from ggzy.store.database import writing

runner = CliRunner()


@pytest.fixture
def hub_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_session: Callable[..., str]) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    for name in [n for n in __import__("os").environ if n.startswith("GGZY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GGZY_HUB__DB_URL", url)
    monkeypatch.setenv("GGZY_HUB__KEY_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()  # commands that read the cached settings must see this test's
    monkeypatch.setenv("GGZY_AUDIT__EXPORT_DIR", str(tmp_path / "exports"))
    state = build_state(HubSettings(db_url=url, key_dir=tmp_path / "keys"))
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    with writing(state.engine) as connection:
        for n in range(30):
            state.audit.append(
                connection,
                AuditEntry(
                    action="signin" if n % 2 else "backup.create",
                    object=f"account:user{n % 3}",
                    outcome="failure" if n % 5 == 0 else "success",
                    account=f"user{n % 3}",
                    role="operator",
                    at=start + dt.timedelta(days=n),
                ),
            )
    state.engine.dispose()
    cli_session("auditor", db=url)  # the audit log is the 安全审计员's
    yield url
    get_settings.cache_clear()


def test_verify_passes_then_reports_the_altered_entry(hub_db: str) -> None:
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "审计日志完整" in result.output
    from sqlalchemy import create_engine

    engine = create_engine(hub_db)
    with writing(engine) as connection:
        for statement in drop_append_only_ddl("sqlite"):
            connection.execute(text(statement))
        connection.execute(text("UPDATE audit_log SET outcome = 'success' WHERE id = 11"))
    engine.dispose()
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    output = result.output.replace("\n", "")
    assert "E-AUDIT-CHAIN-BROKEN" in output and "第 11 条" in output


def test_search_filters_and_pages(hub_db: str) -> None:
    result = runner.invoke(
        app,
        [
            "audit",
            "search",
            "--account",
            "user1",
            "--action",
            "signin",
            "--outcome",
            "success",
            "--page-size",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    # user1 is n = 1, 4, 7, …; signin needs odd n, success excludes n % 5 == 0: 1, 7, 13, 19 → 4 rows.
    assert "共 4 条" in result.output and "第 1/2 页" in result.output


def test_export_csv_and_xlsx_by_time_and_action_prefix(hub_db: str, tmp_path: Path) -> None:
    out_csv = tmp_path / "a.csv"
    result = runner.invoke(
        app,
        [
            "audit",
            "export",
            "--format",
            "csv",
            "--out",
            str(out_csv),
            "--action",
            "backup.*",
            "--since",
            "2026-03-01",
            "--until",
            "2026-03-11",
        ],
    )
    assert result.exit_code == 0, result.output
    with out_csv.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:3] == ["序号", "时间（北京时间）", "账号"]
    assert [r[0] for r in rows[1:]] == ["1", "3", "5", "7", "9"]  # days 0..9, even n = backup.create
    assert rows[1][1] == "2026-03-01 08:00:00"  # 00:00 UTC, as every time a person reads: Beijing
    out_xlsx = tmp_path / "a.xlsx"
    result = runner.invoke(app, ["audit", "export", "--out", str(out_xlsx), "--outcome", "failure"])
    assert result.exit_code == 0, result.output
    sheet = load_workbook(out_xlsx).active
    values = list(sheet.values)
    assert len(values) == 1 + 6 and all(v[7] == "failure" for v in values[1:])
    search = runner.invoke(app, ["audit", "search", "--action", "audit.export"])
    assert "共 2 条" in search.output  # each export is itself audited


def test_audit_and_backup_commands_declare_permissions() -> None:
    declared = {
        name.rsplit(".", 1)[-1]: p
        for name, p in CLI_PERMISSIONS.items()
        if name.startswith("ggzy.cli.audit.")
    }
    assert declared == {
        "verify": Permission.AUDIT_READ,
        "checkpoint": Permission.AUDIT_READ,
        "search": Permission.AUDIT_READ,
        "export": Permission.AUDIT_EXPORT,
        "archive": Permission.AUDIT_ARCHIVE,
        "approvals": Permission.ACCOUNTS_APPROVE,
        "approve": Permission.ACCOUNTS_APPROVE,
        "verify_archive": Permission.AUDIT_READ,
    }


def test_verify_compares_the_chain_with_the_hubs_off_host_anchors(
    hub_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: deleting every entry and checkpoint was reported as “审计日志完整”."""
    from ggzy.hub.anchors import hub_sinks
    from ggzy.hub.models import audit_tables
    from ggzy.security.audit import open_audit_log
    from ggzy.store import make_engine

    unanchored = runner.invoke(app, ["audit", "verify"])
    assert unanchored.exit_code == 0 and "未配置异地锚点" in unanchored.output
    monkeypatch.setenv("GGZY_BACKUP__OFFSITE_DIR", str(tmp_path / "offsite"))
    get_settings.cache_clear()
    settings = get_settings()
    engine = make_engine(hub_db)
    hub_sinks(settings.backup, settings.audit).seal_and_export(
        engine, open_audit_log(audit_tables, tmp_path / "keys", settings.hub.audit_digest)
    )  # what the hub's service does every minute
    anchored = runner.invoke(app, ["audit", "verify"])
    assert anchored.exit_code == 0, anchored.output
    assert "异地锚点 1 个" in anchored.output and "审计日志完整" in anchored.output
    with writing(engine) as connection:
        for statement in drop_append_only_ddl("sqlite"):
            connection.execute(text(statement))
        connection.execute(text("DELETE FROM audit_log"))
        connection.execute(text("DELETE FROM audit_checkpoints"))
    engine.dispose()
    emptied = runner.invoke(app, ["audit", "verify"])
    assert emptied.exit_code == 1 and "E-AUDIT-CHAIN-BROKEN" in emptied.output
    assert "异地锚点" in emptied.output and "anchor-truncated" in emptied.output


def test_search_by_the_real_action_names_and_a_hint_for_a_name_that_does_not_exist(hub_db: str) -> None:
    """README: ``--action 'auth.sign-in*'`` (the actions are ``auth.sign-in`` …, not ``signin``)."""
    found = runner.invoke(app, ["audit", "search", "--action", "auth.sign-in*"], env={"COLUMNS": "200"})
    assert found.exit_code == 0, found.output
    assert "共 0 条" not in found.output and "登录" in found.output  # the label beside the name
    missing = runner.invoke(app, ["audit", "search", "--action", "login*"], env={"COLUMNS": "200"})
    assert "共 0 条" in missing.output and "没有名为“login*”的操作" in missing.output
    assert "auth.sign-in" in missing.output and "docs/roles.md" in missing.output
