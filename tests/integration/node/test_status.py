"""``ggzy node status``: queues, rates, latency, last contact, disk and alerts from the node's store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import insert
from typer.testing import CliRunner

from ggzy.cli import app
from ggzy.node.context import NodeContext, build_context
from ggzy.node.models import link_attempts
from ggzy.node.outbox import NewRecord
from ggzy.node.status import DiskUsage, render, snapshot
from ggzy.node.uploader import raise_alert
from ggzy.settings import NodeSettings
from ggzy.store.database import writing


def node(db_url: str, tmp_path: Path) -> NodeContext:
    settings = NodeSettings(db_url=db_url, key_file=tmp_path / "node" / "node.key", disk_path=tmp_path)
    return build_context(settings, key=b"k")


def new(ctx: NodeContext, n: int, channel: int, published: dt.datetime | None = None) -> NewRecord:
    spec = ctx.spec.tables["TENDER_PROJECT"]
    data = {"TENDER_PROJECT_CODE": f"A35010026110100010{n:02d}", "PROJECT_CODE": "A3501002611010001"}
    category = "realtime" if channel == 1 else "history"
    record = {"table": "TENDER_PROJECT", "op": "insert", "category": category, "data": data}
    return NewRecord(spec, spec.key_of(data), record, channel, published_at=published)


def accept_all(ctx: NodeContext, channel: int, decided: dt.datetime) -> None:
    batch = ctx.outbox.form_batch(channel, 100)
    assert batch is not None
    results = [{"outcome": "accepted", "version": 1, "findings": []} for _ in batch.ids]
    ctx.outbox.apply_receipt(batch, {"results": results}, now=decided)


def test_snapshot_counts_queues_rates_latency_contact_and_alerts(node_db_url: str, tmp_path: Path) -> None:
    ctx = node(node_db_url, tmp_path)
    now = dt.datetime.now(dt.UTC)
    # ten realtime records published 1..10 s before they were accepted a minute ago
    ctx.outbox.enqueue([new(ctx, n, 1, now - dt.timedelta(seconds=60 + n)) for n in range(1, 11)])
    accept_all(ctx, 1, now - dt.timedelta(seconds=60))
    ctx.outbox.enqueue([new(ctx, n, 2) for n in range(20, 23)], now=now - dt.timedelta(seconds=30))
    ctx.outbox.enqueue([new(ctx, 30, 1)])
    with writing(ctx.engine) as connection:
        connection.execute(
            insert(link_attempts), {"at": now - dt.timedelta(seconds=5), "ok": True, "seconds": 0.2}
        )
        connection.execute(
            insert(link_attempts), {"at": now - dt.timedelta(seconds=1), "ok": False, "seconds": 5}
        )
    raise_alert(ctx.engine, "hub", "warning", "国家平台暂时无法连接")

    snap = snapshot(ctx, now, usage=lambda _p: DiskUsage(1000, 250, 750))
    assert snap.queues == {1: {"accepted": 10, "queued": 1}, 2: {"queued": 3}}
    assert snap.oldest_unsent[2] == pytest.approx(30, abs=1)
    assert snap.accepted_per_minute == pytest.approx(10 / 5)
    assert snap.latency_samples == 10
    assert snap.latency_p50 == pytest.approx(5.5, abs=0.6) and snap.latency_p95 == pytest.approx(10, abs=0.6)
    assert snap.last_contact is not None and abs((now - snap.last_contact).total_seconds() - 5) < 0.01
    assert snap.disk_ratio == pytest.approx(0.25)
    assert [a.message for a in snap.alerts] == ["国家平台暂时无法连接"]

    console = Console(record=True, width=200)
    console.print(render(snap))
    text = console.export_text()
    assert "第一通道（实时） 1" in text and "国家平台暂时无法连接" in text and "25.0%" in text
    assert "2.0 条/分钟" in text

    later = snapshot(ctx, now + dt.timedelta(hours=2), usage=lambda _p: DiskUsage(1000, 250, 750))
    assert later.accepted_per_minute == 0 and later.latency_p50 is None  # outside the windows


def node_toml(folder: Path, node_id: str, db_url: str) -> Path:
    config = folder / "node.toml"
    config.write_text(
        f'[node]\nnode_id = "{node_id}"\ndb_url = "{db_url}"\nkey_file = "{folder / "node" / "node.key"}"\n'
        f'disk_path = "{folder}"\n',
        encoding="utf-8",
    )
    return config


def test_status_once_prints_the_queue_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_session: Callable[..., str]
) -> None:
    db_url = f"sqlite:///{tmp_path / 'node.db'}"
    ctx = node(db_url, tmp_path)
    ctx.outbox.enqueue([new(ctx, n, 2) for n in range(1, 8)])
    ctx.outbox.enqueue([new(ctx, 40, 1)])
    config = node_toml(tmp_path, "fj-07", db_url)
    monkeypatch.setenv("GGZY_CONFIG", str(config))  # restored after the test (the CLI sets it)
    monkeypatch.setenv("COLUMNS", "200")
    cli_session("operator", config=config)
    result = CliRunner().invoke(app, ["node", "status", "--once", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "fj-07" in result.output and "未处理告警 open alerts：无" in result.output
    lines = {
        line.split("│")[1].strip(): line
        for line in result.output.splitlines()
        if "通道" in line and "│" in line
    }
    channel1 = [cell.strip() for cell in lines["第一通道（实时） 1"].split("│")]
    channel2 = [cell.strip() for cell in lines["第二通道（历史/测试） 2"].split("│")]
    assert channel1[2:4] == ["0", "1"] and channel2[2:4] == ["0", "7"]  # held, queued


def test_status_without_a_terminal_prints_once_and_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_session: Callable[..., str]
) -> None:
    """Piped or run by cron there is no screen to refresh: the live view would print nothing until
    killed. Without a terminal the command prints the status once and ends."""
    import threading

    db_url = f"sqlite:///{tmp_path / 'node.db'}"
    ctx = node(db_url, tmp_path)
    ctx.outbox.enqueue([new(ctx, 1, 2)])
    config = node_toml(tmp_path, "fj-08", db_url)
    cli_session("operator", config=config)
    monkeypatch.delenv("GGZY_CONFIG", raising=False)  # only --config names the node
    result: list[Any] = []
    runner = threading.Thread(
        target=lambda: result.append(CliRunner().invoke(app, ["node", "status", "--config", str(config)])),
        daemon=True,
    )
    runner.start()
    runner.join(timeout=20)
    assert not runner.is_alive(), "node status kept waiting for a terminal"
    assert result[0].exit_code == 0, result[0].output
    assert "fj-08" in result[0].output
