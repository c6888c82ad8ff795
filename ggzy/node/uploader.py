"""Uploading the outbox to the hub, one thread per channel (Art. 9, 10).

Each :class:`ChannelUploader` repeats one step: resend the oldest batch the hub never acknowledged
(same id, same records: the hub answers with the stored receipt), otherwise form a new batch from
the outbox, send it, and record the verdicts. What happens on failure:

- the hub is unreachable, times out or answers 5xx (:class:`HubUnavailable`): the batch stays
  pending, the failure counts towards the circuit breaker, and the next attempt waits a jittered,
  growing delay (never a tight loop); while the breaker is open nothing is sent;
- the hub refuses the whole batch because of what it carries (413: too large; 400 naming one of its
  records, ``records[i]``): the hub stored nothing, so the batch is split (:meth:`Outbox.split_batch`:
  in halves, or around the record named) and its parts are sent in its place, until the record the
  hub refuses is alone; that record is rejected locally with the hub's code and reason
  (:meth:`Outbox.reject_alone`, listed by ``ggzy node rejects``) and every other record goes on.
  A record the hub keeps refusing is never retried as it is;
- the hub refuses the whole batch for another reason (4xx, :class:`HubRefused`: key revoked, node
  suspended…): an alert is raised and the same batch is retried after the backoff, so nothing is
  dropped and nothing overtakes it; an operator fixes the cause.

Channel 1 (realtime) goes first. It runs in its own thread with its own HTTP connection, wakes at
once when intake calls :meth:`ChannelUploader.notify` and polls every 100 ms otherwise. The hub
ingests one batch of a node at a time, so a realtime batch can only wait for the channel-2 batch
already in flight: channel 2 starts no request while channel 1 has one to send (:class:`Priority`)
and sizes its batches to take about ``CHANNEL2_REQUEST_SECONDS`` at the hub's recent pace. Channel 2
is also limited to ``channel2_rate`` records per second (a token bucket) and resumes from the outbox
after a restart. (A realtime record that needs a channel-2 record still queued waits for it: the
outbox expedites it to the front of channel 2.)

Every attempt is written to ``link_attempts`` (the availability the heartbeat reports); latency from
publication to sending and to acceptance is read from the outbox timestamps (:func:`latency_summary`).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, and_, bindparam, func, insert, select, update

from ggzy.node.blocked import blocked_by_held
from ggzy.node.breaker import Backoff, CircuitBreaker, TokenBucket
from ggzy.node.context import NodeContext
from ggzy.node.models import alerts, link_attempts, outbox
from ggzy.node.outbox import Batch, Outbox
from ggzy.protocol import HubRefused, HubUnavailable

__all__ = [
    "ChannelUploader",
    "LatencySummary",
    "LatencyWatch",
    "Priority",
    "StepOutcome",
    "UploadClient",
    "late_realtime",
    "latency_summary",
    "raise_alert",
    "record_link_attempt",
    "resolve_alerts",
    "utc",
]

log = logging.getLogger(__name__)

CHANNEL1_POLL_SECONDS = 0.1
CHANNEL2_POLL_SECONDS = 0.5
# The hub ingests one batch of a node at a time, so a realtime batch may wait for the channel-2
# batch in flight: channel 2 sizes its batches to take about this long at the hub.
CHANNEL2_REQUEST_SECONDS = 0.5
CHANNEL2_MIN_BATCH = 20
ALERT_LEVELS = ("info", "warning", "critical")
TEN_MINUTES = 600.0


# Built once: run after every channel-1 batch (a statement built per call leaves garbage in cycles).
_DECIDED_TIMES = select(outbox.c.published_at, outbox.c.sent_at, outbox.c.decided_at).where(
    outbox.c.id.in_(bindparam("ids", expanding=True)),
    outbox.c.published_at.is_not(None),
    outbox.c.decided_at.is_not(None),
    outbox.c.source != "reupload",
)


class UploadClient(Protocol):
    def upload(self, channel: int, batch_id: str, records: Sequence[dict[str, Any]]) -> dict[str, Any]: ...


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def utc(moment: dt.datetime) -> dt.datetime:
    """A stored time as aware UTC (SQLite gives back naive values, always written in UTC)."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _writer(engine: Engine) -> Connection:
    return engine.connect().execution_options(sqlite_begin="IMMEDIATE")


