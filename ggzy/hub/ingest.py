"""Receive one batch: validate every record, store what passes, count, answer with a receipt.

The whole batch is one database transaction, serialised per node: either every accepted record,
its statistics, the receipt and the feed entry are committed together, or nothing is (a crash
mid-batch leaves no trace and the node's retry of the same batch id starts afresh). A batch id seen
before returns the stored receipt unchanged and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection, Engine, bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError

from ggzy.hub.auth import claim_nonce
from ggzy.hub.feedback import lock_node
from ggzy.hub.lookup import BatchLookup, Head, link_targets
from ggzy.hub.models import (
    batches,
    feed,
    open_rejections,
    record_heads,
    record_refs,
    records,
    stats_daily,
    stats_rules,
    test_records,
)
from ggzy.interchange import Category
from ggzy.security.audit import AuditEntry, AuditLog
from ggzy.security.fieldcrypt import encrypt_sensitive
from ggzy.spec import InfoClass, Semantic, TableSpec
from ggzy.store.bulk import insert_many, match_many
from ggzy.store.database import JsonText, json_text
from ggzy.validation import Finding, Validator, make_finding
from ggzy.validation.dealcodes import DealCodePlan
from ggzy.validation.dealcodes import wants as deal_code_wants
from ggzy.validation.engine import CheckedRecord
from ggzy.validation.timeliness import publication_findings, publication_time

__all__ = [
    "CLOCK_TOLERANCE",
    "SHANGHAI",
    "BatchDigest",
    "BatchRefused",
    "IngestResult",
    "NodeIdentity",
    "NonceReplayed",
    "ingest_batch",
    "records_digest",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")
_CATEGORIES = {category.value: category for category in Category}
TIMELY_TRADE = dt.timedelta(minutes=10)
CLOCK_TOLERANCE = dt.timedelta(seconds=300)  # hub.clock_tolerance_seconds by default
_STAT_COUNTERS = (
    "received",
    "accepted",
    "rejected",
    "duplicates",
    "timely_due",
    "timely_ok",
    "rejected_keys",
    "repaired",
    "repair_seconds",
    "untimed",
)


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    node_id: str
    province: str
    platform_codes: frozenset[str]


class BatchRefused(Exception):
    """The batch as a whole cannot be taken (409 conflict and the like); nothing was stored."""

    def __init__(self, code: str, status: int, message_zh: str, message_en: str) -> None:
        super().__init__(message_en)
        self.code, self.status, self.message_zh, self.message_en = code, status, message_zh, message_en


class NonceReplayed(Exception):
    """The request's nonce was claimed before (``E-AUTH-REPLAY``); nothing was stored."""


@dataclass(slots=True)
class IngestResult:
    receipt: dict[str, Any]
    replayed: bool
    accepted: int = 0
    rejected: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    receipt_json: JsonText | None = None  # the receipt as stored, when it was serialised here

    def body(self) -> bytes:
        """The receipt as the response body (the stored text, not serialised a second time)."""
        return (self.receipt_json or json_text(self.receipt)).utf8


@dataclass(frozen=True, slots=True)
class BatchDigest:
    """What makes a retry "the same batch": the digest of its records, in the current canonical form
    and, computed only when the stored digest differs, in the form used before (a batch stored then)."""

    value: str
    legacy: Callable[[], str] | None = None

    def matches(self, stored: str) -> bool:
        return stored == self.value or (self.legacy is not None and stored == self.legacy())


def _legacy_digest(records: Sequence[Any]) -> str:
    canonical = json.dumps(records, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def records_digest(records: Sequence[Any]) -> BatchDigest:
    """The batch's records (not its envelope: ``sent_at`` may change) as key-sorted compact JSON.

    orjson writes the same bytes as the standard library for text, integers and booleans; a float may
    be spelt differently (``1e-7`` for ``1e-07``), so a batch stored before orjson is matched by the
    older form too. What orjson cannot write (integers beyond 64 bits) keeps the older form.
    """
    try:
        canonical = orjson.dumps(records, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return BatchDigest(_legacy_digest(records))
    return BatchDigest(hashlib.sha256(canonical).hexdigest(), lambda: _legacy_digest(records))


def _parse_time(value: Any) -> dt.datetime | bool | None:
    """A node-supplied time: the datetime, None when absent, False when malformed."""
    if value is None or value == "":
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value))
        if moment.tzinfo is None:
            return False
        # Stored in UTC (SQLite keeps no offset) and bucketed in Beijing time: both must exist.
        moment.astimezone(SHANGHAI)
        return moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return False


