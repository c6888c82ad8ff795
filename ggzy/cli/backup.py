"""``ggzy backup``: create, list, verify, restore and prune backups of the hub's or a node's database.

Scheduling is left to the system (a systemd timer runs ``ggzy backup create --kind scheduled
--prune`` daily and ``ggzy backup verify`` after it; see README). Exit codes: 0 success, 1 the
backup or its check failed, 2 bad input or configuration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ggzy.cli.app import app
from ggzy.cli.audit import DbOption, SideOption, cli_actor, open_site
from ggzy.cli.config import ConfigOption
from ggzy.cli.console import err, out
from ggzy.security.permissions import Permission, cli_permission

if TYPE_CHECKING:
    from ggzy.backup.service import Actor

backup_app = typer.Typer(
    help="数据备份：创建（压缩、加密、校验、异地副本）、恢复校验、恢复、按保留期清理。", no_args_is_help=True
)
app.add_typer(backup_app, name="backup")

EXIT_FAILED, EXIT_INPUT = 1, 2


def _actor() -> Actor:
    from ggzy.backup.service import Actor

    account, role = cli_actor()
    return Actor(account, role)


@backup_app.command("create")
@cli_permission(Permission.BACKUP_MANAGE)
def create(
    kind: Annotated[str, typer.Option("--kind", help="manual 手动 / scheduled 定时")] = "manual",
    prune: Annotated[bool, typer.Option("--prune", help="完成后按保留期清理旧备份")] = False,
    side: SideOption = "hub",
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """备份数据库：一致性快照、压缩、SM4-GCM 加密、SM3 校验和，配置了异地目录时复制一份。

    示例：ggzy backup create --side hub --kind scheduled --prune
    """
    from ggzy.backup.service import BackupError, create_backup, prune_backups
    from ggzy.settings import Settings

    if kind not in ("manual", "scheduled"):
        err.print(f"[red]E-INPUT-KIND[/] --kind 只能是 manual 或 scheduled，收到 {kind!r}")
        raise typer.Exit(EXIT_INPUT)
    site = open_site(side, db, config)
    settings = Settings().backup
    try:
        info = create_backup(site, settings, kind=kind, actor=_actor())
    except BackupError as exc:
        err.print(f"[red]{exc.code}[/] {exc.message_zh}", soft_wrap=True)
        raise typer.Exit(EXIT_FAILED) from None
    out.print(f"已备份{site.side.label}数据库：{info.path}（{info.size:,} 字节，结构版本 {info.revision}）")
    out.print(f"  SM3 校验和 {info.checksum}", soft_wrap=True)
    if info.offsite:
        out.print(f"  异地副本：{info.offsite}")
    out.print(f"  密钥文件 {settings.key_file}：请另行妥善保管一份，丢失密钥则备份无法恢复。")
    if prune:
        for path in prune_backups(site, settings, actor=_actor()):
            out.print(f"  已按保留期删除旧备份：{path.name}")


@backup_app.command("list")
@cli_permission(Permission.BACKUP_MANAGE)
def list_(side: SideOption = "hub", db: DbOption = None, config: ConfigOption = None) -> None:
    """列出备份（最新在前）及每份最近一次恢复校验的结果和耗时。"""
    from rich.table import Table

    from ggzy.backup.service import list_backups
    from ggzy.settings import Settings

    site = open_site(side, db, config)
    backups = list_backups(site, Settings().backup)
    table = Table(title=f"{site.side.label}备份（{len(backups)} 份）")
    for heading in ("文件", "时间(UTC)", "类型", "大小", "结构版本", "异地副本", "最近校验", "校验耗时"):
        table.add_column(heading)
    kinds = {"manual": "手动", "scheduled": "定时", "safety": "恢复前快照"}
    for info in backups:
        check = info.last_verification
        verdict = "未校验"
        if check is not None:
            mark = "[green]通过[/]" if check["outcome"] == "passed" else "[red]失败[/]"
            verdict = f"{mark} {check['verified_at']:%Y-%m-%d %H:%M}"
        table.add_row(
            info.path.name,
            f"{info.created_at:%Y-%m-%d %H:%M:%S}",
            kinds.get(info.kind, info.kind),
            f"{info.size:,}",
            info.revision,
            "有" if info.offsite else "无",
            verdict,
            f"{check['seconds']:.1f} 秒" if check else "-",
        )
    out.print(table)


@backup_app.command("verify")
@cli_permission(Permission.BACKUP_MANAGE)
def verify(
    name: Annotated[str | None, typer.Argument(help="备份文件名；默认最新的一份")] = None,
    side: SideOption = "hub",
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """把备份恢复到临时数据库，检查结构版本、各表行数和审计日志链；结果与耗时记入数据库。"""
    from ggzy.backup.service import BackupError, verify_backup
    from ggzy.settings import Settings

    site = open_site(side, db, config)
    try:
        result = verify_backup(site, Settings().backup, name, actor=_actor())
    except BackupError as exc:
        err.print(f"[red]{exc.code}[/] {exc.message_zh}", soft_wrap=True)
        raise typer.Exit(EXIT_FAILED) from None
    if not result.passed:
        err.print(
            f"[red]E-BACKUP-VERIFY[/] 备份 {result.file.name} 恢复校验未通过（{result.seconds:.1f} 秒）："
        )
        for problem in result.problems:
            err.print(f"  - {problem}", soft_wrap=True)
        raise typer.Exit(EXIT_FAILED)
    total = sum(result.row_counts.values())
    out.print(
        f"[green]备份 {result.file.name} 恢复校验通过[/]：结构版本 {result.revision}，"
        f"{len(result.row_counts)} 张表共 {total:,} 行与备份记录一致，审计日志完整；耗时 {result.seconds:.1f} 秒。",
        soft_wrap=True,
    )


@backup_app.command("restore")
@cli_permission(Permission.BACKUP_MANAGE)
def restore(
    name: Annotated[str | None, typer.Argument(help="备份文件名；默认最新的一份")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="确认用备份替换当前数据库")] = False,
    side: SideOption = "hub",
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """用备份替换当前数据库（请先停止服务）。替换前自动对当前数据库做一次恢复前快照。"""
    from ggzy.backup.container import BackupDamaged
    from ggzy.backup.dump import BackupToolError
    from ggzy.backup.service import BackupError, restore_backup
    from ggzy.settings import Settings

    if not yes:
        err.print("[yellow]恢复会替换当前数据库的全部内容；确认请加 --yes（替换前会自动做恢复前快照）。[/]")
        raise typer.Exit(EXIT_INPUT)
    site = open_site(side, db, config)
    try:
        path, safety = restore_backup(site, Settings().backup, name, actor=_actor())
    except (BackupError, BackupDamaged, BackupToolError) as exc:
        code = getattr(exc, "code", "E-BACKUP-RESTORE")
        err.print(f"[red]{code}[/] 恢复失败：{getattr(exc, 'message_zh', exc)}", soft_wrap=True)
        raise typer.Exit(EXIT_FAILED) from None
    out.print(f"已用备份 {path.name} 恢复{site.side.label}数据库。")
    if safety is not None:
        out.print(f"  恢复前快照：{safety.path.name}（如需回退，可用它再次恢复）")


@backup_app.command("prune")
@cli_permission(Permission.BACKUP_MANAGE)
def prune(side: SideOption = "hub", db: DbOption = None, config: ConfigOption = None) -> None:
    """按保留期删除旧备份（backup.keep_days 天，至少保留最新 backup.keep_min 份），异地副本同样处理。"""
    from ggzy.backup.service import prune_backups
    from ggzy.settings import Settings

    site = open_site(side, db, config)
    removed = prune_backups(site, Settings().backup, actor=_actor())
    out.print(f"已删除 {len(removed)} 份过期备份。" if removed else "没有过期的备份。")
    for path in removed:
        out.print(f"  {path.name}")
