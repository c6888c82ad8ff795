"""系统管理 shows the settings without their secrets (before: the hub showed ``hub.db_url`` with its
password and ``ops.webhook_url`` with its token)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from signin_world import id_number

from ggzy.hub.app import create_app
from ggzy.security.accounts import Caller, NewAccount
from ggzy.security.permissions import Role
from ggzy.settings import HubSettings, NodeSettings, OpsSettings, PullSource
from ggzy.web.settings_view import HIDDEN, settings_rows

SECRETS = ("S3cret-db-pw", "abcdef0123456789abcdef", "XXXXXXXXXXXXXXXXXXXXXXXX", "smtp-Pass-9", "pull-Pass-7")


def test_the_hubs_admin_page_shows_no_secret(tmp_path: Path, first_sign_in: Callable[..., str]) -> None:
    settings = HubSettings(
        db_url=f"sqlite:///{tmp_path / 'hub.db'}",
        key_dir=tmp_path / "keys",
        ops=OpsSettings(
            webhook_url=f"https://oapi.example.cn/robot/send?access_token={SECRETS[1]}",
            smtp_password=SECRETS[3],
            node_probe_urls={"fj-01": f"https://hooks.example.cn/services/T0/B0/{SECRETS[2]}"},
        ),
    )
    app = create_app(settings)
    hub = app.state.hub
    try:
        # what production shows: the PostgreSQL URL with its password (the app itself runs on SQLite)
        hub.settings = settings.model_copy(
            update={"db_url": f"postgresql+psycopg://ggzy:{SECRETS[0]}@db.example.cn/ggzy"}
        )
        passwords = hub.accounts.bootstrap(
            NewAccount("admin", "管理员", Role.SYSADMIN, id_number=id_number(701)),
            NewAccount("audit", "审计员", Role.AUDITOR, id_number=id_number(702)),
            Caller(source="127.0.0.1"),
        )
        token = first_sign_in(hub.accounts, "admin", passwords["admin"])
        page = TestClient(app, client=("127.0.0.1", 5000), headers={"Authorization": f"Bearer {token}"}).get(
            "/portal/admin/settings"
        )
        assert page.status_code == 200, page.text
        for secret in SECRETS[:4]:
            assert secret not in page.text, secret
        assert "db.example.cn" in page.text and "hub.ops.webhook_url" in page.text  # still informative
    finally:
        hub.engine.dispose()


def test_every_kind_of_secret_is_redacted_in_the_nodes_view() -> None:
    settings = NodeSettings(
        platform_health_url=f"https://user:{SECRETS[0]}@platform.example.cn/health?key={SECRETS[1]}",
        pull=[
            PullSource(
                name="trading-db",
                url=f"mysql+pymysql://ggzy:{SECRETS[4]}@10.35.1.2/trade",
                table="SECTION",
                query="SELECT 1",
            )
        ],
    )
    rows = {row.name: row.value for row in settings_rows("node", settings)}
    shown = " ".join(rows.values())
    for secret in (SECRETS[0], SECRETS[1], SECRETS[4]):
        assert secret not in shown
    assert "trading-db" in shown and "platform.example.cn" in shown
    assert rows["node.key_file"] == HIDDEN  # where a secret lives
    assert rows["node.api_tls_key"] in (HIDDEN, "（未设置）")  # none configured here


def test_a_url_inside_a_mapping_loses_its_path_and_query() -> None:
    ops = OpsSettings(
        node_probe_urls={"fj-01": f"https://hooks.example.cn/services/T0/B0/{SECRETS[2]}?k={SECRETS[1]}"}
    )
    rows = {row.name: row.value for row in settings_rows("ops", ops)}
    assert SECRETS[2] not in rows["ops.node_probe_urls"] and SECRETS[1] not in rows["ops.node_probe_urls"]
    assert "hooks.example.cn" in rows["ops.node_probe_urls"]
