"""The sign-in layer of a web app (hub or node): ``install_people_layer(app, ...)``.

It installs, on one FastAPI app:

- ``app.state.authenticate`` — the session behind the ``ggzy_session`` cookie or an
  ``Authorization: Bearer`` token, as a :class:`~ggzy.security.permissions.Principal`; it refuses
  callers outside the management allow-list (``E-AUTH-SOURCE``) before looking at any session;
- ``app.state.people`` — this :class:`PeopleWeb` (the account service, templates, settings);
- handlers answering ``NotSignedIn`` (401 ``E-AUTH-REQUIRED``, or a redirect to the sign-in page for
  a browser), ``Forbidden`` (403 ``E-AUTH-FORBIDDEN``) and ``AuthError`` in the hub's error shape;
- the security-headers and CSRF middlewares, the app's own static files under ``/static``, and the
  sign-in, second-factor, password and enrolment pages and their JSON API under ``/auth``.

A page of the portal is then a route with ``dependencies=[Depends(require(Permission.X))]`` (or a
``principal: Principal = Depends(require(...))`` parameter) that returns
``app.state.people.render(request, "portal/page.html", {...})`` from a template extending
``base.html``; add a template folder with :meth:`PeopleWeb.add_templates`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, pass_context, select_autoescape
from markupsafe import Markup
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Scope

from ggzy.security.accounts import AccountService, AuthError, Caller
from ggzy.security.permissions import ROLE_PERMISSIONS, Forbidden, NotSignedIn, Principal
from ggzy.settings import SecuritySettings
from ggzy.web.csrf import PRE_COOKIE, SESSION_COOKIE, CsrfMiddleware, binding_of
from ggzy.web.errors import csrf_refused, source_refused
from ggzy.web.headers import SecurityHeaders
from ggzy.web.network import AllowList, source_of

__all__ = ["PeopleWeb", "caller_of", "install_people_layer", "people_of"]

HERE = Path(__file__).parent


def _error_body(code: str, message_zh: str, message_en: str, request_id: str) -> dict[str, Any]:
    return {
        "ok": False,
        "error": {"code": code, "message_zh": message_zh, "message_en": message_en},
        "request_id": request_id,
    }


def caller_of(request: Request) -> Caller:
    return Caller(source=source_of(request), request_id=getattr(request.state, "request_id", "-"))


def wants_html(request: Request) -> bool:
    """A person's browser asking for a page (not a script calling an API): answer with a page."""
    return "text/html" in request.headers.get("accept", "") and not request.url.path.startswith(
        ("/api/", "/auth/api/", "/portal/api/")
    )


# The few refusals and failures every page may meet, in the words a person reads.
HTTP_ERRORS = {
    400: ("E-HTTP-BAD-REQUEST", "请求有误", "bad request"),
    404: ("E-HTTP-NOT-FOUND", "页面不存在，请从导航进入", "no such page"),
    405: ("E-HTTP-METHOD", "请求方法不被允许", "method not allowed"),
    413: ("E-HTTP-TOO-LARGE", "提交的内容过大", "request too large"),
    500: ("E-WEB-INTERNAL", "系统内部错误，已记录；请稍后重试，或把请求编号告知系统管理员", "internal error"),
}


@pass_context
def _csrf_field(context: Any) -> Markup:
    """``{{ csrf_field() }}`` in a form: the hidden CSRF token field."""
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(context.get("csrf_token", ""))


