"""``ggzy demo`` (what ``make run`` runs): the whole exchange on one machine with SQLite.

A national hub, one provincial node registered with it, and a simulated province feeding the node:
a history backfill on channel 2, then a steady realtime trickle on channel 1, both with a few
defects. Ctrl-C stops the feeder, the node and the hub, in that order.
"""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ggzy.cli.app import app
from ggzy.cli.console import err, out
from ggzy.security.permissions import DEMO_EXEMPTION, cli_exempt
from ggzy.store.database import writing

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NODE_ID = "demo-node"


def _node_toml(settings: Any) -> str:
    lines = ["[node]"]
    for name in ("node_id", "province", "hub_url", "key_file", "db_url", "api_host", "drop_dir", "disk_path"):
        lines.append(f'{name} = "{getattr(settings, name)}"')
    lines.append(f"api_port = {settings.api_port}")
    lines.append(f"heartbeat_seconds = {settings.heartbeat_seconds}")
    return "\n".join(lines) + "\n"


def hub_settings(workdir: Path, port: int) -> Any:
    from ggzy.settings import HubSettings

    return HubSettings(db_url=f"sqlite:///{workdir / 'hub.db'}", key_dir=workdir / "hub-keys", port=port)


def hub_toml(settings: Any) -> str:
    """The demo hub's settings file: every command given ``--config`` on it finds the same database
    and the same keys (accounts, audit) as the running hub — one key location per site."""
    return (
        "[hub]\n"
        f'db_url = "{settings.db_url}"\n'
        f'key_dir = "{settings.key_dir}"\n'
        f'host = "{settings.host}"\n'
        f"port = {settings.port}\n"
    )


def hints(workdir: Path, province_zh: str, province: str, hub_port: int, node_port: int) -> list[str]:
    """What the demo prints once it runs: where to look, and the next commands."""
    hub_config, node_config = workdir / "hub.toml", workdir / "node.toml"
    return [
        f"[bold green]数据交换演示已启动[/]：{province_zh}（{province}）→ 国家平台",
        f"  国家平台门户      http://127.0.0.1:{hub_port}/portal",
        f"  交换前置系统门户  http://127.0.0.1:{node_port}/portal",
        f"  国家平台接口文档  http://127.0.0.1:{hub_port}/docs    指标 http://127.0.0.1:{hub_port}/metrics",
        f"  节点接收接口      http://127.0.0.1:{node_port}/api/v1/records    投递目录 {workdir / 'node' / 'inbox'}",
        "  登录门户前先建首批账号（一次性口令只显示一次，首次登录改口令并绑定动态口令）：",
        f"    .venv/bin/ggzy admin bootstrap --admin zhangsan --admin-name 张三 --admin-id-number 110105198003011370 "
        f"--auditor lisi --auditor-name 李四 --auditor-id-number 350102198506159786 --config {hub_config}",
        f"    节点门户的账号：同一命令改用 --config {node_config}",
        f"  命令行登录  .venv/bin/ggzy login -u zhangsan --config {hub_config}",
        f"  统计        .venv/bin/ggzy hub stats --config {hub_config}",
        f"  节点        .venv/bin/ggzy node status --config {node_config}",
        f"  退回        .venv/bin/ggzy node rejects --config {node_config}",
        "  按 Ctrl-C 停止 (Ctrl-C stops everything)",
    ]


