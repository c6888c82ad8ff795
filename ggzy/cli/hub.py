"""``ggzy hub``: run the national platform's exchange service and manage the node registry."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ggzy.cli.app import app
from ggzy.cli.console import err, out
from ggzy.security.permissions import INSTALL_EXEMPTION as INSTALL
from ggzy.security.permissions import SERVICE_EXEMPTION as SERVICE
from ggzy.security.permissions import Permission, cli_exempt, cli_permission
from ggzy.settings import HubSettings, get_settings
from ggzy.store import DurabilityError, check_durability, make_engine, redact_url
from ggzy.store.database import writing

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from ggzy.hub.node_admin import Changer
    from ggzy.security.audit import AuditLog


def _changer() -> Changer:
    """The signed-in person, as node registry changes made from the command line are audited."""
    import getpass

    from ggzy.hub.node_admin import Changer
    from ggzy.security.permissions import cli_principal

    principal = cli_principal()  # the signed-in person (every command that changes anything has one)
    source = f"cli:{getpass.getuser()}"
    if principal is None:
        return Changer(source, "cli", source)
    return Changer(principal.account, principal.role.value, source)


def _audit(connection: Connection, settings: HubSettings, action: str, target: str) -> None:
    from ggzy.security.audit import AuditEntry

    who = _changer()
    entry = AuditEntry(
        action=action, object=target, outcome="success", account=who.account, role=who.role, source=who.source
    )
    _registry_audit(settings).append(connection, entry)


def _registry_audit(settings: HubSettings) -> AuditLog:
    from ggzy.hub.models import audit_tables
    from ggzy.security.audit import open_audit_log

    return open_audit_log(audit_tables, settings.key_dir, settings.audit_digest)


hub_app = typer.Typer(help="国家平台：数据交换服务与节点管理 (the national hub).", no_args_is_help=True)
node_app = typer.Typer(help="交换前置节点登记：新增、查看、暂停、恢复、更换密钥。", no_args_is_help=True)
hub_app.add_typer(node_app, name="node")
app.add_typer(hub_app, name="hub")

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="数据库地址，如 sqlite:///var/hub.db 或 postgresql+psycopg://user@host/db"),
]


def _settings(db: str | None) -> HubSettings:
    settings = get_settings().hub
    return settings.model_copy(update={"db_url": db}) if db else settings


def _engine(settings: HubSettings) -> Engine:
    from sqlalchemy.exc import ProgrammingError

    from ggzy.hub.app import MIGRATIONS
    from ggzy.store.migrate import upgrade

    engine = make_engine(settings.db_url)
    try:
        check_durability(engine)
    except DurabilityError as exc:
        err.print(f"[red]{exc.code}[/] 数据库持久性设置不安全，拒绝启动：{exc}")
        raise typer.Exit(2) from exc
    try:
        upgrade(engine, MIGRATIONS)
    except ProgrammingError as exc:  # the service role may not change the schema: that is the point
        err.print(
            "[red]E-DB-MIGRATE-PRIVILEGE[/] 数据库结构不是最新，而当前数据库角色无权修改结构；"
            f"请先以表的所有者运行 ggzy hub migrate --db <所有者连接> --service-role <服务角色>（{exc.orig}）"
        )
        raise typer.Exit(2) from exc
    return engine


@hub_app.command("serve")
@cli_exempt(SERVICE)
def serve(
    db: DbOption = None,
    host: Annotated[str | None, typer.Option(help="监听地址")] = None,
    port: Annotated[int | None, typer.Option(help="监听端口")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="工作进程数（共用一个端口；节点保持长连接，连接可能集中到一个进程，扩展时宜多开实例）"
        ),
    ] = None,
) -> None:
    """启动国家平台数据交换服务（HTTP API、/healthz、/readyz、/metrics）。

    TLS 通过配置 hub.tls_cert / hub.tls_key 启用；配置 hub.tls_client_ca 时要求客户端证书（双向 TLS）。

    示例：ggzy hub serve --db postgresql+psycopg://ggzy@db/ggzy --port 8600

    横向扩展：每个 CPU 核心启动一个实例（--port 8601、8602 …），共用同一 PostgreSQL 数据库，
    由负载均衡器把节点连接均匀分配到各实例；服务本身不保存状态。
    """
    import uvicorn

    settings = _settings(db)
    updates = {k: v for k, v in {"host": host, "port": port, "workers": workers}.items() if v is not None}
    settings = settings.model_copy(update=updates)
    _engine(settings).dispose()  # refuse unsafe storage and migrate once, before any worker starts
    out.print(
        f"国家平台数据交换服务：http{'s' if settings.tls_cert else ''}://{settings.host}:{settings.port}  "
        f"数据库 {redact_url(settings.db_url)}"
    )
    import os

    # The workers build their settings from the environment: hand them what this command decided,
    # so the running hub (and its 系统管理 page) knows the address and port it really serves on.
    os.environ["GGZY_HUB__DB_URL"] = settings.db_url
    os.environ["GGZY_HUB__HOST"] = settings.host
    os.environ["GGZY_HUB__PORT"] = str(settings.port)
    os.environ["GGZY_HUB__WORKERS"] = str(settings.workers)
    uvicorn.run(
        "ggzy.hub.server:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="warning",
        **server_options(settings),
    )


def server_options(settings: HubSettings) -> dict[str, Any]:
    """uvicorn's TLS and proxy options for the hub (``hub serve``; the tests serve with the same)."""
    import ssl

    return {
        "ssl_certfile": str(settings.tls_cert) if settings.tls_cert else None,
        "ssl_keyfile": str(settings.tls_key) if settings.tls_key else None,
        "ssl_ca_certs": str(settings.tls_client_ca) if settings.tls_client_ca else None,
        "ssl_cert_reqs": ssl.CERT_REQUIRED if settings.tls_client_ca else ssl.CERT_NONE,
        # Forwarding headers are read by the app itself, and only from hub.trusted_proxies
        # (ggzy.web.network.trust_proxies); uvicorn's own reading trusts loopback by default.
        "proxy_headers": False,
    }


