"""``ggzy login`` / ``logout`` / ``whoami`` / ``account password``: a person's own session on the CLI.

See ``ggzy/cli/session.py`` for where the session is kept and how commands check it.
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from ggzy.cli.app import app
from ggzy.cli.config import ConfigOption
from ggzy.cli.console import err, out
from ggzy.cli.session import EXIT_NOPERM, SessionFile, Target, cli_caller, target_for
from ggzy.security.accounts import AuthError, SignIn
from ggzy.security.permissions import Permission, Principal, cli_exempt, cli_permission, cli_principal

account_app = typer.Typer(help="本人账号：修改口令。", no_args_is_help=True)
app.add_typer(account_app, name="account")

SHANGHAI = ZoneInfo("Asia/Shanghai")
DbOption = Annotated[str | None, typer.Option("--db", help="国家平台数据库地址（不填用配置 hub.db_url）")]


def _fail(error: AuthError) -> typer.Exit:
    err.print(f"[red]{error.code}[/] {error.message_zh}")
    return typer.Exit(EXIT_NOPERM)


def _new_password(account: str) -> str:
    while True:
        first = typer.prompt("新口令", hide_input=True)
        if first == typer.prompt("再次输入新口令", hide_input=True):
            return str(first)
        err.print("[yellow]两次输入不一致，请重新输入[/]")


def _finish_stages(target: Target, step: SignIn, current: str) -> SignIn:
    """Walk the remaining steps of a sign-in; each step's session comes under a new token."""
    caller = cli_caller()
    service = target.service
    while step.stage != "full":
        if step.stage == "totp":
            step = service.verify_totp(step.token, typer.prompt("动态口令"), caller)
        elif step.stage == "password":
            out.print("首次登录或口令已到期，请设置新口令（至少8位，含大写、小写、数字、符号中的3类）。")
            new = _new_password(step.account)
            step = service.change_password(step.token, current, new, caller)
            current = new
        elif step.stage == "enrol":
            enrolment = service.begin_enrolment(step.token, caller)
            out.print("请用身份验证器应用扫描二维码绑定动态口令（或手工输入密钥）：")
            import segno

            segno.make(enrolment.uri, error="m").terminal(compact=True)
            out.print(f"密钥：{enrolment.secret}")
            step = service.confirm_enrolment(step.token, typer.prompt("应用中显示的6位数字"), caller)
        else:
            raise AuthError(409, "E-AUTH-STAGE", "登录步骤不符，请重新登录", f"unexpected stage {step.stage}")
    return step


def _tell(target: Target, step: SignIn) -> None:
    """The security notices the person has not read yet (an auditor is told of offline recoveries)."""
    person = Principal(step.account, step.role)
    notices = target.service.notices(person)
    if not notices:
        return
    out.print("[yellow]安全通知（请核实）：[/]")
    for notice in notices:
        out.print(f"  {notice.at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}  {notice.message}", markup=False)
    target.service.acknowledge_notices(person, cli_caller())


@app.command("login")
@cli_exempt("the sign-in itself")
def login(
    db: DbOption = None,
    config: ConfigOption = None,
    account: Annotated[str | None, typer.Option("--account", "-u", help="账号")] = None,
) -> None:
    """登录国家平台（--db）或交换前置节点（--config），会话令牌保存在仅本人可读的文件中。

    首次登录时按提示修改一次性口令并绑定动态口令。会话空闲30分钟或满12小时自动结束。

    示例：ggzy login --db postgresql+psycopg://ggzy@db/ggzy -u zhangsan
    """
    target = target_for(db, config)
    try:
        name = account or typer.prompt("账号")
        password = typer.prompt("口令", hide_input=True)
        started = target.service.sign_in(name, password, cli_caller(), kind="cli")
        done = _finish_stages(target, started, password)
        SessionFile().save(target.name, done.token, done.account)
        _tell(target, done)
        warning = target.service.term_warning(done.account)
    except AuthError as error:
        raise _fail(error) from None
    finally:
        target.engine.dispose()
    out.print(f"已登录 {done.account}（{done.role.label}）：{target.name}")
    if warning:
        out.print(f"[yellow]{warning}[/]")


@app.command("logout")
@cli_exempt("ends the caller's own session; needs none to be valid")
def logout(db: DbOption = None, config: ConfigOption = None) -> None:
    """退出登录：服务端会话立即结束，本地令牌删除。"""
    target = target_for(db, config)
    try:
        token = SessionFile().forget(target.name)
        ended = bool(token) and target.service.sign_out(token or "", cli_caller())
    except AuthError as error:
        raise _fail(error) from None
    finally:
        target.engine.dispose()
    out.print("已退出登录。" if ended else "当前未登录。")


@app.command("whoami")
@cli_permission(Permission.SELF_SERVICE)
def whoami(db: DbOption = None, config: ConfigOption = None) -> None:
    """显示当前登录的账号、角色、范围和权限。"""
    principal = cli_principal()
    assert principal is not None
    scope = f"省份 {principal.province}" if principal.province else "全部"
    out.print(f"{principal.account}（{principal.role.label}，{scope}）")
    out.print("权限：" + "、".join(sorted(p.value for p in principal.permissions)))


@account_app.command("password")
@cli_permission(Permission.SELF_SERVICE)
def change_password(db: DbOption = None, config: ConfigOption = None) -> None:
    """修改本人口令（其他会话随之结束）。"""
    target = target_for(db, config)
    try:
        sessions = SessionFile()
        token = sessions.token(target.name) or ""
        current = typer.prompt("当前口令", hide_input=True)
        principal = cli_principal()
        step = target.service.change_password(
            token, current, _new_password(principal.account if principal else ""), cli_caller()
        )
        sessions.save(target.name, step.token, step.account)
    except AuthError as error:
        raise _fail(error) from None
    finally:
        target.engine.dispose()
    out.print("口令已修改。")
