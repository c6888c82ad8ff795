"""Intake: from what a provincial system hands over to a durable, acknowledged outbox row.

Every intake path (push API, drop folder, database pull, the ``ggzy node intake`` command) calls
:meth:`Intake.accept` with a list of items; each item ends as one of

``accepted``  stored, queued for its channel;
``held``      stored, but pre-validation found errors and ``hold_invalid`` is on: it waits for a
              correction instead of being sent;
``refused``   not stored at all, with a stable code and a Chinese message: not a record envelope,
              unknown table, a secret (涉密) record, no business key, a publication time more
              than ``clock_tolerance_seconds`` ahead of the node's clock or missing on a realtime
              trade record (as the hub would refuse them, Art. 9), or the disk guard says full.

Per record, in order: read the envelope; refuse secrets; stamp ``acquired_at`` (now, UTC) and
``published_at`` (from the source, else from the table's publication-time field, local time of
Asia/Shanghai); label the category when the source gave none (published within
``realtime_window_hours`` → realtime, otherwise history; ``test`` only when labelled); redact
(:mod:`ggzy.node.redaction`); assign a 统一交易标识码 where configured; pre-validate with the shared
engine (field and cross-field rules; the hub holds the history for cross-record rules); form the key;
pick the channel (realtime → 1, history and test → 2).

All stored rows of one call, the counters (``node_state``: ``intake:<outcome>``,
``intake:refused:<code>``, ``redacted:<table>:<field>``) and one audit entry (``intake.redact``) are
written in ONE transaction, and :meth:`accept` returns only after it committed: the returned results
are the acknowledgement, and a crash before that leaves no trace of the call.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from typing import cast as typed
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Connection, Engine, Text, cast, select

from ggzy.identifiers import make_deal_code
from ggzy.interchange import Category, SourceItem
from ggzy.node.context import NodeContext
from ggzy.node.models import outbox
from ggzy.node.models import state as node_state
from ggzy.node.outbox import NewRecord
from ggzy.node.redaction import RedactionError, RedactionMode, Redactor, is_secret
from ggzy.security.audit import AuditEntry
from ggzy.security.keys import load_or_create_key
from ggzy.settings import NodeSettings
from ggzy.spec import Domain, InfoClass, Privacy, Spec, TableSpec
from ggzy.store.database import serialise_record
from ggzy.store.upsert import dialect_insert
from ggzy.validation.findings import Finding, make_finding
from ggzy.validation.structure import Envelope, read_envelope
from ggzy.validation.timeliness import local_time, publication_findings, publication_time

__all__ = [
    "DiskGuard",
    "Intake",
    "IntakeResult",
    "IntakeSummary",
    "Outcome",
    "label_category",
    "publication_time",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")
DiskGuard = Callable[[], bool]  # True while intake may store more (the disk guard of the node)

# Codes that refuse a record outright (it is not stored): nothing an operator could correct in place.
_REFUSING = frozenset(
    {"E-STRUCT-JSON", "E-STRUCT-NOT-OBJECT", "E-STRUCT-TABLE", "E-STRUCT-OP", "E-STRUCT-DATA", "E-STRUCT-KEY"}
)
_NODE_MESSAGES = {
    "E-NODE-DISK-FULL": (
        "本地磁盘空间不足，暂停接收数据，请稍后重试",
        "the node's disk is nearly full; intake is refused until space is freed",
    ),
    "E-NODE-REDACTION": (
        "个人信息脱敏失败，记录未保存",
        "redaction of personal data failed; the record was not stored",
    ),
    "E-NODE-TEXT": (
        "记录含有无法存储和上传的文字（空字符或不成对的代理项\\ud800–\\udfff），记录未保存，请在源系统更正",
        "the record holds text that cannot be stored or sent (a NUL or an unpaired surrogate); not stored",
    ),
    "E-NODE-DEAL-SERIAL": (
        "当日统一交易标识码流水号已用尽",
        "the daily serial of 统一交易标识码 is exhausted",
    ),
}
# Fields that give a record's trade class (交易分类), in order of preference.
_TRADE_CLASS_FIELDS = (
    "TENDER_PROJECT_TYPE",
    "TENDER_PROJECT_CLASSIFY_CODE",
    "PROJECT_TYPE",
    "PROJECT_CLASSIFY_CODE",
    "TRADE_TYPE",
)
_TRADE_CLASS = re.compile(r"[A-Z]\d{2}")
_DOMAIN_TRADE_CLASS = {
    Domain.CONSTRUCTION: "A99",
    Domain.PROCUREMENT: "D01",
    Domain.LAND: "B01",
    Domain.MINING: "C02",
    Domain.PROPERTY: "E01",
    Domain.OTHER: "F99",
}
_CHANNELS = {category.value: category.channel for category in Category}


class Outcome:
    ACCEPTED = "accepted"
    HELD = "held"
    REFUSED = "refused"


@dataclass(slots=True)
class IntakeResult:
    """What became of one item of an intake call."""

    index: int  # 0-based position in the call
    outcome: str  # accepted | held | refused
    line: int = 0  # where the item came from in its source (line, row, element)
    table: str | None = None
    id: int | None = None  # the outbox row
    key: str | None = None
    channel: int | None = None
    category: str | None = None
    code: str | None = None  # why it was refused (or the first error of a held record)
    message_zh: str | None = None
    message_en: str | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    redacted: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "line": self.line,
            "outcome": self.outcome,
            "table": self.table,
            "id": self.id,
            "key": self.key,
            "channel": self.channel,
            "category": self.category,
            "code": self.code,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
            "findings": self.findings,
            "redacted": self.redacted,
        }


@dataclass
class IntakeSummary:
    """Counts of one or more intake calls, for reports and the command line."""

    by_table: dict[str, Counter[str]] = field(default_factory=dict)  # table -> outcome -> n
    refused_codes: Counter[str] = field(default_factory=Counter)
    redacted: Counter[str] = field(default_factory=Counter)  # "TABLE.FIELD" -> records

    def add(self, results: Iterable[IntakeResult]) -> None:
        for result in results:
            self.by_table.setdefault(result.table or "-", Counter())[result.outcome] += 1
            if result.outcome == Outcome.REFUSED and result.code:
                self.refused_codes[result.code] += 1
            for name in result.redacted:
                self.redacted[f"{result.table}.{name}"] += 1

    def total(self, outcome: str) -> int:
        return sum(counts[outcome] for counts in self.by_table.values())

    def line_zh(self) -> str:
        return (
            f"共 {sum(sum(c.values()) for c in self.by_table.values())} 条：接收 {self.total(Outcome.ACCEPTED)} 条，"
            f"暂存待更正 {self.total(Outcome.HELD)} 条，拒收 {self.total(Outcome.REFUSED)} 条；"
            f"脱敏字段 {sum(self.redacted.values())} 处"
        )


def label_category(
    table: TableSpec,
    data: Mapping[str, str],
    published: dt.datetime | None,
    now: dt.datetime,
    window_hours: float,
) -> str:
    """The category of a record its source did not label (Art. 10).

    Published within the window → realtime, earlier → history. Without a publication time the
    time of the stage (the table's event-time field) stands in; a record with neither is treated as
    realtime: it has just reached the node, and holding back a fresh record costs more than sending an
    old one early (a realtime trade record without a publication time is then refused, as the hub
    would refuse it). ``test`` is never guessed.
    """
    moment = published or (local_time(data.get(table.event_time)) if table.event_time else None)
    if moment is None or now - moment <= dt.timedelta(hours=window_hours):
        return Category.REALTIME.value
    return Category.HISTORY.value


@dataclass(slots=True)
class _Pending:
    """A record on its way to the outbox."""

    index: int
    line: int
    envelope: Envelope
    raw: Mapping[str, Any]
    data: dict[str, str]
    findings: list[Finding]
    published: dt.datetime | None
    category: str
    redacted: Mapping[str, str] = field(default_factory=dict)  # field -> masked | removed | pseudonym
    key: str | None = None


class _Code:
    """A deal code being assigned; shared by every record of one transaction in a call."""

    __slots__ = ("trade_class", "value")

    def __init__(self, value: str | None = None, trade_class: str = "") -> None:
        self.value = value
        self.trade_class = trade_class


class DealCodeAssigner:
    """统一交易标识码 for transactions that arrive without one (``assign_deal_code``).

    The code names one transaction (a section, a lot, a listing), so a record lacking one takes, in
    order: the code of an earlier version of the same record (in this call, assigned earlier, or in
    the outbox); the code of the one record of the same transaction it links to — the nearest earlier
    stage whose table requires a code (a section, not its tender project, whose code is optional
    because a project holds several transactions), found the same ways; else a new code. New codes
    are invented only for trade tables that require one and whose key does not contain it (a source
    that cannot send a code would not send the invented one with its update).

    New codes are ``<class>-<assigner_uscc>-<today, Shanghai>-<serial>-<check>``: the class from the
    record's own class field (TENDER_PROJECT_TYPE, PROJECT_TYPE …; a section has
    TENDER_PROJECT_CLASSIFY_CODE), else
    ``deal_code_trade_class``, else a default per domain; the serial is a per-day counter in
    ``node_state`` (``deal_serial:<yyyymmdd>``) reserved in its own transaction, so it continues after a
    restart and two processes never share one (a crash may leave a gap, never a duplicate). Codes this
    node invented are remembered as ``deal:<table>|<key>`` with the records that carry them.
    """

    def __init__(self, engine: Engine, spec: Spec, settings: NodeSettings) -> None:
        if not settings.assigner_uscc:
            raise ValueError(
                "assign_deal_code needs assigner_uscc (the USCC of the assigning trading system)"
            )
        self.engine = engine
        self.spec = spec
        self.uscc = settings.assigner_uscc
        self.default_class = settings.deal_code_trade_class

    def assign(self, pendings: Sequence[_Pending], today: dt.date) -> tuple[dict[str, str], dict[int, str]]:
        """Fill missing codes in place; returns the state rows to store with the records, and refusals."""
        wanting = [
            p for p in pendings if p.envelope.table.deal_code and not p.data.get(p.envelope.table.deal_code)
        ]
        if not wanting:
            return {}, {}
        memo: dict[tuple[str, str], _Code] = {}
        fresh: list[tuple[_Pending, _Code]] = []
        chosen: dict[int, _Code] = {}
        with self.engine.connect() as connection:
            for pending in wanting:
                table = pending.envelope.table
                key = (
                    table.key_of(pending.data)
                    if all(pending.data.get(n) for n in table.business_key)
                    else None
                )
                code = self._known(connection, memo, table, key, pending.data)
                if code is None:
                    if key is None or not _may_invent(table):
                        continue  # nothing to inherit and nothing we may invent: pre-validation will say so
                    code = _Code(trade_class=self._trade_class(table, pending.data))
                    fresh.append((pending, code))
                if key is not None:
                    memo[(table.name, key)] = code
                chosen[pending.index] = code
        refusals: dict[int, str] = {}
        updates: dict[str, str] = {}
        if fresh:
            first = self._reserve(today, len(fresh))
            for offset, (pending, code) in enumerate(fresh):
                serial = first + offset
                if serial > 999_999:
                    refusals[pending.index] = "E-NODE-DEAL-SERIAL"
                    continue
                code.value = make_deal_code(code.trade_class, self.uscc, today, serial)
                table = pending.envelope.table
                updates[f"deal:{table.name}|{table.key_of(pending.data)}"] = code.value
        for pending in wanting:
            code = chosen.get(pending.index)
            name = pending.envelope.table.deal_code
            if code is not None and code.value and name and pending.index not in refusals:
                pending.data = {**pending.data, name: code.value}  # never write into the caller's dict
        return updates, refusals

    def _known(
        self,
        connection: Connection,
        memo: dict[tuple[str, str], _Code],
        table: TableSpec,
        key: str | None,
        data: Mapping[str, str],
    ) -> _Code | None:
        if key is not None:
            found = self._of_record(connection, memo, table, key)
            if found is not None:
                return found
        for link in reversed(table.parents + table.predecessors):  # the nearest stage first
            target = self.spec.tables[link.table]
            if not _transaction_level(target):
                continue
            # The one record of the same transaction: its whole key from the link, or same-named fields.
            values = {name: data.get(name) or "" for name in target.business_key}
            values.update({parent: data.get(child) or "" for child, parent in link.fields.items()})
            if all(values.get(name) for name in target.business_key):
                found = self._of_record(connection, memo, target, target.key_of(values))
                if found is not None:
                    return found
        return None

    def _of_record(
        self, connection: Connection, memo: dict[tuple[str, str], _Code], table: TableSpec, key: str
    ) -> _Code | None:
        known = memo.get((table.name, key))
        if known is not None:
            return known
        stored = connection.execute(
            select(node_state.c.value).where(node_state.c.name == f"deal:{table.name}|{key}")
        ).scalar()
        if stored:
            return _Code(stored)
        rows = connection.execute(
            select(outbox.c.record)
            .where(outbox.c.table_name == table.name, outbox.c.key == key)
            .order_by(outbox.c.id.desc())
            .limit(5)
        )
        return _code_in(rows, table)

    def _trade_class(self, table: TableSpec, data: Mapping[str, str]) -> str:
        for name in _TRADE_CLASS_FIELDS:
            value = data.get(name)
            if value and _TRADE_CLASS.fullmatch(value):
                return value
        if self.default_class:
            return self.default_class
        if table.domain is Domain.MINING and table.name.startswith("EXPLOR"):
            return "C01"
        if table.domain is Domain.PROPERTY and table.name.startswith("STOCK"):
            return "E02"
        return _DOMAIN_TRADE_CLASS.get(table.domain, "F99")

    def _reserve(self, day: dt.date, count: int) -> int:
        """Take ``count`` serials of ``day`` in a committed transaction; returns the first."""
        name = f"deal_serial:{day:%Y%m%d}"
        with (
            self.engine.connect().execution_options(sqlite_begin="IMMEDIATE") as connection,
            connection.begin(),
        ):
            statement = dialect_insert(connection, node_state).values(name=name, value=str(count))
            statement = statement.on_conflict_do_update(
                index_elements=["name"],
                set_={"value": cast(cast(node_state.c.value, BigInteger) + count, Text)},
            ).returning(node_state.c.value)
            last = int(connection.execute(statement).scalar_one())
        return last - count + 1


def _transaction_level(table: TableSpec) -> bool:
    """A table whose every record belongs to exactly one transaction (its code is required).

    A tender project's code is optional: a project with three sections holds three transactions.
    """
    spec_field = table.field_map.get(table.deal_code or "")
    return spec_field is not None and spec_field.required


def _may_invent(table: TableSpec) -> bool:
    """A new code only for a trade record of one transaction whose key does not contain the code."""
    return (
        table.info_class is InfoClass.TRADE
        and _transaction_level(table)
        and table.deal_code not in table.business_key
    )


def _code_in(rows: Iterable[Any], table: TableSpec) -> _Code | None:
    for row in rows:
        data = (row.record or {}).get("data") or {}
        value = data.get(table.deal_code) if table.deal_code else None
        if isinstance(value, str) and value:
            return _Code(value)
    return None


def _add_counters(connection: Connection, counters: Mapping[str, int]) -> None:
    if not counters:
        return
    statement = dialect_insert(connection, node_state)
    statement = statement.on_conflict_do_update(
        index_elements=["name"],
        set_={
            "value": cast(
                cast(node_state.c.value, BigInteger) + cast(statement.excluded.value, BigInteger), Text
            )
        },
    )
    connection.execute(statement, [{"name": name, "value": str(n)} for name, n in sorted(counters.items())])


def _too_large(index: int, line: int, table: str, size: int, settings: NodeSettings) -> IntakeResult:
    limit = settings.max_record_bytes
    return IntakeResult(
        index,
        Outcome.REFUSED,
        line=line,
        table=table,
        code="E-INPUT-TOO-LARGE",
        message_zh=f"记录过大：序列化后 {size} 字节，超过上限 {limit} 字节（node.max_record_bytes），未保存；请精简或拆分后重新提交",
        message_en=f"record too large: {size} bytes serialised, over the limit of {limit} bytes; not stored",
    )


def _refusal(
    index: int, line: int, code: str, table: str | None = None, finding: Finding | None = None
) -> IntakeResult:
    if finding is not None:
        zh, en = finding.message_zh, finding.message_en
    elif code in _NODE_MESSAGES:
        zh, en = _NODE_MESSAGES[code]
    else:
        made = make_finding(code)
        zh, en = made.message_zh, made.message_en
    return IntakeResult(
        index, Outcome.REFUSED, line=line, table=table, code=code, message_zh=zh, message_en=en
    )


class Intake:
    """The one door into the outbox; safe to share between threads (calls are serialised)."""

    def __init__(
        self,
        ctx: NodeContext,
        *,
        disk_guard: DiskGuard | None = None,
        pseudonym_key: bytes | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        on_stored: Callable[[list[IntakeResult]], object] | None = None,
    ) -> None:
        """``on_stored`` is told each call's results after the commit (the service wakes its uploaders)."""
        self.ctx = ctx
        self.on_stored = on_stored
        self.settings = ctx.settings
        self.spec = ctx.spec
        self.disk_guard: DiskGuard = disk_guard or (lambda: True)
        # A key of its own, not the signing key: rotating the hub key must not give every person a
        # new pseudonym (the hub would see new people). Keep it with the node key and back both up.
        key = pseudonym_key or load_or_create_key(self.settings.key_file.parent / "pseudonym.key")
        self.redactor = Redactor(ctx.spec, key, RedactionMode(self.settings.redact_personal))
        self.deal_codes = (
            DealCodeAssigner(ctx.engine, ctx.spec, self.settings) if self.settings.assign_deal_code else None
        )
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._personal: dict[str, frozenset[str]] = {
            table.name: frozenset(f.name for f in table.fields if f.privacy is Privacy.PERSONAL)
            for table in ctx.spec.tables.values()
        }
        self._lock = threading.Lock()

    def accept(
        self,
        raw_items: Iterable[SourceItem] | Iterable[Any],
        source: str,
        source_ref: str,
        *,
        state_updates: Mapping[str, str] | None = None,
    ) -> list[IntakeResult]:
        """Store what can be stored in one transaction; the results are the acknowledgement.

        ``raw_items`` are :class:`SourceItem` objects from a reader, or envelopes (anything that is
        not a JSON object is refused with ``E-STRUCT-NOT-OBJECT``).

        ``state_updates`` (``node_state`` rows, e.g. a pull cursor or a file digest) commit with the
        records, so a source's position moves exactly when its records are safe.
        """
        items = [_as_item(item, source, n + 1) for n, item in enumerate(raw_items)]
        results = self._accept(items, source, source_ref, dict(state_updates or {}))
        if self.on_stored is not None and any(r.id is not None for r in results):
            self.on_stored(results)
        return results

    def _accept(
        self, items: list[SourceItem], source: str, source_ref: str, state_updates: dict[str, str]
    ) -> list[IntakeResult]:
        if not items and not state_updates:
            return []
        now = self.clock()
        results: list[IntakeResult | None] = [None] * len(items)
        if items and not self.disk_guard():
            refused = [_refusal(i, item.line, "E-NODE-DISK-FULL") for i, item in enumerate(items)]
            with self._lock:
                self._commit([], refused, [], source, source_ref, state_updates={}, redacted=Counter())
            return refused
        pendings: list[_Pending] = []
        for index, item in enumerate(items):
            pending_or_refusal = self._read(index, item, now)
            if isinstance(pending_or_refusal, IntakeResult):
                results[index] = pending_or_refusal
            else:
                pendings.append(pending_or_refusal)
        if self.deal_codes is None:
            # Checking needs no lock: concurrent calls (the push API's requests) check their records
            # while another call writes (SQLite writes without holding the interpreter lock).
            stored, redacted = self._prepare_all(pendings, results, now, source, source_ref)
            with self._lock:
                ids = self._commit_stored(stored, results, source, source_ref, state_updates, redacted)
        else:
            # Serials are taken in commit order: assignment, checks and the write hold the lock together.
            with self._lock:
                codes, serial_refusals = self.deal_codes.assign(pendings, now.astimezone(SHANGHAI).date())
                state_updates.update(codes)
                for pending in pendings:
                    if pending.index in serial_refusals:
                        results[pending.index] = _refusal(
                            pending.index, pending.line, serial_refusals[pending.index]
                        )
                pendings = [p for p in pendings if p.index not in serial_refusals]
                stored, redacted = self._prepare_all(pendings, results, now, source, source_ref)
                ids = self._commit_stored(stored, results, source, source_ref, state_updates, redacted)
        for (pending, record), row_id in zip(stored, ids, strict=True):
            held = record.held and bool(record.findings)
            first = record.findings[0] if held else None
            results[pending.index] = IntakeResult(
                pending.index,
                Outcome.HELD if record.held else Outcome.ACCEPTED,
                pending.line,
                record.table.name,
                row_id,
                record.key,
                record.channel,
                pending.category,
                first["code"] if first else None,
                first["message_zh"] if first else None,
                first["message_en"] if first else None,
                record.findings,
                record.redacted,
            )
        assert all(r is not None for r in results)
        return typed(list[IntakeResult], results)  # every slot filled, as asserted

    def _prepare_all(
        self,
        pendings: list[_Pending],
        results: list[IntakeResult | None],
        now: dt.datetime,
        source: str,
        source_ref: str,
    ) -> tuple[list[tuple[_Pending, NewRecord]], Counter[str]]:
        stored: list[tuple[_Pending, NewRecord]] = []
        redacted: Counter[str] = Counter()
        acquired_text = now.isoformat()
        for pending in pendings:
            outcome = self._prepare(pending, now, acquired_text, source, source_ref)
            if isinstance(outcome, IntakeResult):
                results[pending.index] = outcome
                continue
            stored.append((pending, outcome))
            if pending.redacted:
                table_name = pending.envelope.table.name
                for name in pending.redacted:
                    redacted[f"{table_name}:{name}"] += 1
        return stored, redacted

    def _commit_stored(
        self,
        stored: list[tuple[_Pending, NewRecord]],
        results: list[IntakeResult | None],
        source: str,
        source_ref: str,
        state_updates: dict[str, str],
        redacted: Counter[str],
    ) -> list[int]:
        return self._commit(
            [record for _, record in stored],
            [r for r in results if r is not None],
            [p for p, _ in stored],
            source,
            source_ref,
            state_updates=state_updates,
            redacted=redacted,
        )

    # --- one record ---

    def _read(self, index: int, item: SourceItem, now: dt.datetime) -> _Pending | IntakeResult:
        if item.raw is None:
            finding = (
                make_finding("E-STRUCT-NOT-OBJECT")
                if item.extra.get("not_object")
                else make_finding("E-STRUCT-JSON", None, None, line=item.line, detail=item.error or "")
            )
            return _refusal(index, item.line, finding.code, finding=finding)
        raw = item.raw
        findings: list[Finding] = []
        envelope = read_envelope(raw, self.spec, findings)
        table_name = envelope.table.name if envelope is not None else _table_name(raw)
        refusing = next((f for f in findings if f.code in _REFUSING), None) if findings else None
        if envelope is None or refusing is not None:
            finding = (
                refusing or next((f for f in findings if f.is_error), None) or make_finding("E-STRUCT-DATA")
            )
            return _refusal(index, item.line, finding.code, table_name, finding)
        if envelope.secret or (
            ("secret" in raw or "secret" in envelope.data or item.extra) and is_secret(raw, item.extra)
        ):
            return _refusal(index, item.line, "E-PRIV-SECRET", table_name)
        data = envelope.data
        if "secret" in data:  # the envelope flag arrived as a column (CSV, XLSX): not data
            data = {k: v for k, v in data.items() if k != "secret"}
        published = publication_time(envelope)
        # An invalid label (E-STRUCT-CATEGORY, an error: the record is held) is replaced by the rule's.
        category = envelope.category or label_category(
            envelope.table, data, published, now, self.settings.realtime_window_hours
        )
        # Refused here as the hub would refuse them (Art. 9): the source learns at once.
        timing = publication_findings(
            envelope.table,
            envelope.op,
            category == Category.REALTIME.value,
            published,
            now,
            dt.timedelta(seconds=self.settings.clock_tolerance_seconds),
        )
        if timing:
            return _refusal(index, item.line, timing[0].code, table_name, timing[0])
        personal = self._personal[envelope.table.name]
        if personal and findings:
            findings = [_without_value(f, envelope.table) if f.field in personal else f for f in findings]
        # Redaction comes first, before anything keyed by the data is looked up or remembered.
        try:
            redaction = self.redactor.redact(envelope.table, data)
        except RedactionError:
            return _refusal(index, item.line, "E-NODE-REDACTION", table_name)
        pending = _Pending(index, item.line, envelope, raw, redaction.data, findings, published, category)
        pending.redacted = redaction.actions
        return pending

    def _prepare(
        self, pending: _Pending, now: dt.datetime, acquired_text: str, source: str, source_ref: str
    ) -> NewRecord | IntakeResult:
        envelope = pending.envelope
        table = envelope.table
        data = pending.data
        absent = [name for name in table.business_key if not data.get(name)]
        if absent:  # a key field emptied by nothing but the source: refused, it cannot be identified
            finding = make_finding("E-STRUCT-KEY", None, None, missing="、".join(absent))
            return _refusal(pending.index, pending.line, finding.code, table.name, finding)
        findings = pending.findings
        findings.extend(self.ctx.validator.check_fields(table, data, envelope.op))
        held = bool(findings) and self.settings.hold_invalid and any(f.is_error for f in findings)
        record: dict[str, Any] = {
            "table": table.name,
            "op": envelope.op,
            "category": pending.category,
            "spec_version": envelope.spec_version,
        }
        if envelope.published_at is not None:
            record["published_at"] = str(pending.raw["published_at"])  # exactly as the source wrote it
        elif pending.published is not None:
            record["published_at"] = pending.published.isoformat()
        record["acquired_at"] = acquired_text
        if envelope.source_key is not None and not self._personal[table.name]:
            record["key"] = envelope.source_key  # kept for tracing; may spell personal data otherwise
        record["data"] = data
        attachments = pending.raw.get("attachments")
        if attachments:
            record["attachments"] = attachments
        # Serialised once here: what cannot be written is refused alone, not the whole call.
        serialised = serialise_record(record)
        if serialised is None:
            return _refusal(pending.index, pending.line, "E-NODE-TEXT", table.name)
        if len(serialised.utf8) > self.settings.max_record_bytes:
            # Refused here, never queued: the hub would refuse any batch carrying it (docs/protocol.md).
            return _too_large(pending.index, pending.line, table.name, len(serialised.utf8), self.settings)
        key = table.key_of(data)
        pending.key = key
        line_ref = f"{source_ref}:{pending.line}" if pending.line else source_ref
        return NewRecord(
            table=table,
            key=key,
            record=record,
            channel=_CHANNELS[pending.category],
            held=held,
            findings=[f.to_dict() for f in findings],
            redacted=list(pending.redacted),
            source=source,
            source_ref=line_ref,
            published_at=pending.published.astimezone(dt.UTC) if pending.published else None,
            acquired_at=now,
            serialised=serialised,
        )

    # --- the one transaction ---

    def _commit(
        self,
        records: list[NewRecord],
        refused: list[IntakeResult],
        pendings: list[_Pending],
        source: str,
        source_ref: str,
        *,
        state_updates: Mapping[str, str],
        redacted: Counter[str],
    ) -> list[int]:
        counters: Counter[str] = Counter()
        held = sum(1 for r in records if r.held)
        if held:
            counters["intake:held"] = held
        if len(records) - held:
            counters["intake:accepted"] = len(records) - held
        for result in refused:
            counters[f"intake:refused:{result.code}"] += 1
        for name, n in redacted.items():
            counters[f"redacted:{name}"] = n
        actions: Counter[str] = Counter()
        for pending in pendings:
            for name, action in pending.redacted.items():
                actions[f"{pending.envelope.table.name}.{name}:{action}"] += 1
        entry = AuditEntry(
            action="intake.redact",
            object=f"{source}:{source_ref}"[:512],
            outcome="success" if records or not refused else "refused",
            account=f"intake:{source}",
            role="intake",
            source=source,
            detail={
                "records": len(records) + len(refused),
                "stored": len(records),
                "held": held,
                "refused": dict(Counter(r.code or "-" for r in refused)),
                "secret_refused": sum(1 for r in refused if r.code == "E-PRIV-SECRET"),
                "redacted": dict(sorted(actions.items())),
            },
        )

        def within(connection: Connection) -> None:
            _add_counters(connection, counters)
            self.ctx.audit.append(connection, entry)

        return self.ctx.outbox.enqueue(records, state_updates=state_updates, within=within)


def _as_item(item: object, source: str, line: int) -> SourceItem:
    if isinstance(item, SourceItem):
        return item
    if isinstance(item, dict):
        return SourceItem(source=source, line=line, raw=item)
    if isinstance(item, Mapping):
        return SourceItem(source=source, line=line, raw=dict(item))
    return SourceItem(source=source, line=line, error="not an object", extra={"not_object": True})


def _table_name(raw: Mapping[str, Any]) -> str | None:
    value = raw.get("table")
    return str(value)[:64] if value is not None else None


def _without_value(finding: Finding, table: TableSpec) -> Finding:
    """The finding about a personal field, rebuilt without the value (it must not be stored or echoed)."""
    spec = table.field_map.get(finding.field or "")
    return make_finding(finding.code, finding.field, None, name_zh=spec.name_zh if spec else finding.field)
