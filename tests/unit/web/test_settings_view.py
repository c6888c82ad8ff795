"""The 系统管理 view of the settings in force: every value but the secrets, and where it came from."""

from __future__ import annotations

from pathlib import Path

from ggzy.settings import HubSettings, NodeSettings, OpsSettings
from ggzy.web.settings_view import HIDDEN, settings_rows


def test_secrets_and_where_keys_live_are_hidden_addresses_lose_their_credentials() -> None:
    hub = HubSettings(
        db_url="postgresql+psycopg://ggzy:s3cret-db@db.example/ggzy",
        port=18600,
        key_dir=Path("/etc/ggzy/keys"),
        tls_key=Path("/etc/ggzy/tls.key"),
        ops=OpsSettings(smtp_password="mail-pass", webhook_url="https://hooks.example/T0/B1?token=abc"),
    )
    rows = {r.name: r for r in settings_rows("hub", hub)}
    text = " ".join(r.value for r in rows.values())
    for secret in ("s3cret-db", "/etc/ggzy/keys", "/etc/ggzy/tls.key", "mail-pass", "token=abc", "T0/B1"):
        assert secret not in text, secret
    assert rows["hub.key_dir"].value == HIDDEN and rows["hub.ops.smtp_password"].value == HIDDEN
    assert rows["hub.ops.webhook_url"].value == "https://hooks.example/…"
    assert rows["hub.port"].value == "18600" and rows["hub.port"].configured
    assert not rows["hub.workers"].configured  # a default, said as such
    assert rows["hub.port"].description == "监听端口"  # the Chinese half of the description
    assert rows["hub.ops.weights"].description == "考核指标权重，未列出的为1（默认等权）"


def test_settings_about_passwords_are_shown_the_passwords_are_not() -> None:
    from ggzy.settings import SecuritySettings

    rows = {r.name: r.value for r in settings_rows("security", SecuritySettings())}
    assert rows["security.password_min_length"] == "8" and rows["security.password_history"] == "5"


def test_values_read_as_words_not_python_literals() -> None:
    rows = {r.name: r.value for r in settings_rows("node", NodeSettings(drop_dir=None, pull=[]))}
    assert rows["node.drop_dir"] == "（未设置）" and rows["node.hold_invalid"] == "是"
    assert not any(v in ("None", "True", "False", "[]", "{}") for v in rows.values())