class PeopleWeb:
    def __init__(self, service: AccountService, settings: SecuritySettings, *, site: str) -> None:
        self.service = service
        self.settings = settings
        self.site = site  # shown in the page header: 国家平台 / 交换前置系统
        self.allow = AllowList(settings.management_networks)
        self._loaders: list[FileSystemLoader] = [FileSystemLoader(HERE / "templates")]
        self.env = Environment(
            loader=ChoiceLoader(self._loaders), autoescape=select_autoescape(["html"]), auto_reload=False
        )
        self.env.globals["ROLE_PERMISSIONS"] = ROLE_PERMISSIONS
        self.env.globals["csrf_field"] = _csrf_field
        from ggzy.web import glossary
        from ggzy.web.portal import beijing

        self.env.filters["beijing"] = beijing
        glossary.install(self.env)
        # The portal's navigation (set by the portal that mounts itself on this app): every page a
        # signed-in person opens — the account page, an error page — keeps it.
        self.nav: tuple[tuple[str, str, Any], ...] = ()
        self.admin_tabs: tuple[tuple[str, str], ...] = ()  # the 系统管理 pages of this site
        # How this site audits a person's read of a page (its own chain), set by its portal.
        self.record_read: Callable[[Request, Principal, str, str, dict[str, Any]], None] | None = None

    # -- for pages ------------------------------------------------------------------------------

    def add_templates(self, folder: Path) -> None:
        """Let pages use templates from ``folder`` (searched before the layer's own)."""
        self._loaders.insert(0, FileSystemLoader(folder))

    def csrf_token(self, request: Request) -> str:
        """The token this browser must send back with a form or an unsafe call."""
        binding = binding_of(request.cookies.get(SESSION_COOKIE), request.cookies.get(PRE_COOKIE))
        if binding is None:
            pre = getattr(request.state, "new_pre_cookie", None)
            if pre is None:
                import secrets

                pre = secrets.token_urlsafe(24)
                request.state.new_pre_cookie = pre
            binding = binding_of(None, pre)
        assert binding is not None
        return self.service.secrets.csrf_token(binding)

    def render(
        self, request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
    ) -> HTMLResponse:
        from ggzy.security.permissions import principal_of

        try:
            principal = principal_of(request)
        except AuthError:
            principal = None
        values = {
            "request": request,
            "site": self.site,
            "principal": principal,
            "csrf_token": self.csrf_token(request),
            # 任期: every page warns a person whose term ends within 30 days
            "term_warning": self.service.term_warning(principal.account) if principal else None,
            "path": request.url.path,
            **(context or {}),
        }
        if principal is not None and "nav" not in values and self.nav:
            from ggzy.web.portal import nav_for

            values["nav"] = nav_for(self.nav, principal)
        response = HTMLResponse(self.env.get_template(template).render(values), status_code=status)
        pre = getattr(request.state, "new_pre_cookie", None)
        if pre is not None:
            self.set_cookie(request, response, PRE_COOKIE, pre, max_age=3600)
        return response

    def error_page(
        self, request: Request, status: int, code: str, message_zh: str, message_en: str = ""
    ) -> HTMLResponse:
        """A refusal or failure as a page: the Chinese message, its code, the request id, a way back."""
        request_id = str(getattr(request.state, "request_id", "-"))
        context = {
            "status": status,
            "code": code,
            "message_zh": message_zh,
            "message_en": message_en,
            "request_id": request_id,
        }
        try:
            response = self.render(request, "error.html", context, status=status)
        except Exception:  # the page of a failure must not fail itself (e.g. the database is down)
            response = HTMLResponse(
                self.env.get_template("error.html").render(
                    {"site": self.site, "principal": None, "csrf_token": "", **context}
                ),
                status_code=status,
            )
        response.headers["X-Request-ID"] = request_id
        return response

    def secure_cookies(self, request: Request) -> bool:
        mode = self.settings.cookie_secure
        return mode == "always" or (mode == "auto" and request.url.scheme == "https")

    def set_cookie(
        self, request: Request, response: Response, name: str, value: str, *, max_age: int | None = None
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=self.secure_cookies(request),
            httponly=True,
            samesite="strict",
        )

    def clear_cookie(self, request: Request, response: Response, name: str) -> None:
        response.delete_cookie(
            name, path="/", secure=self.secure_cookies(request), httponly=True, samesite="strict"
        )

    # -- who is calling -------------------------------------------------------------------------

    def check_source(self, request: Request) -> None:
        source = source_of(request)
        if not self.allow.admits(source):
            raise source_refused(source)

    def token_of(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if header[:7].lower() == "bearer ":
            return header[7:].strip() or None
        return request.cookies.get(SESSION_COOKIE) or None

    def authenticate(self, request: Request) -> Principal | None:
        self.check_source(request)
        token = self.token_of(request)
        return self.service.principal(token) if token else None


def people_of(request: Request) -> PeopleWeb:
    people: PeopleWeb = request.app.state.people
    return people


def _refusal_app(error: AuthError, people: PeopleWeb) -> Callable[[Scope], ASGIApp]:
    def respond(scope: Scope) -> ASGIApp:
        state = scope.get("state") or {}
        request_id = state.get("request_id", "-") if isinstance(state, dict) else "-"
        request = Request(scope)
        if wants_html(request):  # a form posted from a page: the refusal as a page
            return people.error_page(request, error.status, error.code, error.message_zh, error.message_en)
        return JSONResponse(
            _error_body(error.code, error.message_zh, error.message_en, request_id), status_code=error.status
        )

    return respond


def _install_page_errors(app: FastAPI, people: PeopleWeb) -> None:
    """Not found, bad parameters and failures answer a person's browser with a page.

    An app that answers these itself (the hub: its one JSON error shape for nodes) keeps its
    handlers and asks :meth:`PeopleWeb.error_page` first; the others get these, JSON for scripts.
    """

    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        code, zh, en = HTTP_ERRORS.get(error.status_code, (f"E-HTTP-{error.status_code}", "请求错误", ""))
        if wants_html(request):
            return people.error_page(request, error.status_code, code, zh, en)
        request_id = getattr(request.state, "request_id", "-")
        return JSONResponse(
            _error_body(code, zh, str(error.detail), request_id), status_code=error.status_code
        )

    async def invalid(request: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "body", "path"))
        zh, en = f"请求参数有误：{where}", f"invalid parameter: {where} {first.get('msg', '')}"
        if wants_html(request):
            return people.error_page(request, 422, "E-REQ-PARAMETER", zh, en)
        request_id = getattr(request.state, "request_id", "-")
        return JSONResponse(_error_body("E-REQ-PARAMETER", zh, en, request_id), status_code=422)

    async def failure(request: Request, error: Exception) -> Response:
        code, zh, en = HTTP_ERRORS[500]
        if wants_html(request):
            return people.error_page(request, 500, code, zh, f"{en} ({type(error).__name__})")
        request_id = getattr(request.state, "request_id", "-")
        return JSONResponse(_error_body(code, zh, en, request_id), status_code=500)

    from fastapi import exception_handlers as defaults

    framework = {defaults.http_exception_handler, defaults.request_validation_exception_handler}
    for kind, handler in (
        (StarletteHTTPException, http_error),
        (RequestValidationError, invalid),
        (Exception, failure),
    ):
        if app.exception_handlers.get(kind) in (None, *framework):
            app.add_exception_handler(kind, handler)  # type: ignore[arg-type]


