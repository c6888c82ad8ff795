"""The ``ops_db`` fixture: a migrated hub database on each backend (helpers in ``opsdb.py``); a local
SMTP sink (``smtp``, aiosmtpd) and a local webhook receiver (``webhook``) for the notification tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from opsdb import Clock, OpsDb, shanghai
from tests_free_port import free_port

from ggzy.hub.app import MIGRATIONS
from ggzy.hub.models import audit_log
from ggzy.security.audit import AuditLog
from ggzy.store import make_engine
from ggzy.store.migrate import upgrade


@pytest.fixture
def ops_db(hub_db_url: str, tmp_path: Path) -> Iterator[OpsDb]:
    engine = make_engine(hub_db_url)
    upgrade(engine, MIGRATIONS)
    audit = AuditLog(audit_log, b"k" * 32)
    yield OpsDb(engine, audit, Clock(shanghai(2026, 11, 1)))
    engine.dispose()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[_Inbox, int]]:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def webhook() -> Iterator[tuple[list[dict[str, Any]], str]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received, f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
