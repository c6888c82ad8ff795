"""系统管理 · 账号与角色: the 系统管理员's account forms, the same on the hub's portal and the node's.

Each form calls the account service exactly as ``/api/v1/people/accounts`` does (same permission,
same audit entry, same refusals: nobody changes their own account, one person one account, the rules
the service adds). A new or reset one-time password is shown on the answer to that form only, once;
the page after it never shows it again. A refusal is shown above the form in Chinese with its code.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ggzy.security.accounts import AuthError, NewAccount
from ggzy.security.permissions import Permission, Principal, Role, require
from ggzy.web.forms import FormInvalid, FormReader
from ggzy.web.layer import caller_of, people_of
from ggzy.web.portal import render_page

__all__ = ["ACTIONS", "router"]

router = APIRouter(prefix="/portal/admin", tags=["portal"], include_in_schema=False)

Administrator = Annotated[Principal, Depends(require(Permission.ACCOUNTS_MANAGE))]
AccountName = Annotated[str, Path(max_length=64, pattern=r"^[a-z0-9._-]{2,64}$")]

# account action → (Chinese label, message after it)
ACTIONS = {
    "disable": ("停用", "账号已停用，其全部会话已结束。"),
    "enable": ("启用", "账号已启用。"),
    "unlock": ("解锁", "账号已解锁。"),
    "reset-password": ("重置口令", "口令已重置。"),
    "reset-totp": ("重置动态口令", "动态口令已重置，下次登录时重新绑定。"),
    "role": ("更改角色", "角色已更改，其全部会话已结束。"),
    "create": ("创建", "账号已创建。"),
}
ROLES = {role.value: role.label for role in Role}


def _tabs(request: Request) -> tuple[tuple[str, str], ...]:
    return people_of(request).admin_tabs


async def _page(
    request: Request,
    principal: Principal,
    *,
    done: str | None = None,
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    error: AuthError | None = None,
    one_time: tuple[str, str] | None = None,
) -> HTMLResponse:
    people = people_of(request)
    accounts = await run_in_threadpool(people.service.list, principal)
    if people.record_read is not None:
        await run_in_threadpool(
            people.record_read, request, principal, "accounts.list", "accounts", {"page": "admin"}
        )
    response = render_page(
        request,
        "portal/accounts.html",
        principal,
        people.nav,
        tabs=_tabs(request),
        accounts=accounts,
        roles=ROLES,
        national=people.service.national,
        flash=ACTIONS[done][1] if done in ACTIONS else None,
        values=values or {},
        errors=errors or {},
        error=error,
        one_time=one_time,
        actions=ACTIONS,
    )
    response.status_code = status
    return response


@router.get("", response_class=HTMLResponse)
async def admin_home(principal: Administrator) -> RedirectResponse:
    return RedirectResponse("/portal/admin/accounts", status_code=303)


@router.get("/accounts", response_class=HTMLResponse)
async def accounts_page(request: Request, principal: Administrator, done: str | None = None) -> HTMLResponse:
    return await _page(request, principal, done=done)


@router.post("/accounts", response_class=HTMLResponse)
async def account_create(request: Request, principal: Administrator) -> Response:
    people = people_of(request)
    form = FormReader(await request.form())
    account = form.text("account", "账号名", required=True, max_length=64)
    if account and not re.fullmatch(r"[a-z0-9._-]{2,64}", account):
        form.fail("account", "账号名只能用小写字母、数字和 . _ -，2 到 64 位")
    name = form.text("name", "姓名", required=True, max_length=100)
    role = form.choice("role", "角色", ROLES)
    staff = form.text("staff_number", "工号", max_length=64)
    id_number = form.text("id_number", "身份证号", max_length=18)
    province = form.text("province", "限定省份", max_length=2) if people.service.national else ""
    if province and not (province.isdigit() and len(province) == 2):
        form.fail("province", "省份代码为两位数字，如 35")
    if not staff and not id_number:
        form.fail("staff_number", "请填写工号或身份证号（识别使用账号的人）")
    try:
        form.done()
        new = NewAccount(account, name, Role(role), staff or None, id_number or None, province or None)
        password = await run_in_threadpool(people.service.create, principal, new, caller_of(request))
    except FormInvalid as invalid:
        return await _page(request, principal, status=400, values=form.values(), errors=invalid.errors)
    except AuthError as refusal:
        return await _page(request, principal, status=refusal.status, values=form.values(), error=refusal)
    return await _page(request, principal, done="create", one_time=(account, password))


@router.post("/accounts/{account}/{action}", response_class=HTMLResponse)
async def account_action(
    request: Request, principal: Administrator, account: AccountName, action: str
) -> Response:
    people = people_of(request)
    service, caller = people.service, caller_of(request)
    if action not in ACTIONS or action == "create":
        from fastapi import HTTPException

        raise HTTPException(404)
    form = FormReader(await request.form())
    try:
        password = None
        if action == "role":
            role = form.choice("role", "角色", ROLES)
            province = form.text("province", "限定省份", max_length=2) if service.national else ""
            form.done()
            await run_in_threadpool(
                service.set_role, principal, account, Role(role), province or None, caller
            )
        elif action == "reset-password":
            password = await run_in_threadpool(service.reset_password, principal, account, caller)
        else:
            method = {"disable": service.disable, "enable": service.enable, "unlock": service.unlock}.get(
                action
            )
            await run_in_threadpool(method or service.reset_totp, principal, account, caller)
    except FormInvalid as invalid:
        return await _page(request, principal, status=400, errors=invalid.errors)
    except AuthError as refusal:
        return await _page(request, principal, status=refusal.status, error=refusal)
    if password is not None:  # shown on this answer only
        return await _page(request, principal, done=action, one_time=(account, password))
    return RedirectResponse(f"/portal/admin/accounts?done={action}", status_code=303)
