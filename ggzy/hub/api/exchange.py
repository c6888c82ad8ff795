"""The exchange endpoints a node talks to: upload a batch on a channel, read the feedback feed."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ggzy.hub.api.common import hub_of, read_body, signed_node, signed_node_deferred, source_of
from ggzy.hub.auth import Authenticated, remember_nonce, replay_refusal
from ggzy.hub.errors import HubError
from ggzy.hub.feedback import read_feed
from ggzy.hub.ingest import BatchRefused, NodeIdentity, NonceReplayed, ingest_batch, records_digest

if TYPE_CHECKING:
    from ggzy.hub.app import HubState

router = APIRouter(prefix="/api/v1", tags=["exchange"])

BATCH_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def check_content_type(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    media, _, params = content_type.partition(";")
    if media.strip().lower() != "application/json":
        raise HubError(
            415, "E-REQ-CONTENT-TYPE", "请求体必须是 application/json", "the body must be application/json"
        )
    charset = (
        params.strip().lower().removeprefix("charset=").strip('"') if "charset" in params.lower() else "utf-8"
    )
    if charset not in ("utf-8", "utf8"):
        raise HubError(
            415,
            "E-REQ-ENCODING",
            f"请求体必须使用UTF-8编码，不接受{charset.upper()}",
            f"the body must be UTF-8, not {charset}",
        )


# A JSON escape that may decode to text no database column holds: NUL, or half a surrogate pair.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
# A number orjson would read as a float (beyond 64 bits) where Python reads an integer: 19 or more
# digits right after ``:``, ``,`` or ``[`` (blanks and a minus sign between). Found with bytes
# operations (digits made one digit, the three openers one, blanks and minus signs dropped), which run at C speed; a string
# that looks so only costs the slower exact parser.
_FOLD = bytes.maketrans(b"123456789,[", b"000000000::")
_LONG_RUN = b":" + b"0" * 19


def _has_long_number(body: bytes) -> bool:
    return _LONG_RUN in body.translate(_FOLD, b" \t\r\n-")


def parse_json_body(body: bytes) -> Any:
    """The body as JSON: strict UTF-8, bounded numbers and nesting, only text that can be stored.

    Each way a body can be unreadable gets its own 400 with a precise message, never a 500. orjson
    reads what it can (several times faster); anything it refuses, and any very long number, is read
    by the standard parser, which gives the same document or the precise error as before.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _parse_exactly(body)
    if _has_long_number(body):
        return _parse_exactly(body)
    if _SUSPECT_ESCAPE.search(body):
        _refuse_unstorable_text(document)
    return document