def _outside(value: Any, province: str) -> bool:
    """A well-formed region code of another province (a malformed one is the field rules' business)."""
    return isinstance(value, str) and len(value) == 6 and value.isdigit() and value[:2] != province


def _exchange_findings(
    raw: Mapping[str, Any], table: TableSpec | None, channel: int, node: NodeIdentity
) -> list[Finding]:
    """Who may send what on which channel (Art. 7, 10): checked before and beside the data rules."""
    found: list[Finding] = []
    category = raw.get("category")
    if category is None:
        found.append(make_finding("E-EXCH-CATEGORY-MISSING", "category"))
    else:
        known = _CATEGORIES.get(category) if isinstance(category, str) else None
        if known is not None and known.channel != channel:
            found.append(make_finding("E-EXCH-CHANNEL", "category", known.label_zh, channel=channel))
    for name in ("acquired_at", "sent_at"):
        if _parse_time(raw.get(name)) is False:
            found.append(make_finding("E-EXCH-TIME", name, raw.get(name)))
    data = raw.get("data")
    if table is None or not isinstance(data, dict):
        return found
    platform = data.get("PLATFORM_CODE")
    if node.platform_codes and isinstance(platform, str) and platform and platform not in node.platform_codes:
        found.append(make_finding("E-EXCH-PLATFORM", "PLATFORM_CODE", platform))
    for name, name_zh in _region_fields(table):
        value = data.get(name)
        if _outside(value, node.province):
            found.append(
                make_finding("E-EXCH-PROVINCE", name, value, name_zh=name_zh, province=node.province)
            )
    return found


_REGION_FIELDS: dict[int, tuple[TableSpec, tuple[tuple[str, str], ...]]] = {}


def _region_fields(table: TableSpec) -> tuple[tuple[str, str], ...]:
    """The region fields of a trade table (name, Chinese name), looked up once per table."""
    cached = _REGION_FIELDS.get(id(table))
    if cached is None or cached[0] is not table:
        fields = (
            tuple((f.name, f.name_zh) for f in table.fields if f.semantic is Semantic.REGION)
            if table.info_class is InfoClass.TRADE
            else ()
        )
        cached = _REGION_FIELDS[id(table)] = (table, fields)
    return cached[1]


class _Tally:
    """Statistics of one batch, added to the maintained aggregates in a few upserts at the end."""

    def __init__(self) -> None:
        self.daily: dict[tuple[str, str, dt.date, int], Counter[str]] = defaultdict(Counter)
        self.rules: Counter[tuple[str, str, dt.date, str]] = Counter()

    def add(self, bucket: tuple[str, str, dt.date, int], **counts: int) -> None:
        counter = self.daily[bucket]
        for name, count in counts.items():  # Counter.update(mapping) costs several times more
            counter[name] += count

    def rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        daily = [
            {
                "province": p,
                "table_name": t,
                "day": d,
                "channel": c,
                **{k: counts.get(k, 0) for k in _STAT_COUNTERS},
            }
            for (p, t, d, c), counts in sorted(self.daily.items())
        ]
        rules = [
            {"province": p, "table_name": t, "day": d, "rule_code": r, "count": n}
            for (p, t, d, r), n in sorted(self.rules.items())
        ]
        return daily, rules


