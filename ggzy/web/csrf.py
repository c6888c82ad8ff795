"""CSRF protection for every form and every state-changing call made with the session cookie.

The token is an HMAC (key outside the database) of what the browser proves it holds: the session
(its token hash) once signed in, a random pre-session cookie before. A page puts it in a hidden
``csrf_token`` field; a script sends it as ``X-CSRF-Token`` (``GET /auth/api/me`` returns it).

Which requests are checked (a pure ASGI middleware, before any route runs):

- unsafe methods (not GET/HEAD/OPTIONS) that carry the session cookie: always. The cookies are read
  once, with the parser the session layer itself uses (Starlette's ``cookie_parser`` over the
  request's first Cookie header, as ``Request.cookies`` does): a malformed cookie beside the session
  cannot hide the session from this check while it still signs the caller in;
- form submissions (urlencoded or multipart) without it: against the pre-session cookie, so
  that a sign-in form cannot be submitted from another site (login CSRF), unless they carry an
  ``Authorization: Bearer`` token (a script uploading a file: no browser sends one by itself);
- anything else (no cookie, a JSON or XML body: node signatures, intake tokens, bearer tokens)
  passes untouched — a browser never adds those credentials by itself.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ggzy.security.sessions import hash_token

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "PRE_COOKIE",
    "SESSION_COOKIE",
    "CsrfMiddleware",
    "binding_of",
    "request_cookies",
]

SESSION_COOKIE = "ggzy_session"
PRE_COOKIE = "ggzy_pre"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_FORM_BYTES = 1024 * 1024


def request_cookies(scope: Scope) -> dict[str, str]:
    """The request's cookies exactly as ``starlette.requests.Request.cookies`` reads them, which is
    where the session layer finds the session: one parser, so both see the same session."""
    header = Headers(scope=scope).get("cookie")
    return cookie_parser(header) if header else {}


def binding_of(session_token: str | None, pre_token: str | None) -> str | None:
    """What a CSRF token is bound to: the session if there is one, else the pre-session cookie."""
    if session_token:
        return "s:" + hash_token(session_token)
    if pre_token:
        return "p:" + pre_token
    return None


class CsrfMiddleware:
    def __init__(
        self, app: ASGIApp, token_for: Callable[[str], str], refuse: Callable[[Scope], ASGIApp]
    ) -> None:
        self.app = app
        self.token_for = token_for
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _SAFE:
            await self.app(scope, receive, send)
            return
        headers = {name.lower(): value for name, value in scope.get("headers", [])}
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        is_form = content_type.startswith(_FORMS)
        cookies = request_cookies(scope)
        session = cookies.get(SESSION_COOKIE)
        bearer = headers.get(b"authorization", b"")[:7].lower() == b"bearer "  # never added by a browser
        if not session and (not is_form or bearer):
            await self.app(scope, receive, send)
            return
        binding = binding_of(session, cookies.get(PRE_COOKIE))
        expected = self.token_for(binding) if binding else None
        given = headers.get(CSRF_HEADER.encode(), b"").decode("latin-1")
        replay: list[Message] = []
        if not given and is_form:
            multipart = content_type.startswith("multipart/form-data")
            body, replay = await (_read_token_part(receive) if multipart else _read_all(receive))
            if body is None:
                await self.refuse(scope)(scope, receive, send)
                return
            given = _form_field(body, content_type)
        if expected is None or not given or not hmac.compare_digest(given, expected):
            await self.refuse(scope)(scope, receive, send)
            return
        if replay:
            pending = list(replay)

            async def replayed() -> Message:
                return pending.pop(0) if pending else await receive()

            await self.app(scope, replayed, send)
            return
        await self.app(scope, receive, send)


async def _read_all(receive: Receive) -> tuple[bytes | None, list[Message]]:
    messages: list[Message] = []
    size = 0
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return b"".join(chunks), messages
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None, messages
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), messages


MAX_TOKEN_PART_BYTES = 64 * 1024


async def _read_token_part(receive: Receive) -> tuple[bytes | None, list[Message]]:
    """A multipart form's beginning, up to its ``csrf_token`` part (forms put it first): an evidence
    file after it streams on to the route unread, however large (the route sets its own limit)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    marker = f'name="{CSRF_FIELD}"'.encode()
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return b"".join(chunks), messages
        chunks.append(message.get("body", b""))
        body = b"".join(chunks)
        at = body.find(marker)
        start = body.find(b"\r\n\r\n", at) if at >= 0 else -1
        if start >= 0 and body.find(b"\r\n", start + 4) >= 0:
            return body, messages  # the token's value is complete
        if not message.get("more_body", False):
            return body, messages
        if len(body) > MAX_TOKEN_PART_BYTES:
            return None, messages  # no token near the start: not one of our forms


def _form_field(body: bytes, content_type: str) -> str:
    if content_type.startswith("application/x-www-form-urlencoded"):
        values = parse_qs(body.decode("latin-1"), keep_blank_values=True).get(CSRF_FIELD, [])
        return values[0] if values else ""
    # multipart: find the part named csrf_token (forms with files put the token first)
    marker = f'name="{CSRF_FIELD}"'.encode()
    at = body.find(marker)
    if at < 0:
        return ""
    start = body.find(b"\r\n\r\n", at)
    end = body.find(b"\r\n", start + 4)
    return body[start + 4 : end].decode("latin-1").strip() if start >= 0 and end >= 0 else ""
