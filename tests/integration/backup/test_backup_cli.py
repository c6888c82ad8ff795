"""``ggzy backup`` from the command line: create, verify (recorded, shown by list), restore needs --yes,
a damaged backup fails with exit code 1; every command needs ``backup:manage``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ggzy.cli import app
from ggzy.security.permissions import CLI_PERMISSIONS, Permission
from ggzy.settings import get_settings

runner = CliRunner()


@pytest.fixture
def configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_session: Callable[..., str]
) -> Iterator[Path]:
    for name in [n for n in os.environ if n.startswith("GGZY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GGZY_HUB__DB_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    monkeypatch.setenv("GGZY_HUB__KEY_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()  # commands that read the cached settings must see this test's
    monkeypatch.setenv("GGZY_BACKUP__DIR", str(tmp_path / "backups"))
    monkeypatch.setenv("GGZY_BACKUP__KEY_FILE", str(tmp_path / "keys" / "backup.key"))
    cli_session("sysadmin", db=f"sqlite:///{tmp_path / 'hub.db'}")  # backups are the 系统管理员's
    yield tmp_path
    get_settings.cache_clear()


def test_create_verify_list_restore(configured: Path) -> None:
    assert runner.invoke(app, ["hub", "migrate"]).exit_code == 0
    created = runner.invoke(app, ["backup", "create"])
    assert created.exit_code == 0, created.output
    verified = runner.invoke(app, ["backup", "verify"])
    assert verified.exit_code == 0 and "恢复校验通过" in verified.output, verified.output
    listed = runner.invoke(app, ["backup", "list"], env={"COLUMNS": "250"})
    assert "通过" in listed.output and "手动" in listed.output
    refused = runner.invoke(app, ["backup", "restore"])
    assert refused.exit_code == 2 and "--yes" in refused.output
    restored = runner.invoke(app, ["backup", "restore", "--yes"])
    assert restored.exit_code == 0 and "恢复前快照" in restored.output, restored.output
    (backup,) = [p for p in (configured / "backups").glob("*manual.bak")]
    backup.write_bytes(backup.read_bytes()[:-5])
    failed = runner.invoke(app, ["backup", "verify", backup.name])
    assert failed.exit_code == 1 and "E-BACKUP-CHECKSUM" in failed.output


def test_backup_commands_need_backup_manage() -> None:
    declared = {
        n.rsplit(".", 1)[-1]: p for n, p in CLI_PERMISSIONS.items() if n.startswith("ggzy.cli.backup.")
    }
    assert set(declared) == {"create", "list_", "verify", "restore", "prune"}
    assert set(declared.values()) == {Permission.BACKUP_MANAGE}
