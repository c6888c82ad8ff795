"""A signed HTTP client for the hub's exchange API."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Generator, Sequence
from typing import Any

import httpx

from ggzy.security.signing import SignatureAlgorithm, sign_request

__all__ = ["HubClient", "HubRefused", "HubUnavailable", "SignedAuth"]

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class SignedAuth(httpx.Auth):
    """Signs every request with the node's key (method, path and query, timestamp, nonce, body)."""

    requires_request_body = True

    def __init__(
        self, node_id: str, key: bytes, algorithm: SignatureAlgorithm = SignatureAlgorithm.HMAC_SHA256
    ):
        self.node_id = node_id
        self.key = key
        self.algorithm = algorithm

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        path = request.url.raw_path.decode("ascii")
        headers = sign_request(
            self.node_id, self.key, request.method, path, request.content, algorithm=self.algorithm
        )
        request.headers.update(headers.as_dict())
        yield request


class HubUnavailable(Exception):
    """The hub could not be reached or failed (5xx, timeout): retry later, nothing is lost."""


class HubRefused(Exception):
    """The hub refused the request (4xx) with a stable code: retrying the same request will not help."""

    def __init__(self, status: int, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(f"{status} {code}: {message_en}")
        self.status, self.code, self.message_zh, self.message_en = status, code, message_zh, message_en


class HubClient:
    def __init__(
        self,
        base_url: str,
        node_id: str,
        key: bytes,
        *,
        algorithm: SignatureAlgorithm = SignatureAlgorithm.HMAC_SHA256,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        verify: Any = True,
        cert: Any = None,
    ) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            auth=SignedAuth(node_id, key, algorithm),
            transport=transport,
            timeout=timeout,
            verify=verify,
            cert=cert,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise HubUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500:
            raise HubUnavailable(f"hub answered {response.status_code}")
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                raise HubRefused(
                    response.status_code, error["code"], error["message_zh"], error["message_en"]
                )
            except (ValueError, KeyError, TypeError):
                raise HubRefused(
                    response.status_code, f"E-HTTP-{response.status_code}", response.text, response.text
                ) from None
        return response

    def upload(self, channel: int, batch_id: str, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Send a batch; the receipt has one verdict per record. Re-sending a batch id is safe."""
        body = json.dumps(
            {"batch_id": batch_id, "sent_at": dt.datetime.now(dt.UTC).isoformat(), "records": list(records)},
            ensure_ascii=False,
        ).encode()
        response = self._call(
            "POST",
            f"/api/v1/channels/{channel}/batches",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        receipt: dict[str, Any] = response.json()
        return receipt

    def feedback(self, after: int = 0, limit: int = 100) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "GET", "/api/v1/feedback", params={"after": after, "limit": limit}
        ).json()
        return result

    def reconcile(self, day: dt.date, table: str | None = None, *, keys: bool = False) -> dict[str, Any]:
        params: dict[str, Any] = {"day": day.isoformat()}
        if table:
            params["table"] = table
        if keys:
            params["keys"] = "true"
        result: dict[str, Any] = self._call("GET", "/api/v1/reconcile", params=params).json()
        return result

    def report_mismatch(self, report: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(report, ensure_ascii=False, default=str).encode()
        result: dict[str, Any] = self._call(
            "POST", "/api/v1/reconcile/mismatches", content=body, headers={"Content-Type": "application/json"}
        ).json()
        return result

    def heartbeat(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Report the node's health; the answer carries the hub's clock (``server_time``)."""
        body = json.dumps(payload, ensure_ascii=False, default=str).encode()
        result: dict[str, Any] = self._call(
            "POST", "/api/v1/heartbeat", content=body, headers={"Content-Type": "application/json"}
        ).json()
        return result

    def audit_anchors(self, after: int = 0) -> dict[str, Any]:
        """The anchors the hub keeps of this node's audit chain (``GET /api/v1/audit/anchors``)."""
        result: dict[str, Any] = self._call("GET", "/api/v1/audit/anchors", params={"after": after}).json()
        return result

    def ops_conditions(self) -> dict[str, Any]:
        """What the hub holds against the node's province (assessment, incidents, orders)."""
        result: dict[str, Any] = self._call("GET", "/api/v1/ops/node/conditions").json()
        return result

    def report_drill(self, drill: dict[str, Any]) -> dict[str, Any]:
        """Record an emergency drill of the node's province at the hub."""
        body = json.dumps(drill, ensure_ascii=False, default=str).encode()
        result: dict[str, Any] = self._call(
            "POST", "/api/v1/ops/node/drills", content=body, headers={"Content-Type": "application/json"}
        ).json()
        return result
