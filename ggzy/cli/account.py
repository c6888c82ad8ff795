"""``ggzy login`` / ``logout`` / ``whoami`` / ``account password``: a person's own session on the CLI.

See ``ggzy/cli/session.py`` for where the session is kept and how commands check it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ggzy.cli.app import app
from ggzy.cli.config import ConfigOption
from ggzy.cli.console import err, out
from ggzy.cli.session import EXIT_NOPERM, SessionFile, Target, cli_caller, target_for
from ggzy.security.accounts import AuthError
from ggzy.security.permissions import Permission, cli_exempt, cli_permission, cli_principal

account_app = typer.Typer(help="本人账号：修改口令。", no_args_is_help=True)
app.add_typer(account_app, name="account")

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


def _finish_stages(target: Target, token: str, stage: str, account: str, current: str) -> None:
    caller = cli_caller()
    service = target.service
    while stage != "full":
        if stage == "totp":
            stage = service.verify_totp(token, typer.prompt("动态口令"), caller)
        elif stage == "password":
            out.print("首次登录或口令已到期，请设置新口令（至少8位，含大写、小写、数字、符号中的3类）。")
            new = _new_password(account)
            stage = service.change_password(token, current, new, caller)
            current = new
        elif stage == "enrol":
            enrolment = service.begin_enrolment(token)
            out.print("请用身份验证器应用扫描二维码绑定动态口令（或手工输入密钥）：")
            import segno

            segno.make(enrolment.uri, error="m").terminal(compact=True)
            out.print(f"密钥：{enrolment.secret}")
            stage = service.confirm_enrolment(token, typer.prompt("应用中显示的6位数字"), caller)
        else:
            raise AuthError(409, "E-AUTH-STAGE", "登录步骤不符，请重新登录", f"unexpected stage {stage}")


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
        _finish_stages(target, started.token, started.stage, started.account, password)
        SessionFile().save(target.name, started.token, started.account)
    except AuthError as error:
        raise _fail(error) from None
    finally:
        target.engine.dispose()
    out.print(f"已登录 {started.account}（{started.role.label}）：{target.name}")


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
        token = SessionFile().token(target.name) or ""
        current = typer.prompt("当前口令", hide_input=True)
        principal = cli_principal()
        target.service.change_password(
            token, current, _new_password(principal.account if principal else ""), cli_caller()
        )
    except AuthError as error:
        raise _fail(error) from None
    finally:
        target.engine.dispose()
    out.print("口令已修改。")
