"""Following the hub's feedback feed (Art. 8, 11): lost receipts, re-upload requests (补传), notices.

The hub keeps, per node, an ordered feed of every receipt it issued, every re-upload request and
every notice of the national operators. The node reads it from a cursor persisted in ``node_state``
(``feedback.cursor``), so nothing is skipped across restarts and no request is executed twice:

``receipt``   body = the receipt of batch ``batch_id``. Applied when the node still holds that batch
              unacknowledged (the answer to the upload was lost); otherwise already known.
``reupload``  a request to send again records the hub lacks. Body, one of::

                  {"table": "SECTION", "keys": ["<key>", ...], "reason_zh": "...", "reason_en": "..."}
                  {"table": "SECTION", "day": "2026-11-27", "reason_zh": "..."}
                  {"day": "2026-11-27"}                      # every table of that day

              ``table`` is the table's name or DATA_NO; ``keys`` are record keys as the receipts
              spell them; ``day`` is the Asia/Shanghai day on which the node acquired the records
              (the reconciliation bucket). For each key in scope the newest version the hub accepted
              is queued again, unchanged (same envelope, category and channel), as a new outbox row
              with source ``reupload``; a key with a newer undecided version is left to that one.
              The new rows, the cursor and an audit entry commit together: a crash never executes a
              request twice. Keys the node no longer holds are reported in a warning alert.
``notice``    body ``{"message_zh": "...", "message_en": "...", "code": "...", "level": "info"}``
              (``level`` optional, default info) becomes an alert of kind ``notice``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, select

from ggzy.node.context import NodeContext
from ggzy.node.models import UNDECIDED, batches, outbox
from ggzy.node.models import state as node_state
from ggzy.node.outbox import NewRecord, keys_in
from ggzy.node.uploader import ALERT_LEVELS, raise_alert, record_link_attempt, utc
from ggzy.protocol import HubUnavailable
from ggzy.security.audit import AuditEntry
from ggzy.spec import TableSpec
from ggzy.store.upsert import upsert

__all__ = [
    "CURSOR",
    "FeedbackClient",
    "FeedbackPoller",
    "FeedbackResult",
    "ReuploadRequest",
    "parse_reupload",
]

log = logging.getLogger(__name__)

CURSOR = "feedback.cursor"
SHANGHAI = ZoneInfo("Asia/Shanghai")
_CHUNK = 400


class FeedbackClient(Protocol):
    def feedback(self, after: int = 0, limit: int = 100) -> dict[str, Any]: ...


@dataclass
class FeedbackResult:
    items: int = 0
    receipts_applied: int = 0
    reupload_rows: int = 0
    reupload_missing: int = 0
    notices: int = 0
    ignored: int = 0
    cursor: int = 0


@dataclass(frozen=True)
class ReuploadRequest:
    table: TableSpec | None  # None: every table (only with ``day``)
    keys: tuple[str, ...] = ()
    day: dt.date | None = None
    reason: str = ""


class BadRequest(ValueError):
    pass


def parse_reupload(body: Mapping[str, Any], spec: Any) -> ReuploadRequest:
    """The request in ``body`` (shapes in the module docstring); BadRequest when it is not one."""
    table_name = body.get("table")
    table: TableSpec | None = None
    if table_name is not None:
        table = spec.table(str(table_name))
        if table is None:
            raise BadRequest(f"unknown table {table_name!r}")
    keys = body.get("keys")
    day_text = body.get("day")
    reason = str(body.get("reason_zh") or body.get("reason_en") or "")
    if keys is not None:
        if table is None or not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise BadRequest("keys must be a list of strings, with a table")
        return ReuploadRequest(table, tuple(keys), None, reason)
    if isinstance(day_text, str):
        try:
            day = dt.date.fromisoformat(day_text)
        except ValueError:
            raise BadRequest(f"day {day_text!r} is not YYYY-MM-DD") from None
        return ReuploadRequest(table, (), day, reason)
    raise BadRequest("a re-upload request needs keys (with a table) or a day")


class FeedbackPoller:
    def __init__(self, ctx: NodeContext, client: FeedbackClient, *, page_size: int = 100) -> None:
        self.ctx = ctx
        self.client = client
        self.page_size = page_size
        self.last_error: str | None = None

    # --- the cursor ---

    def cursor(self) -> int:
        with self.ctx.engine.connect() as connection:
            value = connection.execute(select(node_state.c.value).where(node_state.c.name == CURSOR)).scalar()
        return int(value) if value is not None else 0

    @staticmethod
    def _save_cursor(connection: Connection, cursor: int) -> None:
        upsert(connection, node_state, [{"name": CURSOR, "value": str(cursor)}], ["name"], replace=["value"])

    def _advance(self, cursor: int) -> None:
        writer = self.ctx.engine.connect().execution_options(sqlite_begin="IMMEDIATE")
        with writer as connection, connection.begin():
            self._save_cursor(connection, cursor)

    # --- polling ---

    def poll_once(self) -> FeedbackResult:
        """Read and handle every new item; raises HubUnavailable when the hub cannot be reached."""
        result = FeedbackResult(cursor=self.cursor())
        while True:
            started = time.monotonic()
            try:
                page = self.client.feedback(after=result.cursor, limit=self.page_size)
            except HubUnavailable as exc:
                record_link_attempt(self.ctx.engine, False, time.monotonic() - started)
                self.last_error = str(exc)
                raise
            record_link_attempt(self.ctx.engine, True, time.monotonic() - started)
            self.last_error = None
            items = page.get("items") or []
            for item in items:
                self.handle(item, result)
                result.cursor = int(item["cursor"])
                result.items += 1
            if items:
                # once per page: handling a receipt or a notice twice (after a crash) changes nothing,
                # and a re-upload request has already committed the cursor with its records
                self._advance(result.cursor)
            if not page.get("more") or not items:
                return result

    def handle(self, item: Mapping[str, Any], result: FeedbackResult) -> None:
        cursor = int(item["cursor"])
        kind = item.get("kind")
        body = item.get("body") or {}
        if kind == "receipt":
            if self._apply_lost_receipt(str(item.get("batch_id") or ""), body):
                result.receipts_applied += 1
            else:
                result.ignored += 1
        elif kind == "reupload":
            self._reupload(cursor, body, result)  # commits the cursor with the re-queued rows
        elif kind == "notice":
            self._notice(cursor, body)  # an open alert with the same text is not added twice
            result.notices += 1
        else:
            log.warning("feedback item %s of unknown kind %r ignored", cursor, kind)
            result.ignored += 1

    # --- receipts ---

    def _apply_lost_receipt(self, batch_id: str, receipt: Mapping[str, Any]) -> bool:
        with self.ctx.engine.connect() as connection:
            pending = connection.execute(
                select(batches.c.batch_id).where(
                    batches.c.batch_id == batch_id, batches.c.acknowledged_at.is_(None)
                )
            ).first()
        if pending is None:
            return False
        batch = self.ctx.outbox.batch_by_id(batch_id)
        if batch is None:
            return False
        try:
            self.ctx.outbox.apply_receipt(batch, receipt)
        except ValueError as exc:  # the feed's receipt does not fit the local batch: leave it to the resend
            log.error("receipt of batch %s from the feed does not fit: %s", batch_id, exc)
            return False
        log.info("applied the lost receipt of batch %s from the feed", batch_id)
        return True

    # --- notices ---

    def _notice(self, cursor: int, body: Mapping[str, Any]) -> None:
        level = str(body.get("level") or "info")
        level = level if level in ALERT_LEVELS else "info"
        text = str(body.get("message_zh") or body.get("message_en") or body)
        code = body.get("code")
        message = f"国家平台通知（反馈#{cursor}{'，' + str(code) if code else ''}）：{text}"
        raise_alert(self.ctx.engine, "notice", level, message)

    # --- re-upload requests ---

    def _reupload(self, cursor: int, body: Mapping[str, Any], result: FeedbackResult) -> None:
        try:
            request = parse_reupload(body, self.ctx.spec)
        except BadRequest as exc:
            log.error("re-upload request %s cannot be executed: %s", cursor, exc)
            raise_alert(
                self.ctx.engine,
                "reupload",
                "warning",
                f"国家平台补传要求（反馈#{cursor}）格式无法识别，未执行：{exc} (E-NODE-REUPLOAD-BAD)",
            )
            result.ignored += 1
            self._advance(cursor)
            return
        rows, missing = self._rows_to_resend(request)
        new_records = [self._again(row, cursor) for row in rows]

        def commit_with_rows(connection: Connection) -> None:
            self._save_cursor(connection, cursor)
            self.ctx.audit.append(
                connection,
                AuditEntry(
                    action="reupload.execute",
                    object=f"feed:{cursor}",
                    outcome="success",
                    account="hub",
                    role="hub",
                    detail={
                        "table": request.table.name if request.table else None,
                        "day": request.day.isoformat() if request.day else None,
                        "keys": len(request.keys),
                        "queued": len(new_records),
                        "missing": missing[:50],
                    },
                ),
            )

        self.ctx.outbox.enqueue(new_records, within=commit_with_rows)
        result.reupload_rows += len(new_records)
        result.reupload_missing += len(missing)
        log.info(
            "re-upload request %s: %d records queued, %d not held", cursor, len(new_records), len(missing)
        )
        if missing:
            raise_alert(
                self.ctx.engine,
                "reupload",
                "warning",
                f"国家平台补传要求（反馈#{cursor}）中有{len(missing)}条记录本地已无可补传的版本，"
                f"如：{'、'.join(missing[:5])} (E-NODE-REUPLOAD-MISSING)",
            )

    def _again(self, row: Any, cursor: int) -> NewRecord:
        table = self.ctx.spec.tables[row.table_name]
        return NewRecord(
            table=table,
            key=row.key,
            record=dict(row.record),
            channel=row.channel,
            redacted=list(row.redacted or []),
            source="reupload",
            source_ref=f"feed:{cursor}:{row.id}",
            published_at=utc(row.published_at) if row.published_at is not None else None,
            acquired_at=utc(row.acquired_at),  # same day bucket as the version the hub lost
        )

    def _rows_to_resend(self, request: ReuploadRequest) -> tuple[list[Any], list[str]]:
        """The newest accepted row of each key in scope (in outbox order), and the keys with none."""
        o = outbox.c
        with self.ctx.engine.connect() as connection:
            if request.keys:
                assert request.table is not None
                candidates: list[Any] = []
                keys = sorted(set(request.keys))
                for start in range(0, len(keys), _CHUNK):
                    candidates += connection.execute(
                        select(outbox).where(
                            o.table_name == request.table.name, o.key.in_(keys[start : start + _CHUNK])
                        )
                    ).all()
                wanted: Sequence[tuple[str, str]] = [(request.table.name, key) for key in keys]
            else:
                assert request.day is not None
                start_utc, end_utc = _day_bounds(request.day)
                where = [o.acquired_at >= start_utc, o.acquired_at < end_utc]
                if request.table is not None:
                    where.append(o.table_name == request.table.name)
                in_day = connection.execute(select(o.table_name, o.key).where(and_(*where)).distinct()).all()
                wanted = sorted({(row.table_name, row.key) for row in in_day})
                candidates = self._rows_of(connection, wanted)
        newest_accepted: dict[tuple[str, str], Any] = {}
        undecided: set[tuple[str, str]] = set()
        for row in candidates:
            ident = (row.table_name, row.key)
            if row.state in UNDECIDED:
                undecided.add(ident)
            elif row.state == "accepted" and (
                ident not in newest_accepted or row.id > newest_accepted[ident].id
            ):
                newest_accepted[ident] = row
        chosen = sorted(
            (row for ident, row in newest_accepted.items() if ident not in undecided), key=lambda row: row.id
        )
        missing = [
            key
            for table, key in wanted
            if (table, key) not in newest_accepted and (table, key) not in undecided
        ]
        return chosen, missing

    @staticmethod
    def _rows_of(connection: Connection, wanted: Sequence[tuple[str, str]]) -> list[Any]:
        rows: list[Any] = []
        # One index search per key (ix_outbox_key); a row-value IN list would scan the outbox.
        for matches in keys_in((outbox.c.table_name, outbox.c.key), sorted(set(wanted))):
            rows += connection.execute(select(outbox).where(matches)).all()
        return rows


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The Asia/Shanghai day as a UTC interval (the outbox stores UTC)."""
    start = dt.datetime.combine(day, dt.time(), SHANGHAI).astimezone(dt.UTC)
    return start, start + dt.timedelta(days=1)