def _timely(
    table: TableSpec,
    channel: int,
    op: str,
    published: dt.datetime | None,
    received: dt.datetime,
    tolerance: dt.timedelta,
) -> tuple[int, int, int]:
    """(due, on time, publication time missing) for the timely-reporting rate (Art. 9).

    Realtime records (channel 1) are measured against their local publication: trade information
    within ten minutes, the other classes on the same Beijing calendar day. History and test data on
    channel 2 are not measured. A publication time the receiving clock has not reached (beyond the
    tolerance; the record is refused) proves nothing and is not on time. Without a publication time
    a realtime trade record is refused (``E-EXCH-PUBLISHED-MISSING``) and a record of the other
    classes is due and not on time: saying less never improves the rate. Both are counted in
    ``untimed`` so the province sees them.
    """
    if channel != 1:
        return 0, 0, 0
    if published is None:
        if op == "delete":
            return 0, 0, 0  # a deletion publishes nothing
        if table.info_class is InfoClass.TRADE:
            return 0, 0, 1
        return 1, 0, 1
    if published - received > tolerance:
        return 1, 0, 0
    if table.info_class is InfoClass.TRADE:
        return 1, int(received - published <= TIMELY_TRADE), 0
    # Received no later than the Beijing day of publication (a day "ahead" within the tolerance is
    # still that day's upload).
    return 1, int(received.astimezone(SHANGHAI).date() <= published.astimezone(SHANGHAI).date()), 0


def _stored_receipt(
    connection: Connection, node_id: str, batch_id: str, body_digest: BatchDigest
) -> dict[str, Any] | None:
    row = connection.execute(
        select(batches.c.receipt, batches.c.body_digest).where(
            batches.c.node_id == node_id, batches.c.batch_id == batch_id
        )
    ).first()
    if row is None:
        return None
    if not body_digest.matches(row.body_digest):
        raise BatchRefused(
            "E-BATCH-CONFLICT",
            409,
            f"批次号“{batch_id}”已用于内容不同的另一批数据，请使用新的批次号",
            f"batch id {batch_id!r} was already used for a different body; use a new batch id",
        )
    receipt: dict[str, Any] = row.receipt
    return receipt


@dataclass(slots=True)
class _Prechecked:
    """One record after the rules that need no database, ready for the ones that do."""

    raw: Any
    namespace: str
    table: TableSpec | None
    checked: CheckedRecord
    exchange: list[Finding]
    published: dt.datetime | None
    acquired: dt.datetime | None
    sent: dt.datetime | None


def _precheck(
    validator: Validator,
    node: NodeIdentity,
    channel: int,
    raw_records: Sequence[Any],
    received: dt.datetime,
    tolerance: dt.timedelta,
) -> list[_Prechecked]:
    """Structure, field and cross-field rules, exchange scope, times and content digests of a batch.

    None of it reads the database, so it runs before the write transaction: on SQLite another
    request's storing (and its fsync) goes on meanwhile instead of waiting for it.
    """
    spec = validator.spec
    prechecked: list[_Prechecked] = []
    for index, raw in enumerate(raw_records):
        is_object = isinstance(raw, dict)
        namespace = "test" if is_object and raw.get("category") == "test" else "prod"
        table = spec.table(str(raw.get("table"))) if is_object else None
        exchange = _exchange_findings(raw, table, channel, node) if is_object else []
        checked = validator.check(raw, None, line=index + 1)
        envelope = checked.envelope
        published = publication_time(envelope) if envelope is not None else None
        if envelope is not None:
            exchange += publication_findings(
                envelope.table, envelope.op, channel == 1, published, received, tolerance
            )
        if published is not None:
            published = published.astimezone(dt.UTC)
        acquired = _parse_time(raw.get("acquired_at")) if is_object else None
        sent = _parse_time(raw.get("sent_at")) if is_object else None
        if checked.verdict.ok and not exchange:
            _ = checked.digest  # computed here, outside the lock
        prechecked.append(
            _Prechecked(
                raw,
                namespace,
                table,
                checked,
                exchange,
                published,
                acquired if isinstance(acquired, dt.datetime) else None,
                sent if isinstance(sent, dt.datetime) else None,
            )
        )
    return prechecked


_OUT_OF_SCOPE = frozenset({"E-EXCH-PROVINCE", "E-EXCH-PLATFORM", "E-EXCH-OWNER"})


_ATTEMPTS = 3


