"""The durable outbox: every acknowledged record, from intake to the hub's verdict.

Guarantees, each tested by killing the process (tests/integration/node/test_node_crash.py):

- a record is in the outbox, committed with ``synchronous=FULL``, before intake acknowledges it;
- a batch is formed once, in one transaction that fixes its id and its rows; a retry after any
  failure or crash resends the same batch id with the same records, so the hub answers with the
  same receipt and stores nothing twice;
- a record is never put in a batch while an earlier record it depends on — an earlier version of
  the same key, or a record its links point to (parent, earlier stage) — is still undecided on
  either channel; a channel-1 record that waits on a channel-2 record marks that one ``expedite``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, Connection, Engine, and_, bindparam, delete, func, insert, or_, select, update

from ggzy.node.buckets import keep_latest
from ggzy.node.models import UNDECIDED, batches, outbox, outbox_refs
from ggzy.node.models import state as node_state
from ggzy.spec import Spec, TableSpec
from ggzy.store.bulk import insert_many, match_many
from ggzy.store.database import JsonText
from ggzy.store.upsert import upsert

__all__ = ["NOT_BY_STATE", "Batch", "NewRecord", "Outbox", "QueueDepths", "keys_in"]

_CHUNK = 400
_EXPEDITE_DEPTH = 32  # links followed from a realtime record into the backlog (tables chain a few deep)


@dataclass(slots=True)
class NewRecord:
    """A record that intake has redacted, labelled and pre-validated, ready to be stored."""

    table: TableSpec
    key: str
    record: dict[str, Any]  # the envelope as it will be sent
    channel: int
    held: bool = False
    findings: list[dict[str, Any]] = field(default_factory=list)
    redacted: list[str] = field(default_factory=list)
    source: str = "push"
    source_ref: str = ""
    corrects: int | None = None
    published_at: dt.datetime | None = None
    acquired_at: dt.datetime | None = None
    serialised: JsonText | None = None  # ``record`` as stored, when intake serialised it already


@dataclass(slots=True)
class Batch:
    batch_id: str
    channel: int
    ids: list[int]
    records: list[dict[str, Any]]


@dataclass(slots=True)
class QueueDepths:
    by_channel_state: dict[tuple[int, str], int]
    oldest_unsent: dict[int, dt.datetime | None]

    def waiting(self, channel: int) -> int:
        return sum(
            n for (c, s), n in self.by_channel_state.items() if c == channel and s in ("queued", "sent")
        )


# ``state || ''``: the same test, but the planner cannot answer it from ``ix_outbox_state_decided``.
# Left to itself SQLite (3.40) scans every undecided row of that index (a million when a backlog is
# queued) instead of searching the few keys or link values asked for; PostgreSQL is indifferent.
NOT_BY_STATE = outbox.c.state.concat("")


# Statements the uploaders run for every batch, built once. A statement built per call leaves its
# clause objects in reference cycles (SQLAlchemy's memoised comparators) that only the garbage
# collector frees: the node's channel-1 uploader, forming a batch per realtime record, left ~10,000
# objects a second for it during a backfill.
_UNDECIDED_AMONG = select(outbox.c.id).where(
    outbox.c.id.in_(bindparam("ids", expanding=True)), NOT_BY_STATE.in_(UNDECIDED)
)
_QUEUED_BY_ID = (outbox.c.id.in_(bindparam("ids", expanding=True)), NOT_BY_STATE == "queued")
_TAKE = (
    update(outbox)
    .where(*_QUEUED_BY_ID)
    .values(
        state="sent",
        batch_id=bindparam("taken_by"),
        sent_at=bindparam("taken_at"),
        attempts=outbox.c.attempts + 1,
    )
)
_EXPEDITE = update(outbox).where(*_QUEUED_BY_ID).values(expedite=True)
# Queued channel-2 rows among ids, not yet expedited (an expedited row's needs were expedited with it).
_BACKLOG_AMONG = select(outbox.c.id, outbox.c.table_name, outbox.c.key, outbox.c.record).where(
    outbox.c.id.in_(bindparam("ids", expanding=True)),
    outbox.c.channel + 0 == 2,  # by id, not a scan of the channel's queue
    NOT_BY_STATE == "queued",
    outbox.c.expedite.is_(False),
)
_QUEUED = (
    select(outbox.c.id, outbox.c.table_name, outbox.c.key, outbox.c.record, outbox.c.expedite)
    .where(
        outbox.c.channel == bindparam("channel"),
        outbox.c.state == "queued",
        outbox.c.expedite == bindparam("hurried"),
    )
    .order_by(outbox.c.id)
    .limit(bindparam("count"))
)


class _PlanChanged(Exception):
    """The rows planned for a batch changed before they could be taken."""


def keys_in(columns: Sequence[Any], values: Sequence[tuple[str, ...]]) -> Iterable[Any]:
    """``(a, b, c) IN (…)`` as ``(a = ? AND b = ? AND c IN (…)) OR …``, at most ``_CHUNK`` values each.

    SQLite (3.40) answers a row-value IN list with a scan of the whole index; the OR of prefixes is
    answered with one index search per value, whatever the size of the queue.
    """
    groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for value in values:
        groups[value[:-1]].append(value[-1])
    clauses: list[Any] = []
    size = 0
    for prefix, lasts in sorted(groups.items()):
        for start in range(0, len(lasts), _CHUNK):
            part = lasts[start : start + _CHUNK]
            equal = [column == value for column, value in zip(columns[:-1], prefix, strict=True)]
            clauses.append(and_(*equal, columns[-1].in_(part)))
            size += len(part)
            if size >= _CHUNK:
                yield or_(*clauses)
                clauses, size = [], 0
    if clauses:
        yield or_(*clauses)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    """Times are stored in UTC: SQLite keeps no offset, so a +08:00 time would be read back 8 h off."""
    if moment is None or moment.tzinfo is None or moment.tzinfo is dt.UTC:
        return moment  # naive: already UTC by this module's convention; the same object stays the same
    return moment.astimezone(dt.UTC)


def _begin(engine: Engine) -> Any:
    return engine.connect().execution_options(sqlite_begin="IMMEDIATE")


class Outbox:
    def __init__(self, engine: Engine, spec: Spec) -> None:
        self.engine = engine
        self.spec = spec
        self._targets: dict[str, set[str]] = defaultdict(set)
        for table in spec.tables.values():
            for link in table.parents + table.predecessors:
                self._targets[link.table].update(link.fields.values())

    # --- intake ---

    def enqueue(
        self,
        records: Sequence[NewRecord],
        now: dt.datetime | None = None,
        *,
        state_updates: Mapping[str, str] | None = None,
        within: Callable[[Connection], object] | None = None,
    ) -> list[int]:
        """Store ``records`` durably in one transaction; their ids are in intake order.

        ``state_updates`` (``node_state`` name → value, e.g. a pull cursor) and ``within`` (more
        writes: counters, an audit entry) commit in the same transaction, so a crash keeps all or none.
        """
        moment = now or dt.datetime.now(dt.UTC)
        with _begin(self.engine) as connection, connection.begin():
            ids = self._insert_many(connection, records, moment)
            if state_updates:
                upsert(
                    connection,
                    node_state,
                    [{"name": name, "value": value} for name, value in state_updates.items()],
                    ["name"],
                    replace=["value"],
                )
            if within is not None:
                within(connection)
        return ids

    def _insert_many(
        self, connection: Connection, records: Sequence[NewRecord], now: dt.datetime
    ) -> list[int]:
        """The same rows as :meth:`_insert` one by one, in a few statements (intake runs at 20k records/s)."""
        if not records:
            return []
        corrected = sorted({item.corrects for item in records if item.corrects is not None})
        for start in range(0, len(corrected), _CHUNK):
            connection.execute(
                update(outbox)
                .where(
                    outbox.c.id.in_(corrected[start : start + _CHUNK]),
                    outbox.c.state.in_(("held", "queued", "rejected")),
                )
                .values(state="superseded")
            )
        rows = [
            {
                "table_name": item.table.name,
                "key": item.key,
                "op": item.record.get("op", "insert"),
                "category": item.record.get("category", ""),
                "channel": item.channel,
                "record": item.serialised or item.record,
                "state": "held" if item.held else "queued",
                "findings": item.findings or None,
                "redacted": item.redacted or None,
                "source": item.source,
                "source_ref": item.source_ref[:512],
                "corrects": item.corrects,
                "published_at": _utc(item.published_at),
                "acquired_at": _utc(item.acquired_at or now),
            }
            for item in records
        ]
        if connection.dialect.name == "sqlite":
            # BEGIN IMMEDIATE holds the write lock, so nobody else takes ids meanwhile: number the rows
            # as SQLite would (max + 1 …) and insert them with one executemany; RETURNING would make
            # SQLAlchemy run one statement per row to keep the order.
            first = int(connection.execute(select(func.coalesce(func.max(outbox.c.id), 0))).scalar_one()) + 1
            ids = list(range(first, first + len(rows)))
            for row_id, row in zip(ids, rows, strict=True):
                row["id"] = row_id
            # At the driver level: the same stored values without SQLAlchemy's per-row parameter work.
            insert_many(connection, outbox, rows)
        else:
            ids = list(
                connection.execute(
                    insert(outbox).returning(outbox.c.id, sort_by_parameter_order=True), rows
                ).scalars()
            )
        refs = [
            {"outbox_id": row_id, "table_name": item.table.name, "field": name, "value": value}
            for row_id, item in zip(ids, records, strict=True)
            for name in sorted(self._targets.get(item.table.name, ()))
            if isinstance(value := (item.record.get("data") or {}).get(name), str) and value
        ]
        insert_many(connection, outbox_refs, refs)
        return ids

    # --- sending ---

    def unacknowledged(self, channel: int) -> list[Batch]:
        """Batches formed but never acknowledged (a crash or an outage): resend them first, as they are."""
        with self.engine.connect() as connection:
            ids = [
                row.batch_id
                for row in connection.execute(
                    select(batches.c.batch_id)
                    .where(batches.c.channel == channel, batches.c.acknowledged_at.is_(None))
                    .order_by(batches.c.created_at)
                )
            ]
            return [self._load_batch(connection, batch_id, channel) for batch_id in ids]

    def _load_batch(self, connection: Connection, batch_id: str, channel: int) -> Batch:
        rows = connection.execute(
            select(outbox.c.id, outbox.c.record).where(outbox.c.batch_id == batch_id).order_by(outbox.c.id)
        ).all()
        return Batch(batch_id, channel, [r.id for r in rows], [self._wire(r.record) for r in rows])

    @staticmethod
    def _wire(record: Mapping[str, Any]) -> dict[str, Any]:
        return dict(record)

    def form_batch(self, channel: int, limit: int, now: dt.datetime | None = None) -> Batch | None:
        """Take up to ``limit`` queued records of ``channel`` whose dependencies are decided.

        The batch is planned from a read snapshot, outside the write lock (reading a thousand
        records and their links takes a while, and intake and the other channel must not wait for
        it), then taken in a short write transaction that checks every chosen row is still queued.
        Planning on a snapshot is safe: an earlier row a candidate needs already existed when the
        snapshot was taken (ids only grow), and a row once decided never becomes undecided again.
        """
        moment = now or dt.datetime.now(dt.UTC)
        for _ in range(3):
            with self.engine.connect() as reader, reader.begin():
                candidates = self._candidates(reader, channel, limit * 2)
                if not candidates:
                    return None
                blocked, expedite, waits = self._blocked(reader, channel, candidates)
            chosen = self._select([row for row in candidates if row.id not in blocked], waits, limit)
            try:
                return self._take(channel, chosen, expedite, moment)
            except _PlanChanged:
                continue
        return None  # intake kept changing the rows planned: the next call plans again

    def _take(
        self, channel: int, chosen: Sequence[Any], expedite: set[int], moment: dt.datetime
    ) -> Batch | None:
        with _begin(self.engine) as connection, connection.begin():
            if expedite:
                connection.execute(_EXPEDITE, {"ids": sorted(expedite)})
            if not chosen:
                return None
            batch_id = f"{channel}-{moment:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:12]}"
            ids = [row.id for row in chosen]
            taken = 0
            for start in range(0, len(ids), _CHUNK):
                taken += connection.execute(
                    _TAKE, {"ids": ids[start : start + _CHUNK], "taken_by": batch_id, "taken_at": moment}
                ).rowcount
            if taken != len(ids):  # a correction superseded a planned row meanwhile: roll back
                raise _PlanChanged
            connection.execute(
                insert(batches), {"batch_id": batch_id, "channel": channel, "created_at": moment}
            )
            return Batch(batch_id, channel, ids, [self._wire(row.record) for row in chosen])

    @staticmethod
    def _candidates(connection: Connection, channel: int, count: int) -> list[Any]:
        """The first ``count`` queued rows of ``channel``: expedited ones first, each part in outbox
        order. Two range scans of ``ix_outbox_send``: one ``ORDER BY expedite DESC, id`` would sort
        the whole queue (records included) on every batch, seconds with a million queued."""
        found: list[Any] = []
        for hurried in (True, False):
            if len(found) >= count:
                break
            found += connection.execute(
                _QUEUED, {"channel": channel, "hurried": hurried, "count": count - len(found)}
            ).all()
        return found

    @staticmethod
    def _select(ready: Sequence[Any], waits: Mapping[int, set[int]], limit: int) -> list[Any]:
        """Up to ``limit`` of ``ready`` (priority order: expedited first), each with the earlier rows
        it needs, sent in outbox order so that nothing overtakes what it depends on.

        While rows are expedited the batch holds only them (and what they need): a realtime record
        waits for a small, quick batch rather than for a full one.
        """
        by_id = {row.id: row for row in ready}
        hurried = [row for row in ready if row.expedite]
        taken: set[int] = set()
        for group in (hurried, ready):  # the whole queue only when no expedited row fits
            for row in group:
                if len(taken) >= limit:
                    break
                closure: set[int] = set()
                pending = [row.id]
                while pending:
                    row_id = pending.pop()
                    if row_id not in closure and row_id not in taken:
                        closure.add(row_id)
                        pending.extend(waits.get(row_id, ()))  # ready too: else row would be blocked
                if len(taken) + len(closure) <= limit:
                    taken |= closure
            if taken:
                break
        return [by_id[row_id] for row_id in sorted(taken)]

    def _blocked(
        self, connection: Connection, channel: int, candidates: Sequence[Any]
    ) -> tuple[set[int], set[int], dict[int, set[int]]]:
        """Candidates that must wait, the channel-2 rows to expedite, and what each candidate needs.

        A channel-1 record that waits on channel-2 rows expedites them and, at once, everything
        they need in turn (:meth:`_expedite_closure`), so that a realtime record waits for one small
        channel-2 batch, not for the backlog in front of its parent's parent.
        """
        candidate_ids = {row.id for row in candidates}
        waits = self._waits(connection, candidates)
        # A record may go with the earlier records it needs when they go in the same batch, in order.
        blocked: set[int] = set()
        for cand in sorted(candidate_ids):
            if any(dep not in candidate_ids or dep in blocked for dep in waits.get(cand, ())):
                blocked.add(cand)
        if channel == 1:
            needed = {dep for cand in blocked for dep in waits[cand] if dep not in candidate_ids}
        else:  # rows expedited before: make sure what they need is expedited too
            hurried = {row.id for row in candidates if row.expedite}
            needed = {dep for cand in hurried for dep in waits.get(cand, ())} - hurried
        return blocked, self._expedite_closure(connection, needed), waits

    def _waits(self, connection: Connection, rows: Sequence[Any]) -> dict[int, set[int]]:
        """For each of ``rows`` (id, table_name, key, record), the earlier undecided rows it needs:
        earlier versions of its key, and the rows its links point to (parent, earlier stage)."""
        waits: dict[int, set[int]] = defaultdict(set)
        if not rows:
            return waits
        last_id = max(row.id for row in rows)
        keys = sorted({(row.table_name, row.key) for row in rows})
        earlier_by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
        # One index search per key (ix_outbox_key), every version of it; the undecided earlier ones
        # are picked here.
        for hit in match_many(
            connection,
            outbox,
            ("table_name", "key"),
            keys,
            columns=(outbox.c.id, outbox.c.table_name, outbox.c.key, outbox.c.state),
        ):
            if hit.id < last_id and hit.state in UNDECIDED:
                earlier_by_key[(hit.table_name, hit.key)].append(hit.id)
        for row in rows:
            waits[row.id].update(e for e in earlier_by_key.get((row.table_name, row.key), ()) if e < row.id)
        needs: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        for row in rows:
            table = self.spec.tables.get(row.table_name)
            data = row.record.get("data") or {}
            if table is None:
                continue
            for link in table.parents + table.predecessors:
                for child_field, parent_field in link.fields.items():
                    value = data.get(child_field)
                    if isinstance(value, str) and value:
                        needs[(link.table, parent_field, value)].append(row.id)
        # The rows holding the link values (ix_outbox_refs_lookup, one search per value), then which
        # of them are undecided (by id).
        r = outbox_refs.c
        links = [
            hit
            for hit in match_many(
                connection,
                outbox_refs,
                ("table_name", "field", "value"),
                sorted(needs),
                columns=(r.outbox_id, r.table_name, r.field, r.value),
            )
            if hit.outbox_id < last_id
        ]
        targets = sorted({hit.outbox_id for hit in links})
        undecided: set[int] = set()
        for start in range(0, len(targets), _CHUNK):
            undecided.update(
                connection.execute(_UNDECIDED_AMONG, {"ids": targets[start : start + _CHUNK]}).scalars()
            )
        for hit in links:
            if hit.outbox_id in undecided:
                for row_id in needs[(hit.table_name, hit.field, hit.value)]:
                    if hit.outbox_id < row_id:
                        waits[row_id].add(hit.outbox_id)
        return waits

    def _expedite_closure(self, connection: Connection, start: set[int]) -> set[int]:
        """The queued channel-2 rows among ``start`` not yet expedited, and what they need, transitively."""
        marked: set[int] = set()
        frontier = set(start)
        for _ in range(_EXPEDITE_DEPTH):
            if not frontier:
                break
            ordered = sorted(frontier)
            rows: list[Any] = []
            for first in range(0, len(ordered), _CHUNK):
                rows += connection.execute(_BACKLOG_AMONG, {"ids": ordered[first : first + _CHUNK]}).all()
            marked.update(row.id for row in rows)
            frontier = {dep for deps in self._waits(connection, rows).values() for dep in deps} - marked
        return marked

    # --- verdicts ---

    def apply_receipt(
        self, batch: Batch, receipt: Mapping[str, Any], now: dt.datetime | None = None
    ) -> tuple[int, int]:
        """Record the hub's verdict for each row of ``batch``; returns (accepted, rejected)."""
        moment = now or dt.datetime.now(dt.UTC)
        results = receipt.get("results") or []
        if len(results) != len(batch.ids):
            raise ValueError(f"receipt has {len(results)} results for a batch of {len(batch.ids)}")
        verdicts = []
        for row_id, result in zip(batch.ids, results, strict=True):
            ok = result.get("outcome") == "accepted"
            verdicts.append(
                {
                    "row_id": row_id,
                    "new_state": "accepted" if ok else "rejected",
                    "new_version": result.get("version"),
                    "new_findings": None if ok and not result.get("findings") else result.get("findings"),
                }
            )
        accepted = sum(v["new_state"] == "accepted" for v in verdicts)
        rejected = len(verdicts) - accepted
        with _begin(self.engine) as connection, connection.begin():
            # one statement executed for every row (executemany): a batch of 500 in milliseconds
            connection.execute(
                update(outbox)
                .where(outbox.c.id == bindparam("row_id"), outbox.c.state == "sent")
                .values(
                    state=bindparam("new_state"),
                    hub_version=bindparam("new_version"),
                    findings=bindparam("new_findings", type_=JSON(none_as_null=True)),  # SQL NULL, as before
                    decided_at=moment,
                ),
                verdicts,
            )
            connection.execute(
                update(batches).where(batches.c.batch_id == batch.batch_id).values(acknowledged_at=moment)
            )
        return accepted, rejected

    def batch_failed(self, batch: Batch, error: str) -> None:
        with _begin(self.engine) as connection, connection.begin():
            connection.execute(
                update(batches)
                .where(batches.c.batch_id == batch.batch_id)
                .values(attempts=batches.c.attempts + 1, last_error=error[:2000])
            )

    def batch_by_id(self, batch_id: str) -> Batch | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(batches.c.channel).where(batches.c.batch_id == batch_id)).first()
            return self._load_batch(connection, batch_id, row.channel) if row else None

    # --- what operators and the heartbeat see ---

    def depths(self) -> QueueDepths:
        with self.engine.connect() as connection:
            counts = {
                (row.channel, row.state): row.n
                for row in connection.execute(
                    select(outbox.c.channel, outbox.c.state, func.count().label("n")).group_by(
                        outbox.c.channel, outbox.c.state
                    )
                )
            }
            oldest: dict[int, dt.datetime | None] = {}
            for channel in (1, 2):
                value = connection.execute(
                    select(func.min(outbox.c.acquired_at)).where(
                        outbox.c.channel == channel, outbox.c.state.in_(("queued", "sent"))
                    )
                ).scalar()
                oldest[channel] = (
                    value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value
                )
        return QueueDepths(counts, oldest)

    def purge_accepted(self, older_than: dt.datetime) -> int:
        """Forget records the hub accepted before ``older_than``; nothing undecided is ever removed.

        What reconciliation needs of them (key, version, content digest, bucket) is kept in the same
        transaction (:func:`ggzy.node.buckets.keep_latest`).
        """
        with _begin(self.engine) as connection, connection.begin():
            o = outbox.c
            purged = connection.execute(
                select(o.table_name, o.key, o.op, o.category, o.channel, o.record, o.hub_version,
                       o.sent_at, o.acquired_at)
                .where(o.state == "accepted", o.decided_at < older_than)
                .order_by(o.id),
                execution_options={"yield_per": 2000},
            )  # fmt: skip
            keep_latest(connection, purged)
            old = select(outbox.c.id).where(outbox.c.state == "accepted", outbox.c.decided_at < older_than)
            connection.execute(delete(outbox_refs).where(outbox_refs.c.outbox_id.in_(old)))
            return int(
                connection.execute(
                    delete(outbox).where(outbox.c.state == "accepted", outbox.c.decided_at < older_than)
                ).rowcount
            )

    def rows(self, where: Iterable[Any] = (), limit: int = 100, offset: int = 0) -> list[Any]:
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    select(outbox).where(and_(True, *where)).order_by(outbox.c.id).limit(limit).offset(offset)
                )
            )
