"""Heartbeat aggregates kept with every beat, so availability reads intervals and days, not beats.

A month of one province is 86,400 beats at 30 s; reading them for every 运行监测 or 考核 page cost
seconds. Three tables (hub migration 0007) are written in the transaction that stores each beat
(:func:`note_heartbeat`, called by ``ggzy.hub.heartbeat.record_heartbeat``) and rebuilt from the
beats by the migration (:func:`rebuild_heartbeat_aggregates`):

* ``heartbeat_runs``: per node, maximal runs of beats whose consecutive gaps are at most the
  coverage in force when they were kept (one heartbeat interval plus the delivery allowance,
  :func:`coverage_of`; the incident grace never enters a figure). A run ``[first, last]`` keeps the
  node up over ``[first, last + coverage)`` for every coverage at least its ``max_gap_seconds`` (a
  bound on its largest gap); a reader with a smaller coverage (the settings changed) reads that
  run's beats instead, and a larger one merges runs by itself, so the figure stays exact either way.
* ``heartbeat_days``: per node and Asia/Shanghai day, the number of beats, their link attempts and
  failures, the beats with a platform verdict and the earliest start of a link window they report,
  which tells a reader the days that approved maintenance can touch (those are read beat by beat).
* ``heartbeat_platform_failing``: per province, the times when the latest beat's verdict on the
  provincial platform was "failing", or when it carried no verdict at all ("unverified": no probe
  result). The system is up only where a beat covers the time and neither holds: each verdict holds
  until the next beat, at most one coverage.

Beats may arrive out of order (a node replays, two hub workers race): a run absorbs every run within
the threshold of the new beat, sums do not care, and a verdict sets the state from its beat to the
next later beat of the province. Beats of one province are noted one at a time (the write lock on
SQLite, an advisory lock on PostgreSQL), so each note sees the ones before it; of beats received in
the same microsecond, the one noted last decides the state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, case, delete, func, insert, inspect, select, text, update

from ggzy.hub.models import heartbeat_days, heartbeat_platform_failing, heartbeat_runs, node_heartbeats
from ggzy.hub.ops.periods import SHANGHAI, Interval, day_period, intersect, merge, subtract, utc
from ggzy.settings import OpsSettings
from ggzy.store.upsert import dialect_insert

__all__ = [
    "Beat",
    "BeatTotals",
    "beat_totals",
    "coverage_of",
    "grace_of",
    "link_window_start",
    "lock_province",
    "note_heartbeat",
    "platform_failing",
    "rebuild_heartbeat_aggregates",
    "up_spans",
    "up_spans_by_node",
]

_H = node_heartbeats.c
_R = heartbeat_runs.c
_D = heartbeat_days.c
_F = heartbeat_platform_failing.c
_TICK = dt.timedelta(microseconds=1)
# Stands for "until the next beat" while intervals are merged in Python (stored as NULL), and
# bounds queries that have no next beat.
_OPEN = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
_READ_CHUNK = 20_000

# The statements of every beat, built once: building SQLAlchemy expressions per beat cost more
# than running them.
_NEAR_RUNS = select(_R.id, _R.first_at, _R.last_at, _R.beats, _R.max_gap_seconds).where(
    _R.node_id == bindparam("node_id"),
    _R.province == bindparam("province"),
    _R.last_at >= bindparam("low"),
    _R.first_at <= bindparam("high"),
)
_ONE_MORE_BEAT = update(heartbeat_runs).where(_R.id == bindparam("run_id")).values(beats=_R.beats + 1)
_NEXT_BEAT = select(func.min(_H.received_at)).where(
    _H.province == bindparam("province"), _H.received_at > bindparam("at")
)
_STILL_FAILING = select(_F.id, _F.started_at, _F.ended_at, _F.kind).where(
    _F.province == bindparam("province"), _F.ended_at.is_(None), _F.started_at <= bindparam("until")
)
_FAILING_UNTIL = select(_F.id, _F.started_at, _F.ended_at, _F.kind).where(
    _F.province == bindparam("province"), _F.ended_at >= bindparam("at"), _F.started_at <= bindparam("until")
)
FAILING, UNVERIFIED = "failing", "unverified"
_DAY_UPSERT: dict[str, Any] = {}


def grace_of(settings: OpsSettings) -> dt.timedelta:
    """The incident grace: beats missed this long (``down_after_beats × heartbeat_seconds``) open an
    incident. It decides when an incident opens, never what an availability figure counts."""
    return dt.timedelta(seconds=settings.heartbeat_seconds * settings.down_after_beats)


def coverage_of(settings: OpsSettings) -> dt.timedelta:
    """How long one beat shows its node up in the figures: one heartbeat interval plus the delivery
    allowance. The figures are exact to this resolution: a gap between beats longer than it is down
    time, less this much (an outage shorter than the incident grace still counts)."""
    return dt.timedelta(seconds=settings.heartbeat_seconds + settings.heartbeat_allowance_seconds)


def link_window_start(since_text: Any, received: dt.datetime) -> dt.datetime:
    """Where a beat's link-attempt window starts: its ``link.since``, else its receipt."""
    if not since_text or not isinstance(since_text, str):
        return received
    try:
        return utc(dt.datetime.fromisoformat(since_text))
    except ValueError:
        return received