@hub_app.command("migrate")
@cli_exempt(INSTALL)
def migrate(
    db: DbOption = None,
    service_role: Annotated[
        str | None,
        typer.Option(
            "--service-role",
            help="PostgreSQL：以表的所有者迁移后，授予服务运行所用角色所需的最小权限（审计表只能读和追加）",
        ),
    ] = None,
) -> None:
    """创建或升级数据库结构到最新版本（Alembic），并说明做了什么。

    生产环境（PostgreSQL）用两个角色：表的所有者只用于本命令，服务以另一个不拥有表的角色运行，
    这样服务角色删不掉审计日志的只追加触发器，也改不了审计记录。

    示例：ggzy hub migrate --db postgresql+psycopg://ggzy_owner@db/ggzy --service-role ggzy_service
    """
    from ggzy.hub.app import MIGRATIONS
    from ggzy.store.migrate import current_revision, head_revision
    from ggzy.store.roles import RoleError, grant_service_role

    settings = _settings(db)
    probe = make_engine(settings.db_url)
    try:
        before = current_revision(probe)
    finally:
        probe.dispose()
    engine = _engine(settings)
    try:
        if service_role:
            if engine.dialect.name != "postgresql":
                err.print("[yellow]SQLite 没有数据库角色：--service-role 不起作用[/]")
            grant_service_role(engine, service_role)
    except RoleError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    head = head_revision(MIGRATIONS)
    where = redact_url(settings.db_url)
    if before is None:
        out.print(f"已在新数据库中创建全部结构（版本 {head}）：{where}")
    elif before != head:
        out.print(f"已把数据库结构从版本 {before} 升级到 {head}：{where}")
    else:
        out.print(f"数据库已是最新结构（版本 {head}），未作改动：{where}")
    if service_role:
        out.print(f"已授予服务角色 {service_role} 运行所需的最小权限（审计表只能读和追加）。")


@node_app.command("add")
@cli_permission(Permission.NODES_MANAGE)
def node_add(
    node_id: Annotated[str, typer.Argument(help="节点编号，如 fj-01")],
    province: Annotated[str, typer.Option("--province", help="省份代码（GB/T 2260 前两位），如 35")],
    name: Annotated[str, typer.Option(help="节点名称，如 福建省公共资源交易平台交换前置")] = "",
    platform: Annotated[
        list[str] | None, typer.Option("--platform", help="可上报的交易系统标识码（可重复）")
    ] = None,
    network: Annotated[
        list[str] | None, typer.Option("--network", help="允许的来源网段 CIDR（可重复）")
    ] = None,
    algorithm: Annotated[str, typer.Option(help="签名算法 HMAC-SHA256 或 HMAC-SM3")] = "HMAC-SHA256",
    db: DbOption = None,
) -> None:
    """登记一个省级交换前置节点，并显示其签名密钥（只显示这一次）。"""
    from ggzy.hub import node_admin
    from ggzy.hub.registry import RegistryError
    from ggzy.security.signing import SignatureAlgorithm

    settings = _settings(db)
    engine = _engine(settings)
    try:
        with writing(engine) as connection:
            node = node_admin.register(
                connection,
                _registry_audit(settings),
                _changer(),
                node_id,
                province,
                name=name,
                platform_codes=platform or [],
                networks=network or [],
                algorithm=SignatureAlgorithm(algorithm),
            )
    except (RegistryError, ValueError) as exc:
        code = getattr(exc, "code", "E-NODE-INPUT")
        err.print(f"[red]{code}[/] {exc}")
        raise typer.Exit(2) from exc
    out.print(
        f"已登记节点 [bold]{node.node_id}[/]（省份 {node.province}）。签名密钥（请安全交付节点，勿再显示）："
    )
    out.print(node.key)


