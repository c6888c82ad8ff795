"""Account management for the 系统管理员 (JSON): list, create, disable, enable, change role, reset."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from ggzy.security.accounts import AccountInfo, NewAccount
from ggzy.security.permissions import Permission, Principal, Role, require
from ggzy.web.layer import caller_of, people_of
from ggzy.web.routing import PeopleRoute

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/people/accounts", tags=["accounts"], route_class=PeopleRoute)
Manager = Annotated[Principal, Depends(require(Permission.ACCOUNTS_MANAGE))]
AccountName = Annotated[str, Path(max_length=64, pattern=r"^[a-z0-9._-]{2,64}$")]


class AccountBody(BaseModel):
    account: str = Field(max_length=64, pattern=r"^[a-z0-9._-]{2,64}$")
    name: str = Field(max_length=100)
    role: Role
    staff_number: str | None = Field(None, max_length=64)
    id_number: str | None = Field(None, max_length=18)
    province: str | None = Field(None, pattern=r"^\d{2}$")


class RoleBody(BaseModel):
    role: Role
    province: str | None = Field(None, pattern=r"^\d{2}$")


def _public(info: AccountInfo) -> dict[str, Any]:
    return {
        "account": info.account,
        "name": info.name,
        "role": info.role.value,
        "role_label": info.role.label,
        "province": info.province,
        "status": info.status,
        "locked": info.locked,
        "totp_enrolled": info.totp_enrolled,
        "must_change_password": info.must_change_password,
        "password_changed_at": info.password_changed_at.isoformat(),
        "last_sign_in_at": info.last_sign_in_at.isoformat() if info.last_sign_in_at else None,
    }


@router.get("", summary="账号列表 (accounts)")
async def list_accounts(request: Request, principal: Manager) -> dict[str, Any]:
    infos = await run_in_threadpool(people_of(request).service.list, principal)
    return {"ok": True, "accounts": [_public(info) for info in infos]}


@router.post("", summary="创建账号：返回一次性口令，首次登录须修改 (create an account)")
async def create_account(request: Request, principal: Manager, body: AccountBody) -> dict[str, Any]:
    new = NewAccount(body.account, body.name, body.role, body.staff_number, body.id_number, body.province)
    password = await run_in_threadpool(people_of(request).service.create, principal, new, caller_of(request))
    return {"ok": True, "account": body.account, "one_time_password": password}


@router.post("/{account}/disable", summary="停用账号并结束其全部会话 (disable)")
async def disable_account(request: Request, principal: Manager, account: AccountName) -> dict[str, Any]:
    await run_in_threadpool(people_of(request).service.disable, principal, account, caller_of(request))
    return {"ok": True}


@router.post("/{account}/enable", summary="启用账号 (enable)")
async def enable_account(request: Request, principal: Manager, account: AccountName) -> dict[str, Any]:
    await run_in_threadpool(people_of(request).service.enable, principal, account, caller_of(request))
    return {"ok": True}


@router.post("/{account}/role", summary="更改他人账号的角色（一账号一角色）(change role)")
async def set_role(
    request: Request, principal: Manager, account: AccountName, body: RoleBody
) -> dict[str, Any]:
    service = people_of(request).service
    await run_in_threadpool(
        service.set_role, principal, account, body.role, body.province, caller_of(request)
    )
    return {"ok": True}


@router.post("/{account}/reset-password", summary="重置口令：返回一次性口令 (reset password)")
async def reset_password(request: Request, principal: Manager, account: AccountName) -> dict[str, Any]:
    password = await run_in_threadpool(
        people_of(request).service.reset_password, principal, account, caller_of(request)
    )
    return {"ok": True, "one_time_password": password}
