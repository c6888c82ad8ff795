"""``ggzy admin``: the 系统管理员's commands — first accounts, accounts, intake tokens.

``ggzy admin bootstrap`` is the only way to the first accounts (there are no default accounts or
passwords): it works only while the database has no account, creates one 系统管理员 and one
安全审计员 (each identified by the person's ID number) and prints their one-time passwords once;
each must change it at first sign-in.

``ggzy admin recover`` is the offline recovery for when no second person can approve (the only
auditor, the last administrator): run on the host with the accounts key, audited, and reported to
every auditor at their next sign-in.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ggzy.cli.app import app
from ggzy.cli.config import ConfigOption
from ggzy.cli.console import err, out
from ggzy.cli.session import EXIT_NOPERM, Target, cli_caller, target_for
from ggzy.security.accounts import AuthError, NewAccount
from ggzy.security.permissions import (
    RECOVERY_EXEMPTION,
    Permission,
    Principal,
    Role,
    cli_exempt,
    cli_permission,
    cli_principal,
)
from ggzy.store.database import writing

if TYPE_CHECKING:
    from ggzy.node.intake_tokens import TokenIssuer

admin_app = typer.Typer(help="系统管理员：初始化、账号管理、接收接口令牌。", no_args_is_help=True)
account_app = typer.Typer(help="账号：新增、列表、停用、启用、改角色、重置口令、解锁。", no_args_is_help=True)
token_app = typer.Typer(help="交换前置节点接收接口的调用令牌（每个省级系统一个）。", no_args_is_help=True)
admin_app.add_typer(account_app, name="account")
admin_app.add_typer(token_app, name="token")
app.add_typer(admin_app, name="admin")

DbOption = Annotated[str | None, typer.Option("--db", help="国家平台数据库地址（不填用配置 hub.db_url）")]
RoleOption = Annotated[
    Role, typer.Option("--role", help="角色：sysadmin 系统管理员 / operator 系统操作员 / auditor 安全审计员")
]
StaffOption = Annotated[str | None, typer.Option("--staff", help="工号（识别使用账号的人）")]
IdOption = Annotated[
    str | None,
    typer.Option("--id-number", help="身份证号（只保存其带密钥的杂凑；系统管理员、安全审计员必填）"),
]
UntilOption = Annotated[
    str | None,
    typer.Option("--until", help="账号截止日期（北京时间 YYYY-MM-DD；系统管理员、安全审计员默认一年）"),
]


def _until(value: str | None) -> dt.datetime | None:
    """The end of ``value`` (a Beijing calendar day) as a moment; exit 2 on anything else."""
    if value is None:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        err.print(f"[red]E-INPUT-DATE[/] --until 应为日期 YYYY-MM-DD，收到 {value!r}")
        raise typer.Exit(2) from None
    shanghai = dt.timezone(dt.timedelta(hours=8))
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), shanghai).astimezone(dt.UTC)


def _fail(error: AuthError) -> typer.Exit:
    err.print(f"[red]{error.code}[/] {error.message_zh}")
    return typer.Exit(EXIT_NOPERM if error.status in (401, 403) else 2)


def _migrated(db: str | None, config: Path | None, *, node: bool = False) -> Target:
    """The target database, migrated (bootstrap may be the first command run against it)."""
    target = target_for(db, config, node=node)
    from ggzy.store.migrate import upgrade

    if target.national:
        from ggzy.hub.app import MIGRATIONS
    else:
        from ggzy.node.context import MIGRATIONS
    upgrade(target.engine, MIGRATIONS)
    return target


def _actor() -> Principal:
    principal = cli_principal()
    assert principal is not None  # set by @cli_permission
    return principal


@admin_app.command("bootstrap")
@cli_exempt("creates the first accounts; refused once any account exists")
def bootstrap(
    admin: Annotated[str, typer.Option("--admin", help="系统管理员账号名")],
    admin_name: Annotated[str, typer.Option("--admin-name", help="系统管理员姓名")],
    admin_id: Annotated[
        str, typer.Option("--admin-id-number", help="系统管理员身份证号（只保存带密钥的杂凑）")
    ],
    auditor: Annotated[str, typer.Option("--auditor", help="安全审计员账号名")],
    auditor_name: Annotated[str, typer.Option("--auditor-name", help="安全审计员姓名")],
    auditor_id: Annotated[
        str, typer.Option("--auditor-id-number", help="安全审计员身份证号（只保存带密钥的杂凑）")
    ],
    admin_staff: Annotated[str | None, typer.Option("--admin-staff", help="系统管理员工号（可选）")] = None,
    auditor_staff: Annotated[
        str | None, typer.Option("--auditor-staff", help="安全审计员工号（可选）")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """初始化：创建第一个系统管理员和安全审计员，显示一次性口令（只显示这一次，首次登录须修改）。

    仅在数据库中还没有任何账号时可用；系统没有默认账号和默认口令。两个账号须登记本人身份证号
    （一人一个账号），任期默认一年（security.privileged_term_days）。

    示例：ggzy admin bootstrap --admin zhangsan --admin-name 张三 --admin-id-number 110105198003011370 --auditor lisi --auditor-name 李四 --auditor-id-number 350102198506159786
    """
    target = _migrated(db, config)
    try:
        passwords = target.service.bootstrap(
            NewAccount(admin, admin_name, Role.SYSADMIN, staff_number=admin_staff, id_number=admin_id),
            NewAccount(auditor, auditor_name, Role.AUDITOR, staff_number=auditor_staff, id_number=auditor_id),
            cli_caller(),
        )
    except AuthError as error:
        raise _fail(error) from None
    finally:
        target.engine.dispose()
    out.print("已创建以下账号。一次性口令只显示这一次，请当面交付本人；首次登录须修改口令并绑定动态口令：")
    for account, password in passwords.items():
        out.print(f"  {account}  {password}", markup=False)


@account_app.command("add")
@cli_permission(Permission.ACCOUNTS_MANAGE)
def account_add(
    account: Annotated[str, typer.Argument(help="账号名（小写字母、数字、. _ -）")],
    name: Annotated[str, typer.Option("--name", help="姓名")],
    role: RoleOption,
    staff: StaffOption = None,
    id_number: IdOption = None,
    province: Annotated[
        str | None, typer.Option("--province", help="限定省份（国家平台的系统操作员账号，两位代码）")
    ] = None,
    until: UntilOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """新增账号并显示一次性口令（一人一个账号、一个角色；系统管理员、安全审计员须身份证号并有任期）。"""
    valid_until = _until(until)
    target = target_for(db, config)
    try:
        password = target.service.create(
            _actor(), NewAccount(account, name, role, staff, id_number, province, valid_until), cli_caller()
        )
    except AuthError as error:
        raise _fail(error) from None
    finally:
        target.engine.dispose()
    out.print(f"已创建账号 {account}（{role.label}）。一次性口令（只显示这一次）：")
    out.print(password, markup=False)


@account_app.command("list")
@cli_permission(Permission.ACCOUNTS_MANAGE)
def account_list(
    db: DbOption = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="输出 JSON")] = False,
) -> None:
    """列出全部账号：角色、范围、状态、是否锁定、动态口令、口令修改时间。"""
    target = target_for(db, config)
    try:
        infos = target.service.list(_actor())
    finally:
        target.engine.dispose()
    if as_json:
        rows = [
            {
                "account": i.account,
                "name": i.name,
                "role": i.role.value,
                "province": i.province,
                "status": i.status,
                "locked": i.locked,
                "totp_enrolled": i.totp_enrolled,
                "valid_until": i.valid_until.isoformat() if i.valid_until else None,
            }
            for i in infos
        ]
        out.print_json(json.dumps(rows, ensure_ascii=False))
        return
    table = Table(title="账号")
    for column in ("账号", "姓名", "角色", "范围", "状态", "动态口令", "口令修改时间", "任期截止"):
        table.add_column(column)
    for i in infos:
        status = "[red]已停用[/]" if i.status != "active" else ("[yellow]已锁定[/]" if i.locked else "正常")
        table.add_row(
            i.account,
            i.name,
            i.role.label,
            i.province or "全部",
            status,
            "已绑定" if i.totp_enrolled else "未绑定",
            f"{i.password_changed_at:%Y-%m-%d}",
            f"{i.valid_until.astimezone(dt.timezone(dt.timedelta(hours=8))):%Y-%m-%d}"
            if i.valid_until
            else "不限",
        )
    out.print(table)


def _change(
    action: str,
    account: str,
    db: str | None,
    config: Path | None,
    role: Role | None = None,
    province: str | None = None,
    until: dt.datetime | None = None,
) -> str | None:
    target = target_for(db, config)
    service, actor, caller = target.service, _actor(), cli_caller()
    try:
        if action == "disable":
            service.disable(actor, account, caller)
        elif action == "enable":
            service.enable(actor, account, caller)
        elif action == "unlock":
            service.unlock(actor, account, caller)
        elif action == "reset-totp":
            service.reset_totp(actor, account, caller)
        elif action == "role":
            assert role is not None
            service.set_role(actor, account, role, province, caller)
        elif action == "term":
            assert until is not None
            service.set_valid_until(actor, account, until, caller)
        elif action == "reset-password":
            return service.reset_password(actor, account, caller)
    except AuthError as error:
        raise _fail(error) from None
    finally:
        target.engine.dispose()
    return None


@account_app.command("disable")
@cli_permission(Permission.ACCOUNTS_MANAGE)
def account_disable(account: str, db: DbOption = None, config: ConfigOption = None) -> None:
    """停用账号：其全部会话立即结束。"""
    _change("disable", account, db, config)
    out.print(f"账号 {account} 已停用，其会话已全部结束。")


@account_app.command("enable")
@cli_permission(Permission.ACCOUNTS_MANAGE)
def account_enable(account: str, db: DbOption = None, config: ConfigOption = None) -> None:
    """启用被停用的账号。"""
    _change("enable", account, db, config)
    out.print(f"账号 {account} 已启用。")


@account_app.command("unlock")
@cli_permission(Permission.ACCOUNTS_MANAGE)
def account_unlock(account: str, db: DbOption = None, config: ConfigOption = None) -> None:
    """解除因连续登录失败而锁定的账号。"""
    _change("unlock", account, db, config)
    out.print(f"账号 {account} 已解锁。")


@account_app.command("reset-totp")
@cli_permission(Permission.ACCOUNTS_MANAGE)
def account_reset_totp(account: str, db: DbOption = None, config: ConfigOption = None) -> None:
    """清除账号的动态口令（如手机丢失），下次登录时重新绑定。"""
    _change("reset-totp", account, db, config)
    out.print(f"账号 {account} 的动态口令已清除，下次登录时重新绑定。")


@account_app.command("role")
@cli_permission(Permission.ACCOUNTS_MANAGE)
def account_role(
    account: str,
    role: RoleOption,
    province: Annotated[str | None, typer.Option("--province", help="限定省份（系统操作员）")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """更改他人账号的角色（一个账号只有一个角色，不能改自己的）；其会话随之结束。"""
    _change("role", account, db, config, role, province)
    out.print(f"账号 {account} 的角色已改为 {role.label}。")


@account_app.command("reset-password")
@cli_permission(Permission.ACCOUNTS_MANAGE)
def account_reset_password(account: str, db: DbOption = None, config: ConfigOption = None) -> None:
    """重置他人口令：显示新的一次性口令（只显示这一次），其会话全部结束。"""
    password = _change("reset-password", account, db, config)
    out.print(f"账号 {account} 的一次性口令（只显示这一次）：")
    out.print(password or "", markup=False)


@account_app.command("term")
@cli_permission(Permission.ACCOUNTS_MANAGE)
def account_term(
    account: str,
    until: Annotated[str, typer.Option("--until", help="新的截止日期（北京时间 YYYY-MM-DD）")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """设置他人账号的任期截止日期（续期或提前终止；系统管理员、安全审计员不超过 security.privileged_term_days）。"""
    _change("term", account, db, config, until=_until(until))
    out.print(f"账号 {account} 的任期截止日期已设为 {until}。")


@admin_app.command("recover")
@cli_exempt(RECOVERY_EXEMPTION)
def recover(
    account: Annotated[str, typer.Argument(help="要恢复的账号")],
    action: Annotated[
        str,
        typer.Option(
            "--action",
            help="reset-password 重置口令 / reset-totp 清除动态口令 / role 改角色 / unlock 解锁 / enable 启用",
        ),
    ],
    role: Annotated[Role | None, typer.Option("--role", help="--action role 时的新角色")] = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="确认：本操作不经第二人批准，将通知全部安全审计员")
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """离线恢复：没有第二名安全审计员可批准时（唯一的审计员、最后一名系统管理员），在保存账号密钥的主机上执行。

    须能读取账号密钥文件（accounts.key）且与数据库相符；操作记入审计日志，并在每名安全审计员下次登录时通知其核实。

    示例：ggzy admin recover lisi --action reset-totp --yes
    """
    import getpass

    from ggzy.security.accounts.service import RECOVERY_ACTIONS

    if action not in RECOVERY_ACTIONS:
        err.print(f"[red]E-INPUT-ACTION[/] --action 只能是 {'、'.join(RECOVERY_ACTIONS)}，收到 {action!r}")
        raise typer.Exit(2)
    if action == "role" and role is None:
        err.print("[red]E-INPUT-ROLE[/] --action role 须同时给出 --role")
        raise typer.Exit(2)
    if not yes:
        err.print("[red]E-INPUT-CONFIRM[/] 离线恢复不经第二人批准，并将通知全部安全审计员；确认请加 --yes")
        raise typer.Exit(2)
    target = _recovery_target(db, config)
    try:
        password = target.service.recover(
            account, action, operator=getpass.getuser(), caller=cli_caller(), role=role
        )
    except AuthError as error:
        raise _fail(error) from None
    finally:
        target.engine.dispose()
    out.print(f"已对账号 {account} 执行离线恢复（{action}），已记入审计日志并通知全部安全审计员。")
    if password is not None:
        out.print("一次性口令（只显示这一次，当面交付本人）：")
        out.print(password, markup=False)


def _recovery_target(db: str | None, config: Path | None) -> Target:
    """The database to recover, refusing when the accounts key file is missing (a new key would
    be made, and prove nothing)."""
    from ggzy.settings import get_settings

    if config is not None:
        from ggzy.cli.node import load_node_settings

        key = load_node_settings(config).key_file.parent / "accounts.key"
    else:
        key = get_settings().hub.key_dir / "accounts.key"
    if not key.is_file():
        err.print(
            f"[red]E-AUTH-KEY[/] 找不到账号密钥文件 {key}：离线恢复须在保存账号密钥的主机上、以能读取它的账户执行"
        )
        raise typer.Exit(EXIT_NOPERM)
    try:
        key.read_bytes()
    except OSError:
        err.print(f"[red]E-AUTH-KEY[/] 无法读取账号密钥文件 {key}")
        raise typer.Exit(EXIT_NOPERM) from None
    return target_for(db, config)


@token_app.command("add")
@cli_permission(Permission.NODES_MANAGE)
def token_add(
    name: Annotated[str, typer.Argument(help="调用系统名称，如 fj-trading-system")],
    network: Annotated[
        list[str] | None,
        typer.Option("--network", help="该系统推送数据的来源网段 CIDR（可重复；不填则不限来源地址）"),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """为一个省级系统创建接收接口令牌（只显示这一次），并登记其来源网段（按来源地址控制访问）。

    示例：ggzy admin token add fj-trading-system --network 10.35.8.0/24 --config node.toml
    """
    from ggzy.node.intake_tokens import TokenError, add_token
    from ggzy.security.api_tokens import normalise_networks

    try:
        networks = normalise_networks(network or [])
    except ValueError as exc:
        err.print(f"[red]E-INPUT-NETWORK[/] 网段格式错误：{exc}")
        raise typer.Exit(2) from None
    target = _migrated(None, config, node=True)
    try:
        with writing(target.engine) as connection:
            token = add_token(
                connection, target.audit, _issuer(), name, dt.datetime.now(dt.UTC), networks=networks
            )
    except TokenError as refusal:
        err.print(f"[red]{refusal.code}[/] {refusal.message_zh}")
        raise typer.Exit(2) from None
    finally:
        target.engine.dispose()
    if not networks:
        err.print("[yellow]未登记来源网段：任何地址持此令牌均可推送；建议用 --network 限定[/]")
    out.print(f"系统 {name} 的接收接口令牌（只显示这一次，调用时放在 Authorization: Bearer 后）：")
    out.print(token, markup=False)


def _issuer() -> TokenIssuer:
    from ggzy.node.intake_tokens import TokenIssuer

    actor = _actor()
    return TokenIssuer(actor.account, actor.role.value, cli_caller().source)


@token_app.command("list")
@cli_permission(Permission.NODES_MANAGE)
def token_list(config: ConfigOption = None) -> None:
    """列出接收接口令牌（不显示令牌本身）。"""
    from ggzy.node.models import api_tokens
    from ggzy.security.api_tokens import list_tokens

    target = target_for(config=config, node=True)
    try:
        with target.engine.connect() as connection:
            tokens = list_tokens(connection, api_tokens)
    finally:
        target.engine.dispose()
    table = Table(title="接收接口令牌")
    for column in ("系统", "来源网段", "创建人", "创建时间", "状态"):
        table.add_column(column)
    for t in tokens:
        table.add_row(
            t.name,
            "、".join(t.networks) or "不限",
            t.created_by,
            f"{t.created_at:%Y-%m-%d %H:%M}",
            "已吊销" if t.revoked_at else "有效",
        )
    out.print(table)


@token_app.command("revoke")
@cli_permission(Permission.NODES_MANAGE)
def token_revoke(name: str, config: ConfigOption = None) -> None:
    """吊销一个系统的接收接口令牌：其后的推送一律拒绝（E-AUTH-TOKEN）。"""
    from ggzy.node.intake_tokens import TokenError, revoke

    target = target_for(config=config, node=True)
    try:
        with writing(target.engine) as connection:
            revoke(connection, target.audit, _issuer(), name, dt.datetime.now(dt.UTC))
    except TokenError as refusal:
        err.print(f"[red]{refusal.code}[/] {refusal.message_zh}")
        raise typer.Exit(2) from None
    finally:
        target.engine.dispose()
    out.print(f"系统 {name} 的令牌已吊销。")