def _parse_exactly(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HubError(
            400,
            "E-REQ-ENCODING",
            f"请求体第{exc.start}字节不是合法的UTF-8（GBK等编码请先转换为UTF-8）",
            f"byte {exc.start} of the body is not valid UTF-8",
        ) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HubError(
            400,
            "E-REQ-JSON",
            f"请求体不是合法的JSON：第{exc.lineno}行第{exc.colno}列，{exc.msg}",
            f"the body is not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}",
        ) from None
    except RecursionError:
        raise HubError(
            400, "E-REQ-JSON", "请求体JSON嵌套层数过深", "the body's JSON is nested too deeply"
        ) from None
    except ValueError:  # Python refuses to convert integers of more than 4300 digits
        raise HubError(
            400,
            "E-REQ-JSON",
            "请求体JSON中有位数过多的数字（超过4300位）",
            "the body's JSON has a number of more than 4300 digits",
        ) from None
    if _SUSPECT_ESCAPE.search(body):
        _refuse_unstorable_text(document)
    return document


def _refuse_unstorable_text(document: Any) -> None:
    """NUL (PostgreSQL text and JSONB refuse it) or a lone surrogate (not Unicode text) anywhere."""
    pending: list[tuple[str, Any]] = [("$", document)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, dict):
            for name, item in value.items():
                pending.append((path, name))
                pending.append((f"{path}.{name}", item))
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
        elif isinstance(value, str):
            if "\x00" in value:
                raise HubError(
                    400,
                    "E-REQ-ENCODING",
                    f"请求体{path[:200]}处含有空字符\\u0000，无法存储",
                    f"the body contains a NUL character (\\u0000) at {path[:200]}",
                )
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise HubError(
                    400,
                    "E-REQ-ENCODING",
                    f"请求体{path[:200]}处含有不成对的代理项转义（\\ud800–\\udfff），不是合法的Unicode文本",
                    f"the body contains an unpaired surrogate escape (\\ud800-\\udfff) at {path[:200]}",
                ) from None


def _aware_time(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return dt.datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _parse_batch(body: bytes, max_records: int) -> tuple[str, list[Any], str | None]:
    document = parse_json_body(body)
    if not isinstance(document, dict):
        raise HubError(
            400,
            "E-REQ-SHAPE",
            "请求体应为对象 {batch_id, records}",
            "the body must be an object {batch_id, records}",
        )
    batch_id, records = document.get("batch_id"), document.get("records")
    if not isinstance(batch_id, str) or not BATCH_ID.fullmatch(batch_id):
        raise HubError(
            400,
            "E-REQ-BATCH-ID",
            "batch_id 应为1–64位字母、数字或 . _ : -",
            "batch_id must be 1-64 characters [A-Za-z0-9._:-]",
        )
    if not isinstance(records, list) or not records:
        raise HubError(400, "E-REQ-SHAPE", "records 应为非空数组", "records must be a non-empty array")
    if len(records) > max_records:
        raise HubError(
            413,
            "E-BATCH-TOO-MANY",
            f"每批最多{max_records}条记录，本批{len(records)}条",
            f"at most {max_records} records per batch",
        )
    sent_at = document.get("sent_at")
    if sent_at is not None and not _aware_time(sent_at):
        raise HubError(
            400,
            "E-REQ-SHAPE",
            "sent_at 应为带时区的ISO 8601时间，如 2026-11-27T09:30:00+08:00",
            "sent_at must be an ISO 8601 time with a UTC offset",
        )
    return batch_id, records, sent_at


def _stamp_sent_at(records: list[Any], sent_at: str | None) -> list[Any]:
    """The batch's ``sent_at`` is the send time of every record that does not carry its own."""
    if sent_at is None:
        return records
    return [
        {**record, "sent_at": sent_at} if isinstance(record, dict) and not record.get("sent_at") else record
        for record in records
    ]


@router.post(
    "/channels/{channel}/batches",
    summary="上传一批记录 (upload a batch on channel 1 or 2)",
    responses={
        200: {"description": "回执：每条记录的校验结果"},
        409: {"description": "批次号已用于不同内容"},
    },
)
async def upload_batch(request: Request, channel: Annotated[int, Path(ge=1, le=2)]) -> Response:
    hub = hub_of(request)
    body = await read_body(request, hub.settings.max_body_bytes)
    checked = await signed_node_deferred(request, body)
    node = checked.node
    try:
        check_content_type(request)
        batch_id, records, sent_at = _parse_batch(body, hub.settings.max_batch_records)
    except HubError:
        await _settle_nonce(hub, checked)  # a replay answers as such, before the body's faults
        raise
    identity = NodeIdentity(node.node_id, node.province, frozenset(node.platform_codes))
    digest = records_digest(records)  # before stamping: a retry with a later sent_at is the same batch
    started = time.perf_counter()
    try:
        result = await run_in_threadpool(
            ingest_batch,
            hub.engine,
            hub.validator,
            hub.audit,
            identity,
            channel,
            batch_id,
            _stamp_sent_at(records, sent_at),
            digest,
            request_id=request.state.request_id,
            source=source_of(request),
            nonce=(checked.nonce, checked.now),
            clock_tolerance=dt.timedelta(seconds=hub.settings.clock_tolerance_seconds),
        )
    except NonceReplayed:
        raise replay_refusal() from None
    except BatchRefused as refused:
        await _settle_nonce(hub, checked)  # rolled back with the batch
        raise HubError(refused.status, refused.code, refused.message_zh, refused.message_en) from None
    except Exception:
        await _settle_nonce(hub, checked, quietly=True)
        raise
    hub.metrics.batch_seconds.labels(str(channel)).observe(time.perf_counter() - started)
    if not result.replayed:
        hub.metrics.records.labels("accepted", str(channel)).inc(result.accepted)
        hub.metrics.records.labels("rejected", str(channel)).inc(result.rejected)
    return Response(
        result.body(),
        media_type="application/json",
        headers={"X-GGZY-Replayed": "true" if result.replayed else "false"},
    )


async def _settle_nonce(hub: HubState, checked: Authenticated, *, quietly: bool = False) -> None:
    """Remember the nonce of an upload answered without its batch transaction (which claims it
    otherwise): a replay of it is refused as one. ``quietly``: a failure here must not hide the
    error being answered."""
    try:
        await run_in_threadpool(remember_nonce, hub.engine, checked.node.node_id, checked.nonce, checked.now)
    except HubError:
        raise
    except Exception:
        if not quietly:
            raise


@router.get("/feedback", summary="反馈：按顺序读取本节点的回执、补传要求和通知 (feedback feed)")
async def feedback(
    request: Request,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="上次读到的游标 (cursor)")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    hub = hub_of(request)
    node = await signed_node(request, await read_body(request, 0))
    page = min(limit, hub.settings.feed_page_size)

    def load() -> list[dict[str, Any]]:
        with hub.engine.connect() as connection:
            return read_feed(connection, node.node_id, after, page + 1)

    items = await run_in_threadpool(load)
    more = len(items) > page
    items = items[:page]
    return {"items": items, "next": items[-1]["cursor"] if items else after, "more": more}


@router.get("/spec", summary="国家平台接受的数据规范版本 (accepted spec versions)")
async def spec_versions(request: Request) -> dict[str, Any]:
    await signed_node(request, await read_body(request, 0))
    spec = hub_of(request).validator.spec
    return {"version": spec.version, "accepted_versions": spec.accepted_versions, "tables": len(spec.tables)}