def _start_hub(workdir: Path, province: str, seed: int, port: int) -> tuple[Any, threading.Thread, str]:
    import uvicorn

    from ggzy.hub.app import create_app
    from ggzy.hub.registry import add_node
    from ggzy.simulate import province_systems

    settings = hub_settings(workdir, port)
    (workdir / "hub.toml").write_text(hub_toml(settings), encoding="utf-8")
    hub_app = create_app(settings)
    with writing(hub_app.state.hub.engine) as connection:
        node = add_node(
            connection,
            NODE_ID,
            province,
            name="演示省交换前置",
            platform_codes=list(province_systems(province, seed).platform_codes),
        )
    server = uvicorn.Server(
        uvicorn.Config(
            hub_app, host="127.0.0.1", port=port, log_level="warning", access_log=False, proxy_headers=False
        )
    )
    thread = threading.Thread(target=server.run, name="hub", daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    return server, thread, node.key


def _feed(intake: Any, service: Any, province: str, seed: int, errors: float, stop: threading.Event) -> None:
    """History first (channel 2), then one realtime transaction every few seconds (channel 1)."""
    from ggzy.simulate import simulate

    now = dt.datetime.now(SHANGHAI).replace(tzinfo=None)
    history = [
        item.record
        for item in simulate(
            province,
            seed=seed,
            transactions=150,
            start=now - dt.timedelta(days=60),
            days=50,
            category="history",
            error_rate=errors,
        )
    ]
    for start in range(0, len(history), 500):
        if stop.is_set():
            return
        intake.accept(history[start : start + 500], "push", "demo-history")
    round_number = 0
    while not stop.wait(3.0):
        round_number += 1
        records = [
            item.record
            for item in simulate(
                province,
                seed=seed * 1000 + round_number,
                transactions=1,
                start=now,
                days=1,
                error_rate=errors,
                category="realtime",
                systems_seed=seed,
            )
        ]
        published = dt.datetime.now(SHANGHAI).isoformat(timespec="seconds")
        for record in records:
            record["published_at"] = published
        intake.accept(records, "push", f"demo-realtime-{round_number}")
        service.notify(1)


def _progress(ctx: Any, hub_engine: Any) -> str:
    from sqlalchemy import func, select

    from ggzy.hub.models import stats_daily

    depths = ctx.outbox.depths()
    with hub_engine.connect() as connection:
        received, accepted = connection.execute(
            select(
                func.coalesce(func.sum(stats_daily.c.received), 0),
                func.coalesce(func.sum(stats_daily.c.accepted), 0),
            )
        ).one()
    rate = f"{accepted / received:.1%}" if received else "—"
    return (
        f"待传 通道1 {depths.waiting(1):>4} 通道2 {depths.waiting(2):>6} │ "
        f"国家平台 已收 {received:>6} 接收 {accepted:>6} 合格率 {rate}"
    )


@app.command("demo")
@cli_exempt(DEMO_EXEMPTION)
def demo_command(
    province: Annotated[
        str, typer.Option("--province", help="模拟省份代码（GB/T 2260 前两位），如 35 福建")
    ] = "35",
    errors: Annotated[float, typer.Option("--errors", help="注入缺陷的比例")] = 0.03,
    workdir: Annotated[Path, typer.Option("--workdir", help="演示数据目录（每次运行重新创建）")] = Path(
        "var/demo"
    ),
    hub_port: Annotated[int, typer.Option("--hub-port", help="国家平台端口")] = 8600,
    node_port: Annotated[int, typer.Option("--node-port", help="节点本地接收接口端口")] = 8610,
    seconds: Annotated[
        float, typer.Option("--seconds", help="运行多少秒后自动停止（0 表示直到 Ctrl-C）")
    ] = 0,
) -> None:
    """在一台机器上运行整个数据交换：国家平台 + 一个省级交换前置节点 + 模拟省份数据。

    历史数据经第二通道回填，实时数据经第一通道持续上传，部分数据带缺陷以演示反馈与统计。
    按 Ctrl-C 依次停止数据源、节点和国家平台。
    """
    from ggzy.cli.node_run import plug_parts
    from ggzy.node.context import build_context
    from ggzy.node.service import NodeService
    from ggzy.settings import NodeSettings
    from ggzy.spec import load_regions

    provinces = load_regions().provinces()
    if province not in provinces:
        err.print(f"[red]E-CLI-PROVINCE[/] 未知的省份代码“{province}”(unknown province prefix)")
        raise typer.Exit(2)
    if workdir.exists():
        shutil.rmtree(workdir)
    (workdir / "node").mkdir(parents=True)
    seed = 2026
    server, hub_thread, key = _start_hub(workdir, province, seed, hub_port)
    if not server.started:
        err.print(
            f"[red]E-DEMO-HUB[/] 国家平台未能在端口 {hub_port} 启动（端口被占用？可用 --hub-port 更换）"
        )
        raise typer.Exit(2)
    node_dir = workdir / "node"
    (node_dir / "node.key").write_text(key, encoding="ascii")
    settings = NodeSettings(
        node_id=NODE_ID,
        province=province,
        hub_url=f"http://127.0.0.1:{hub_port}",
        key_file=node_dir / "node.key",
        db_url=f"sqlite:///{node_dir / 'outbox.db'}",
        api_port=node_port,
        drop_dir=node_dir / "inbox",
        disk_path=node_dir,
        heartbeat_seconds=10,
    )
    (workdir / "node.toml").write_text(_node_toml(settings), encoding="utf-8")
    ctx = build_context(settings)
    service = NodeService(ctx)
    plug_parts(service, ctx)
    service.start()
    intake = service.components["intake"]
    stop = threading.Event()
    feeder = threading.Thread(
        target=_feed, args=(intake, service, province, seed, errors, stop), name="feeder", daemon=True
    )
    feeder.start()
    for line in hints(workdir, provinces[province], province, hub_port, node_port):
        out.print(line, soft_wrap=True)
    hub_engine = server.config.app.state.hub.engine
    started = time.monotonic()
    try:
        while not seconds or time.monotonic() - started < seconds:
            time.sleep(min(5.0, seconds) if seconds else 5.0)
            out.print(_progress(ctx, hub_engine))
    except KeyboardInterrupt:
        out.print("\n正在停止…")
    finally:
        stop.set()
        feeder.join(timeout=10)
        service.stop()
        server.should_exit = True
        hub_thread.join(timeout=10)
        out.print(_progress(ctx, hub_engine))
        out.print("已停止 (stopped)。")
