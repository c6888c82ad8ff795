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
        "0591-87654321",
        "--mobile",
        "13812345678",
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
        assert report.notices == []
        from ggzy.hub.ops.notices import send_message
        from ggzy.hub.ops.session import Actor, OpsSession

        with writing(state_.engine) as connection:
            session = OpsSession(connection, state_.audit, Actor("national", "operator"), state_.settings.ops)
            send_message(session, ["35"], "请于12月10日前完成对账", "")
        told = diagnose(ctx, client, usage=full_disk, probe=down)
        assert [n.title_zh for n in told.notices] == ["请于12月10日前完成对账"]
        assert "请于12月10日前完成对账" in str(told.to_dict()["notices"])

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


def test_notices_are_sent_and_listed_from_the_command_line(hub_db: str) -> None:
    assert "已发送 1 条通知：35" in _run(
        "ops", "notify", "send", "-p", "35", "--title", "请核对", "--db", hub_db
    )
    listed = _run("ops", "notify", "list", "--unread", "--db", hub_db)
    assert "请核对" in listed and "未读" in listed
    help_text = runner.invoke(app, ["ops", "notify", "send", "--help"], env={"COLUMNS": "300"}).output
    assert "示例：ggzy ops notify send" in help_text and "所有已登记节点的省份" in help_text


def test_the_records_commands_of_articles_13_20_22_and_29_30(hub_db: str) -> None:
    def person(rank: str, name: str, mobile: str) -> None:
        _run("ops", "roster", "set", "35", "security", rank, "--name", name, "--phone", "0591-87654321",
             "--mobile", mobile, "--email", f"{mobile}@fj.example", "--db", hub_db)  # fmt: skip

    person("primary", "张三", "13812345678")
    refused = runner.invoke(
        app, ["ops", "roster", "set", "35", "security", "backup", "--name", "张三", "--db", hub_db]
    )
    assert refused.exit_code == 1 and "E-OPS-ROSTER-SAME-PERSON" in refused.output
    today = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    _run("ops", "roster", "absence", "35", "张三", "--from", today, "--to", today, "--db", hub_db)
    assert "E-ROSTER-ABSENT" in _run("ops", "roster", "show", "35", "--db", hub_db)
    trained = _run("ops", "roster", "training", "35", "--date", today, "--subject", "等保", "--topic", "security",
                   "--participant", "张三", "--db", hub_db)  # fmt: skip
    assert "运行安全" in trained
    requested = _run(
        "ops", "change", "request", "-p", "35", "--kind", "upgrade", "--title", "升级", "--db", hub_db
    )
    assert "待审核" in requested
    own = runner.invoke(app, ["ops", "change", "approve", "1", "--db", hub_db])
    assert own.exit_code == 1 and "E-OPS-CHANGE-SAME-PERSON" in own.output
    assert "已计划 2 次" in _run(
        "ops", "selfcheck", "schedule", "-p", "35", "--first", today, "--count", "2", "--db", hub_db
    )
    assert "待自查" in _run("ops", "selfcheck", "list", "--db", hub_db)
    assert "信息安全通报" in _run("ops", "selfcheck", "bulletin", "--period", today[:7], "--db", hub_db)
    assert "已审批" in _run("ops", "versions", "approve", "python", "CPython 3.11.*", "--db", hub_db)
    assert "均已审批" in _run("ops", "versions", "show", "--db", hub_db)
    planned = _run("ops", "inspect", "plan", "-p", "35", "--kind", "spot", "--date", today, "--db", hub_db)
    assert "#1" in planned
    items = ["--item", "security=pass", "--item", "sharing=pass", "--item", "frontend=pass",
             "--item", "organisation=pass", "--item", "rules=pass", "--item", "plans=pass",
             "--item", "training=pass", "--item", "funding=pass", "--item", "major_events=fail:不服从调度"]  # fmt: skip
    result = _run("ops", "inspect", "result", "1", *items, "--db", hub_db)
    assert "第三十五条第8项" in result and "已下达整改通知" in result
