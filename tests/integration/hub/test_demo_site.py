"""The demo's hint, followed: accounts made on the command line sign in on the demo's portal.

The demo hub keeps its keys beside its database (``var/demo/hub-keys``); the command line must use the
same keys, or a TOTP secret sealed by one cannot be opened by the other. The demo writes its hub's
settings file and prints every command with ``--config`` on it: one key location per site.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ggzy.cli import app as cli
from ggzy.cli.demo import hints, hub_settings, hub_toml
from ggzy.cli.session import cli_caller, target_for
from ggzy.hub.app import create_app
from ggzy.security.accounts.service import utc_now

PASSWORD = "Quiet-Lantern-58"


def _bootstrap(config: list[str]) -> str:
    result = CliRunner().invoke(
        cli,
        ["admin", "bootstrap", "--admin", "zhangsan", "--admin-name", "张三", "--admin-id-number", "110105198003011370",
         "--auditor", "lisi", "--auditor-name", "李四", "--auditor-id-number", "350102198506159786", *config],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    found = re.search(r"zhangsan\s+(\S+)", result.output)
    assert found is not None
    return found.group(1)


def _enrol_on_the_command_line(option: str, value: str, one_time: str) -> str:
    """What ``ggzy login`` does at the first sign-in (new password, TOTP enrolment); the secret.

    On a clock 90 s behind, so the code the web sign-in types next is a fresh time step."""
    target = target_for(db=value) if option == "--db" else target_for(config=Path(value))
    service, caller = target.service, cli_caller()
    service.clock = lambda: utc_now() - dt.timedelta(seconds=90)
    started = service.sign_in("zhangsan", one_time, caller)
    changed = service.change_password(started.token, one_time, PASSWORD, caller)  # each step: a new token
    enrolment = service.begin_enrolment(changed.token)
    done = service.confirm_enrolment(changed.token, pyotp.TOTP(enrolment.secret).at(service.clock()), caller)
    service.sign_out(done.token, caller)
    target.engine.dispose()
    return enrolment.secret


@pytest.fixture
def demo_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # the CLI's default key_dir (var/keys) is another site's
    monkeypatch.setenv("GGZY_SESSION_FILE", str(tmp_path / "session.json"))
    monkeypatch.delenv("GGZY_CONFIG", raising=False)
    workdir = tmp_path / "var" / "demo"
    workdir.mkdir(parents=True)
    (workdir / "hub.toml").write_text(hub_toml(hub_settings(workdir, 18600)), encoding="utf-8")
    return workdir


def _web_sign_in(workdir: Path) -> tuple[TestClient, str]:
    """The demo's portal, password given: the client at the TOTP step, and its CSRF token."""
    client = TestClient(
        create_app(hub_settings(workdir, 18600)), client=("127.0.0.1", 50000), raise_server_exceptions=False
    )
    answer = client.post("/auth/api/sign-in", json={"account": "zhangsan", "password": PASSWORD})
    assert answer.status_code == 200 and answer.json()["stage"] == "totp", answer.text
    return client, answer.json()["csrf_token"]


def test_accounts_made_with_the_demos_config_sign_in_on_the_demo_portal(demo_hub: Path) -> None:
    config = str(demo_hub / "hub.toml")
    secret = _enrol_on_the_command_line("--config", config, _bootstrap(["--config", config]))
    client, csrf = _web_sign_in(demo_hub)
    answer = client.post(
        "/auth/api/totp", json={"code": pyotp.TOTP(secret).now()}, headers={"X-CSRF-Token": csrf}
    )
    assert answer.status_code == 200 and answer.json()["stage"] == "full", answer.text


def test_a_command_run_with_another_sites_keys_says_so_instead_of_a_500(demo_hub: Path) -> None:
    url = hub_settings(demo_hub, 18600).db_url  # --db alone: the default key_dir ./var/keys, not the demo's
    secret = _enrol_on_the_command_line("--db", url, _bootstrap(["--db", url]))
    client, csrf = _web_sign_in(demo_hub)
    answer = client.post(
        "/auth/totp",
        data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf},
        headers={"Accept": "text/html"},
    )
    assert answer.status_code == 500 and answer.headers["content-type"].startswith("text/html")
    assert "E-AUTH-KEY-MISMATCH" in answer.text and "--config" in answer.text


def test_the_demo_prints_the_portals_and_its_config(tmp_path: Path) -> None:
    lines = "\n".join(hints(tmp_path, "福建省", "35", 8600, 8610))
    assert "http://127.0.0.1:8600/portal" in lines and "http://127.0.0.1:8610/portal" in lines
    assert f"--config {tmp_path / 'hub.toml'}" in lines and f"--config {tmp_path / 'node.toml'}" in lines
    assert "--db" not in lines


def test_the_settings_page_shows_the_port_the_hub_was_started_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ggzy hub serve --port 18777``: the worker's settings (and so 系统管理's view) say 18777, not 8600."""
    import uvicorn

    from ggzy.settings import Settings
    from ggzy.web.settings_view import settings_rows

    seen: dict[str, object] = {}

    def fake_run(app: str, **options: object) -> None:
        seen["options"] = options
        seen["rows"] = {r.name: r for r in settings_rows("hub", Settings().hub)}  # as the worker builds them

    monkeypatch.setattr(uvicorn, "run", fake_run)
    for name in ("GGZY_HUB__PORT", "GGZY_HUB__HOST", "GGZY_HUB__WORKERS", "GGZY_HUB__DB_URL"):
        monkeypatch.delenv(name, raising=False)  # restored afterwards: serve sets them for its workers
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    result = CliRunner().invoke(cli, ["hub", "serve", "--db", db, "--port", "18777", "--host", "127.0.0.2"])
    assert result.exit_code == 0, result.output
    rows = seen["rows"]
    assert rows["hub.port"].value == "18777" and rows["hub.port"].configured  # type: ignore[index]
    assert rows["hub.host"].value == "127.0.0.2"  # type: ignore[index]
    assert "18777" in result.output
