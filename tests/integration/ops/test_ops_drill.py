"""``ggzy drill hub-outage`` for real: a hub process, a ``ggzy node run`` process, intake going on
while the drill command cuts the node's link; the backlog drains after the cut and nothing is lost.

What would catch a broken drill: if the cut did not reach the running node, the records enqueued
during it would be uploaded at once (``backlog_at_restore`` 0, no failed attempts); if the drill did
not wait for the backlog, ``waiting_after`` would not be 0; the hub's stored records are counted
independently of the drill's own reconciliation. One project enqueued during the cut is held for
correction: the records that need it wait on it (set aside, ``blocked``), and the drill must still
complete, counting them apart from the backlog (it used to wait for them until its timeout).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "node"))

import pytest
from nodeproc import (
    NodeProcess,
    as_realtime,
    hub_record_keys,
    new_records,
    node_settings,
    outbox_states,
    register,
    running_hub,
    simulated,
    wait_for,
    write_config,
)
from sqlalchemy import select

from ggzy.hub.models import ops_tables
from ggzy.node.context import build_context
from ggzy.node.link_control import link_cut_until
from ggzy.store import make_engine

OUTAGE_SECONDS = 4


@pytest.mark.slow
def test_the_hub_outage_drill_cuts_the_link_drains_the_backlog_and_loses_nothing(
    tmp_path: Path, cli_session: Callable[..., str]
) -> None:
    (tmp_path / "hub").mkdir()
    (tmp_path / "node").mkdir()
    stream = simulated(3, 6)
    before, during = stream[:30], stream[30:70]
    with running_hub(tmp_path / "hub") as hub:
        node = register(hub.db_url, "fj-01", [3])
        settings = node_settings(tmp_path / "node", hub.base_url, node, heartbeat_seconds=1.0)
        config = write_config(settings, tmp_path / "node" / "node.toml")
        intake = build_context(settings)  # this process plays intake; the node process uploads
        cli_session("operator", config=config)  # a drill is run by the node's 系统操作员
        process = NodeProcess(config, tmp_path / "node" / "node.log")
        try:
            intake.outbox.enqueue(new_records(before))
            process.start()
            wait_for(
                lambda: outbox_states(intake) == {"accepted": len(before)},
                60,
                message="first records accepted",
            )
            environment = {
                k: v for k, v in os.environ.items() if not k.startswith("GGZY_") or k == "GGZY_SESSION_FILE"
            }
            drill = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ggzy.cli",
                    "drill",
                    "hub-outage",
                    "--config",
                    str(config),
                    "--seconds",
                    str(OUTAGE_SECONDS),
                    "--drain-timeout",
                    "60",
                    "--participant",
                    "张三",
                ],
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            wait_for(
                lambda: link_cut_until(intake.engine) is not None or drill.poll() is not None,
                30,
                message="the drill cut the link",
            )
            assert drill.poll() is None, (drill.stdout.read() if drill.stdout else b"").decode()
            queued = new_records(during[:30]) + new_records(as_realtime(during[30:]), published_now=True)
            held = next(item for item in queued if item.table.name == "PROJECT")
            held.held = True
            held.findings = [{"code": "E-FIELD-REQUIRED", "severity": "error", "message_zh": "缺少必填项"}]
            intake.outbox.enqueue(queued)
            output, _ = drill.communicate(timeout=120)
            text = output.decode()
            assert drill.returncode == 0, text + process.log_tail()
            states = outbox_states(intake)
            assert states["held"] == 1 and states["blocked"] >= 1, states
            assert states["accepted"] == len(before) + len(during) - 1 - states["blocked"], states
        finally:
            process.kill()
            intake.engine.dispose()
        stored = {(table, key) for table, key, _version, _batch in hub_record_keys(hub.db_url)}
        engine = make_engine(hub.db_url)
        try:
            with engine.connect() as connection:
                (recorded,) = connection.execute(select(ops_tables.drills)).all()
        finally:
            engine.dispose()
    assert len(stored) == states["accepted"]
    assert "通过" in text and "数据丢失" in text, text
    detail = recorded.detail
    context = f"{detail}\n{text}"
    assert recorded.origin == "tool" and recorded.province == "35" and recorded.participants == ["张三"]
    assert (
        recorded.data_loss_records == 0 and detail["waiting_after"] == 0 and detail["missing_at_hub"] == 0
    ), context
    assert (detail["held"], detail["blocked"]) == (1, states["blocked"]), context
    assert detail["backlog_at_restore"] >= len(during) - 1 - states["blocked"], (
        context
    )  # the running node really could not upload
    assert detail["failed_attempts"] > 0, context
    assert OUTAGE_SECONDS <= detail["outage_seconds"] < OUTAGE_SECONDS + 10, (
        context
    )  # + a loaded machine's slack
    assert recorded.recovery_seconds >= detail["outage_seconds"] and detail["drain_seconds"] is not None, (
        context
    )