def ingest_batch(
    engine: Engine,
    validator: Validator,
    audit: AuditLog,
    node: NodeIdentity,
    channel: int,
    batch_id: str,
    raw_records: Sequence[Any],
    body_digest: BatchDigest | str,
    *,
    request_id: str = "-",
    source: str = "-",
    now: dt.datetime | None = None,
    nonce: tuple[str, dt.datetime] | None = None,
    clock_tolerance: dt.timedelta = CLOCK_TOLERANCE,
) -> IngestResult:
    """Ingest one batch, again from the start when another node's concurrent batch took a new key first.

    On PostgreSQL two nodes' batches run side by side (each node's are serialised); when both send
    a key nobody held, the second insert fails on the unique version and its whole transaction is
    rolled back. Read again, the key has an owner and the record gets ``E-EXCH-OWNER``, as it would
    had the batches come one after the other.
    """
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return _ingest_once(
                engine,
                validator,
                audit,
                node,
                channel,
                batch_id,
                raw_records,
                body_digest,
                request_id=request_id,
                source=source,
                now=now,
                nonce=nonce,
                clock_tolerance=clock_tolerance,
            )
        except IntegrityError:
            if attempt == _ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _ingest_once(
    engine: Engine,
    validator: Validator,
    audit: AuditLog,
    node: NodeIdentity,
    channel: int,
    batch_id: str,
    raw_records: Sequence[Any],
    body_digest: BatchDigest | str,
    *,
    request_id: str = "-",
    source: str = "-",
    now: dt.datetime | None = None,
    nonce: tuple[str, dt.datetime] | None = None,
    clock_tolerance: dt.timedelta = CLOCK_TOLERANCE,
) -> IngestResult:
    """Decide every record of the batch and store the verdicts, in one write transaction.

    On SQLite (one writer at a time) the batch is decided on a snapshot before the write
    transaction, so that another worker stores its batch meanwhile. Every verdict depends only on
    what the batch's lookups and open rejections read; under the write lock, when another
    connection has committed since the snapshot (``PRAGMA data_version``), the same rows are read
    again: unchanged, the decision is stored as it is; changed (another batch wrote one of those
    keys or links in between), the batch is decided again under the lock, as if it had come second.
    PostgreSQL needs none of it: batches of different nodes run side by side (each node's are
    serialised by ``lock_node``), so the batch is decided in its write transaction.
    """
    spec = validator.spec
    if isinstance(body_digest, str):
        body_digest = BatchDigest(body_digest)
    received = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    prechecked = _precheck(validator, node, channel, raw_records, received, clock_tolerance)
    batch_keys = _record_keys(spec, raw_records)
    decision: _Decision | None = None
    seen: int | None = None  # SQLite's data_version when the snapshot began
    with engine.connect() as plain:
        if plain.dialect.name == "sqlite":
            with plain.begin():  # one snapshot for every read of the decision
                seen = _data_version(plain)  # before the first read: a commit after it is noticed
                if not _maybe_stored(plain, node.node_id, batch_id, body_digest):
                    decision = _decide(
                        plain, validator, node, channel, batch_id, prechecked, batch_keys, received,
                        clock_tolerance,
                    )  # fmt: skip
        connection = plain.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            lock_node(connection, node.node_id)
            # The request's nonce (authentication's last check) is claimed in the batch's own
            # transaction: first, so a replay is refused before anything else, even a stored receipt.
            if nonce is not None and not claim_nonce(connection, node.node_id, *nonce):
                raise NonceReplayed
            stored = _stored_receipt(connection, node.node_id, batch_id, body_digest)
            if stored is not None:
                return IngestResult(stored, replayed=True)
            if decision is None:
                decision = _decide(
                    connection, validator, node, channel, batch_id, prechecked, batch_keys, received,
                    clock_tolerance,
                )  # fmt: skip
            elif _data_version(connection) != seen and not decision.still_holds(connection, spec, batch_keys):
                decision = _decide(
                    connection,
                    validator,
                    node,
                    channel,
                    batch_id,
                    # verdicts are built in place
                    _precheck(validator, node, channel, raw_records, received, clock_tolerance),
                    batch_keys,
                    received,
                    clock_tolerance,
                )
            decision.store(connection, audit, node, channel, batch_id, body_digest, request_id, source)
    return IngestResult(
        decision.receipt,
        False,
        decision.outcomes["accepted"],
        decision.outcomes["rejected"],
        decision.outcomes,
        decision.receipt_json,
    )


