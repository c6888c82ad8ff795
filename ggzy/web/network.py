"""Who is calling, by address: the management allow-list, trusted proxies, the operations paths.

- **The caller's address** is the peer of the connection. A forwarding header (``X-Forwarded-For``,
  ``X-Forwarded-Proto``) counts only when that peer is one of the configured trusted proxies
  (``hub.trusted_proxies`` / ``node.trusted_proxies``, CIDRs, empty by default): then the address
  and the scheme (for the ``Secure`` cookie flag behind a TLS-terminating proxy) come from it, as
  uvicorn's ``ProxyHeadersMiddleware`` reads them. The servers themselves run with
  ``proxy_headers=False``, so the app's own middleware is the one place the headers are trusted.
- **The management allow-list** (``security.management_networks``, 等保三级 8.1.4.4 c): anything that
  is not an IP address in one of the listed networks is refused; the check fails closed.
- **Operations paths** (``/metrics``, ``/docs``, ``/openapi.json``, ``/redoc``): only from the
  management networks, or ``/metrics`` with ``Authorization: Bearer <security.metrics_token>``
  for a Prometheus outside them. :func:`guard_operations_paths` applies it to any app.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Iterable

from fastapi import FastAPI, Request
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "OPERATIONS_PATHS",
    "AllowList",
    "OperationsGuard",
    "guard_operations_paths",
    "source_of",
    "trust_proxies",
]

OPERATIONS_PATHS = ("/metrics", "/docs", "/openapi.json", "/redoc")


def source_of(request: Request) -> str:
    return request.client.host if request.client else "-"


class AllowList:
    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def admits(self, source: str) -> bool:
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def trust_proxies(app: FastAPI, networks: Iterable[str]) -> None:
    """Read the caller's address and scheme from forwarding headers set by ``networks`` only.

    Call it last when building the app (the middleware added last runs first, so every other part
    sees the resolved address). Nothing is trusted when ``networks`` is empty.
    """
    trusted = [str(ipaddress.ip_network(n, strict=False)) for n in networks]
    if not trusted:
        return
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=trusted)


def _refusal(source: str) -> bytes:
    return json.dumps(
        {
            "ok": False,
            "error": {
                "code": "E-AUTH-SOURCE",
                "message_zh": f"来源地址 {source} 不在管理网段内，不能访问运行监测接口与接口文档",
                "message_en": f"source address {source} may not read metrics or API documentation",
            },
            "request_id": "-",
        },
        ensure_ascii=False,
    ).encode()


class OperationsGuard:
    """Refuse the operations paths to callers outside the management networks (pure ASGI)."""

    def __init__(
        self,
        app: ASGIApp,
        networks: Iterable[str],
        metrics_token: str | None = None,
        paths: Iterable[str] = OPERATIONS_PATHS,
    ) -> None:
        self.app = app
        self.allow = AllowList(networks)
        self.token_digest = hashlib.sha256(metrics_token.encode()).digest() if metrics_token else None
        self.paths = tuple(paths)

    def _guarded(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.paths)

    def _token_admits(self, scope: Scope) -> bool:
        if self.token_digest is None or scope.get("path") != "/metrics":
            return False
        header = Headers(scope=scope).get("authorization", "")
        given = header[7:].strip() if header[:7].lower() == "bearer " else ""
        return bool(given) and hmac.compare_digest(hashlib.sha256(given.encode()).digest(), self.token_digest)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._guarded(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        source = client[0] if client else "-"
        if self.allow.admits(source) or self._token_admits(scope):
            await self.app(scope, receive, send)
            return
        body = _refusal(source)
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def guard_operations_paths(
    app: FastAPI,
    networks: Iterable[str],
    metrics_token: str | None = None,
    paths: Iterable[str] = OPERATIONS_PATHS,
) -> None:
    """Apply :class:`OperationsGuard` to ``app`` (hub, node, or any other app of the project)."""
    app.add_middleware(
        OperationsGuard, networks=list(networks), metrics_token=metrics_token, paths=tuple(paths)
    )