# --- alerts and link attempts: small durable facts other parts (heartbeat, status) read ---


def raise_alert(
    engine: Engine,
    kind: str,
    level: str,
    message: str,
    *,
    at: dt.datetime | None = None,
    condition: str | None = None,
) -> bool:
    """Add an alert; True when a new one was added.

    With ``condition`` (a lasting state: realtime records late, records blocked…) there is one open
    alert per (kind, condition): while it is open, its level and message are updated in place.
    Without, an alert is added unless the same one (kind, level, message) is still open.
    """
    if level not in ALERT_LEVELS:
        raise ValueError(f"level must be one of {ALERT_LEVELS}")
    moment = at or utcnow()
    with _writer(engine) as connection, connection.begin():
        same: list[Any] = [alerts.c.kind == kind, alerts.c.resolved_at.is_(None)]
        if condition is not None:
            same.append(alerts.c.condition == condition)
        else:
            same += [alerts.c.level == level, alerts.c.message == message]
        open_same = connection.execute(
            select(alerts.c.id, alerts.c.level, alerts.c.message).where(*same)
        ).first()
        if open_same is not None:
            if condition is not None and (open_same.level, open_same.message) != (level, message):
                connection.execute(
                    update(alerts)
                    .where(alerts.c.id == open_same.id)
                    .values(level=level, message=message, updated_at=moment)
                )
            return False
        connection.execute(
            insert(alerts),
            {"at": moment, "kind": kind, "level": level, "message": message, "condition": condition},
        )
        return True


def open_alerts(engine: Engine, kind: str | None = None) -> list[Any]:
    with engine.connect() as connection:
        where = [alerts.c.resolved_at.is_(None)] + ([alerts.c.kind == kind] if kind else [])
        return list(connection.execute(select(alerts).where(*where).order_by(alerts.c.id)))


def resolve_alerts(
    engine: Engine,
    kind: str,
    *,
    level: str | None = None,
    containing: str | None = None,
    condition: str | None = None,
    at: dt.datetime | None = None,
) -> int:
    """Mark the open alerts of ``kind`` (and ``level``, ``condition``, and with ``containing`` in the
    message) resolved."""
    where = [alerts.c.kind == kind, alerts.c.resolved_at.is_(None)]
    if level is not None:
        where.append(alerts.c.level == level)
    if condition is not None:
        where.append(alerts.c.condition == condition)
    if containing is not None:
        where.append(alerts.c.message.contains(containing, autoescape=True))
    with _writer(engine) as connection, connection.begin():
        return int(
            connection.execute(update(alerts).where(*where).values(resolved_at=at or utcnow())).rowcount
        )


def record_link_attempt(engine: Engine, ok: bool, seconds: float, *, at: dt.datetime | None = None) -> None:
    with _writer(engine) as connection, connection.begin():
        connection.execute(insert(link_attempts), {"at": at or utcnow(), "ok": ok, "seconds": seconds})