def _data_version(connection: Connection) -> int:
    return int(connection.exec_driver_sql("PRAGMA data_version").scalar_one())


def _maybe_stored(connection: Connection, node_id: str, batch_id: str, body_digest: BatchDigest) -> bool:
    """Whether the batch id has a stored receipt (or a conflicting one): nothing to decide then; the
    write transaction answers, after claiming the nonce."""
    try:
        return _stored_receipt(connection, node_id, batch_id, body_digest) is not None
    except BatchRefused:
        return True


@dataclass
class _Decision:
    """Every verdict of a batch and the rows that store them, with what the verdicts were read from."""

    received: dt.datetime
    lookups: dict[str, BatchLookup]
    open_read: dict[tuple[str, str], dict[str, Any]]  # open rejections as read, before the batch
    receipt: dict[str, Any]
    receipt_json: JsonText
    rows: dict[str, list[dict[str, Any]]]
    heads: dict[tuple[str, str, str], dict[str, Any]]
    refs_changed: dict[tuple[str, str, str], dict[str, str]]
    stored_before: list[tuple[str, str, str]]
    new_rejections: list[dict[str, Any]]
    repaired_keys: list[tuple[str, str]]
    tally: _Tally
    outcomes: Counter[str]
    out_of_scope: Counter[str]
    out_of_scope_records: list[int]

    def still_holds(self, connection: Connection, spec: Any, batch_keys: Sequence[_BatchKey]) -> bool:
        """The rows the verdicts were read from, read again in ``connection``: all the same?"""
        for namespace, lookup in self.lookups.items():
            again = BatchLookup(connection, spec, namespace)
            again.prefetch(lookup.read_heads, lookup.read_refs, lookup.read_codes)
            if (
                again.read_heads != lookup.read_heads
                or again.read_refs != lookup.read_refs
                or again.read_codes != lookup.read_codes
            ):
                return False
        return _open_rejections(connection, batch_keys) == self.open_read

    def store(
        self,
        connection: Connection,
        audit: AuditLog,
        node: NodeIdentity,
        channel: int,
        batch_id: str,
        body_digest: BatchDigest,
        request_id: str,
        source: str,
    ) -> None:
        received = self.received
        _write(
            connection,
            self.rows,
            self.heads,
            self.refs_changed,
            self.stored_before,
            self.new_rejections,
            self.repaired_keys,
            self.tally,
        )
        connection.execute(
            insert(batches),
            {
                "node_id": node.node_id,
                "batch_id": batch_id,
                "channel": channel,
                "body_digest": body_digest.value,
                "received_at": received,
                "records": self.receipt["records"],
                "accepted": self.outcomes["accepted"],
                "rejected": self.outcomes["rejected"],
                "receipt": self.receipt_json,
            },
        )
        connection.execute(
            insert(feed),
            {
                "node_id": node.node_id,
                "kind": "receipt",
                "batch_id": batch_id,
                "body": self.receipt_json,
                "created_at": received,
            },
        )

        def entry(action: str, outcome: str, detail: dict[str, Any]) -> AuditEntry:
            return AuditEntry(
                action=action,
                object=f"node:{node.node_id}/batch:{batch_id}",
                outcome=outcome,
                account=f"node:{node.node_id}",
                role="node",
                source=source,
                request_id=request_id,
                detail=detail,
                at=received,
            )

        records_sent = self.receipt["records"]
        audit.append(
            connection,
            entry("upload.batch", "success", {"channel": channel, "records": records_sent, **self.outcomes}),
        )
        if self.out_of_scope:
            # Art. 19: records of another province, an unregistered system or another node's key
            # are audited in the transaction that refuses them: both are stored or neither is.
            detail = {
                "codes": dict(sorted(self.out_of_scope.items())),
                "records": self.out_of_scope_records[:100],
            }
            audit.append(connection, entry("exchange.out-of-scope", "refused", detail))


