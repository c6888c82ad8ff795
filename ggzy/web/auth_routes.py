"""Sign-in, second factor, password change, TOTP enrolment and sign-out: pages and JSON API.

The pages walk a session through its stages (``totp`` → ``password`` → ``enrol`` → ``full``, see
``ggzy/security/sessions.py``); the JSON API does the same for scripts and the portal's own
front end. Both answer only callers inside the management allow-list.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from ggzy.security.accounts import AuthError, SignIn
from ggzy.security.permissions import Permission, Principal, require
from ggzy.web.csrf import PRE_COOKIE, SESSION_COOKIE
from ggzy.web.layer import caller_of, people_of

__all__ = ["STAGE_PAGES", "router"]


def management_source(request: Request) -> None:
    """The allow-list check for routes that run before anyone is signed in."""
    people_of(request).check_source(request)


router = APIRouter(prefix="/auth", tags=["auth"], dependencies=[Depends(management_source)])

STAGE_PAGES = {"totp": "/auth/totp", "password": "/auth/password", "enrol": "/auth/enrol"}
HOME = "/auth/account"


def _safe_next(target: str | None) -> str:
    # Only a path on this site: "//evil.example" or "https://…" would be an open redirect.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME


def _after(stage: str, target: str | None = None) -> str:
    return STAGE_PAGES.get(stage, _safe_next(target))


def _session_token(request: Request) -> str:
    return request.cookies.get(SESSION_COOKIE, "")


NEXT_COOKIE = "ggzy_next"  # the page asked for, kept while the sign-in walks its stages


def _signed_in(request: Request, stage: str, target: str | None) -> Response:
    response = RedirectResponse(_after(stage, target), status_code=303)
    if stage in STAGE_PAGES and _safe_next(target) != HOME:
        people_of(request).set_cookie(request, response, NEXT_COOKIE, _safe_next(target), max_age=900)
    return response


def _continue(request: Request, step: SignIn) -> Response:
    """The next stage's page under the step's new session token, or, once signed in, the page first
    asked for (the account page first when the person has security notices to read)."""
    people = people_of(request)
    target = _after(step.stage, request.cookies.get(NEXT_COOKIE))
    if step.stage == "full" and people.service.notices(Principal(step.account, step.role)):
        target = HOME
    response = RedirectResponse(target, status_code=303)
    people.set_cookie(request, response, SESSION_COOKIE, step.token)
    if step.stage not in STAGE_PAGES and NEXT_COOKIE in request.cookies:
        people.clear_cookie(request, response, NEXT_COOKIE)
    return response


# -- pages --------------------------------------------------------------------------------------


@router.get("/sign-in", summary="登录页面 (sign-in page)", include_in_schema=False)
def sign_in_page(request: Request, next: str | None = None) -> Response:
    return people_of(request).render(request, "sign_in.html", {"next": _safe_next(next)})


@router.post("/sign-in", summary="提交登录 (sign in with a form)", include_in_schema=False)
async def sign_in_form(
    request: Request,
    account: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str | None, Form(max_length=512)] = None,
) -> Response:
    people = people_of(request)
    try:
        started = await run_in_threadpool(people.service.sign_in, account, password, caller_of(request))
    except AuthError as error:
        return people.render(
            request,
            "sign_in.html",
            {"error": error, "account": account, "next": _safe_next(next)},
            status=error.status,
        )
    response = _signed_in(request, started.stage, next)
    people.set_cookie(request, response, SESSION_COOKIE, started.token)
    people.clear_cookie(request, response, PRE_COOKIE)
    return response


@router.get("/totp", summary="动态口令页面", include_in_schema=False)
def totp_page(request: Request) -> Response:
    return people_of(request).render(request, "totp.html")


@router.post("/totp", summary="提交动态口令", include_in_schema=False)
async def totp_form(request: Request, code: Annotated[str, Form(max_length=16)]) -> Response:
    people = people_of(request)
    try:
        step = await run_in_threadpool(
            people.service.verify_totp, _session_token(request), code, caller_of(request)
        )
    except AuthError as error:
        return people.render(request, "totp.html", {"error": error}, status=error.status)
    return _continue(request, step)


@router.get("/password", summary="修改口令页面", include_in_schema=False)
def password_page(request: Request) -> Response:
    people = people_of(request)
    found = people.service.session(_session_token(request))
    return people.render(request, "password.html", {"stage": found.stage if found else None})


@router.post("/password", summary="提交新口令", include_in_schema=False)
async def password_form(
    request: Request,
    current: Annotated[str, Form(max_length=256)],
    new: Annotated[str, Form(max_length=256)],
    repeat: Annotated[str, Form(max_length=256)],
) -> Response:
    people = people_of(request)
    try:
        if new != repeat:
            raise AuthError(
                400, "E-AUTH-PASSWORD-MISMATCH", "两次输入的新口令不一致", "the new passwords differ"
            )
        step = await run_in_threadpool(
            people.service.change_password, _session_token(request), current, new, caller_of(request)
        )
    except AuthError as error:
        return people.render(request, "password.html", {"error": error}, status=error.status)
    return _continue(request, step)


@router.get("/enrol", summary="绑定动态口令页面", include_in_schema=False)
async def enrol_page(request: Request) -> Response:
    people = people_of(request)
    try:
        enrolment = await run_in_threadpool(
            people.service.begin_enrolment, _session_token(request), caller_of(request)
        )
    except AuthError as error:
        return people.render(request, "enrol_failed.html", {"error": error}, status=error.status)
    return people.render(request, "enrol.html", {"enrolment": enrolment})


@router.post("/enrol", summary="确认绑定动态口令", include_in_schema=False)
async def enrol_form(request: Request, code: Annotated[str, Form(max_length=16)]) -> Response:
    people = people_of(request)
    try:
        step = await run_in_threadpool(
            people.service.confirm_enrolment, _session_token(request), code, caller_of(request)
        )
    except AuthError as error:
        return people.render(request, "enrol_failed.html", {"error": error}, status=error.status)
    return _continue(request, step)


@router.post("/sign-out", summary="退出登录", include_in_schema=False)
async def sign_out_form(request: Request) -> Response:
    people = people_of(request)
    token = _session_token(request)
    if token:
        await run_in_threadpool(people.service.sign_out, token, caller_of(request))
    response = RedirectResponse("/auth/sign-in", status_code=303)
    people.clear_cookie(request, response, SESSION_COOKIE)
    return response


@router.get("/account", summary="我的账号", include_in_schema=False)
def account_page(
    request: Request, principal: Annotated[Principal, Depends(require(Permission.SELF_SERVICE))]
) -> Response:
    people = people_of(request)
    info = people.service.info(principal.account)
    notices = people.service.notices(principal)
    return people.render(request, "account.html", {"info": info, "notices": notices})


@router.post("/notices/read", summary="确认已读安全通知", include_in_schema=False)
async def notices_read(
    request: Request, principal: Annotated[Principal, Depends(require(Permission.SELF_SERVICE))]
) -> Response:
    people = people_of(request)
    await run_in_threadpool(people.service.acknowledge_notices, principal, caller_of(request))
    return RedirectResponse(HOME, status_code=303)


# -- JSON API -----------------------------------------------------------------------------------


class SignInBody(BaseModel):
    account: str = Field(max_length=64)
    password: str = Field(max_length=256)
    totp: str | None = Field(None, max_length=16, description="动态口令（需要时）")


class PasswordBody(BaseModel):
    current: str = Field(max_length=256)
    new: str = Field(max_length=256)


class CodeBody(BaseModel):
    code: str = Field(max_length=16)


def _me(request: Request, principal: Principal) -> dict[str, Any]:
    return {
        "ok": True,
        "account": principal.account,
        "role": principal.role.value,
        "role_label": principal.role.label,
        "province": principal.province,
        "permissions": sorted(p.value for p in principal.permissions),
        "csrf_token": people_of(request).csrf_token(request),
    }


def _step_answer(request: Request, step: SignIn) -> Response:
    """A step's JSON answer under its new session token: a cookie for a browser, the ``token`` field
    for a caller that sent its token as ``Authorization: Bearer`` (the old token is dead either way)."""
    from fastapi.responses import JSONResponse

    from ggzy.security.sessions import hash_token

    people = people_of(request)
    answer: dict[str, Any] = {
        "ok": True,
        "account": step.account,
        "role": step.role.value,
        "stage": step.stage,
        "csrf_token": people.service.secrets.csrf_token("s:" + hash_token(step.token)),
    }
    bearer = request.headers.get("authorization", "")[:7].lower() == "bearer "
    if bearer:
        answer["token"] = step.token
    response = JSONResponse(answer)
    if not bearer:
        people.set_cookie(request, response, SESSION_COOKIE, step.token)
    return response


@router.post("/api/sign-in", summary="登录（JSON）：口令，需要时连同动态口令 (sign in)")
async def sign_in_api(request: Request, body: SignInBody) -> Response:
    people = people_of(request)
    caller = caller_of(request)
    step = await run_in_threadpool(people.service.sign_in, body.account, body.password, caller)
    if step.stage == "totp" and body.totp:
        try:
            step = await run_in_threadpool(people.service.verify_totp, step.token, body.totp, caller)
        except AuthError:
            await run_in_threadpool(people.service.sign_out, step.token, caller)
            raise
    return _step_answer(request, step)


@router.post("/api/totp", summary="提交动态口令（JSON）(second factor)")
async def totp_api(request: Request, body: CodeBody) -> Response:
    people = people_of(request)
    step = await run_in_threadpool(
        people.service.verify_totp, people.token_of(request) or "", body.code, caller_of(request)
    )
    return _step_answer(request, step)


@router.post("/api/password", summary="修改口令（JSON）(change password)")
async def password_api(request: Request, body: PasswordBody) -> Response:
    people = people_of(request)
    step = await run_in_threadpool(
        people.service.change_password,
        people.token_of(request) or "",
        body.current,
        body.new,
        caller_of(request),
    )
    return _step_answer(request, step)


@router.post("/api/sign-out", summary="退出登录（JSON）(sign out)")
async def sign_out_api(request: Request) -> Response:
    people = people_of(request)
    token = people.token_of(request)
    ended = bool(token) and await run_in_threadpool(people.service.sign_out, token or "", caller_of(request))
    from fastapi.responses import JSONResponse

    response = JSONResponse({"ok": True, "ended": ended})
    people.clear_cookie(request, response, SESSION_COOKIE)
    return response


@router.get("/api/me", summary="当前登录账号、角色、权限与防伪令牌 (who am I)")
def me_api(
    request: Request, principal: Annotated[Principal, Depends(require(Permission.SELF_SERVICE))]
) -> dict[str, Any]:
    return _me(request, principal)
