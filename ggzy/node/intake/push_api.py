"""The local push API: the provincial platform's own systems hand records to the node over HTTP.

``POST /api/v1/records`` takes one record (a JSON object), a JSON array of records, JSON Lines
(``application/x-ndjson``) or the provincial XML envelope (``application/xml``, UTF-8 or GBK as its
prolog declares), and answers only after the records are committed to the outbox, with one result per
record::

    {"ok": true, "request_id": "…", "accepted": 2, "held": 1, "refused": 0,
     "results": [{"index": 0, "outcome": "accepted", "id": 17, "key": "…", "channel": 1,
                  "code": null, "message_zh": null, "findings": []}, …]}

``?category=history`` labels the records that carry no category. A request that cannot be read at
all (too large, unsupported media type, broken JSON or XML) is refused as a whole in the hub's error
shape ``{"ok": false, "error": {"code", "message_zh", "message_en"}, "request_id"}``; so is a request
refused by the disk guard (HTTP 503 with ``Retry-After``).

Who may call: every provincial system authenticates with its own intake token (``Authorization:
Bearer ggzy_it_…``, created by the 系统管理员 with ``ggzy admin token add NAME --config node.toml``);
a missing, unknown or revoked token is refused with 401 ``E-AUTH-TOKEN`` before the body is read, and
the system's name is recorded with each record (``source_ref``). The seam is :func:`intake_caller`
(``caller=`` of :func:`create_intake_app` replaces it). The same app carries the node's people
routes: the sign-in layer (``ggzy.web``) and ``GET /api/v1/people/status``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ggzy.interchange import Category, InputError, SourceItem, decode_bytes, read_jsonl, read_xml
from ggzy.node.context import NodeContext
from ggzy.node.intake.service import Intake, IntakeResult, Outcome
from ggzy.settings import SecuritySettings, get_settings

__all__ = ["IntakeApiError", "create_intake_app", "intake_caller"]

_JSON_TYPES = frozenset({"application/json", "text/json"})
_NDJSON_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-lines"}
)
_XML_TYPES = frozenset({"application/xml", "text/xml"})
_GB_CHARSETS = frozenset({"gbk", "gb2312", "gb18030", "cp936"})


class IntakeApiError(Exception):
    """A refusal of the whole request, answered in the hub's error shape."""

    def __init__(self, status: int, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(f"{code}: {message_en}")
        self.status = status
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en


def _error_body(code: str, message_zh: str, message_en: str, request_id: str) -> dict[str, Any]:
    return {
        "ok": False,
        "error": {"code": code, "message_zh": message_zh, "message_en": message_en},
        "request_id": request_id,
    }


def intake_caller(request: Request) -> str:
    """Who is pushing: the name of the system whose intake token the request carries, from one of
    the token's source networks (Art. 15; refused ``E-AUTH-NETWORK`` and audited otherwise)."""
    import datetime as dt

    from ggzy.node.models import api_tokens
    from ggzy.security.api_tokens import token_caller

    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    ctx: NodeContext = request.app.state.node_ctx
    found = None
    host = request.client.host if request.client else "-"
    if token:
        with ctx.engine.connect() as plain:
            connection = plain.execution_options(sqlite_begin="IMMEDIATE")
            with connection.begin():
                found = token_caller(connection, api_tokens, token, dt.datetime.now(dt.UTC))
                if found is not None and not found.admits(host):
                    from ggzy.security.audit import AuditEntry

                    ctx.audit.append(
                        connection,
                        AuditEntry(
                            action="intake.refused",
                            object=f"intake-token:{found.name}",
                            outcome="refused",
                            account=f"system:{found.name}",
                            source=host[:64],
                            request_id=_request_id(request),
                            detail={"code": "E-AUTH-NETWORK"},
                        ),
                    )
    if found is None:
        raise IntakeApiError(
            401,
            "E-AUTH-TOKEN",
            "缺少或无效的接收接口令牌（Authorization: Bearer …，由系统管理员用 ggzy admin token add 创建）",
            "missing, unknown or revoked intake token (Authorization: Bearer …)",
        )
    if not found.admits(host):
        raise IntakeApiError(
            403,
            "E-AUTH-NETWORK",
            f"来源地址 {host} 不在系统“{found.name}”登记的网段内",
            "source address outside the networks registered for this token",
        )
    return f"{found.name}@{host}"


def _request_id(request: Request) -> str:
    request_id: str = getattr(request.state, "request_id", "-")
    return request_id


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    too_large = IntakeApiError(
        413,
        "E-REQ-TOO-LARGE",
        f"请求体超过{limit}字节上限，请分批提交",
        f"request body exceeds {limit} bytes",
    )
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _media_type(request: Request) -> tuple[str, str | None]:
    content_type = request.headers.get("content-type", "application/json")
    media, _, params = content_type.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset":
            charset = value.strip().strip('"').lower() or None
    return media.strip().lower(), charset


def _text(body: bytes, charset: str | None, source: str) -> str:
    """JSON text: as the charset says (GBK is read as its superset GB18030), else UTF-8 or detected GBK."""
    if charset in _GB_CHARSETS:
        try:
            return body.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise IntakeApiError(
                400,
                "E-REQ-ENCODING",
                f"请求体不是合法的 {charset.upper()} 编码文本",
                f"the body is not valid {charset}",
            ) from exc
    return decode_bytes(body, source=source)


def _items(body: bytes, media: str, charset: str | None, source: str) -> list[Any]:
    if not body.strip():
        raise IntakeApiError(400, "E-REQ-EMPTY", "请求体为空", "the request body is empty")
    try:
        if media in _JSON_TYPES or media in _NDJSON_TYPES:
            # One reader for both: an object, an array, or one object per line; an element or line that
            # is not an object is refused by itself, the others are still taken.
            return list(read_jsonl(_text(body, charset, source), source))
        if media in _XML_TYPES:
            return list(read_xml(body, source))
    except InputError as exc:
        raise IntakeApiError(400, exc.code, exc.message_zh, exc.message_en) from exc
    raise IntakeApiError(
        415,
        "E-REQ-CONTENT-TYPE",
        f"不支持的内容类型“{media}”（支持 application/json、application/x-ndjson、application/xml）",
        f"unsupported content type {media!r} (use application/json, application/x-ndjson or application/xml)",
    )


def _with_category(items: list[Any], category: str | None) -> list[Any]:
    if category is None:
        return items
    for item in items:
        raw = item.raw if isinstance(item, SourceItem) else item
        if isinstance(raw, dict) and raw.get("category") in (None, ""):
            raw["category"] = category
    return items


def _response(results: list[IntakeResult], request_id: str) -> dict[str, Any]:
    counts = {outcome: 0 for outcome in (Outcome.ACCEPTED, Outcome.HELD, Outcome.REFUSED)}
    for result in results:
        counts[result.outcome] += 1
    return {"ok": True, "request_id": request_id, **counts, "results": [r.to_dict() for r in results]}


def create_intake_app(
    ctx: NodeContext,
    intake: Intake,
    *,
    caller: Callable[..., str] | Callable[..., Awaitable[str]] | None = None,
    security: SecuritySettings | None = None,
) -> FastAPI:
    """The local intake API of one node (served by ``ggzy node run`` on ``api_host:api_port``)."""
    app = FastAPI(title="ggzy 交换前置系统 本地接收接口", version="1", docs_url=None, redoc_url=None)
    app.state.node_ctx = ctx
    limit = ctx.settings.api_max_body_bytes
    if caller is not None:
        app.dependency_overrides[intake_caller] = caller

    @app.middleware("http")
    async def _request_ids(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        request.state.request_id = (request.headers.get("X-Request-ID") or uuid.uuid4().hex[:16])[:64]
        response = await call_next(request)
        response.headers["X-Request-ID"] = request.state.request_id
        return response

    @app.exception_handler(IntakeApiError)
    async def _refused(request: Request, error: IntakeApiError) -> JSONResponse:
        headers = {"Retry-After": "60"} if error.status == 503 else None
        return JSONResponse(
            _error_body(error.code, error.message_zh, error.message_en, _request_id(request)),
            status_code=error.status,
            headers=headers,
        )

    from ggzy.node.people import install_node_people

    # without an explicit one, the configured [security] section (env, node.toml), not bare defaults
    security = security or get_settings().security
    install_node_people(app, ctx, security)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "node_id": ctx.settings.node_id}

    @app.post("/api/v1/records")
    async def push_records(
        request: Request, who: Annotated[str, Depends(intake_caller)], category: str | None = None
    ) -> JSONResponse:
        if category is not None and category not in {c.value for c in Category}:
            raise IntakeApiError(
                400,
                "E-REQ-CATEGORY",
                f"未知的数据类别“{category}”（应为 realtime、history 或 test）",
                f"unknown category {category!r} (use realtime, history or test)",
            )
        body = await _read_body(request, limit)
        media, charset = _media_type(request)
        request_id = _request_id(request)
        items = _with_category(_items(body, media, charset, f"push:{request_id}"), category)
        results = await run_in_threadpool(intake.accept, items, "push", f"{who} {request_id}")
        if results and all(r.code == "E-NODE-DISK-FULL" for r in results):
            first = results[0]
            raise IntakeApiError(503, "E-NODE-DISK-FULL", first.message_zh or "", first.message_en or "")
        return JSONResponse(_response(results, request_id))

    from ggzy.web.api_docs import install_api_docs
    from ggzy.web.network import guard_operations_paths, trust_proxies

    install_api_docs(app, "交换前置系统本地接收接口")
    guard_operations_paths(app, security.management_networks, security.metrics_token)
    trust_proxies(app, ctx.settings.trusted_proxies)  # last: outermost, every part sees the resolved address
    return app