# --- latency ---


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Publication → sent and publication → accepted, in seconds, over accepted records."""

    count: int
    sent_p50: float | None
    sent_p99: float | None
    accepted_p50: float | None
    accepted_p99: float | None
    accepted_max: float | None


def quantile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank quantile (no interpolation: the figure is a latency some record really had)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 1))))
    return ordered[rank - 1]


def latency_summary(
    engine: Engine, channel: int = 1, *, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> LatencySummary:
    """Latency of the records of ``channel`` accepted in [since, until), from the outbox timestamps.

    Re-uploads requested by the hub are left out: their publication is long past by design.
    """
    o = outbox.c
    where = [o.channel == channel, o.state == "accepted", o.published_at.is_not(None), o.source != "reupload"]
    if since is not None:
        where.append(o.decided_at >= since)
    if until is not None:
        where.append(o.decided_at < until)
    to_sent: list[float] = []
    to_accepted: list[float] = []
    with engine.connect() as connection:
        for row in connection.execute(select(o.published_at, o.sent_at, o.decided_at).where(and_(*where))):
            published = utc(row.published_at)
            if row.sent_at is not None:
                to_sent.append((utc(row.sent_at) - published).total_seconds())
            to_accepted.append((utc(row.decided_at) - published).total_seconds())
    return LatencySummary(
        count=len(to_accepted),
        sent_p50=quantile(to_sent, 0.5),
        sent_p99=quantile(to_sent, 0.99),
        accepted_p50=quantile(to_accepted, 0.5),
        accepted_p99=quantile(to_accepted, 0.99),
        accepted_max=max(to_accepted) if to_accepted else None,
    )


def late_realtime(engine: Engine, moment: dt.datetime, threshold_seconds: float) -> tuple[int, float | None]:
    """Realtime records still undecided ``threshold_seconds`` after publication, and the oldest one's age."""
    o = outbox.c
    with engine.connect() as connection:
        late, oldest = connection.execute(
            select(func.count(), func.min(o.published_at)).where(
                o.channel == 1,
                o.state.in_(("queued", "sent")),
                o.source != "reupload",
                o.published_at < moment - dt.timedelta(seconds=threshold_seconds),
            )
        ).one()
    if not late:
        return 0, None
    return int(late), (moment - utc(oldest)).total_seconds()


class LatencyWatch:
    """Keeps two standing alerts up to date, each one open alert per condition, updated in place:

    - "latency": while an undecided realtime record (queued or sent) is older than the threshold:
      warning from ``threshold_seconds`` after publication (default 8 minutes), critical once the
      ten minutes of the rule have passed, its count and age updated at every check; resolved when
      no such record is left;
    - "blocked": while records wait on a record held for correction (:mod:`ggzy.node.blocked`):
      warning when realtime records wait, info otherwise; resolved when nothing waits.
    """

    LATE = "realtime-late"
    WAITING = "waiting-on-held"

    def __init__(
        self, engine: Engine, threshold_seconds: float, now: Callable[[], dt.datetime] = utcnow
    ) -> None:
        self.engine = engine
        self.threshold = threshold_seconds
        self.now = now

    def check(self) -> tuple[int, float | None]:
        """(late records, age of the oldest in seconds); raises, updates or resolves the alerts."""
        moment = self.now()
        late, age = late_realtime(self.engine, moment, self.threshold)
        self._check_blocked(moment)
        if age is None:
            resolve_alerts(self.engine, "latency", at=moment)
            return 0, None
        level = "critical" if age >= TEN_MINUTES else "warning"
        raise_alert(
            self.engine,
            "latency",
            level,
            f"实时数据上传延迟：{late}条实时数据发布已超过{int(self.threshold // 60)}分钟仍未被国家平台接收，"
            f"最久{int(age // 60)}分{int(age % 60)}秒（规定10分钟内）(E-NODE-LATENCY)",
            at=moment,
            condition=self.LATE,
        )
        return int(late), age

    def _check_blocked(self, moment: dt.datetime) -> None:
        waiting = blocked_by_held(self.engine, limit=3)
        if not waiting:
            resolve_alerts(self.engine, "blocked", at=moment)
            return
        realtime = sum(b.realtime for b in waiting)
        raise_alert(
            self.engine,
            "blocked",
            "warning" if realtime else "info",
            f"{sum(b.waiting for b in waiting)}条数据（实时数据{realtime}条）等待所依赖的暂存记录更正后上传："
            + "；".join(b.line_zh() for b in waiting)
            + "。请导出更正后导入（ggzy node rejects export / ggzy node corrections import），"
            "或由源系统重新提交该记录的完整新版本 (E-NODE-BLOCKED)",
            at=moment,
            condition=self.WAITING,
        )


# --- the uploader ---


class Priority:
    """Channel 1 goes first: channel 2 does not start a request while channel 1 is sending.

    The hub ingests one batch of a node at a time, so a channel-2 request started just before a
    realtime batch would make it wait; this keeps that to the request already in flight.
    """

    MAX_YIELD_SECONDS = 2.0  # channel 1 sending for longer (an outage) must not stall channel 2

    def __init__(self) -> None:
        self._realtime_idle = threading.Event()
        self._realtime_idle.set()

    def realtime_sending(self, sending: bool) -> None:
        if sending:
            self._realtime_idle.clear()
        else:
            self._realtime_idle.set()

    def let_realtime_pass(self) -> None:
        self._realtime_idle.wait(self.MAX_YIELD_SECONDS)


