"""Refusals of the web layer beyond ``NotSignedIn``/``Forbidden``: source address and CSRF."""

from __future__ import annotations

from ggzy.security.accounts.errors import AuthError

__all__ = ["csrf_refused", "source_refused"]


def source_refused(source: str) -> AuthError:
    return AuthError(
        403,
        "E-AUTH-SOURCE",
        f"来源地址 {source} 不在管理界面允许的网段内",
        f"source address {source} is not in the management allow-list",
    )


def csrf_refused() -> AuthError:
    return AuthError(
        403,
        "E-AUTH-CSRF",
        "请求缺少有效的防跨站伪造令牌，请刷新页面后重试",
        "missing or invalid CSRF token; reload the page and try again",
    )