def _decide(
    connection: Connection,
    validator: Validator,
    node: NodeIdentity,
    channel: int,
    batch_id: str,
    prechecked: Sequence[_Prechecked],
    batch_keys: Sequence[_BatchKey],
    received: dt.datetime,
    tolerance: dt.timedelta,
) -> _Decision:
    """The verdict of every record against what ``connection`` holds, and the rows to store."""
    spec = validator.spec
    targets = link_targets(spec)
    day = received.astimezone(SHANGHAI).date()
    lookups = {ns: BatchLookup(connection, spec, ns) for ns in ("prod", "test")}
    _prefetch(lookups, batch_keys, validator.deal_codes)
    open_read = _open_rejections(connection, batch_keys)
    open_keys = dict(open_read)
    tally = _Tally()
    results: list[dict[str, Any]] = []
    rows: dict[str, list[dict[str, Any]]] = {"prod": [], "test": []}
    heads: dict[tuple[str, str, str], dict[str, Any]] = {}
    refs_changed: dict[tuple[str, str, str], dict[str, str]] = {}
    stored_before: list[tuple[str, str, str]] = []  # keys that may have link values stored
    new_rejections: list[dict[str, Any]] = []
    repaired_keys: list[tuple[str, str]] = []
    outcome_counter: Counter[str] = Counter()
    out_of_scope: Counter[str] = Counter()
    out_of_scope_records: list[int] = []
    decided = dt.datetime.now(dt.UTC)  # one moment for the batch
    for index, item in enumerate(prechecked):
        raw, namespace, table, checked = item.raw, item.namespace, item.table, item.checked
        lookup = lookups[namespace]
        validator.check_against(checked, lookup)
        verdict = checked.verdict
        verdict.findings[:0] = item.exchange
        key = checked.key
        if verdict.ok and table is not None and key is not None:
            head = lookup.head(table.name, key)
            if head is not None and head.node_id != node.node_id:
                verdict.findings.append(
                    make_finding("E-EXCH-OWNER", None, key, table=table.name, owner=head.node_id)
                )
        accepted = verdict.ok and checked.envelope is not None and table is not None and key is not None
        table_name = (
            table.name if table is not None else str(raw.get("table") if isinstance(raw, dict) else "-")[:64]
        )
        codes = {f.code for f in verdict.findings}
        scope = codes & _OUT_OF_SCOPE
        if scope:
            out_of_scope.update(scope)
            out_of_scope_records.append(index)
        result: dict[str, Any] = {
            "index": index,
            "table": table_name,
            "key": key,
            "outcome": "accepted" if accepted else "rejected",
            "version": None,
            "findings": [f.to_dict() for f in verdict.findings],
        }
        envelope = checked.envelope
        published, acquired = item.published, item.acquired
        bucket = (node.province, table_name, day, channel)
        production = namespace == "prod"
        if production:
            op = envelope.op if envelope is not None else "insert"
            due, on_time, untimed = (
                _timely(table, channel, op, published, received, tolerance) if table else (0, 0, 0)
            )
            tally.add(bucket, received=1, timely_due=due, timely_ok=on_time, untimed=untimed)
        if accepted:
            assert table is not None and key is not None and envelope is not None and checked.digest
            previous = lookup.head(table.name, key)
            version = (previous.version if previous else 0) + 1
            if previous is not None and (namespace, table.name, key) not in heads:
                stored_before.append((namespace, table.name, key))  # head came from the database
            deleted = envelope.op == "delete"
            event_time = envelope.data.get(table.event_time) if table.event_time else None
            ref_values = {f: envelope.data[f] for f in targets.get(table.name, ()) if envelope.data.get(f)}
            registered = validator.registered_code(table, envelope.op, envelope.data)
            lookup.accept(
                table.name,
                key,
                Head(version, checked.digest, node.node_id, deleted, event_time, registered),
                ref_values,
            )
            result["version"] = version
            acquired_day = (acquired or received).astimezone(SHANGHAI).date()
            rows[namespace].append(
                {
                    "table_name": table.name,
                    "key": key,
                    "version": version,
                    "op": envelope.op,
                    "category": envelope.category or "",
                    "channel": channel,
                    "node_id": node.node_id,
                    "province": node.province,
                    "batch_id": batch_id,
                    "digest": checked.digest,
                    "data": encrypt_sensitive(table.name, envelope.data),  # unmasked personal values sealed
                    "deal_code": (envelope.data.get(table.deal_code) or None) if table.deal_code else None,
                    "published_at": published,
                    "acquired_at": acquired,
                    "sent_at": item.sent,
                    "received_at": received,
                    "decided_at": decided,
                }
            )
            heads[(namespace, table.name, key)] = {
                "namespace": namespace,
                "table_name": table.name,
                "key": key,
                "version": version,
                "digest": checked.digest,
                "node_id": node.node_id,
                "province": node.province,
                "deleted": deleted,
                "event_time": event_time,
                "acquired_day": acquired_day,
                "deal_code": registered,
            }
            refs_changed[(namespace, table.name, key)] = {} if deleted else ref_values
            if production:
                tally.add(bucket, accepted=1)
                rejection = open_keys.pop((table.name, key), None)
                if rejection is not None:
                    repaired_keys.append((table.name, key))
                    seconds = int((received - _aware(rejection["rejected_at"])).total_seconds())
                    tally.add(
                        (rejection["province"], table.name, rejection["day"], rejection["channel"]),
                        repaired=1,
                        repair_seconds=max(seconds, 0),
                    )
            outcome_counter["accepted"] += 1
        else:
            if production:
                duplicate = "E-XR-DUPLICATE" in codes
                tally.add(bucket, rejected=1, duplicates=int(duplicate))
                for code in {f.code for f in verdict.findings if f.is_error}:
                    tally.rules[(node.province, table_name, day, code)] += 1
                if key is not None and (table_name, key) not in open_keys and not duplicate:
                    open_keys[(table_name, key)] = {
                        "rejected_at": received,
                        "day": day,
                        "channel": channel,
                        "province": node.province,
                    }
                    new_rejections.append(
                        {
                            "table_name": table_name,
                            "key": key,
                            "province": node.province,
                            "channel": channel,
                            "day": day,
                            "rejected_at": received,
                        }
                    )
                    tally.add(bucket, rejected_keys=1)
            outcome_counter["rejected"] += 1
        if production:
            for finding in verdict.findings:
                if not finding.is_error:
                    tally.rules[(node.province, table_name, day, finding.code)] += 1
        results.append(result)
    receipt = {
        "ok": True,
        "batch_id": batch_id,
        "channel": channel,
        "node_id": node.node_id,
        "received_at": received.isoformat(),
        "records": len(prechecked),
        "accepted": outcome_counter["accepted"],
        "rejected": outcome_counter["rejected"],
        "results": results,
    }
    return _Decision(
        received=received,
        lookups=lookups,
        open_read=open_read,
        receipt=receipt,
        # A 1,000-record receipt is about 100 kB of JSON: written once for both columns and the answer.
        receipt_json=json_text(receipt),
        rows=rows,
        heads=heads,
        refs_changed=refs_changed,
        stored_before=stored_before,
        new_rejections=new_rejections,
        repaired_keys=repaired_keys,
        tally=tally,
        outcomes=outcome_counter,
        out_of_scope=out_of_scope,
        out_of_scope_records=out_of_scope_records,
    )


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


