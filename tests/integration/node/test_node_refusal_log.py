"""An expected refusal of the hub (403 ``E-AUTH-NETWORK``: the node's address is not registered) is
one log line and a status the operator can read, not a traceback every few seconds."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import httpx
import pytest

from ggzy.node.context import build_context
from ggzy.node.service import NodeService
from ggzy.settings import NodeSettings

REFUSAL = {
    "ok": False,
    "error": {
        "code": "E-AUTH-NETWORK",
        "message_zh": "来源地址 10.9.9.9 不在该节点登记的网段内",
        "message_en": "source address not in the node's networks",
    },
    "request_id": "r1",
}


def test_a_refused_feedback_poll_logs_one_line_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "node.key").write_text("00" * 32, encoding="ascii")
    settings = NodeSettings(
        node_id="fj-01",
        province="35",
        key_file=tmp_path / "node.key",
        db_url=f"sqlite:///{tmp_path / 'outbox.db'}",
        drop_dir=None,
        disk_path=tmp_path,
        feedback_interval_seconds=0.05,
    )
    ctx = build_context(settings)
    refuse = httpx.MockTransport(lambda _request: httpx.Response(403, json=REFUSAL))
    service = NodeService(ctx, latency_watch=False, client_factory=lambda: ctx.hub_client(transport=refuse))
    for uploader in service.uploaders.values():
        uploader.stop()  # only the feedback poll talks to the hub here
    caplog.set_level(logging.INFO, logger="ggzy")
    try:
        service.start()
        time.sleep(0.6)  # a dozen polls, all refused the same way
    finally:
        service.stop(timeout=10)
        ctx.engine.dispose()
    task = service.tasks["feedback"]
    assert task.runs >= 5 and task.failures == task.runs
    assert task.last_error is not None and "E-AUTH-NETWORK" in task.last_error
    refused = [r for r in caplog.records if "E-AUTH-NETWORK" in r.getMessage()]
    assert len(refused) == 1, [r.getMessage() for r in refused]  # said once, until it changes
    assert all(r.exc_info is None for r in caplog.records), "no traceback for an expected refusal"
