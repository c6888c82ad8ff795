"""``ggzy hub node …``: the registry commands, their refusals, and the audit trail of every change."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner, Result

from ggzy.cli import app
from ggzy.hub.app import create_app
from ggzy.hub.models import audit_log
from ggzy.hub.registry import NodeRecord, get_node
from ggzy.security.audit import AuditLog
from ggzy.security.keys import load_or_create_key
from ggzy.security.signing import sign_request
from ggzy.settings import HubSettings, get_settings
from ggzy.simulate import province_systems
from ggzy.store import make_engine

runner = CliRunner()
KEY = re.compile(r"\b[0-9a-f]{64}\b")
PLATFORM = province_systems("35", 1).platform_codes[0]


class Registry:
    """Runs ``ggzy hub node`` against one database and reads back what the commands did."""

    def __init__(self, db_url: str, key_dir: Path) -> None:
        self.db_url = db_url
        self.key_dir = key_dir

    def run(self, *args: str) -> Result:
        return runner.invoke(app, ["hub", "node", *args, "--db", self.db_url])

    def node(self, node_id: str) -> NodeRecord | None:
        engine = make_engine(self.db_url)
        try:
            with engine.connect() as connection:
                return get_node(connection, node_id)
        finally:
            engine.dispose()

    def audit(self) -> list[dict[str, Any]]:
        """Every audit entry, after checking that the chain is whole under the CLI's audit key."""
        engine = make_engine(self.db_url)
        chain = AuditLog(
            audit_log, load_or_create_key(self.key_dir / "audit.key"), get_settings().hub.audit_digest
        )
        try:
            with engine.connect() as connection:
                assert chain.verify(connection) is None
                found = connection.execute(select(audit_log).order_by(audit_log.c.id)).mappings()
                # the registry's own entries, not the sign-in layer's (auth.*, account.*, cli.*)
                return [dict(row) for row in found if row["action"].startswith(("node.", "feed."))]
        finally:
            engine.dispose()

    def actions(self) -> list[tuple[str, str]]:
        return [(entry["action"], entry["object"]) for entry in self.audit()]