_BatchKey = tuple[str, str, TableSpec, dict[str, Any]]  # namespace, key, table, data


def _record_keys(spec: Any, raw_records: Sequence[Any]) -> list[_BatchKey]:
    """The keys the batch's well-formed records name, to read what is stored about them at once."""
    found: list[_BatchKey] = []
    for raw in raw_records:
        if not isinstance(raw, dict) or not isinstance(raw.get("data"), dict):
            continue
        table = spec.table(str(raw.get("table")))
        if table is None:
            continue
        data = raw["data"]
        if all(isinstance(data.get(k), str) and data.get(k) for k in table.business_key):
            namespace = "test" if raw.get("category") == "test" else "prod"
            found.append((namespace, table.key_of(data), table, data))
    return found


def _prefetch(
    lookups: Mapping[str, BatchLookup], batch_keys: Sequence[_BatchKey], plans: Mapping[str, DealCodePlan]
) -> None:
    keys: dict[str, list[tuple[str, str]]] = defaultdict(list)
    links: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    codes: dict[str, list[str]] = defaultdict(list)
    for namespace, key, table, data in batch_keys:
        keys[namespace].append((table.name, key))
        for link in table.parents + table.predecessors:
            for child_field, parent_field in link.fields.items():
                value = data.get(child_field)
                if isinstance(value, str) and value:
                    links[namespace].append((link.table, parent_field, value))
        plan = plans[table.name]
        if plan.checks:
            wanted = deal_code_wants(plan, data)
            keys[namespace].extend(wanted.keys)
            links[namespace].extend(wanted.links)
            codes[namespace].extend(wanted.codes)
    for namespace, lookup in lookups.items():
        lookup.prefetch(keys.get(namespace, []), links.get(namespace, []), codes.get(namespace, []))