@node_app.command("list")
@cli_permission(Permission.NODES_MANAGE)
def node_list(
    db: DbOption = None, as_json: Annotated[bool, typer.Option("--json", help="输出 JSON")] = False
) -> None:
    """列出全部节点：省份、状态、交易系统标识码、来源网段、密钥更换时间（不显示密钥）。"""
    from ggzy.hub.registry import list_nodes

    engine = _engine(_settings(db))
    with engine.connect() as connection:
        nodes = list_nodes(connection)
    if as_json:
        rows = [
            {
                "node_id": n.node_id,
                "province": n.province,
                "status": n.status,
                "platform_codes": list(n.platform_codes),
                "networks": list(n.networks),
                "algorithm": n.algorithm.value,
                "key_rotated_at": n.key_rotated_at.isoformat(),
            }
            for n in nodes
        ]
        out.print_json(json.dumps(rows, ensure_ascii=False))
        return
    table = Table(title="交换前置节点")
    for column in ("节点", "名称", "省份", "状态", "交易系统标识码", "来源网段", "算法", "密钥更换时间"):
        table.add_column(column)
    for n in nodes:
        status = "[green]正常[/]" if n.active else "[red]已暂停[/]"
        table.add_row(
            n.node_id,
            n.name,
            n.province,
            status,
            "\n".join(n.platform_codes),
            "\n".join(n.networks) or "不限",
            n.algorithm.value,
            f"{n.key_rotated_at:%Y-%m-%d %H:%M}",
        )
    out.print(table)


def _set_status(node_id: str, status: str, db: str | None) -> None:
    from ggzy.hub import node_admin
    from ggzy.hub.registry import RegistryError

    settings = _settings(db)
    engine = _engine(settings)
    change = node_admin.suspend if status == "suspended" else node_admin.activate
    try:
        with writing(engine) as connection:
            change(connection, _registry_audit(settings), _changer(), node_id)
    except RegistryError as exc:
        err.print(f"[red]{exc.code}[/] {exc}")
        raise typer.Exit(2) from exc
    out.print(f"节点 {node_id} 已{'暂停' if status == 'suspended' else '恢复'}。")


@node_app.command("suspend")
@cli_permission(Permission.NODES_MANAGE)
def node_suspend(node_id: str, db: DbOption = None) -> None:
    """暂停节点：其后的请求一律拒绝（E-AUTH-SUSPENDED）。"""
    _set_status(node_id, "suspended", db)


@node_app.command("activate")
@cli_permission(Permission.NODES_MANAGE)
def node_activate(node_id: str, db: DbOption = None) -> None:
    """恢复被暂停的节点。"""
    _set_status(node_id, "active", db)


@node_app.command("rotate-key")
@cli_permission(Permission.NODES_MANAGE)
def node_rotate_key(node_id: str, db: DbOption = None) -> None:
    """为节点更换签名密钥：旧密钥立即失效，新密钥只显示这一次。"""
    from ggzy.hub import node_admin
    from ggzy.hub.registry import RegistryError

    settings = _settings(db)
    engine = _engine(settings)
    try:
        with writing(engine) as connection:
            node = node_admin.rotate(connection, _registry_audit(settings), _changer(), node_id)
    except RegistryError as exc:
        err.print(f"[red]{exc.code}[/] {exc}")
        raise typer.Exit(2) from exc
    out.print(f"节点 {node_id} 的新签名密钥：")
    out.print(node.key)