@dataclass(frozen=True, slots=True)
class Beat:
    node_id: str
    province: str
    received_at: dt.datetime  # aware
    failed: int
    total: int
    platform_ok: bool | None
    link_since: dt.datetime  # aware; the receipt when the beat gave none


def lock_province(connection: Connection, province: str) -> None:
    """Serialise the beats of ``province`` until the transaction ends (SQLite's writer is single)."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:n, 13))"), {"n": f"heartbeat:{province}"}
        )


def note_heartbeat(connection: Connection, beat: Beat, coverage: dt.timedelta) -> None:
    """Bring the aggregates up to date with ``beat``, already stored in ``node_heartbeats``.

    Call :func:`lock_province` before storing the beat, in the same transaction.
    """
    beat = Beat(
        beat.node_id,
        beat.province,
        utc(beat.received_at),
        beat.failed,
        beat.total,
        beat.platform_ok,
        utc(beat.link_since),
    )
    _extend_runs(connection, beat, coverage)
    _add_to_day(connection, beat)
    _set_platform_state(connection, beat)


def _extend_runs(connection: Connection, beat: Beat, coverage: dt.timedelta) -> None:
    at = beat.received_at
    near = connection.execute(
        _NEAR_RUNS,
        {"node_id": beat.node_id, "province": beat.province, "low": at - coverage, "high": at + coverage},
    ).all()
    if len(near) == 1 and utc(near[0].first_at) <= at <= utc(near[0].last_at):
        connection.execute(_ONE_MORE_BEAT, {"run_id": near[0].id})
        return
    pieces = sorted(
        [(utc(r.first_at), utc(r.last_at), int(r.beats), float(r.max_gap_seconds)) for r in near]
        + [(at, at, 1, 0.0)]
    )
    first, reach, beats, gap = pieces[0]
    for start, last, count, inner in pieces[1:]:
        if start > reach:
            gap = max(gap, (start - reach).total_seconds())
        reach = max(reach, last)
        beats += count
        gap = max(gap, inner)
    values = {"first_at": first, "last_at": reach, "beats": beats, "max_gap_seconds": gap}
    if not near:
        connection.execute(
            insert(heartbeat_runs).values(node_id=beat.node_id, province=beat.province, **values)
        )
        return
    keep, *merged = sorted(r.id for r in near)
    connection.execute(update(heartbeat_runs).where(_R.id == keep).values(**values))
    if merged:
        connection.execute(delete(heartbeat_runs).where(_R.id.in_(merged)))


def _day_upsert(connection: Connection) -> Any:
    dialect = connection.dialect.name
    if dialect not in _DAY_UPSERT:
        statement = dialect_insert(connection, heartbeat_days)
        new = statement.excluded
        _DAY_UPSERT[dialect] = statement.on_conflict_do_update(
            index_elements=["province", "day", "node_id"],
            set_={
                "beats": _D.beats + new.beats,
                "failed_attempts": _D.failed_attempts + new.failed_attempts,
                "total_attempts": _D.total_attempts + new.total_attempts,
                "platform_beats": _D.platform_beats + new.platform_beats,
                "link_since": case((new.link_since < _D.link_since, new.link_since), else_=_D.link_since),
            },
        )
    return _DAY_UPSERT[dialect]


def _add_to_day(connection: Connection, beat: Beat) -> None:
    connection.execute(
        _day_upsert(connection),
        {
            "province": beat.province,
            "day": beat.received_at.astimezone(SHANGHAI).date(),
            "node_id": beat.node_id,
            "beats": 1,
            "failed_attempts": beat.failed,
            "total_attempts": beat.total,
            "platform_beats": int(beat.platform_ok is not None),
            "link_since": min(beat.link_since, beat.received_at),
        },
    )


def _set_platform_state(connection: Connection, beat: Beat) -> None:
    """The state from this beat until the next later beat of the province is this beat's verdict:
    failing, unverified (no verdict) or neither."""
    at = beat.received_at
    following = connection.execute(_NEXT_BEAT, {"province": beat.province, "at": at}).scalar()
    until = utc(following) if following is not None else _OPEN
    bounds = {"province": beat.province, "at": at, "until": until}
    touching = {
        r.id: r
        for r in [*connection.execute(_STILL_FAILING, bounds), *connection.execute(_FAILING_UNTIL, bounds)]
    }.values()
    current: dict[str, list[Interval]] = {FAILING: [], UNVERIFIED: []}
    for r in touching:
        current[r.kind].append((utc(r.started_at), utc(r.ended_at) if r.ended_at is not None else _OPEN))
    changed = {kind: subtract(spans, [(at, until)]) for kind, spans in current.items()}
    state = FAILING if beat.platform_ok is False else UNVERIFIED if beat.platform_ok is None else None
    if state is not None:
        changed[state] = merge([*changed[state], (at, until)])
    if all(sorted(current[kind]) == changed[kind] for kind in current):
        return
    if touching:
        connection.execute(delete(heartbeat_platform_failing).where(_F.id.in_([r.id for r in touching])))
    rows = [
        {"province": beat.province, "started_at": s, "ended_at": None if e == _OPEN else e, "kind": kind}
        for kind, spans in changed.items()
        for s, e in spans
    ]
    if rows:
        connection.execute(insert(heartbeat_platform_failing), rows)


def rebuild_heartbeat_aggregates(
    connection: Connection, coverage: dt.timedelta, province: str | None = None
) -> int:
    """Recompute the aggregates from ``node_heartbeats`` (all, or one province's); the beats read."""
    where = [_H.province == province] if province is not None else []
    for table in (heartbeat_runs, heartbeat_days, heartbeat_platform_failing):
        connection.execute(delete(table).where(*([table.c.province == province] if where else [])))
    rows = connection.execute(
        select(
            _H.node_id,
            _H.province,
            _H.received_at,
            _H.failed_attempts,
            _H.total_attempts,
            _H.platform_ok,
            _H.payload[("link", "since")].as_string().label("since"),
        )
        .where(*where)
        .order_by(_H.province, _H.received_at, _H.id),
        execution_options={"yield_per": _READ_CHUNK},
    )
    runs: dict[tuple[str, str], list[Any]] = {}  # (node, province) → [first, last, beats, gap]
    run_rows: list[dict[str, Any]] = []
    days: dict[tuple[str, dt.date, str], list[Any]] = {}
    failing: dict[str, tuple[str, dt.datetime] | None] = {}  # province → (kind, start) of the state held
    failing_rows: list[dict[str, Any]] = []
    count = 0

    def close_run(key: tuple[str, str], run: list[Any]) -> None:
        run_rows.append(
            {"node_id": key[0], "province": key[1], "first_at": run[0], "last_at": run[1],
             "beats": run[2], "max_gap_seconds": run[3]}
        )  # fmt: skip

    for row in rows:
        count += 1
        at = utc(row.received_at)
        key = (row.node_id, row.province)
        run = runs.get(key)
        if run is not None and at - run[1] <= coverage:
            run[3] = max(run[3], (at - run[1]).total_seconds())
            run[1] = at
            run[2] += 1
        else:
            if run is not None:
                close_run(key, run)
            runs[key] = [at, at, 1, 0.0]
        since = min(link_window_start(row.since, at), at)
        day_key = (row.province, at.astimezone(SHANGHAI).date(), row.node_id)
        sums = days.get(day_key)
        if sums is None:
            days[day_key] = [1, int(row.failed_attempts), int(row.total_attempts),
                             int(row.platform_ok is not None), since]  # fmt: skip
        else:
            sums[0] += 1
            sums[1] += int(row.failed_attempts)
            sums[2] += int(row.total_attempts)
            sums[3] += int(row.platform_ok is not None)
            sums[4] = min(sums[4], since)
        kind = FAILING if row.platform_ok is False else UNVERIFIED if row.platform_ok is None else None
        held = failing.get(row.province)
        if held is None or held[0] != kind:
            if held is not None:
                if at > held[1]:
                    failing_rows.append(
                        {"province": row.province, "started_at": held[1], "ended_at": at, "kind": held[0]}
                    )
                failing[row.province] = None
            if kind is not None:
                last = failing_rows[-1] if failing_rows else None
                if last is not None and (last["province"], last["kind"], last["ended_at"]) == (
                    row.province,
                    kind,
                    at,
                ):
                    # The same state again in the same microsecond: one interval, as note_heartbeat keeps it.
                    failing[row.province] = (kind, failing_rows.pop()["started_at"])
                else:
                    failing[row.province] = (kind, at)
    for key, run in runs.items():
        close_run(key, run)
    failing_rows.extend(
        {"province": p, "started_at": held[1], "ended_at": None, "kind": held[0]}
        for p, held in failing.items()
        if held is not None
    )
    day_rows = [
        {"province": p, "day": d, "node_id": n, "beats": s[0], "failed_attempts": s[1],
         "total_attempts": s[2], "platform_beats": s[3], "link_since": s[4]}
        for (p, d, n), s in days.items()
    ]  # fmt: skip
    if "kind" not in {c["name"] for c in inspect(connection).get_columns("heartbeat_platform_failing")}:
        # Migration 0007 rebuilds before 0010 added the kind: only failing verdicts were kept then.
        failing_rows = [
            {k: v for k, v in row.items() if k != "kind"} for row in failing_rows if row["kind"] == FAILING
        ]
    for table, batch in (
        (heartbeat_runs, run_rows),
        (heartbeat_days, day_rows),
        (heartbeat_platform_failing, failing_rows),
    ):
        for start in range(0, len(batch), _READ_CHUNK):
            connection.execute(insert(table), batch[start : start + _READ_CHUNK])
    return count


def up_spans(
    connection: Connection, province: str, window: Interval, coverage: dt.timedelta
) -> list[Interval]:
    """The union of ``[beat, beat + coverage)`` over the province's beats, exact on ``window``.

    Spans reach outside ``window``; clip them.
    """
    return merge(
        s for spans in up_spans_by_node(connection, province, window, coverage).values() for s in spans
    )


def up_spans_by_node(
    connection: Connection, province: str, window: Interval, coverage: dt.timedelta
) -> dict[str, list[Interval]]:
    """:func:`up_spans` of each node of the province."""
    low, high = utc(window[0]), utc(window[1])
    limit = coverage.total_seconds()
    spans: dict[str, list[Interval]] = {}
    for run in connection.execute(
        select(_R.node_id, _R.first_at, _R.last_at, _R.max_gap_seconds).where(
            _R.province == province, _R.last_at > low - coverage, _R.first_at < high
        )
    ):
        first, last = utc(run.first_at), utc(run.last_at)
        node = spans.setdefault(run.node_id, [])
        if run.max_gap_seconds <= limit:
            node.append((first, last + coverage))
            continue
        # Kept under a longer threshold than today's: this run's beats say where its gaps are.
        beats = connection.execute(
            select(_H.received_at).where(
                _H.node_id == run.node_id,
                _H.province == province,
                _H.received_at >= max(first, low - coverage),
                _H.received_at <= min(last, high),
            )
        ).scalars()
        node.extend((utc(b), utc(b) + coverage) for b in beats)
    return {node_id: merge(node) for node_id, node in spans.items()}


def platform_failing(
    connection: Connection, province: str, window: Interval, kind: str = FAILING
) -> list[Interval]:
    """When the province's latest beat said its platform failed (or, ``kind="unverified"``, carried no
    verdict), clipped to ``window``."""
    low, high = utc(window[0]), utc(window[1])
    rows = [
        *connection.execute(
            select(_F.started_at, _F.ended_at).where(
                _F.province == province, _F.kind == kind, _F.ended_at.is_(None), _F.started_at < high
            )
        ),
        *connection.execute(
            select(_F.started_at, _F.ended_at).where(
                _F.province == province, _F.kind == kind, _F.ended_at > low, _F.started_at < high
            )
        ),
    ]
    return merge((max(utc(s), low), min(utc(e), high) if e is not None else high) for s, e in rows)


@dataclass(slots=True)
class BeatTotals:
    beats: int = 0
    failed: int = 0  # link attempts, of beats whose window does not meet an excluded interval
    total: int = 0
    platform_beats: int = 0

    def add(self, beats: Any, failed: Any, total: Any, platform_beats: Any) -> None:
        self.beats += int(beats or 0)
        self.failed += int(failed or 0)
        self.total += int(total or 0)
        self.platform_beats += int(platform_beats or 0)


def beat_totals(
    connection: Connection, province: str, window: Interval, excluded: Sequence[Interval] = ()
) -> BeatTotals:
    """Beats received in ``window`` and their sums; attempts of a beat whose link window
    ``[since, received]`` meets ``excluded`` are left out.

    Whole days come from ``heartbeat_days``; the partial days at the ends of ``window`` and the days
    whose earliest link window can meet ``excluded`` are read from the beats (of that day only).
    """
    low, high = utc(window[0]), utc(window[1])
    totals = BeatTotals()
    if low >= high:
        return totals
    first_day = low.astimezone(SHANGHAI).date()
    last_day = (high - _TICK).astimezone(SHANGHAI).date()
    days = connection.execute(
        select(
            _D.day,
            func.sum(_D.beats),
            func.sum(_D.failed_attempts),
            func.sum(_D.total_attempts),
            func.sum(_D.platform_beats),
            func.min(_D.link_since),
        )
        .where(_D.province == province, _D.day >= first_day, _D.day <= last_day)
        .group_by(_D.day)
    )
    for day, beats, failed, total, platform, since in days:
        whole = day_period(day)
        segment = (max(low, whole.start), min(high, whole.end))
        if excluded and intersect([(utc(since), whole.end)], excluded):
            _add_beat_by_beat(connection, province, segment, excluded, totals)
        elif segment == whole.interval():
            totals.add(beats, failed, total, platform)
        else:
            totals.add(
                *connection.execute(
                    select(
                        func.count(),
                        func.sum(_H.failed_attempts),
                        func.sum(_H.total_attempts),
                        func.count(_H.platform_ok),
                    ).where(
                        _H.province == province, _H.received_at >= segment[0], _H.received_at < segment[1]
                    )
                ).one()
            )
    return totals


def _add_beat_by_beat(
    connection: Connection,
    province: str,
    segment: Interval,
    excluded: Sequence[Interval],
    totals: BeatTotals,
) -> None:
    first_excluded = min(s for s, _e in excluded)
    for received_at, failed, total, platform_ok, since in connection.execute(
        select(
            _H.received_at,
            _H.failed_attempts,
            _H.total_attempts,
            _H.platform_ok,
            _H.payload[("link", "since")].as_string(),
        ).where(_H.province == province, _H.received_at >= segment[0], _H.received_at < segment[1])
    ):
        received = utc(received_at)
        totals.add(1, 0, 0, platform_ok is not None)
        if received + _TICK > first_excluded and intersect(
            [(link_window_start(since, received), received + _TICK)], excluded
        ):
            continue  # attempts made during approved maintenance say nothing about the network
        totals.add(0, failed, total, 0)
