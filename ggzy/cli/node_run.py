"""``ggzy node run``: the long-running node service (uploads, feedback, and every part installed).

Optional parts are imported lazily, each on its own, so that a part that is not installed (or not
built yet) leaves the others running:

- heartbeat (``ggzy.node.heartbeat.send_heartbeat``) every ``heartbeat_seconds``;
- disk guard (``ggzy.node.disk.DiskGuard.check``) every 10 s, published to the other parts as
  ``service.components["disk_guard"]`` for intake to ask before acknowledging;
- daily reconciliation (``ggzy.node.reconcile.daily_reconcile``) at ``reconcile_at``;
- intake and anything else: a module in ``PLUGINS`` that defines ``plug(service: NodeService)``
  adds itself with the service's hooks (``add_server``, ``add_task``, ``notify`` …).

Exit codes: 0 stopped cleanly, 1 stopped with threads left running, 2 configuration error,
3 local store unsafe or unusable, 4 signing key missing or unreadable.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Annotated

import typer

from ggzy.cli.console import err, out
from ggzy.cli.node import ConfigOption, load_node_settings, node_app
from ggzy.security.permissions import INSTALL_EXEMPTION, SERVICE_EXEMPTION, cli_exempt

if TYPE_CHECKING:
    from ggzy.node.context import NodeContext
    from ggzy.node.service import NodeService

# Modules that plug themselves in with ``plug(service)``; missing ones are skipped.
PLUGINS = ("ggzy.node.intake",)
DISK_CHECK_SECONDS = 10.0

EXIT_UNCLEAN, EXIT_CONFIG, EXIT_STORE, EXIT_KEY = 1, 2, 3, 4


def _wire_heartbeat(service: NodeService, ctx: NodeContext) -> None:
    from ggzy.node.heartbeat import send_heartbeat

    client = service.hub_client()
    service.add_task("heartbeat", ctx.settings.heartbeat_seconds, lambda: send_heartbeat(ctx, client))


def _wire_disk(service: NodeService, ctx: NodeContext) -> None:
    from ggzy.node.disk import DiskGuard

    guard = DiskGuard(ctx)
    service.components["disk_guard"] = guard
    service.add_task("disk", DISK_CHECK_SECONDS, guard.check)


def _wire_reconcile(service: NodeService, ctx: NodeContext) -> None:
    from ggzy.node.reconcile import daily_reconcile

    client = service.hub_client()
    service.add_daily_task("reconcile", ctx.settings.reconcile_at, lambda: daily_reconcile(ctx, client))


BUILT_IN: tuple[tuple[str, str, Callable[[NodeService, NodeContext], None]], ...] = (
    ("disk", "磁盘容量守护", _wire_disk),
    ("heartbeat", "心跳", _wire_heartbeat),
    ("reconcile", "每日对账", _wire_reconcile),
)


def plug_parts(service: NodeService, ctx: NodeContext) -> tuple[list[str], list[str]]:
    """Add every available optional part; returns (enabled, missing) descriptions in Chinese."""
    enabled: list[str] = []
    missing: list[str] = []
    for _name, label, wire in BUILT_IN:
        try:
            wire(service, ctx)
        except ImportError as exc:
            missing.append(f"{label}（{exc.name or exc}）")
        else:
            enabled.append(label)
    for module_name in PLUGINS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            missing.append(module_name)
            continue
        plug = getattr(module, "plug", None)
        if plug is None:
            missing.append(f"{module_name}（无 plug 函数）")
            continue
        plug(service)
        enabled.append(module_name)
    return enabled, missing


def _banner(ctx: NodeContext, enabled: list[str], missing: list[str]) -> None:
    from ggzy.store import redact_url

    settings = ctx.settings
    depths = ctx.outbox.depths()
    print_line = partial(out.print, soft_wrap=True)
    print_line(
        f"[bold green]交换前置系统已启动[/] (node started)  节点 {settings.node_id}  省份 {settings.province}"
    )
    print_line(f"  国家平台 hub: {settings.hub_url}")
    print_line(f"  本地发件箱 outbox: {redact_url(settings.db_url)}")
    print_line(
        f"  待上传 waiting: 第一通道(实时) {depths.waiting(1)} 条，第二通道(历史/测试) {depths.waiting(2)} 条；"
        f"第二通道限速 {settings.channel2_rate:g} 条/秒"
    )
    print_line(
        f"  已启用 enabled: 上传(两通道)、反馈、延迟告警{'、' + '、'.join(enabled) if enabled else ''}"
    )
    if missing:
        print_line(f"  [yellow]未启用 not installed[/]: {'、'.join(missing)}")
    print_line("  按 Ctrl-C 停止（完成在途请求后退出）(Ctrl-C stops gracefully)", markup=False)


@node_app.command("run")
@cli_exempt(SERVICE_EXEMPTION)
def run(
    config: ConfigOption = None,
    log_level: Annotated[str, typer.Option("--log-level", help="日志级别 DEBUG/INFO/WARNING/ERROR")] = "INFO",
) -> None:
    """启动交换前置服务：两通道上传、反馈跟踪、补传执行、延迟告警，以及已安装的接收、心跳、磁盘守护、每日对账。

    示例：ggzy node run --config node.toml
    """
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s",
    )
    from pydantic import ValidationError

    try:
        settings = load_node_settings(config)
    except ValidationError as exc:
        err.print(f"[red]E-CONFIG-INVALID[/] 节点配置有误：{exc}")
        raise typer.Exit(EXIT_CONFIG) from exc
    from ggzy.node.context import build_context
    from ggzy.node.service import NodeService
    from ggzy.runtime import settle_after_start
    from ggzy.store import DurabilityError

    try:
        ctx = build_context(settings)
    except FileNotFoundError as exc:
        err.print(f"[red]E-NODE-KEY[/] 找不到签名密钥文件：{exc.filename or settings.key_file}")
        err.print("  请把国家平台登记节点时（ggzy hub node add）给出的密钥写入 node.key_file。")
        raise typer.Exit(EXIT_KEY) from exc
    except ValueError as exc:
        err.print(f"[red]E-NODE-KEY[/] 签名密钥文件 {settings.key_file} 不是十六进制密钥：{exc}")
        raise typer.Exit(EXIT_KEY) from exc
    except DurabilityError as exc:
        err.print(f"[red]{exc.code}[/] 本地发件箱的持久性设置不安全，拒绝启动：{exc}")
        raise typer.Exit(EXIT_STORE) from exc
    except Exception as exc:  # the database cannot be opened or migrated
        err.print(f"[red]E-NODE-STORE[/] 无法打开本地发件箱 {settings.db_url}：{type(exc).__name__}: {exc}")
        raise typer.Exit(EXIT_STORE) from exc
    try:
        service = NodeService(ctx)
        enabled, missing = plug_parts(service, ctx)
        settle_after_start()  # everything is built: a service process from here on (ggzy.runtime)
        clean = service.run_forever(ready=lambda: _banner(ctx, enabled, missing))
        depths = ctx.outbox.depths()
    finally:
        ctx.engine.dispose()
    out.print(
        f"交换前置系统已停止 (node stopped)：待上传 第一通道 {depths.waiting(1)} 条，"
        f"第二通道 {depths.waiting(2)} 条，下次启动自动续传",
        soft_wrap=True,
    )
    if not clean:
        err.print("[yellow]E-NODE-STOP[/] 部分线程未在限时内结束 (threads left running)")
        raise typer.Exit(EXIT_UNCLEAN)


__all__ = ["PLUGINS", "plug_parts", "run"]


@node_app.command("migrate")
@cli_exempt(INSTALL_EXEMPTION)
def migrate(
    config: ConfigOption = None,
    service_role: Annotated[
        str | None,
        typer.Option(
            "--service-role", help="PostgreSQL：迁移后授予服务运行所用角色最小权限（审计表只能读和追加）"
        ),
    ] = None,
) -> None:
    """把节点本地库的结构升级到最新版本；PostgreSQL 时以表的所有者运行，并授予服务角色最小权限。

    示例：ggzy node migrate --config node.toml --service-role ggzy_node_service
    """
    from ggzy.node.context import MIGRATIONS
    from ggzy.store import make_engine, redact_url
    from ggzy.store.migrate import upgrade
    from ggzy.store.roles import RoleError, grant_service_role

    settings = load_node_settings(config)
    engine = make_engine(settings.db_url)
    try:
        upgrade(engine, MIGRATIONS)
        if service_role:
            grant_service_role(engine, service_role)
    except RoleError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(EXIT_CONFIG) from None
    finally:
        engine.dispose()
    out.print(f"节点本地库已是最新结构：{redact_url(settings.db_url)}")
