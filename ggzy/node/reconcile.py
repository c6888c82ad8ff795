"""Reconciliation with the hub (Art. 8): same counts, same digests, or exactly which records differ.

The node computes, from its own receipts, what the hub computes from its store (``docs/protocol.md``):
for each table, the keys whose latest accepted version was acquired on day D (Asia/Shanghai), and
``SHA-256(sorted "key:version" lines joined by "\\n")`` over them, and the same over
``key:version:content`` lines, the content digest of each record as the node sent it. Test data
(Art. 10) is kept apart at the hub and left out on both sides. Keys whose records the disk guard
removed are still known: their latest version and digest were kept (:mod:`ggzy.node.buckets`).

For a table whose count or a digest differs, the node asks for the hub's key list (with each
record's content digest) and sorts the differences into: keys the hub lacks (re-sent as an insert),
keys whose hub version is behind (re-sent as an update), keys the hub holds that the node does not
know (reported only: they came from elsewhere), and records whose content at the hub differs at
the same version (reported only: the hub's copy changed after it accepted it, for the national
operators to examine). Re-sent records are new outbox rows with source ``reconcile`` carrying the
original envelope, so they land in the same day's bucket; a removed record is named, not re-sent.
Every difference is reported to the hub and audited; ``daily_reconcile`` checks yesterday.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, insert, select

from ggzy.interchange import Category
from ggzy.node.buckets import SHANGHAI, acquired_day, bucket_moment, record_digest
from ggzy.node.models import UNDECIDED, outbox, reconcile_keys, reconcile_results
from ggzy.node.outbox import NOT_BY_STATE, NewRecord, keys_in
from ggzy.node.uploader import raise_alert, resolve_alerts, utc
from ggzy.protocol import HubClient, HubRefused, HubUnavailable
from ggzy.security.audit import AuditEntry
from ggzy.security.crypto import Digest
from ggzy.store.database import writing

if TYPE_CHECKING:
    from ggzy.node.context import NodeContext

__all__ = [
    "SHANGHAI",
    "LocalVersion",
    "ReconcileResult",
    "TableReconciliation",
    "acquired_day",
    "bucket_digest",
    "bucket_moment",
    "content_bucket_digest",
    "daily_reconcile",
    "local_buckets",
    "reconcile_day",
]

_CHUNK = 400
_NOTE_LIMIT = 2000  # the hub's limit on a mismatch note
_LIST_LIMIT = 100_000  # the hub's limit on each key list


def bucket_digest(pairs: Iterable[tuple[str, int]], digest: Digest = Digest.SHA256) -> str:
    """The hub's bucket digest: sorted ``key:version`` lines joined by newlines, hashed, hex."""
    lines = "\n".join(f"{key}:{version}" for key, version in sorted(pairs))
    return digest.hash_hex(lines.encode())


def content_bucket_digest(items: Iterable[tuple[str, int, str]], digest: Digest = Digest.SHA256) -> str:
    """The hub's content digest of a bucket: sorted ``key:version:content`` lines, hashed, hex."""
    lines = "\n".join(f"{key}:{version}:{content}" for key, version, content in sorted(items))
    return digest.hash_hex(lines.encode())


@dataclass(slots=True)
class LocalVersion:
    """The version of a key the node last had accepted, as the hub should hold it.

    ``record`` is None when the disk guard removed the row: only what reconciliation needs was kept.
    """

    row_id: int | None
    table: str
    key: str
    version: int
    op: str
    channel: int
    record: dict[str, Any] | None
    acquired_at: dt.datetime  # the row's acquisition time
    filed_at: dt.datetime  # the moment the hub files it under (see ``bucket_moment``)
    digest: str  # the content digest of the record as sent


