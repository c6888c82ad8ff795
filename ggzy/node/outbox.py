"""The durable outbox: every acknowledged record, from intake to the hub's verdict.

Guarantees, each tested by killing the process (tests/integration/node/test_node_crash.py):

- a record is in the outbox, committed with ``synchronous=FULL``, before intake acknowledges it;
- a batch is formed once, in one transaction that fixes its id and its rows; a retry after any
  failure or crash resends the same batch id with the same records, so the hub answers with the
  same receipt and stores nothing twice;
- a record is never put in a batch while an earlier record it depends on — an earlier version of
  the same key, or a record its links point to (parent, earlier stage) — is still undecided on
  either channel; a channel-1 record that waits on a channel-2 record marks that one ``expedite``.
  A record that corrects or supersedes another takes that one's place in this order;
- a record that waits on a record held for correction is set aside (state ``blocked``, with
  ``blocked_by`` naming the held row) instead of staying at the head of its channel, and is queued
  again when the held row is superseded: waiting is shown (:mod:`ggzy.node.blocked`), never silent,
  and it never holds up the records behind it;
- a newer full version (insert or update) of a key, from the source, supersedes the versions of that
  key held for correction and never sent, when nothing else of that key is undecided: they are
  marked ``superseded``, and the new version takes their place (their operation, so the hub sees
  the key's versions in the order it expects, and ``corrects`` pointing at the first of them).
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

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
_UNDECIDED_AMONG = select(outbox.c.id, outbox.c.corrects, outbox.c.state, outbox.c.blocked_by).where(
    outbox.c.id.in_(bindparam("ids", expanding=True)), NOT_BY_STATE.in_(UNDECIDED)
)
_SET_ASIDE = (
    update(outbox)
    .where(outbox.c.id == bindparam("row_id"), NOT_BY_STATE == "queued")
    .values(state="blocked", blocked_by=bindparam("held_id"))
)
# Rows set aside, by their channel and state (ix_outbox_send), not a scan of the outbox.
_BLOCKED_ROWS = (outbox.c.channel.in_((1, 2)), outbox.c.state == "blocked")
_RESENT_SOURCES = frozenset({"reupload", "reconcile", "correction"})  # not new versions from the source
_RELEASE_EVERY_SECONDS = 10.0
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
_BACKLOG_AMONG = select(
    outbox.c.id, outbox.c.table_name, outbox.c.key, outbox.c.record, outbox.c.corrects
).where(
    outbox.c.id.in_(bindparam("ids", expanding=True)),
    outbox.c.channel + 0 == 2,  # by id, not a scan of the channel's queue
    NOT_BY_STATE == "queued",
    outbox.c.expedite.is_(False),
)
_QUEUED = (
    select(
        outbox.c.id, outbox.c.table_name, outbox.c.key, outbox.c.record, outbox.c.expedite, outbox.c.corrects
    )
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


def _place(row_id: int, corrects: int | None) -> int:
    """Where a row stands in the order of what depends on what: a correction (or a version that
    superseded a held one) stands where the row it replaces stood."""
    return row_id if corrects is None else min(row_id, corrects)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    """Times are stored in UTC: SQLite keeps no offset, so a +08:00 time would be read back 8 h off."""
    if moment is None or moment.tzinfo is None or moment.tzinfo is dt.UTC:
        return moment  # naive: already UTC by this module's convention; the same object stays the same
    return moment.astimezone(dt.UTC)


def _release(connection: Connection, held_ids: Sequence[int]) -> None:
    """Queue again the rows set aside for these (no longer held) rows."""
    connection.execute(
        update(outbox)
        .where(*_BLOCKED_ROWS, outbox.c.blocked_by.in_(held_ids))
        .values(state="queued", blocked_by=None)
    )


def _close_batch(connection: Connection, batch_id: str, moment: dt.datetime, error: str) -> None:
    """A batch the hub refused whole is answered for good: never sent again, the refusal kept."""
    connection.execute(
        update(batches)
        .where(batches.c.batch_id == batch_id)
        .values(attempts=batches.c.attempts + 1, acknowledged_at=moment, last_error=error[:2000])
    )


def _begin(engine: Engine) -> Any:
    return engine.connect().execution_options(sqlite_begin="IMMEDIATE")


class Outbox:
    def __init__(self, engine: Engine, spec: Spec) -> None:
        self.engine = engine
        self.spec = spec
        self._released_at = float("-inf")  # time.monotonic() of the last sweep of blocked rows
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
        superseded_here, corrects_at = self._supersede_held(connection, records)
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
            _release(connection, corrected[start : start + _CHUNK])
        rows = [
            {
                "table_name": item.table.name,
                "key": item.key,
                "op": item.record.get("op", "insert"),
                "category": item.record.get("category", ""),
                "channel": item.channel,
                "record": item.serialised or item.record,
                "state": "superseded" if position in superseded_here else "held" if item.held else "queued",
                "findings": item.findings or None,
                "redacted": item.redacted or None,
                "source": item.source,
                "source_ref": item.source_ref[:512],
                "corrects": item.corrects,
                "published_at": _utc(item.published_at),
                "acquired_at": _utc(item.acquired_at or now),
            }
            for position, item in enumerate(records)
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
        if corrects_at:
            connection.execute(
                update(outbox)
                .where(outbox.c.id == bindparam("row_id"))
                .values(corrects=bindparam("replaced")),
                [
                    {"row_id": ids[position], "replaced": ids[first]}
                    for position, first in corrects_at.items()
                ],
            )
        refs = [
            {"outbox_id": row_id, "table_name": item.table.name, "field": name, "value": value}
            for row_id, item in zip(ids, records, strict=True)
            for name in sorted(self._targets.get(item.table.name, ()))
            if isinstance(value := (item.record.get("data") or {}).get(name), str) and value
        ]
        insert_many(connection, outbox_refs, refs)
        return ids

    def _supersede_held(
        self, connection: Connection, records: Sequence[NewRecord]
    ) -> tuple[set[int], dict[int, int]]:
        """Apply the supersession rule (module docstring) to ``records`` before they are stored.

        Marks the held rows superseded in the store, sets each superseding record's operation and
        ``corrects``; returns the positions in ``records`` of held records of this same call that a
        later one supersedes (stored as superseded), and for the records superseding them, the
        position whose id becomes their ``corrects`` once stored.
        """
        fresh = [
            position
            for position, item in enumerate(records)
            if item.corrects is None and item.source not in _RESENT_SOURCES
        ]
        if not fresh:
            return set(), {}
        pairs = sorted({(records[p].table.name, records[p].key) for p in fresh})
        o = outbox.c
        held: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)  # (row id, op), in order
        # Held rows by key: the partial index ix_outbox_held_key (held rows only, few) answers it,
        # which needs the literal state in the statement.
        for matches in keys_in((o.table_name, o.key), pairs):
            for row in connection.execute(
                select(o.id, o.table_name, o.key, o.op)
                .where(matches, o.state == literal("held", literal_execute=True))
                .order_by(o.id)
            ):
                held[(row.table_name, row.key)].append((row.id, row.op))
        if held:  # a key with anything else undecided keeps its versions as they are
            busy = {
                (hit.table_name, hit.key)
                for hit in match_many(
                    connection,
                    outbox,
                    ("table_name", "key"),
                    sorted(held),
                    columns=(o.table_name, o.key, o.state),
                )
                if hit.state in ("queued", "blocked", "sent")
            }
            for pair in busy:
                del held[pair]
        waiting_here: dict[tuple[str, str], list[int]] = defaultdict(list)  # held records of this call
        superseded_rows: list[int] = []
        superseded_here: set[int] = set()
        corrects_at: dict[int, int] = {}
        for position in fresh:
            item = records[position]
            pair = (item.table.name, item.key)
            op = item.record.get("op", "insert")
            if op in ("insert", "update") and (held.get(pair) or waiting_here.get(pair)):
                older = held.pop(pair, [])
                here = waiting_here.pop(pair, [])
                first_op = older[0][1] if older else records[here[0]].record.get("op", "insert")
                superseded_rows += [row_id for row_id, _ in older]
                superseded_here.update(here)
                if older:
                    item.corrects = older[0][0]
                elif records[here[0]].corrects is not None:
                    item.corrects = records[here[0]].corrects
                else:
                    corrects_at[position] = here[0]
                if first_op in ("insert", "update") and first_op != op:
                    item.record = {**item.record, "op": first_op}
                    item.serialised = None  # stored from ``record``, as changed
            elif op == "delete" or not item.held:
                waiting_here.pop(pair, None)  # a version in between: the earlier held ones stay
                held.pop(pair, None)
            if item.held and item.record.get("op", "insert") != "delete":
                waiting_here[pair].append(position)
        for start in range(0, len(superseded_rows), _CHUNK):
            part = superseded_rows[start : start + _CHUNK]
            connection.execute(
                update(outbox).where(o.id.in_(part), NOT_BY_STATE == "held").values(state="superseded")
            )
            _release(connection, part)
        return superseded_here, corrects_at

    # --- sending ---

    def unacknowledged(self, channel: int) -> list[Batch]:
        """Batches formed but never acknowledged (a crash or an outage): resend them first, as they are.

        In the order they were formed; the parts of a split batch share its time and sort by their
        ids (``<parent>.1`` < ``<parent>.1.2`` < ``<parent>.2``), which is the order of their records.
        """
        with self.engine.connect() as connection:
            ids = [
                row.batch_id
                for row in connection.execute(
                    select(batches.c.batch_id)
                    .where(batches.c.channel == channel, batches.c.acknowledged_at.is_(None))
                    .order_by(batches.c.created_at, batches.c.batch_id)
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
        self._release_unblocked()
        changed = 0
        while changed < 3:
            with self.engine.connect() as reader, reader.begin():
                candidates = self._candidates(reader, channel, limit * 2)
                if not candidates:
                    return None
                blocked, expedite, waits, set_aside = self._blocked(reader, channel, candidates)
            ready = [row for row in candidates if row.id not in blocked]
            chosen = self._select(ready, waits, limit)
            try:
                batch = self._take(channel, chosen, expedite, moment, set_aside)
            except _PlanChanged:
                changed += 1
                continue
            if batch is not None or not set_aside:
                return batch
            # every candidate waited on a held record and is set aside now: the next ones may go
        return None  # intake kept changing the rows planned: the next call plans again

    def _take(
        self,
        channel: int,
        chosen: Sequence[Any],
        expedite: set[int],
        moment: dt.datetime,
        set_aside: Mapping[int, int] | None = None,
    ) -> Batch | None:
        with _begin(self.engine) as connection, connection.begin():
            if expedite:
                connection.execute(_EXPEDITE, {"ids": sorted(expedite)})
            if set_aside:
                connection.execute(
                    _SET_ASIDE,
                    [{"row_id": row_id, "held_id": held_id} for row_id, held_id in set_aside.items()],
                )
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

    def _release_unblocked(self) -> None:
        """Queue again the rows set aside for held rows that are held no more (every few seconds: the
        paths that supersede held rows release their own at once; this catches any other)."""
        started = time.monotonic()
        if started - self._released_at < _RELEASE_EVERY_SECONDS:
            return
        self._released_at = started
        with self.engine.connect() as connection:
            holders = sorted(
                connection.execute(select(outbox.c.blocked_by).where(*_BLOCKED_ROWS).distinct()).scalars()
            )
            if not holders:
                return
            still_held: set[int] = set()
            for start in range(0, len(holders), _CHUNK):
                still_held.update(
                    connection.execute(
                        select(outbox.c.id).where(
                            outbox.c.id.in_(holders[start : start + _CHUNK]), NOT_BY_STATE == "held"
                        )
                    ).scalars()
                )
        gone = [row_id for row_id in holders if row_id not in still_held]
        if gone:
            with _begin(self.engine) as connection, connection.begin():
                for start in range(0, len(gone), _CHUNK):
                    _release(connection, gone[start : start + _CHUNK])

    def _blocked(
        self, connection: Connection, channel: int, candidates: Sequence[Any]
    ) -> tuple[set[int], set[int], dict[int, set[int]], dict[int, int]]:
        """Candidates that must wait, the channel-2 rows to expedite, what each candidate needs, and
        the candidates to set aside with the held row each waits for.

        A channel-1 record that waits on channel-2 rows expedites them and, at once, everything
        they need in turn (:meth:`_expedite_closure`), so that a realtime record waits for one small
        channel-2 batch, not for the backlog in front of its parent's parent.
        """
        candidate_ids = {row.id for row in candidates}
        needed_states: dict[int, Any] = {}
        waits = self._waits(connection, candidates, needed_states)
        # A record may go with the earlier records it needs when they go in the same batch, in order
        # (a record standing in for an earlier one, with a later id, cannot go before it: it waits).
        blocked: set[int] = set()
        set_aside: dict[int, int] = {}
        for cand in sorted(candidate_ids):
            needs = sorted(waits.get(cand, ()))
            if any(dep not in candidate_ids or dep in blocked or dep > cand for dep in needs):
                blocked.add(cand)
            for dep in needs:
                holder = set_aside.get(dep)
                found = needed_states.get(dep)
                if holder is None and found is not None and found.state == "held":
                    holder = dep
                elif holder is None and found is not None and found.state == "blocked":
                    holder = found.blocked_by
                if holder is not None:
                    set_aside[cand] = holder
                    break
        if channel == 1:
            needed = {dep for cand in blocked for dep in waits[cand] if dep not in candidate_ids}
        else:  # rows expedited before: make sure what they need is expedited too
            hurried = {row.id for row in candidates if row.expedite}
            needed = {dep for cand in hurried for dep in waits.get(cand, ())} - hurried
        return blocked, self._expedite_closure(connection, needed), waits, set_aside

    def _waits(
        self, connection: Connection, rows: Sequence[Any], states: dict[int, Any] | None = None
    ) -> dict[int, set[int]]:
        """For each of ``rows`` (id, table_name, key, record), the earlier undecided rows it needs:
        earlier versions of its key, and the rows its links point to (parent, earlier stage).
        "Earlier" is by :func:`_place`, on both sides: a correction does not wait for what was
        queued after the row it replaces, which waits for it. ``states`` is filled with the (state, blocked_by) of each
        row needed."""
        waits: dict[int, set[int]] = defaultdict(set)
        if not rows:
            return waits
        last_id = max(row.id for row in rows)
        keys = sorted({(row.table_name, row.key) for row in rows})
        earlier_by_key: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
        # One index search per key (ix_outbox_key), every version of it; the undecided earlier ones
        # are picked here.
        for hit in match_many(
            connection,
            outbox,
            ("table_name", "key"),
            keys,
            columns=(
                outbox.c.id,
                outbox.c.table_name,
                outbox.c.key,
                outbox.c.state,
                outbox.c.corrects,
                outbox.c.blocked_by,
            ),
        ):
            place = _place(hit.id, hit.corrects)
            if place < last_id and hit.state in UNDECIDED:
                earlier_by_key[(hit.table_name, hit.key)].append((hit.id, place))
                if states is not None:
                    states[hit.id] = hit
        own = {row.id: _place(row.id, getattr(row, "corrects", None)) for row in rows}
        for row in rows:
            waits[row.id].update(
                e
                for e, place in earlier_by_key.get((row.table_name, row.key), ())
                if place < own[row.id] and e != row.id
            )
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
        links = list(
            match_many(
                connection,
                outbox_refs,
                ("table_name", "field", "value"),
                sorted(needs),
                columns=(r.outbox_id, r.table_name, r.field, r.value),
            )
        )
        targets = sorted({hit.outbox_id for hit in links})
        undecided: dict[int, int] = {}  # row id -> its place
        for start in range(0, len(targets), _CHUNK):
            for found in connection.execute(_UNDECIDED_AMONG, {"ids": targets[start : start + _CHUNK]}):
                undecided[found.id] = _place(found.id, found.corrects)
                if states is not None:
                    states[found.id] = found
        for hit in links:
            target_place = undecided.get(hit.outbox_id)
            if target_place is not None:
                for row_id in needs[(hit.table_name, hit.field, hit.value)]:
                    if target_place < own[row_id] and hit.outbox_id != row_id:
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

    def split_batch(
        self, batch: Batch, parts: Sequence[int], error: str, now: dt.datetime | None = None
    ) -> list[Batch]:
        """Replace ``batch``, which the hub refused as a whole and stored nothing of, by batches of its
        records cut at the positions ``parts`` (e.g. ``[3, 4]``: records 0–2, 3, 4…).

        One transaction: the parts get ids of their own (``<batch id>.1``, ``.2`` …, at most nine, so that they sort)
        and the batch's time, so they take its place in the queue in the order of its records; the
        batch is closed (acknowledged, with ``error``) and never sent again. Each part is then a
        batch like any other, formed once and resent unchanged. A crash before the commit leaves the
        batch as it was (the hub refuses it again and it is split again); after it, the parts.
        """
        moment = now or dt.datetime.now(dt.UTC)
        cuts = [0, *sorted({p for p in parts if 0 < p < len(batch.ids)}), len(batch.ids)]
        if len(cuts) < 3 or len(cuts) > 10 or len(batch.batch_id) > 62:
            raise ValueError(f"cannot split a batch of {len(batch.ids)} at {list(parts)}")
        pieces = [(start, end) for start, end in itertools.pairwise(cuts)]
        made: list[Batch] = []
        with _begin(self.engine) as connection, connection.begin():
            created = connection.execute(
                select(batches.c.created_at).where(
                    batches.c.batch_id == batch.batch_id, batches.c.acknowledged_at.is_(None)
                )
            ).scalar()
            if created is None:
                raise ValueError(f"batch {batch.batch_id} is not waiting to be sent")
            for number, (start, end) in enumerate(pieces, start=1):
                part_id = f"{batch.batch_id}.{number}"
                ids = batch.ids[start:end]
                connection.execute(
                    insert(batches), {"batch_id": part_id, "channel": batch.channel, "created_at": created}
                )
                moved = connection.execute(
                    update(outbox)
                    .where(outbox.c.id.in_(ids), outbox.c.batch_id == batch.batch_id)
                    .values(batch_id=part_id)
                ).rowcount
                if moved != len(ids):
                    raise ValueError(f"batch {batch.batch_id} changed while being split")
                made.append(Batch(part_id, batch.channel, ids, batch.records[start:end]))
            _close_batch(connection, batch.batch_id, moment, f"split into {len(made)}: {error}")
        return made

    def reject_alone(
        self, batch: Batch, code: str, message_zh: str, message_en: str, now: dt.datetime | None = None
    ) -> None:
        """The hub refuses ``batch``, a single record, as a whole: reject the record locally with the
        hub's code and reason (it appears among the rejects, to be corrected) and close the batch, so
        the record is never retried as it is."""
        if len(batch.ids) != 1:
            raise ValueError("only a batch of one record is rejected alone")
        moment = now or dt.datetime.now(dt.UTC)
        finding = {
            "code": code,
            "severity": "error",
            "field": None,
            "value": None,
            "message_zh": f"国家平台拒收（整批退回，记录单独重发仍被拒）：{message_zh}",
            "message_en": f"refused by the hub even when sent alone: {message_en}",
        }
        with _begin(self.engine) as connection, connection.begin():
            connection.execute(
                update(outbox)
                .where(outbox.c.id == batch.ids[0], outbox.c.state == "sent")
                .values(state="rejected", findings=[finding], decided_at=moment)
            )
            _close_batch(connection, batch.batch_id, moment, f"{code}: {message_en}")

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