@pytest.fixture
def registry(
    hub_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_session: Callable[..., str]
) -> Iterator[Registry]:
    monkeypatch.setenv("GGZY_HUB__KEY_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    cli_session("sysadmin", db=hub_db_url)  # the node registry is the 系统管理员's (nodes:manage)
    yield Registry(hub_db_url, tmp_path / "keys")
    get_settings.cache_clear()


def shown_key(result: Result) -> str:
    (key,) = KEY.findall(result.output)
    return key


def assert_refused(result: Result, code: str) -> None:
    assert result.exit_code == 2, result.output
    assert code in result.output


def test_node_add_registers_the_node_shows_its_key_once_and_audits(registry: Registry) -> None:
    result = registry.run(
        "add", "fj-01", "--province", "35", "--name", "福建省交换前置", "--platform", PLATFORM,
        "--network", "10.35.0.0/16",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "已登记节点" in result.output
    node = registry.node("fj-01")
    assert node is not None and node.key == shown_key(result)
    assert (node.province, node.name, node.status) == ("35", "福建省交换前置", "active")
    assert (node.platform_codes, node.networks) == ((PLATFORM,), ("10.35.0.0/16",))
    (entry,) = registry.audit()
    assert (entry["action"], entry["object"], entry["role"]) == ("node.add", "node:fj-01", "sysadmin")
    assert entry["account"] == "t-admin" and entry["source"].startswith("cli:")


def test_the_key_shown_is_the_one_the_hub_checks(registry: Registry, tmp_path: Path) -> None:
    key = bytes.fromhex(shown_key(registry.run("add", "fj-01", "--province", "35")))
    hub = create_app(HubSettings(db_url=registry.db_url, key_dir=tmp_path / "keys"))
    with TestClient(hub) as http:
        headers = sign_request("fj-01", key, "GET", "/api/v1/spec", b"").as_dict()
        assert http.get("/api/v1/spec", headers=headers).status_code == 200


def test_node_list_shows_every_node_without_its_key(registry: Registry) -> None:
    first = shown_key(registry.run("add", "fj-01", "--province", "35", "--platform", PLATFORM))
    second = shown_key(registry.run("add", "bj-01", "--province", "11", "--algorithm", "HMAC-SM3"))
    listed = registry.run("list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["node_id"], r["province"], r["status"], r["algorithm"]) for r in rows] == [
        ("bj-01", "11", "active", "HMAC-SM3"),
        ("fj-01", "35", "active", "HMAC-SHA256"),
    ]
    assert rows[1]["platform_codes"] == [PLATFORM] and rows[0]["networks"] == []
    table = registry.run("list")
    assert table.exit_code == 0 and "fj-01" in table.output and "正常" in table.output
    for output in (listed.output, table.output):
        assert first not in output and second not in output


def test_suspend_and_activate_change_the_status_and_are_audited(registry: Registry) -> None:
    registry.run("add", "fj-01", "--province", "35")
    suspended = registry.run("suspend", "fj-01")
    assert suspended.exit_code == 0 and "已暂停" in suspended.output
    node = registry.node("fj-01")
    assert node is not None and node.status == "suspended"
    assert "已暂停" in registry.run("list").output
    activated = registry.run("activate", "fj-01")
    assert activated.exit_code == 0 and "已恢复" in activated.output
    node = registry.node("fj-01")
    assert node is not None and node.active
    assert registry.actions() == [
        ("node.add", "node:fj-01"),
        ("node.suspend", "node:fj-01"),
        ("node.activate", "node:fj-01"),
    ]


def test_rotate_key_replaces_the_key_and_is_audited(registry: Registry) -> None:
    old = shown_key(registry.run("add", "fj-01", "--province", "35"))
    rotated = registry.run("rotate-key", "fj-01")
    assert rotated.exit_code == 0, rotated.output
    new = shown_key(rotated)
    node = registry.node("fj-01")
    assert new != old and node is not None and node.key == new
    assert node.key_rotated_at >= node.created_at
    assert registry.actions()[-1] == ("node.rotate-key", "node:fj-01")


def test_invalid_registrations_are_refused_with_their_code_and_change_nothing(registry: Registry) -> None:
    assert_refused(registry.run("add", "xx-01", "--province", "99"), "E-NODE-PROVINCE")
    assert_refused(registry.run("add", "has space", "--province", "35"), "E-NODE-ID")
    assert_refused(registry.run("add", "xx-01", "--province", "35", "--platform", "123"), "E-NODE-PLATFORM")
    assert_refused(
        registry.run("add", "xx-01", "--province", "35", "--network", "10.0.0/33"), "E-NODE-NETWORK"
    )
    assert_refused(
        registry.run("add", "xx-01", "--province", "35", "--algorithm", "HMAC-MD5"), "E-NODE-INPUT"
    )
    assert registry.node("xx-01") is None
    assert registry.audit() == []


def test_a_duplicate_node_is_refused_and_keeps_its_key(registry: Registry) -> None:
    key = shown_key(registry.run("add", "fj-01", "--province", "35"))
    again = registry.run("add", "fj-01", "--province", "35")
    assert_refused(again, "E-NODE-EXISTS")
    assert not KEY.findall(again.output)
    node = registry.node("fj-01")
    assert node is not None and node.key == key
    assert registry.actions() == [("node.add", "node:fj-01")]


def test_changes_to_an_unknown_node_are_refused(registry: Registry) -> None:
    for command in ("suspend", "activate", "rotate-key"):
        assert_refused(registry.run(command, "ghost"), "E-NODE-UNKNOWN")
    assert registry.audit() == []


def test_the_networks_of_a_registered_node_change_and_the_change_is_audited(registry: Registry) -> None:
    """README: a node registered with one network moves, or gains a second, without re-registering."""
    registry.run("add", "fj-01", "--province", "35", "--network", "10.35.0.0/16")
    added = registry.run("networks", "fj-01", "--add", "10.135.8.7/24")
    assert added.exit_code == 0, added.output
    node = registry.node("fj-01")
    assert node is not None and node.networks == ("10.35.0.0/16", "10.135.8.0/24")
    removed = registry.run("networks", "fj-01", "--remove", "10.35.0.0/16")
    assert removed.exit_code == 0 and registry.node("fj-01").networks == ("10.135.8.0/24",)  # type: ignore[union-attr]
    replaced = registry.run("networks", "fj-01", "--network", "10.36.0.0/16")
    assert replaced.exit_code == 0 and "10.36.0.0/16" in replaced.output
    assert_refused(registry.run("networks", "fj-01", "--network", "10.36.0.0/33"), "E-NODE-NETWORK")
    assert_refused(registry.run("networks", "ghost", "--add", "10.1.0.0/16"), "E-NODE-UNKNOWN")
    assert_refused(registry.run("networks", "fj-01"), "E-CLI-NETWORKS")
    assert registry.node("fj-01").networks == ("10.36.0.0/16",)  # type: ignore[union-attr]
    changes = [e for e in registry.audit() if e["action"] == "node.networks"]
    assert [(c["detail"]["networks_before"], c["detail"]["networks_after"]) for c in changes] == [
        (["10.35.0.0/16"], ["10.35.0.0/16", "10.135.8.0/24"]),
        (["10.35.0.0/16", "10.135.8.0/24"], ["10.135.8.0/24"]),
        (["10.135.8.0/24"], ["10.36.0.0/16"]),
    ]


def test_notify_pushes_a_reupload_request_and_a_notice_into_the_feed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_session: Callable[..., str]
) -> None:
    from ggzy.hub.feedback import read_feed
    from ggzy.store import make_engine

    monkeypatch.setenv("GGZY_HUB__KEY_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    cli_session("sysadmin", db=url)  # registers the node (nodes:manage) …
    assert runner.invoke(app, ["hub", "node", "add", "fj-01", "--province", "35", "--db", url]).exit_code == 0
    not_data = runner.invoke(app, ["hub", "notify", "fj-01", "--message", "x", "--db", url])
    assert not_data.exit_code == 77 and "E-AUTH-FORBIDDEN" in not_data.output  # … but sends no data requests
    cli_session("operator", db=url)
    sent = runner.invoke(
        app,
        ["hub", "notify", "fj-01", "--reupload", "--table", "SECTION", "--day", "2026-11-26", "--db", url],
    )
    assert sent.exit_code == 0, sent.output
    assert runner.invoke(app, ["hub", "notify", "fj-01", "--message", "今晚维护", "--db", url]).exit_code == 0
    refused = runner.invoke(app, ["hub", "notify", "fj-01", "--reupload", "--db", url])
    assert refused.exit_code == 2 and "E-CLI-SCOPE" in refused.output
    with make_engine(url).connect() as connection:
        items = read_feed(connection, "fj-01", 0, 10)
    assert [(i["kind"], i["body"].get("table"), i["body"].get("day")) for i in items] == [
        ("reupload", "SECTION", "2026-11-26"),
        ("notice", None, None),
    ]
    get_settings.cache_clear()
