"""Refusals of the sign-in layer: a stable code, an HTTP status, a Chinese and an English message."""

from __future__ import annotations

__all__ = ["AuthError"]


class AuthError(Exception):
    """``E-AUTH-*``: answered in the hub's error shape by the web layer, printed by the CLI."""

    def __init__(self, status: int, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(f"{code}: {message_en}")
        self.status = status
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en


def bad_credentials() -> AuthError:
    # One answer for an unknown account and a wrong password, so neither can be probed.
    return AuthError(401, "E-AUTH-CREDENTIALS", "账号或口令错误", "wrong account or password")
