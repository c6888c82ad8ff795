"""The hub's one error shape: ``{"ok": false, "error": {"code", "message_zh", "message_en"}, "request_id"}``."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

__all__ = ["HubError", "error_body", "error_response"]


class HubError(Exception):
    """A refusal with a stable code and an HTTP status; never a 500."""

    def __init__(
        self,
        status: int,
        code: str,
        message_zh: str,
        message_en: str,
        *,
        audit: bool = False,
        problems: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message_en}")
        self.status = status
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en
        self.audit = audit  # refusals of forged, replayed or out-of-scope requests go to the audit log
        self.problems = problems or []  # one entry per refused field of a filing (operations forms)


def error_body(code: str, message_zh: str, message_en: str, request_id: str) -> dict[str, Any]:
    return {
        "ok": False,
        "error": {"code": code, "message_zh": message_zh, "message_en": message_en},
        "request_id": request_id,
    }


def error_response(request: Request, error: HubError) -> JSONResponse:
    request_id = getattr(request.state, "request_id", "-")
    body = error_body(error.code, error.message_zh, error.message_en, request_id)
    if error.problems:
        body["error"]["problems"] = error.problems
    return JSONResponse(
        body,
        status_code=error.status,
        headers={"X-Request-ID": request_id},
    )