@node_app.command("networks")
@cli_permission(Permission.NODES_MANAGE)
def node_networks(
    node_id: Annotated[str, typer.Argument(help="节点编号，如 fj-01")],
    network: Annotated[
        list[str] | None, typer.Option("--network", help="允许的来源网段 CIDR（可重复；替换原有网段）")
    ] = None,
    add: Annotated[list[str] | None, typer.Option("--add", help="增加一个网段（可重复）")] = None,
    remove: Annotated[list[str] | None, typer.Option("--remove", help="去掉一个网段（可重复）")] = None,
    any_address: Annotated[bool, typer.Option("--any", help="不限来源地址（清空网段；不建议）")] = False,
    db: DbOption = None,
) -> None:
    """变更节点登记的来源网段（第十五条：只允许给定的源地址访问），变更前后记入审计日志。

    示例：ggzy hub node networks fj-01 --add 10.36.0.0/16

    示例：ggzy hub node networks fj-01 --network 10.35.0.0/16 --network 10.135.8.0/24
    """
    from ggzy.hub import node_admin
    from ggzy.hub.registry import RegistryError, get_node

    if sum(bool(x) for x in (network, add or remove, any_address)) != 1:
        err.print(
            "[red]E-CLI-NETWORKS[/] 请给出 --network（替换），或 --add/--remove（增减），或 --any（不限）之一"
        )
        raise typer.Exit(2)
    settings = _settings(db)
    engine = _engine(settings)
    try:
        with writing(engine) as connection:
            current = get_node(connection, node_id)
            if current is None:
                raise RegistryError("E-NODE-UNKNOWN", f"节点“{node_id}”不存在")
            if network:
                wanted = list(network)
            elif any_address:
                wanted = []
            else:
                dropped = {n.strip() for n in remove or []}
                wanted = [n for n in current.networks if n not in dropped] + list(add or [])
            node = node_admin.change_networks(
                connection, _registry_audit(settings), _changer(), node_id, wanted
            )
    except RegistryError as exc:
        err.print(f"[red]{exc.code}[/] {exc.message_zh}")
        raise typer.Exit(2) from exc
    shown = "、".join(node.networks) or "不限（任何地址）"
    out.print(f"节点 {node_id} 允许的来源网段：{shown}")


@hub_app.command("notify")
@cli_permission(Permission.DATA_CORRECT)
def notify(
    node_id: Annotated[str, typer.Argument(help="节点编号")],
    reupload: Annotated[
        bool, typer.Option("--reupload", help="要求节点补传（与 --table/--key/--day 一起用）")
    ] = False,
    table: Annotated[str | None, typer.Option("--table", help="补传的数据表（表名或 DATA_NO）")] = None,
    key: Annotated[list[str] | None, typer.Option("--key", help="补传的业务主键（可重复）")] = None,
    day: Annotated[
        str | None, typer.Option("--day", help="补传某日（YYYY-MM-DD，北京时间）获取的数据")
    ] = None,
    message: Annotated[
        str | None, typer.Option("--message", help="通知内容（中文）；与 --reupload 同用时作为补传原因")
    ] = None,
    db: DbOption = None,
) -> None:
    """通过反馈通道向节点发送补传要求或通知，节点会自动执行补传。

    示例：ggzy hub notify fj-01 --reupload --table SECTION --day 2026-11-26 --message 对账不一致，请补传

    示例：ggzy hub notify fj-01 --message 今晚22:00至23:00国家平台维护
    """
    import datetime as dt

    from ggzy.hub.feedback import push
    from ggzy.hub.registry import get_node

    settings = _settings(db)
    engine = _engine(settings)
    with engine.connect() as connection:
        if get_node(connection, node_id) is None:
            err.print(f"[red]E-NODE-UNKNOWN[/] 节点“{node_id}”不存在")
            raise typer.Exit(2)
    if reupload:
        if day is not None:
            try:
                dt.date.fromisoformat(day)
            except ValueError as exc:
                err.print(f"[red]E-CLI-DATE[/] 日期“{day}”应为 YYYY-MM-DD")
                raise typer.Exit(2) from exc
        if not key and not day:
            err.print("[red]E-CLI-SCOPE[/] 补传要求须给出 --key 或 --day")
            raise typer.Exit(2)
        if key and not table:
            err.print("[red]E-CLI-SCOPE[/] 按主键补传时须给出 --table")
            raise typer.Exit(2)
        body: dict[str, object] = {"reason_zh": message or "国家平台要求补传"}
        if table:
            body["table"] = table
        if key:
            body["keys"] = list(key)
        if day:
            body["day"] = day
        kind = "reupload"
    elif message:
        body = {"message_zh": message, "level": "info"}
        kind = "notice"
    else:
        err.print("[red]E-CLI-SCOPE[/] 请给出 --reupload 或 --message")
        raise typer.Exit(2)
    cursor = push(engine, node_id, kind, body)
    with writing(engine) as connection:
        _audit(connection, settings, f"feed.{kind}", f"node:{node_id}")
    out.print(f"已发送{'补传要求' if kind == 'reupload' else '通知'}给节点 {node_id}（反馈游标 {cursor}）。")
