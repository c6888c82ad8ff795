"""``ggzy ops`` commands on a hub database, and ``ggzy node doctor``'s diagnosis of a province."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from typer.testing import CliRunner

from ggzy.cli import app
from ggzy.hub.app import create_app
from ggzy.hub.registry import add_node
from ggzy.node.context import build_context
from ggzy.node.doctor import diagnose
from ggzy.node.heartbeat import BACKUP_VERIFIED_AT, PlatformHealth
from ggzy.node.link_control import cut_link
from ggzy.node.models import state
from ggzy.node.status import DiskUsage
from ggzy.protocol import HubClient
from ggzy.security.permissions import CLI_PERMISSIONS, Permission
from ggzy.settings import HubSettings, NodeSettings
from ggzy.store.database import writing

runner = CliRunner()


@pytest.fixture
def hub_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_session: Callable[..., str]) -> Iterator[str]:
    monkeypatch.setenv("GGZY_HUB__KEY_DIR", str(tmp_path / "keys"))
    from ggzy.settings import get_settings

    get_settings.cache_clear()
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    cli_session("sysadmin", db=url)  # the node registry is the 系统管理员's
    result = runner.invoke(app, ["hub", "node", "add", "fj-01", "--province", "35", "--db", url])
    assert result.exit_code == 0, result.output
    cli_session("operator", db=url)  # operations are a national 系统操作员's
    yield url
    get_settings.cache_clear()


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_operators_file_and_export_from_the_command_line(hub_db: str, tmp_path: Path) -> None:
    later = (dt.datetime.now() + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    end = (dt.datetime.now() + dt.timedelta(days=3, hours=2)).strftime("%Y-%m-%dT%H:%M")
    assert "按时通知" in _run(
        "ops",
        "outage",
        "add",
        "-p",
        "35",
        "--kind",
        "cutover",
        "--start",
        later,
        "--end",
        end,
        "--impact",
        "割接",
        "--db",
        hub_db,
    )
    _run(
        "ops",
        "roster",
        "set",
        "35",
        "duty",
        "primary",
        "--name",
        "张三",
        "--phone",
        "1",
        "--mobile",
        "2",
        "--email",
        "z@x.cn",
        "--db",
        hub_db,
    )
    assert "技术负责人岗位未备案主岗人员" in _run("ops", "roster", "show", "35", "--db", hub_db)
    period = dt.date.today().strftime("%Y-%m")
    assessed = json.loads(_run("ops", "assess", "--period", period, "--format", "json", "--db", hub_db))
    assert assessed[0]["province"] == "35" and len(assessed[0]["indicators"]) == 12
    issued = _run("ops", "orders", "issue", "--period", period, "--db", hub_db)
    assert "未备案" in issued  # condition 1 (no 运行负责人) and 6 (no plan)
    pdf = tmp_path / "orders.pdf"
    _run("ops", "orders", "list", "--format", "pdf", "-o", str(pdf), "--db", hub_db)
    assert "责令限期改正通知" in PdfReader(pdf).pages[0].extract_text()
    refused = runner.invoke(app, ["ops", "incident", "status", "99", "closed", "--db", hub_db])
    assert refused.exit_code == 1 and "E-OPS-NOT-FOUND" in refused.output


def test_a_province_operator_files_and_reads_for_its_own_province_only(
    hub_db: str, cli_session: Callable[..., str]
) -> None:
    cli_session("operator", db=hub_db, province="36")
    start = (dt.datetime.now() + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    end = (dt.datetime.now() + dt.timedelta(days=3, hours=2)).strftime("%Y-%m-%dT%H:%M")
    window = ["--kind", "cutover", "--start", start, "--end", end, "--impact", "割接", "--db", hub_db]
    refused = runner.invoke(app, ["ops", "outage", "add", "-p", "35", *window])
    assert refused.exit_code == 1 and "E-OPS-SCOPE" in refused.output, refused.output
    assert "按时通知" in _run("ops", "outage", "add", "-p", "36", *window)
    refused = runner.invoke(app, ["ops", "roster", "show", "35", "--db", hub_db])
    assert refused.exit_code == 1 and "E-OPS-SCOPE" in refused.output, refused.output
    refused = runner.invoke(app, ["ops", "drills", "overdue", "--db", hub_db])
    assert refused.exit_code == 1 and "E-OPS-NATIONAL" in refused.output, refused.output
    assert "36" in _run("ops", "outage", "list", "--db", hub_db)  # no province given: its own


def test_every_ops_command_declares_its_permission() -> None:
    import ggzy.cli.ops as module

    commands = [
        name
        for name, value in vars(module).items()
        if callable(value) and hasattr(value, "__ggzy_permission__")
    ]
    assert len(commands) >= 30
    assert CLI_PERMISSIONS["ggzy.cli.ops.assess"] is Permission.OPS_ASSESS
    assert CLI_PERMISSIONS["ggzy.cli.ops.doctor"] is Permission.OPS_READ


def test_the_doctor_lists_local_and_national_problems_with_fixes(hub_db_url: str, tmp_path: Path) -> None:
    hub_app = create_app(HubSettings(db_url=hub_db_url, key_dir=tmp_path / "keys"))
    with TestClient(hub_app) as http:
        state_ = hub_app.state.hub
        with writing(state_.engine) as connection:
            node = add_node(connection, "fj-01", "35")
        settings = NodeSettings(
            node_id="fj-01",
            db_url=f"sqlite:///{tmp_path / 'node.db'}",
            key_file=tmp_path / "node.key",
            disk_path=tmp_path,
            platform_health_url="http://platform.example/health",
        )
        ctx = build_context(settings, key=bytes.fromhex(node.key))
        client = HubClient("http://testserver", "fj-01", bytes.fromhex(node.key), transport=http._transport)
        full_disk = lambda _path: DiskUsage(100, 85, 15)  # noqa: E731
        down = lambda _url: PlatformHealth(False, 5.0, "ConnectError")  # noqa: E731
        report = diagnose(ctx, client, usage=full_disk, probe=down)
        codes = {f.code for f in report.findings}
        assert {"NODE-PLATFORM-DOWN", "NODE-DISK", "NODE-BACKUP"} <= codes
        assert {"OPS-ROSTER_COMPLETE", "OPS-DRILL_HELD"} <= codes  # from the hub, signed
        assert report.hub_reached and all(f.fix_zh for f in report.findings)

        now = dt.datetime.now(dt.UTC)
        with writing(ctx.engine) as connection:
            connection.execute(state.insert(), {"name": BACKUP_VERIFIED_AT, "value": now.isoformat()})
        cut_link(ctx.engine, now + dt.timedelta(minutes=5))
        healthy_disk = lambda _path: DiskUsage(100, 10, 90)  # noqa: E731
        up = lambda _url: PlatformHealth(True, 5.0)  # noqa: E731
        codes = {f.code for f in diagnose(ctx, client, usage=healthy_disk, probe=up).findings}
        assert "NODE-BACKUP" not in codes and "NODE-DISK" not in codes and "NODE-LINK-CUT" in codes
        client.close()
        ctx.engine.dispose()
    state_.engine.dispose()
