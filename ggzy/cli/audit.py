"""``ggzy audit``: verify, seal, search, export and archive the audit log of the hub or a node (Art. 24).

Exit codes: 0 success, 1 the chain is broken or the request was refused (early purge), 2 bad input.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.text import Text

from ggzy.cli.app import app
from ggzy.cli.config import ConfigOption, use_config
from ggzy.cli.console import err, out
from ggzy.security.permissions import Permission, cli_permission
from ggzy.store.database import writing

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ggzy.backup.site import Site
    from ggzy.security.audit import AuditLog
    from ggzy.security.audit_search import AuditQuery

audit_app = typer.Typer(
    help="审计日志：完整性校验、签名检查点、查询、导出（xlsx/CSV）、到期归档。", no_args_is_help=True
)
app.add_typer(audit_app, name="audit")

SideOption = Annotated[str, typer.Option("--side", help="hub（国家平台）或 node（交换前置节点）")]
DbOption = Annotated[str | None, typer.Option("--db", help="数据库地址，默认取配置")]
SinceOption = Annotated[
    str | None, typer.Option("--since", help="起始时间（含），如 2026-01-01 或 2026-01-01T08:00")
]
UntilOption = Annotated[str | None, typer.Option("--until", help="截止时间（不含）")]
AccountOption = Annotated[str | None, typer.Option("--account", help="账号")]
ActionOption = Annotated[
    str | None,
    typer.Option(
        "--action",
        help="操作名称，如 auth.sign-in；以 * 结尾按前缀匹配，如 'auth.*'、'ops.*'（全部名称见 docs/roles.md）",
    ),
]
OutcomeOption = Annotated[
    str | None, typer.Option("--outcome", help="结果 success 成功 / failure 失败 / refused 拒绝")
]

EXIT_BROKEN, EXIT_INPUT = 1, 2


def _shown(name: str, value: object) -> str:
    """One cell of the search result as the auditor reads it: Beijing time, Chinese label and code."""
    from ggzy.web.glossary import label

    if name == "at" and isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")
    kinds = {"role": "role", "action": "audit_action", "outcome": "outcome"}
    if name in kinds and value:
        return f"{label(kinds[name], value)} {value}" if label(kinds[name], value) != value else str(value)
    return "—" if value in (None, "") else str(value)


def _known_action(pattern: str) -> bool:
    from ggzy.web.glossary import AUDIT_ACTIONS

    prefix = pattern.rstrip("*")
    if pattern.endswith(("*", ".")):
        return any(name.startswith(prefix) for name in AUDIT_ACTIONS)
    return pattern in AUDIT_ACTIONS


def open_site(side: str, db: str | None, config: Path | None) -> Site:
    """The hub's or the node's database as configured (shared with ``ggzy backup``)."""

    from pydantic import ValidationError

    from ggzy.backup.site import Side
    from ggzy.settings import Settings

    use_config(config)
    try:
        chosen = Side(side)
    except ValueError:
        err.print(f"[red]E-INPUT-SIDE[/] --side 只能是 hub 或 node，收到 {side!r}")
        raise typer.Exit(EXIT_INPUT) from None
    try:
        settings = Settings()
    except ValidationError as exc:
        err.print(f"[red]E-CONFIG-INVALID[/] 配置有误：{exc}")
        raise typer.Exit(EXIT_INPUT) from exc
    if chosen is Side.HUB:
        from ggzy.hub.site import hub_site

        return hub_site(settings, db)
    from ggzy.node.site import node_site

    return node_site(settings, db)


def site_engine(site: Site) -> Engine:
    from ggzy.store import DurabilityError, check_durability, make_engine
    from ggzy.store.migrate import upgrade

    engine = make_engine(site.db_url)
    try:
        check_durability(engine)
    except DurabilityError as exc:
        err.print(f"[red]{exc.code}[/] 数据库持久性设置不安全：{exc}")
        raise typer.Exit(EXIT_INPUT) from exc
    upgrade(engine, site.migrations)
    return engine


def cli_actor() -> tuple[str, str]:
    """The operator at the terminal, until sign-in for the command line (part A) names the account."""
    import getpass

    return f"cli:{getpass.getuser()}", "cli"


def record(engine: Engine, log: AuditLog, action: str, target: str, outcome: str, **detail: object) -> None:
    """One audit entry for something done from the command line (shared with ``ggzy backup``)."""
    from ggzy.security.audit import AuditEntry

    account, role = cli_actor()
    with writing(engine) as connection:
        log.append(
            connection,
            AuditEntry(
                action=action, object=target, outcome=outcome, account=account, role=role, detail=dict(detail)
            ),
        )


def _moment(value: str | None, option: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        err.print(
            f"[red]E-INPUT-TIME[/] {option} 不是日期时间：{value!r}（如 2026-01-01 或 2026-01-01T08:00）"
        )
        raise typer.Exit(EXIT_INPUT) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _query(
    since: str | None, until: str | None, account: str | None, action: str | None, outcome: str | None
) -> AuditQuery:
    from ggzy.security.audit_search import AuditQuery

    return AuditQuery(
        since=_moment(since, "--since"),
        until=_moment(until, "--until"),
        account=account,
        action=action,
        outcome=outcome,
    )


@audit_app.command("verify")
@cli_permission(Permission.AUDIT_READ)
def verify(side: SideOption = "hub", db: DbOption = None, config: ConfigOption = None) -> None:
    """校验审计日志链、签名检查点和异地锚点，报告第一条被篡改、删除、插入或截断的记录。

    异地锚点：国家平台的检查点写在 backup.offsite_dir 中的只追加文件（及 syslog）；交换前置节点的检查点随心跳
    送到国家平台保存，校验时取回比对。本地日志比锚点短、或锚点记录的校验值在本地找不到，均判为被破坏。

    示例：ggzy audit verify --side node
    """
    from ggzy.security.audit_anchor import AnchorSet

    site = open_site(side, db, config)
    engine = site_engine(site)
    log = site.audit_log()
    anchors = site.anchors(0) if site.anchors is not None else AnchorSet()
    with engine.connect() as connection:
        report = log.report(connection, anchors.anchors)
    out.print(
        f"{site.side.label}审计日志：{report.entries} 条在库（第 {report.first_id or '-'}–{report.last_id or '-'} 条）"
    )
    out.print(
        f"  签名检查点 {report.checkpoints} 个；归档 {report.archives} 次，已归档至第 {report.archived_through} 条"
    )
    if report.newest_checkpoint_at is not None:
        out.print(
            f"  最新检查点 {report.newest_checkpoint_at:%Y-%m-%d %H:%M:%S} UTC；其后 {report.unchecked_tail} 条尚未被检查点覆盖"
        )
    if anchors.sources:
        out.print(
            f"  异地锚点 {report.anchors} 个，覆盖至第 {report.anchored_through} 条（{'；'.join(anchors.sources)}）"
        )
    for unavailable in anchors.unavailable:
        err.print(f"[yellow]E-AUDIT-ANCHOR-UNAVAILABLE[/] 无法取得异地锚点，未与之比对：{unavailable}")
    if not anchors.sources and not anchors.unavailable:
        err.print(
            "[yellow]未配置异地锚点[/]（国家平台：backup.offsite_dir / audit.anchor_syslog）；只校验了本机上的链"
        )
    problem = report.problem
    record(
        engine,
        log,
        "audit.verify",
        f"audit:{site.side.value}",
        "success" if problem is None else "failure",
        anchors=report.anchors,
        **({"entry": problem.entry_id, "reason": problem.reason} if problem else {}),
    )
    if problem is not None:
        err.print(
            f"[red]E-AUDIT-CHAIN-BROKEN[/] 审计日志完整性校验失败：{problem.message_zh}（{problem.reason}）"
        )
        raise typer.Exit(EXIT_BROKEN)
    out.print("[green]审计日志完整，未发现篡改、删除、插入或截断。[/] (audit chain intact)")


@audit_app.command("checkpoint")
@cli_permission(Permission.AUDIT_READ)
def checkpoint(side: SideOption = "hub", db: DbOption = None, config: ConfigOption = None) -> None:
    """立即为审计日志末尾做一个签名检查点，国家平台并送往异地锚点（服务本身每分钟做一次）。"""
    from ggzy.backup.site import Side

    site = open_site(side, db, config)
    engine = site_engine(site)
    log = site.audit_log()
    with writing(engine) as connection:
        number = log.checkpoint(connection)
    out.print(f"已写入检查点 {number}。" if number else "审计日志为空，无需检查点。")
    if number and site.side is Side.HUB:  # the hub's anchors off the host (a node's go with its heartbeat)
        from ggzy.hub.anchors import hub_sinks
        from ggzy.settings import Settings

        sinks = hub_sinks(Settings().backup, site.audit_settings)  # as open_site read them
        if sinks.configured:
            sinks.seal_and_export(engine, log)
            out.print("已送往异地锚点。")


@audit_app.command("search")
@cli_permission(Permission.AUDIT_READ)
def search(
    since: SinceOption = None,
    until: UntilOption = None,
    account: AccountOption = None,
    action: ActionOption = None,
    outcome: OutcomeOption = None,
    page: Annotated[int, typer.Option("--page", min=1, help="页码")] = 1,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=1000, help="每页条数")] = 50,
    side: SideOption = "hub",
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """按时间、账号、操作、结果查询审计日志（最新的在前，分页显示）。

    示例：ggzy audit search --since 2026-01-01 --action 'auth.sign-in*' --outcome failure
    """
    from rich.table import Table

    from ggzy.security.audit_search import COLUMNS, search_audit

    site = open_site(side, db, config)
    query = _query(since, until, account, action, outcome)
    engine = site_engine(site)
    with engine.connect() as connection:
        result = search_audit(connection, site.audit_tables.log, query, page=page, page_size=page_size)
    table = Table(title=f"{site.side.label}审计日志 第 {result.page}/{result.pages} 页，共 {result.total} 条")
    shown = [c for c in COLUMNS if c[0] != "detail"]
    for _, heading in shown:
        table.add_column(heading)
    for row in result.rows:
        table.add_row(*[Text(_shown(name, row[name])) for name, _ in shown])
    out.print(table)
    if result.total == 0 and action and not _known_action(action):
        err.print(
            f"[yellow]提示[/] 没有名为“{escape(action)}”的操作；操作名称如 auth.sign-in（登录）、"
            "account.create（创建账号）、ops.*（运行管理），全部名称见 docs/roles.md"
        )
    record(
        engine, site.audit_log(), "audit.search", f"audit:{site.side.value}", "success", rows=len(result.rows)
    )


@audit_app.command("export")
@cli_permission(Permission.AUDIT_EXPORT)
def export(
    fmt: Annotated[str, typer.Option("--format", help="xlsx 或 csv")] = "xlsx",
    output: Annotated[Path | None, typer.Option("--out", help="输出文件，默认放在 audit.export_dir")] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    account: AccountOption = None,
    action: ActionOption = None,
    outcome: OutcomeOption = None,
    side: SideOption = "hub",
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """把查询到的审计日志导出为 xlsx 或 CSV；导出本身记入审计日志。

    示例：ggzy audit export --format csv --since 2026-01-01 --until 2026-02-01
    """
    from ggzy.security.audit_search import ExportFormat, export_audit

    try:
        chosen = ExportFormat(fmt)
    except ValueError:
        err.print(f"[red]E-INPUT-FORMAT[/] --format 只能是 xlsx 或 csv，收到 {fmt!r}")
        raise typer.Exit(EXIT_INPUT) from None
    site = open_site(side, db, config)
    query = _query(since, until, account, action, outcome)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = output or site.audit_settings.export_dir / f"audit-{site.side.value}-{stamp}.{chosen.value}"
    engine = site_engine(site)
    with engine.connect() as connection:
        count = export_audit(connection, site.audit_tables.log, query, path, chosen)
    record(
        engine,
        site.audit_log(),
        "audit.export",
        f"file:{path.name}",
        "success",
        rows=count,
        format=chosen.value,
        filters={
            k: v
            for k, v in {
                "since": since,
                "until": until,
                "account": account,
                "action": action,
                "outcome": outcome,
            }.items()
            if v
        },
    )
    out.print(f"已导出 {count} 条审计记录：{path}")


@audit_app.command("archive")
@cli_permission(Permission.AUDIT_ARCHIVE)
def archive(
    before: Annotated[
        str | None,
        typer.Option("--before", help="归档此时间之前的记录；不得晚于保留期（默认：保留期届满处）"),
    ] = None,
    side: SideOption = "hub",
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """把超过保留期（audit.retention_days，至少 366 天）的审计记录导出到签名归档文件，记入审计链后再从库中删除。

    提前清除一律拒绝。示例：ggzy audit archive --side hub
    """
    from ggzy.security.audit_archive import Actor, ArchiveRefused, archive_expired

    site = open_site(side, db, config)
    cutoff = _moment(before, "--before")
    engine = site_engine(site)
    account, role = cli_actor()
    try:
        result = archive_expired(
            engine,
            site.audit_log(),
            site.audit_settings.archive_dir,
            retention_days=site.audit_settings.retention_days,
            before=cutoff,
            actor=Actor(account, role),
        )
    except ArchiveRefused as refused:
        err.print(f"[red]{refused.code}[/] {refused.message_zh}")
        raise typer.Exit(EXIT_BROKEN) from None
    if result is None:
        out.print("没有超过保留期的审计记录，无需归档。")
        return
    out.print(
        f"已归档第 {result.first_id}–{result.last_id} 条（{result.entries} 条）到 {result.file}\n"
        f"  文件摘要 {site.digest.value}: {result.digest}（已记入审计链，签名见 {result.file.name}.sig）"
    )


@audit_app.command("verify-archive")
@cli_permission(Permission.AUDIT_READ)
def verify_archive(
    file: Annotated[Path, typer.Argument(help="归档文件 audit-….jsonl")],
    side: SideOption = "hub",
    config: ConfigOption = None,
) -> None:
    """校验一个归档文件的签名和其中的审计链。"""
    from ggzy.security.audit_archive import verify_archive_file

    site = open_site(side, None, config)
    if not file.is_file() or not file.with_name(file.name + ".sig").is_file():
        err.print(f"[red]E-INPUT-FILE[/] 找不到归档文件或其签名文件：{file}")
        raise typer.Exit(EXIT_INPUT)
    problem = verify_archive_file(file, site.audit_log())
    if problem is not None:
        err.print(f"[red]E-AUDIT-ARCHIVE-BROKEN[/] 归档文件校验失败：{problem.message_zh}")
        raise typer.Exit(EXIT_BROKEN)
    out.print(f"[green]归档文件完整，签名有效：{file}[/]")


@audit_app.command("approvals")
@cli_permission(Permission.ACCOUNTS_APPROVE)
def approvals(db: DbOption = None, config: ConfigOption = None) -> None:
    """列出等待第二人（另一名安全审计员）批准的账号变更申请。

    示例：ggzy audit approvals --db postgresql+psycopg://ggzy@db/ggzy
    """
    from zoneinfo import ZoneInfo

    from rich.table import Table

    from ggzy.cli.session import target_for
    from ggzy.security.permissions import cli_principal

    principal = cli_principal()
    assert principal is not None
    target = target_for(db, config)
    try:
        found = target.service.approvals(principal)
    finally:
        target.engine.dispose()
    shanghai = ZoneInfo("Asia/Shanghai")
    table = Table(title="账号变更审批申请")
    for column in ("编号", "账号", "变更", "申请人", "申请时间（北京时间）", "状态"):
        table.add_column(column)
    for item in found:
        table.add_row(
            str(item.id),
            item.account,
            item.label_zh,
            item.requested_by,
            f"{item.requested_at.astimezone(shanghai):%Y-%m-%d %H:%M}",
            {"pending": "待批准", "approved": "已批准，待执行"}.get(item.status, item.status),
        )
    out.print(table)


@audit_app.command("approve")
@cli_permission(Permission.ACCOUNTS_APPROVE)
def approve(
    request: Annotated[int, typer.Argument(help="申请编号（ggzy audit approvals 列出）", min=1, max=2**62)],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """作为第二人批准一项账号变更申请（不能批准对自己账号的变更）；批准记入审计日志，申请人再次执行后即生效，只能用一次。

    示例：ggzy audit approve 3
    """
    from ggzy.cli.session import EXIT_NOPERM, cli_caller, target_for
    from ggzy.security.accounts import AuthError
    from ggzy.security.permissions import cli_principal

    principal = cli_principal()
    assert principal is not None
    target = target_for(db, config)
    try:
        approved = target.service.approve(principal, request, cli_caller())
    except AuthError as error:
        err.print(f"[red]{error.code}[/] {error.message_zh}")
        raise typer.Exit(EXIT_NOPERM if error.status in (401, 403) else EXIT_INPUT) from None
    finally:
        target.engine.dispose()
    out.print(
        f"已批准申请 {approved.id}：{approved.requested_by} 对账号 {approved.account} {approved.label_zh}"
        f"（{int((approved.expires_at - approved.now).total_seconds() // 3600)} 小时内有效，只能使用一次）。"
    )
