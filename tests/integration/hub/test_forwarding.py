"""Forwarding headers are trusted only from ``hub.trusted_proxies`` (empty by default).

Before: ``hub serve`` ran uvicorn with ``proxy_headers=True``, which trusts ``X-Forwarded-For`` from
loopback, so a signed upload sent from 127.0.0.1 with ``X-Forwarded-For: 10.35.0.9`` passed a node's
``10.35.0.0/16`` allow-list. The first test serves the hub with the very options ``hub serve`` uses
and sends that request over a real socket.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from ggzy.cli.hub import server_options
from ggzy.hub.app import create_app
from ggzy.hub.registry import add_node
from ggzy.security.signing import sign_request
from ggzy.settings import HubSettings
from ggzy.store.database import writing

SPEC = "/api/v1/spec"


def _served(app: object, settings: HubSettings) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **server_options(settings))  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the hub did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _signed(node_id: str, key: bytes, forwarded_for: str) -> dict[str, str]:
    return {**sign_request(node_id, key, "GET", SPEC, b"").as_dict(), "X-Forwarded-For": forwarded_for}


@pytest.fixture
def settings(tmp_path: Path, sqlite_templates: object) -> HubSettings:
    url = sqlite_templates.copy("hub", tmp_path / "hub.db")  # type: ignore[attr-defined]
    return HubSettings(db_url=url, key_dir=tmp_path / "keys")


def test_a_forged_forwarded_for_from_loopback_does_not_pass_a_nodes_networks(settings: HubSettings) -> None:
    app = create_app(settings)
    with writing(app.state.hub.engine) as connection:
        node = add_node(connection, "fj-net", "35", networks=["10.35.0.0/16"])
    try:
        for base in _served(app, settings):
            answer = httpx.get(base + SPEC, headers=_signed("fj-net", bytes.fromhex(node.key), "10.35.0.9"))
            assert answer.status_code == 403, answer.text
            assert answer.json()["error"]["code"] == "E-AUTH-NETWORK"
    finally:
        app.state.hub.engine.dispose()


def test_a_trusted_proxy_gives_the_callers_address_and_scheme(tmp_path: Path, settings: HubSettings) -> None:
    proxied = settings.model_copy(update={"trusted_proxies": ["192.0.2.10/32"]})
    app = create_app(proxied)
    with writing(app.state.hub.engine) as connection:
        node = add_node(connection, "fj-net", "35", networks=["10.35.0.0/16"])
    key = bytes.fromhex(node.key)
    try:
        proxy = TestClient(app, client=("192.0.2.10", 40000))
        through = proxy.get(SPEC, headers=_signed("fj-net", key, "10.35.0.9"))
        assert through.status_code == 200, through.text
        stranger = TestClient(app, client=("192.0.2.99", 40000))  # not a trusted proxy: header ignored
        forged = stranger.get(SPEC, headers=_signed("fj-net", key, "10.35.0.9"))
        assert forged.status_code == 403 and forged.json()["error"]["code"] == "E-AUTH-NETWORK"
    finally:
        app.state.hub.engine.dispose()


def test_the_secure_cookie_flag_follows_a_trusted_tls_terminating_proxy(settings: HubSettings) -> None:
    from ggzy.settings import SecuritySettings

    security = SecuritySettings(management_networks=["10.0.0.0/8"])
    app = create_app(settings.model_copy(update={"trusted_proxies": ["192.0.2.10/32"]}), security=security)
    try:
        headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "10.1.1.1"}
        behind = TestClient(app, client=("192.0.2.10", 40000)).get("/auth/sign-in", headers=headers)
        assert behind.status_code == 200 and "secure" in behind.headers["set-cookie"].lower()
        forged = TestClient(app, client=("10.1.1.1", 40000)).get("/auth/sign-in", headers=headers)
        assert forged.status_code == 200 and "secure" not in forged.headers["set-cookie"].lower()
    finally:
        app.state.hub.engine.dispose()


def test_hub_serve_leaves_forwarding_headers_to_the_app(settings: HubSettings) -> None:
    assert server_options(settings)["proxy_headers"] is False