@dataclass(slots=True)
class StepOutcome:
    """What one step did and how long to wait before the next (``interruptible``: a notify may cut it)."""

    kind: str  # sent | idle | unavailable | refused | breaker_open | rate_limited | error
    wait: float = 0.0
    interruptible: bool = False
    batch_id: str | None = None
    accepted: int = 0
    rejected: int = 0


@dataclass
class UploaderStats:
    batches: int = 0
    accepted: int = 0
    rejected: int = 0
    failures: int = 0
    refusals: int = 0
    last_error: str | None = None
    last_success: dt.datetime | None = None
    last_attempt: dt.datetime | None = None
    # recent (publish→sent, publish→accepted) seconds, for the status view and the heartbeat
    recent: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=2000))


class ChannelUploader:
    def __init__(
        self,
        ctx: NodeContext,
        channel: int,
        client: UploadClient,
        breaker: CircuitBreaker | None = None,
        *,
        backoff: Backoff | None = None,
        bucket: TokenBucket | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = utcnow,
        poll_seconds: float | None = None,
        batch_size: int | None = None,
        priority: Priority | None = None,
    ) -> None:
        if channel not in (1, 2):
            raise ValueError("channel must be 1 or 2")
        settings = ctx.settings
        self.ctx = ctx
        self.channel = channel
        self.client = client
        self.clock = clock
        self.now = now
        self.breaker = breaker or CircuitBreaker(
            settings.breaker_failures, settings.breaker_open_seconds, clock
        )
        self.backoff = backoff or Backoff(settings.retry_base_seconds, settings.retry_max_seconds)
        rate = settings.channel2_rate if channel == 2 else 0.0
        self.bucket = bucket or TokenBucket(rate, max(rate, float(settings.batch_size)), clock)
        self.poll_seconds = poll_seconds or (CHANNEL1_POLL_SECONDS if channel == 1 else CHANNEL2_POLL_SECONDS)
        self.batch_size = batch_size or settings.batch_size
        self.priority = priority or Priority()
        self.stats = UploaderStats()
        self.wake = threading.Event()
        self._stopping = threading.Event()
        self._pending: deque[Batch] | None = None  # unacknowledged batches, oldest first
        self._seconds_per_record: float | None = None  # the hub's recent pace, for channel 2's batch size
        self._tag = f"第{channel}通道"  # in every "hub" alert this uploader raises, to resolve its own
        self._alerting = True

    @property
    def outbox(self) -> Outbox:
        return self.ctx.outbox

    @property
    def engine(self) -> Engine:
        return self.ctx.engine

    # --- control ---

    def notify(self) -> None:
        """New records are queued: look now instead of at the next poll."""
        if self.channel == 1:
            self.priority.realtime_sending(True)  # channel 2 starts nothing new until they are sent
        self.wake.set()

    def stop(self) -> None:
        """Finish the step in progress (the request in flight and its commit), then leave ``run``."""
        self._stopping.set()
        self.wake.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self) -> None:
        log.info("channel %s uploader started", self.channel)
        while not self._stopping.is_set():
            self.wake.clear()  # before the step: a notify during the step makes the wait return at once
            try:
                outcome = self.step()
            except Exception as exc:  # the store or a bug: keep the thread alive, retry later
                log.exception("channel %s upload step failed", self.channel)
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                outcome = StepOutcome("error", wait=self.backoff.next_delay())
            if outcome.wait <= 0:
                continue
            if outcome.interruptible:
                self.wake.wait(outcome.wait)
            else:
                self._stopping.wait(outcome.wait)
        log.info("channel %s uploader stopped", self.channel)

    # --- one step ---

    def step(self) -> StepOutcome:
        try:
            return self._step()
        finally:
            if self.channel == 1:  # sent, idle or failed: channel 2 need not hold back any more
                self.priority.realtime_sending(False)

    def _step(self) -> StepOutcome:
        trial_in = self.breaker.seconds_until_trial()
        if trial_in > 0:
            return StepOutcome("breaker_open", wait=trial_in)
        throttle = self.bucket.wait_seconds()
        if throttle > 0:
            return StepOutcome("rate_limited", wait=throttle)
        batch = self._next_batch()
        if batch is None:
            return StepOutcome("idle", wait=self.poll_seconds, interruptible=True)
        if not self.breaker.allow():  # another sender holds the half-open trial
            return StepOutcome(
                "breaker_open", wait=max(self.breaker.seconds_until_trial(), self.backoff.floor)
            )
        if self.channel == 2:
            self.priority.let_realtime_pass()
        else:
            self.priority.realtime_sending(True)
        return self._send(batch)

    def batch_limit(self) -> int:
        """Records in the next new batch: channel 2 aims at ``CHANNEL2_REQUEST_SECONDS`` at the hub."""
        if self.channel == 1 or self._seconds_per_record is None:
            return self.batch_size
        fitting = int(CHANNEL2_REQUEST_SECONDS / max(self._seconds_per_record, 1e-6))
        return max(min(CHANNEL2_MIN_BATCH, self.batch_size), min(self.batch_size, fitting))

    def _learn_pace(self, records: int, seconds: float) -> None:
        pace = seconds / max(records, 1)
        previous = self._seconds_per_record
        self._seconds_per_record = pace if previous is None else 0.7 * previous + 0.3 * pace

    def _next_batch(self) -> Batch | None:
        if self._pending is None:
            self._pending = deque(self.outbox.unacknowledged(self.channel))
        if self._pending:
            return self._pending[0]
        batch = self.outbox.form_batch(self.channel, self.batch_limit(), now=self.now())
        if batch is not None:
            self._pending.append(batch)
        return batch

    def _send(self, batch: Batch) -> StepOutcome:
        self.bucket.spend(len(batch.records))
        started = self.clock()
        self.stats.last_attempt = self.now()
        try:
            receipt = self.client.upload(self.channel, batch.batch_id, batch.records)
        except HubUnavailable as exc:
            return self._unavailable(batch, exc, self.clock() - started)
        except HubRefused as exc:
            return self._refused(batch, exc, self.clock() - started)
        elapsed = self.clock() - started
        try:
            accepted, rejected = self.outbox.apply_receipt(batch, receipt, now=self.now())
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # a receipt that does not fit
            return self._refused(batch, HubRefused(200, "E-NODE-RECEIPT", str(exc), str(exc)), elapsed)
        record_link_attempt(self.engine, True, elapsed)
        self.breaker.record_success()
        self.backoff.reset()
        self._learn_pace(len(batch.records), elapsed)
        self._finish(batch, accepted, rejected)
        return StepOutcome("sent", batch_id=batch.batch_id, accepted=accepted, rejected=rejected)

    def _finish(self, batch: Batch, accepted: int, rejected: int) -> None:
        assert self._pending is not None
        if self._pending and self._pending[0].batch_id == batch.batch_id:
            self._pending.popleft()
        stats = self.stats
        stats.batches += 1
        stats.accepted += accepted
        stats.rejected += rejected
        stats.last_success = self.now()
        if self.channel == 1:  # history's age since publication says nothing about the node
            stats.recent.extend(self._latencies(batch))
        stats.refusals = 0
        if self._alerting:  # also true at start: alerts left open by an earlier run are settled now
            resolve_alerts(self.engine, "hub", containing=self._tag)
            self._alerting = False

    def _latencies(self, batch: Batch) -> list[tuple[float, float]]:
        found: list[tuple[float, float]] = []
        with self.engine.connect() as connection:
            for start in range(0, len(batch.ids), 400):
                rows = connection.execute(_DECIDED_TIMES, {"ids": batch.ids[start : start + 400]})
                for row in rows:
                    published = utc(row.published_at)
                    sent = utc(row.sent_at) if row.sent_at is not None else published
                    found.append(
                        (
                            (sent - published).total_seconds(),
                            (utc(row.decided_at) - published).total_seconds(),
                        )
                    )
        return found

    def _unavailable(self, batch: Batch, exc: Exception, elapsed: float) -> StepOutcome:
        message = str(exc) or type(exc).__name__
        log.warning("channel %s: hub unavailable for batch %s: %s", self.channel, batch.batch_id, message)
        record_link_attempt(self.engine, False, elapsed)
        self.outbox.batch_failed(batch, message)
        self.breaker.record_failure()
        self.stats.failures += 1
        self.stats.last_error = message
        if self.breaker.seconds_until_trial() > 0:
            self._alerting = True
            raise_alert(
                self.engine,
                "hub",
                "warning",
                f"{self._tag}：国家平台连续{self.breaker.failures}次无法访问，暂停上传并按退避重试，"
                f"数据保留在发件箱 (E-NODE-HUB-DOWN, circuit breaker open)",
            )
        wait = max(self.backoff.next_delay(), self.breaker.seconds_until_trial())
        return StepOutcome("unavailable", wait=wait, batch_id=batch.batch_id)

    def _refused(self, batch: Batch, exc: HubRefused, elapsed: float) -> StepOutcome:
        if refused_for_content(exc):
            return self._split(batch, exc, elapsed)
        log.error("channel %s: hub refused batch %s: %s", self.channel, batch.batch_id, exc)
        record_link_attempt(self.engine, True, elapsed)  # the hub answered: the link is up
        self.breaker.record_success()
        self.outbox.batch_failed(batch, f"{exc.code}: {exc.message_en}")
        self.stats.refusals += 1
        self.stats.last_error = f"{exc.code}: {exc.message_en}"
        self._alerting = True
        raise_alert(
            self.engine,
            "hub",
            "critical",
            f"{self._tag}：国家平台拒收批次（{exc.code}，HTTP {exc.status}）：{exc.message_zh}。"
            f"数据保留在发件箱，排除原因后自动重发 (E-NODE-BATCH-REFUSED, kept for resend)",
        )
        return StepOutcome("refused", wait=self.backoff.next_delay(), batch_id=batch.batch_id)

    def _split(self, batch: Batch, exc: HubRefused, elapsed: float) -> StepOutcome:
        """The hub refused ``batch`` for what it carries: split it, or reject its one record."""
        record_link_attempt(self.engine, True, elapsed)  # the hub answered: the link is up
        self.breaker.record_success()
        assert self._pending is not None and self._pending and self._pending[0].batch_id == batch.batch_id
        error = f"{exc.code}: {exc.message_en}"
        self._pending.popleft()
        if len(batch.ids) == 1:
            log.warning(
                "channel %s: the hub refuses record %s alone (%s): rejected",
                self.channel,
                batch.ids[0],
                error,
            )
            self.outbox.reject_alone(batch, exc.code, exc.message_zh, exc.message_en, now=self.now())
            self.stats.rejected += 1
            return StepOutcome("rejected", batch_id=batch.batch_id, rejected=1)
        parts = split_points(len(batch.ids), named_record(exc))
        log.warning(
            "channel %s: the hub refuses batch %s (%s): split at %s",
            self.channel,
            batch.batch_id,
            error,
            parts,
        )
        self._pending.extendleft(reversed(self.outbox.split_batch(batch, parts, error, now=self.now())))
        return StepOutcome("split", batch_id=batch.batch_id)


_NAMED_RECORD = re.compile(r"records\[(\d+)\]")


def refused_for_content(exc: HubRefused) -> bool:
    """Whether the hub refused a batch for what it carries, so that sending its records apart helps.

    413 (body or batch too large), or 400 naming one record (:func:`named_record`). Anything else
    (authentication, a malformed request of the node's own making) is not: splitting would only
    reject every record one by one.
    """
    return exc.status == 413 or named_record(exc) is not None


def named_record(exc: HubRefused) -> int | None:
    """The record a 400 names (``records[i]`` in the message, as the hub's body checks name the place)."""
    if exc.status != 400 or exc.code.startswith("E-AUTH-"):
        return None
    named = _NAMED_RECORD.search(exc.message_en) or _NAMED_RECORD.search(exc.message_zh)
    return int(named.group(1)) if named is not None else None


def split_points(size: int, named: int | None) -> list[int]:
    """Where to cut a batch of ``size`` records: around the record named, else in halves."""
    if named is not None and 0 <= named < size:
        return [named, named + 1]
    return [size // 2]