def install_people_layer(
    app: FastAPI, service: AccountService, settings: SecuritySettings, *, site: str
) -> PeopleWeb:
    people = PeopleWeb(service, settings, site=site)
    app.state.people = people
    app.state.authenticate = people.authenticate

    def auth_error(request: Request, error: AuthError) -> Response:
        request_id = getattr(request.state, "request_id", "-")
        if wants_html(request):
            return people.error_page(request, error.status, error.code, error.message_zh, error.message_en)
        return JSONResponse(
            _error_body(error.code, error.message_zh, error.message_en, request_id),
            status_code=error.status,
            headers={"X-Request-ID": request_id},
        )

    async def not_signed_in(request: Request, _error: NotSignedIn) -> Response:
        if wants_html(request) and request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/auth/sign-in?next={quote(target, safe='')}", status_code=303)
        return auth_error(request, AuthError(401, "E-AUTH-REQUIRED", "请先登录", "sign in first"))

    async def forbidden(request: Request, error: Forbidden) -> Response:
        from ggzy.web.glossary import label

        return auth_error(
            request,
            AuthError(
                403,
                "E-AUTH-FORBIDDEN",
                f"{error.principal.role.label}无权执行此操作（需要“{label('permission', error.permission.value)}”权限）",
                f"{error.principal.role.value} lacks {error.permission.value}",
            ),
        )

    async def refused(request: Request, error: AuthError) -> Response:
        return auth_error(request, error)

    app.add_exception_handler(NotSignedIn, not_signed_in)  # type: ignore[arg-type]
    app.add_exception_handler(Forbidden, forbidden)  # type: ignore[arg-type]
    app.add_exception_handler(AuthError, refused)  # type: ignore[arg-type]
    _install_page_errors(app, people)

    app.add_middleware(
        CsrfMiddleware,
        token_for=service.secrets.csrf_token,
        refuse=_refusal_app(csrf_refused(), people),
    )
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    from ggzy.web import account_pages, accounts_api, auth_routes

    app.include_router(auth_routes.router)
    app.include_router(accounts_api.router)
    app.include_router(account_pages.router)
    return people
