"""Database pull: incremental queries against the province's own database (any SQLAlchemy URL).

A :class:`~ggzy.settings.PullSource` names a query that selects the rows whose cursor column (an
update time, an increasing id) is greater than ``:cursor``, in ascending cursor order. Each poll
binds the persisted cursor (``node_state`` ``cursor:<name>``; ``initial_cursor`` before the first
poll), turns the rows into records of the source's table and hands them to intake in one call. The
new cursor — the cursor value of the last row taken — is committed in the SAME transaction as the
records: a crash before the commit leaves both unchanged (the rows are read again), a crash after
it leaves both advanced (nothing is read twice). No row is skipped or duplicated across restarts.

Rows become records like this:

- columns are matched to the table's national column names case-insensitively (PostgreSQL folds
  unquoted names to lower case); columns that are not fields of the table are left out, as are the
  cursor, op and publication-time columns unless they are fields of the table;
- values become the spec's text: date-times ``yyyyMMddHHmmss`` and dates ``yyyyMMdd`` (from native
  values, or the ISO text SQLite keeps them as), numbers without exponent, NULL is absent;
- ``op`` comes from ``op_column`` (insert/update/delete, I/U/D, 1/2/3, 新增/修改/删除); without one, a key
  the outbox has held before is an update and a new key an insert;
- ``published_at`` comes from ``published_column`` (local time of Asia/Shanghai unless it carries an
  offset); the category from the source's ``category``, else intake's rule.

A poll takes at most ``max_rows`` rows, extended to the end of a run of equal cursor values (the next
poll asks for values greater than the last one taken, so a run must never be split); when a poll is
full, the next one follows at once (:attr:`PollResult.more`).

Ties at the live edge: a row committed in the source *after* the poll with a cursor value equal to
the last one taken would be missed. Use a strictly increasing cursor (a sequence) or let the query
leave out the last seconds (``… AND UPDATE_TIME < now() - interval '5 seconds'``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.pool import NullPool

from ggzy.interchange import SourceItem
from ggzy.node.context import NodeContext
from ggzy.node.intake.service import SHANGHAI, Intake, IntakeResult
from ggzy.node.models import outbox
from ggzy.node.models import state as node_state
from ggzy.settings import PullSource
from ggzy.spec import FieldSpec, Kind, TableSpec

__all__ = ["DatabasePull", "PollResult", "cursor_state_name"]

_OPS = {
    "insert": "insert",
    "i": "insert",
    "1": "insert",
    "新增": "insert",
    "update": "update",
    "u": "update",
    "2": "update",
    "修改": "update",
    "delete": "delete",
    "d": "delete",
    "3": "delete",
    "删除": "delete",
}
_CHUNK = 500
_ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?(?:Z|[+-]\d{2}:?\d{2})?\Z"
)


def cursor_state_name(source_name: str) -> str:
    return f"cursor:{source_name}"


@dataclass
class PollResult:
    rows: int
    cursor_before: str
    cursor_after: str
    results: list[IntakeResult] = field(default_factory=list)
    more: bool = False  # the poll was full: poll again at once


class DatabasePull:
    def __init__(
        self,
        ctx: NodeContext,
        intake: Intake,
        source: PullSource,
        *,
        max_rows: int = 5000,
        engine: Engine | None = None,
    ) -> None:
        table = ctx.spec.table(source.table)
        if table is None:
            raise ValueError(f"pull source {source.name}: unknown table {source.table!r}")
        self.ctx = ctx
        self.intake = intake
        self.source = source
        self.table: TableSpec = table
        self.max_rows = max_rows
        # The province's database is only read: no pragmas, no pool kept between polls.
        self.engine = engine or create_engine(source.url, poolclass=NullPool)
        self._state_name = cursor_state_name(source.name)

    def cursor(self) -> str:
        with self.ctx.engine.connect() as connection:
            value = connection.execute(
                select(node_state.c.value).where(node_state.c.name == self._state_name)
            ).scalar()
        return value if value is not None else self.source.initial_cursor

    def poll_once(self) -> PollResult:
        before = self.cursor()
        rows, columns, last = self._fetch(before)
        if not rows:
            return PollResult(0, before, before)
        after = _cursor_text(last)
        items = self._items(rows, columns)
        results = self.intake.accept(
            items,
            "pull",
            f"{self.source.name} {before} → {after}",
            state_updates={self._state_name: after},
        )
        return PollResult(len(rows), before, after, results, more=len(rows) >= self.max_rows)

    # --- reading the source ---

    def _fetch(self, cursor: str) -> tuple[list[Sequence[Any]], list[str], Any]:
        rows: list[Sequence[Any]] = []
        last: Any = None
        with self.engine.connect() as connection:
            result = connection.execution_options(stream_results=True, yield_per=1000).execute(
                text(self.source.query), {"cursor": cursor}
            )
            columns = list(result.keys())
            position = _column_index(columns, self.source.cursor_column)
            if position is None:
                raise ValueError(
                    f"pull source {self.source.name}: the query returns no column {self.source.cursor_column}"
                )
            for row in result:
                value = row[position]
                if len(rows) >= self.max_rows and value != last:
                    break  # a run of equal cursor values is never split between polls
                rows.append(row)
                last = value
            result.close()
        return rows, columns, last

    # --- rows to records ---

    def _items(self, rows: list[Sequence[Any]], columns: list[str]) -> list[SourceItem]:
        table = self.table
        # Only the table's fields: the cursor, op and publication-time columns too when they are fields.
        mapping: list[tuple[int, FieldSpec]] = [
            (index, table.field_map[column.upper()])
            for index, column in enumerate(columns)
            if column.upper() in table.field_map
        ]
        op_index = _column_index(columns, self.source.op_column) if self.source.op_column else None
        published_index = (
            _column_index(columns, self.source.published_column) if self.source.published_column else None
        )
        envelopes: list[dict[str, Any]] = []
        for row in rows:
            data = {
                spec_field.name: _text(row[i], spec_field) for i, spec_field in mapping if row[i] is not None
            }
            data = {name: value for name, value in data.items() if value != ""}
            envelope: dict[str, Any] = {"table": table.name, "data": data}
            if op_index is not None:
                raw_op = row[op_index]
                envelope["op"] = (
                    _OPS.get(str(raw_op).strip().lower(), str(raw_op)) if raw_op is not None else "insert"
                )
            if self.source.category:
                envelope["category"] = self.source.category
            if published_index is not None:
                published = _published(row[published_index])
                if published is not None:
                    envelope["published_at"] = published.isoformat()
            envelopes.append(envelope)
        if op_index is None:
            self._infer_ops(envelopes)
        return [SourceItem(source=self.source.name, line=n, raw=e) for n, e in enumerate(envelopes, start=1)]

    def _infer_ops(self, envelopes: list[dict[str, Any]]) -> None:
        """Without an op column: a key the outbox held before is an update, a new one an insert."""
        table = self.table
        keys: list[str | None] = []
        for envelope in envelopes:
            data = envelope["data"]
            if all(data.get(name) for name in table.business_key):
                # The key as intake will form it: after redaction (pseudonyms for personal key fields).
                keys.append(table.key_of(self.intake.redactor.redact(table, data).data))
            else:
                keys.append(None)
        wanted = sorted({k for k in keys if k is not None})
        known: set[str] = set()
        with self.ctx.engine.connect() as connection:
            for start in range(0, len(wanted), _CHUNK):
                known.update(
                    connection.execute(
                        select(outbox.c.key)
                        .where(
                            outbox.c.table_name == table.name,
                            outbox.c.key.in_(wanted[start : start + _CHUNK]),
                        )
                        .distinct()
                    ).scalars()
                )
        for envelope, key in zip(envelopes, keys, strict=True):
            envelope["op"] = "update" if key is not None and key in known else "insert"
            if key is not None:
                known.add(key)


def _column_index(columns: Sequence[str], name: str | None) -> int | None:
    if name is None:
        return None
    wanted = name.upper()
    return next((i for i, column in enumerate(columns) if column.upper() == wanted), None)


def _cursor_text(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _text(value: Any, spec_field: FieldSpec) -> str:
    kind = spec_field.field_type.kind
    if isinstance(value, str) and kind in (Kind.DATETIME, Kind.DATE) and _ISO_TIME.match(value):
        value = dt.datetime.fromisoformat(value)  # SQLite keeps date-times as ISO text
    if isinstance(value, dt.datetime):
        local = value.astimezone(SHANGHAI) if value.tzinfo else value
        return local.strftime("%Y%m%d" if kind is Kind.DATE else "%Y%m%d%H%M%S")
    if isinstance(value, dt.date):
        return value.strftime("%Y%m%d") + ("000000" if kind is Kind.DATETIME else "")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _published(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=SHANGHAI)
    if isinstance(value, str):
        stripped = value.strip()
        for pattern in ("%Y%m%d%H%M%S", "%Y%m%d"):
            try:
                return dt.datetime.strptime(stripped, pattern).replace(tzinfo=SHANGHAI)
            except ValueError:
                pass
        try:
            moment = dt.datetime.fromisoformat(stripped)
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)
    return None