def _open_rejections(
    connection: Connection, batch_keys: Sequence[_BatchKey]
) -> dict[tuple[str, str], dict[str, Any]]:
    o = open_rejections.c
    wanted = {(table.name, key) for ns, key, table, _ in batch_keys if ns == "prod"}
    rows = match_many(
        connection,
        open_rejections,
        ("table_name", "key"),
        sorted(wanted),
        columns=(o.table_name, o.key, o.rejected_at, o.day, o.channel, o.province),
    )
    return {
        (row.table_name, row.key): {
            "rejected_at": row.rejected_at,
            "day": row.day,
            "channel": row.channel,
            "province": row.province,
        }
        for row in rows
    }


def _write(
    connection: Connection,
    rows: Mapping[str, list[dict[str, Any]]],
    heads: Mapping[tuple[str, str, str], dict[str, Any]],
    refs_changed: Mapping[tuple[str, str, str], Mapping[str, str]],
    stored_before: Sequence[tuple[str, str, str]],
    new_rejections: list[dict[str, Any]],
    repaired_keys: list[tuple[str, str]],
    tally: _Tally,
) -> None:
    insert_many(connection, records, rows["prod"])
    insert_many(connection, test_records, rows["test"])
    insert_many(
        connection,
        record_heads,
        list(heads.values()),
        conflict=["namespace", "table_name", "key"],
        replace=[
            "version",
            "digest",
            "node_id",
            "province",
            "deleted",
            "event_time",
            "acquired_day",
            "deal_code",
        ],
    )
    # Only a key stored before this batch can have link values to replace; one executemany for all.
    r = record_refs.c
    if stored_before:
        connection.execute(
            delete(record_refs).where(
                r.namespace == bindparam("b_namespace"),
                r.table_name == bindparam("b_table"),
                r.key == bindparam("b_key"),
            ),
            [{"b_namespace": ns, "b_table": t, "b_key": k} for ns, t, k in stored_before],
        )
    ref_rows = [
        {"namespace": ns, "table_name": t, "field": f, "value": v, "key": k}
        for (ns, t, k), values in refs_changed.items()
        for f, v in values.items()
    ]
    insert_many(
        connection, record_refs, ref_rows, conflict=["namespace", "table_name", "field", "value", "key"]
    )
    insert_many(connection, open_rejections, new_rejections, conflict=["table_name", "key"])
    o = open_rejections.c
    if repaired_keys:
        connection.execute(
            delete(open_rejections).where(o.table_name == bindparam("b_table"), o.key == bindparam("b_key")),
            [{"b_table": t, "b_key": k} for t, k in repaired_keys],
        )
    daily, rules = tally.rows()
    insert_many(
        connection,
        stats_daily,
        daily,
        conflict=["province", "table_name", "day", "channel"],
        increment=_STAT_COUNTERS,
    )
    insert_many(
        connection,
        stats_rules,
        rules,
        conflict=["province", "table_name", "day", "rule_code"],
        increment=["count"],
    )