def _day_window(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """A UTC window wide enough for any record whose bucket may be ``day`` (times differ by hours)."""
    start = dt.datetime.combine(day, dt.time(), SHANGHAI).astimezone(dt.UTC)
    return start - dt.timedelta(days=2), start + dt.timedelta(days=3)


def _latest_accepted(engine: Engine, day: dt.date, table: str | None) -> list[LocalVersion]:
    """For every key with an accepted row near ``day`` or a kept version filed on it: its latest
    accepted version (a row, or what was kept of a removed one), if filed on ``day``."""
    o, k = outbox.c, reconcile_keys.c
    start, end = _day_window(day)
    near = [
        o.state == "accepted",
        o.hub_version.is_not(None),
        o.category != Category.TEST.value,
        o.acquired_at >= start,
        o.acquired_at < end,
    ]
    if table is not None:
        near.append(o.table_name == table)
    kept_where = [k.filed_day == day] if table is None else [k.filed_day == day, k.table_name == table]
    with engine.connect() as connection:
        keys = {
            (row.table_name, row.key) for row in connection.execute(select(o.table_name, o.key).where(*near))
        }
        keys |= {
            (row.table_name, row.key)
            for row in connection.execute(select(k.table_name, k.key).where(*kept_where))
        }
        latest: dict[tuple[str, str], Any] = {}
        kept: dict[tuple[str, str], Any] = {}
        # A later version of the key, acquired on another day, moves it out of this bucket:
        # so the latest accepted row is looked for over all time, not only near the day
        # (one index search per key: a row-value IN list would scan the outbox).
        for matches in keys_in((o.table_name, o.key), sorted(keys)):
            rows = connection.execute(
                select(outbox).where(
                    matches,
                    NOT_BY_STATE == "accepted",
                    o.hub_version.is_not(None),
                    o.category != Category.TEST.value,
                )
            )
            for row in rows:
                current = latest.get((row.table_name, row.key))
                # Receipts arrive in outbox order per key, so the highest id is what the hub holds now.
                if current is None or row.id > current.id:
                    latest[(row.table_name, row.key)] = row
        for matches in keys_in((k.table_name, k.key), sorted(keys)):
            for held in connection.execute(select(reconcile_keys).where(matches)):
                kept[(held.table_name, held.key)] = held
    found = []
    for identity in sorted(keys):
        live, removed = latest.get(identity), kept.get(identity)
        if removed is not None and (live is None or removed.version > int(live.hub_version)):
            filed = utc(removed.filed_at)
            if filed.astimezone(SHANGHAI).date() == day:
                found.append(
                    LocalVersion(
                        None, removed.table_name, removed.key, int(removed.version), removed.op,
                        removed.channel, None, filed, filed, removed.digest,
                    )
                )  # fmt: skip
            continue
        if live is None:
            continue
        filed = bucket_moment(live.record, live.sent_at, live.acquired_at)
        if filed.astimezone(SHANGHAI).date() != day:
            continue
        found.append(
            LocalVersion(
                live.id,
                live.table_name,
                live.key,
                int(live.hub_version),
                live.op,
                live.channel,
                dict(live.record),
                utc(live.acquired_at),
                filed,
                record_digest(live.record),
            )
        )
    return found


def local_buckets(
    engine: Engine, day: dt.date, table: str | None = None
) -> dict[str, dict[str, LocalVersion]]:
    """table → key → the latest accepted row whose bucket is ``day``."""
    buckets: dict[str, dict[str, LocalVersion]] = defaultdict(dict)
    for item in _latest_accepted(engine, day, table):
        buckets[item.table][item.key] = item
    return dict(buckets)


# --- comparing ---


@dataclass(slots=True)
class TableReconciliation:
    table: str
    local_count: int
    hub_count: int
    local_digest: str
    hub_digest: str | None
    missing_at_hub: list[str] = field(default_factory=list)
    unknown_locally: list[str] = field(default_factory=list)
    hub_behind: list[str] = field(default_factory=list)  # the hub holds an older version
    hub_ahead: list[str] = field(default_factory=list)  # the hub holds a newer version than the node knows
    in_flight: list[str] = field(default_factory=list)  # a later version is already on its way
    # same version, other content at the hub, as "key:version"; named, never re-sent
    content_differs: list[str] = field(default_factory=list)
    purged: list[str] = field(default_factory=list)  # the hub lacks them and their record was removed
    # What the report to the hub lists, as "key:version" (docs/protocol.md): the versions the hub
    # lacks (missing keys and newer local versions), and those the node does not know.
    hub_lacks: list[str] = field(default_factory=list)
    node_lacks: list[str] = field(default_factory=list)
    resent: int = 0
    report_id: int | None = None
    local_content: str | None = None
    hub_content: str | None = None  # None: a hub that gives no content digest

    @property
    def consistent(self) -> bool:
        same_content = self.hub_content is None or self.local_content == self.hub_content
        return self.local_count == self.hub_count and self.local_digest == self.hub_digest and same_content

    @property
    def status_zh(self) -> str:
        return "一致" if self.consistent else "不一致"

    def note(self) -> str:
        parts = [
            f"本地{self.local_count}条，国家平台{self.hub_count}条",
            f"国家平台缺少{len(self.missing_at_hub)}个",
            f"本地未知{len(self.unknown_locally)}个",
            f"国家平台版本落后{len(self.hub_behind)}个",
            f"国家平台版本较新{len(self.hub_ahead)}个",
            f"在途{len(self.in_flight)}个",
            f"内容不一致{len(self.content_differs)}个",
            f"已补传{self.resent}条",
        ]
        if self.purged:
            parts.append(f"本地已清理无法补传{len(self.purged)}个")
        text = "；".join(parts) + " (node reconciliation)"
        behind = [*self.hub_behind, *self.hub_ahead]
        if behind:
            text += "；版本不一致：" + "、".join(behind)
        if self.content_differs:
            text += "；内容不一致：" + "、".join(self.content_differs)
        return text[:_NOTE_LIMIT]


@dataclass(slots=True)
class ReconcileResult:
    day: dt.date
    tables: list[TableReconciliation]

    @property
    def consistent(self) -> bool:
        return all(t.consistent for t in self.tables)

    @property
    def resent(self) -> int:
        return sum(t.resent for t in self.tables)


def _hub_keys(answer: dict[str, Any]) -> tuple[dict[str, int], dict[str, str]]:
    """The hub's keys with their versions, and the content digest of each (when the hub gives them)."""
    keys: dict[str, int] = {}
    for line in answer.get("keys") or []:
        key, _, version = str(line).rpartition(":")
        keys[key] = int(version)
    contents = {str(item[0]): str(item[2]) for item in answer.get("records") or [] if len(item) == 3}
    return keys, contents


def _undecided_keys(engine: Engine, table: str, keys: list[str]) -> set[str]:
    """Keys with a row still on its way (held, queued or sent): re-sending them would only race."""
    o = outbox.c
    found: set[str] = set()
    with engine.connect() as connection:
        for begin in range(0, len(keys), _CHUNK):
            chunk = keys[begin : begin + _CHUNK]
            found.update(
                row.key
                for row in connection.execute(
                    select(o.key).where(o.table_name == table, o.key.in_(chunk), o.state.in_(UNDECIDED))
                )
            )
    return found


def _resend_item(ctx: NodeContext, item: LocalVersion, op: str, day: dt.date) -> NewRecord:
    assert item.record is not None and item.row_id is not None
    record = copy.deepcopy(item.record)
    record["op"] = op
    # The envelope keeps (or gains) the moment it was filed under, so it lands in the same bucket.
    record.setdefault("acquired_at", item.filed_at.isoformat())
    return NewRecord(
        table=ctx.spec.tables[item.table],
        key=item.key,
        record=record,
        channel=item.channel,
        source="reconcile",
        source_ref=f"reconcile:{day.isoformat()}:{item.row_id}",
        # Left empty on purpose: the latency watch must not count a deliberate late re-send.
        published_at=None,
        acquired_at=item.acquired_at,
    )


def _differences(
    ctx: NodeContext,
    outcome: TableReconciliation,
    local: dict[str, LocalVersion],
    hub: dict[str, int],
    contents: dict[str, str],
    day: dt.date,
) -> list[NewRecord]:
    outcome.unknown_locally = sorted(set(hub) - set(local))
    outcome.node_lacks = [f"{key}:{hub[key]}" for key in outcome.unknown_locally]
    candidates: list[tuple[LocalVersion, str]] = []
    for key in sorted(local):
        item = local[key]
        if key not in hub:
            outcome.missing_at_hub.append(key)
            outcome.hub_lacks.append(f"{key}:{item.version}")
            if item.op != "delete":  # a deletion of a key the hub never held has nothing to delete
                candidates.append((item, "insert"))
        elif hub[key] < item.version:
            outcome.hub_behind.append(f"{key}({hub[key]}<{item.version})")
            outcome.hub_lacks.append(f"{key}:{item.version}")
            candidates.append((item, "delete" if item.op == "delete" else "update"))
        elif hub[key] > item.version:
            outcome.hub_ahead.append(f"{key}({hub[key]}>{item.version})")
            outcome.node_lacks.append(f"{key}:{hub[key]}")
        elif key in contents and contents[key] != item.digest:
            outcome.content_differs.append(f"{key}:{item.version}")
    outcome.purged = sorted(item.key for item, _ in candidates if item.record is None)
    candidates = [(item, op) for item, op in candidates if item.record is not None]
    busy = _undecided_keys(ctx.engine, outcome.table, [item.key for item, _ in candidates])
    outcome.in_flight = sorted(busy)
    return [_resend_item(ctx, item, op, day) for item, op in candidates if item.key not in busy]


def reconcile_day(
    ctx: NodeContext,
    client: HubClient,
    day: dt.date,
    table: str | None = None,
    *,
    resend: bool = True,
    account: str = "-",
) -> ReconcileResult:
    """Compare ``day`` with the hub, re-send what it lacks, report and audit each difference."""
    local = local_buckets(ctx.engine, day, table)
    if table is None:
        summary = client.reconcile(day)
        hub_tables = {item["table"]: item for item in summary.get("tables", [])}
        algorithm = Digest(summary.get("algorithm", Digest.SHA256.value))
    else:
        answer = client.reconcile(day, table)
        hub_tables = {table: answer} if answer.get("count") else {}
        algorithm = Digest(answer.get("algorithm", Digest.SHA256.value))
    names = sorted(set(local) | set(hub_tables) | ({table} if table else set()))
    results: list[TableReconciliation] = []
    for name in names:
        mine = local.get(name, {})
        theirs = hub_tables.get(name)
        outcome = TableReconciliation(
            table=name,
            local_count=len(mine),
            hub_count=int(theirs["count"]) if theirs else 0,
            local_digest=bucket_digest(((k, v.version) for k, v in mine.items()), algorithm),
            hub_digest=str(theirs["digest"]) if theirs else bucket_digest((), algorithm),
            local_content=content_bucket_digest(
                ((k, v.version, v.digest) for k, v in mine.items()), algorithm
            ),
            hub_content=(
                str(theirs["content_digest"])
                if theirs and theirs.get("content_digest")
                else None
                if theirs
                else content_bucket_digest((), algorithm)
            ),
        )
        if not outcome.consistent:
            _settle(ctx, client, outcome, mine, day, resend)
        results.append(outcome)
    result = ReconcileResult(day, results)
    _record(ctx, result, account)
    return result


def _settle(
    ctx: NodeContext,
    client: HubClient,
    outcome: TableReconciliation,
    mine: dict[str, LocalVersion],
    day: dt.date,
    resend: bool,
) -> None:
    hub_keys, contents = _hub_keys(client.reconcile(day, outcome.table, keys=True))
    items = _differences(ctx, outcome, mine, hub_keys, contents, day)
    if resend and items:
        ctx.outbox.enqueue(items)
        outcome.resent = len(items)
    answer = client.report_mismatch(
        {
            "table": outcome.table,
            "day": day.isoformat(),
            "local_count": outcome.local_count,
            "missing_at_hub": outcome.hub_lacks[:_LIST_LIMIT],
            "unknown_locally": outcome.node_lacks[:_LIST_LIMIT],
            "content_differs": outcome.content_differs[:_LIST_LIMIT],
            "note": outcome.note(),
        }
    )
    report_id = answer.get("report_id")
    outcome.report_id = int(report_id) if report_id is not None else None


def _record(ctx: NodeContext, result: ReconcileResult, account: str) -> None:
    differing = [t for t in result.tables if not t.consistent]
    run_at = dt.datetime.now(dt.UTC)
    with writing(ctx.engine) as connection:
        if result.tables:
            connection.execute(
                insert(reconcile_results),
                [
                    {
                        "run_at": run_at,
                        "day": result.day,
                        "table_name": t.table,
                        "local_count": t.local_count,
                        "hub_count": t.hub_count,
                        "consistent": t.consistent,
                        "missing_at_hub": len(t.missing_at_hub),
                        "unknown_locally": len(t.unknown_locally),
                        "version_mismatch": len(t.hub_behind) + len(t.hub_ahead),
                        "content_differs": len(t.content_differs),
                        "in_flight": len(t.in_flight),
                        "resent": t.resent,
                        "report_id": t.report_id,
                        "account": account[:128],
                    }
                    for t in result.tables
                ],
            )
        ctx.audit.append(
            connection,
            AuditEntry(
                action="reconcile.run",
                object=f"reconcile/{result.day.isoformat()}",
                outcome="success",
                account=account,
                role="node",
                detail={
                    "tables": len(result.tables),
                    "differing": [t.table for t in differing],
                    "resent": result.resent,
                    "missing_at_hub": sum(len(t.missing_at_hub) for t in differing),
                    "unknown_locally": sum(len(t.unknown_locally) for t in differing),
                    "content_differs": sum(len(t.content_differs) for t in differing),
                    "reports": [t.report_id for t in differing if t.report_id is not None],
                },
            ),
        )
    if differing:
        names = "、".join(t.table for t in differing)
        raise_alert(
            ctx.engine,
            "reconcile",
            "warning",
            f"{result.day.isoformat()} 对账不一致：{names}；已补传 {result.resent} 条并报告国家平台 (E-NODE-RECONCILE)",
        )


def daily_reconcile(ctx: NodeContext, client: HubClient, today: dt.date | None = None) -> ReconcileResult:
    """Reconcile yesterday (Asia/Shanghai); the service runs this daily at ``reconcile_at``."""
    current = today or dt.datetime.now(SHANGHAI).date()
    day = current - dt.timedelta(days=1)
    try:
        result = reconcile_day(ctx, client, day, account=f"node:{ctx.settings.node_id}")
    except (HubUnavailable, HubRefused) as exc:
        # The operator runs ``ggzy node reconcile --date`` for the day once the hub answers again.
        raise_alert(
            ctx.engine,
            "reconcile",
            "warning",
            f"{day.isoformat()} 每日对账未完成：{exc}；"
            f"请稍后执行 ggzy node reconcile --date {day.isoformat()} (E-NODE-RECONCILE)",
        )
        raise
    if result.consistent:
        resolve_alerts(ctx.engine, "reconcile")
    return result
