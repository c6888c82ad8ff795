"""The heartbeat (Art. 13, 16): every ``heartbeat_seconds`` the node tells the hub how it is doing.

One beat carries the node's version and the versions of its OS, Python and database (Art. 13:
the national side manages them), its queue depths per channel and state, the age of the oldest
unsent record, disk usage, the last error, the failed and total link attempts since the previous
beat that reached the hub and when the link was down in that window (so no attempt is counted twice
or lost when a beat fails), the health of the provincial platform when a probe URL is configured,
and the newest checkpoint of the node's audit chain (sealed just before), which the hub keeps as its
off-host anchor. The hub answers with its clock;
a node whose clock drifts raises an alert long before the hub starts refusing its signatures.

``send_heartbeat(ctx, client)`` sends one beat and never raises for a hub problem; the service
calls it every ``heartbeat_seconds`` (``heartbeat_loop`` does exactly that until stopped).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import platform
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import Connection, Engine, case, delete, func, insert, select

from ggzy import __version__
from ggzy.node.models import alerts, batches, link_attempts, node_samples, state
from ggzy.node.status import UsageFunction, aware, disk_usage, used_ratio
from ggzy.node.uploader import open_alerts, raise_alert, record_link_attempt, resolve_alerts
from ggzy.protocol import HubClient, HubRefused, HubUnavailable
from ggzy.security.audit_anchor import seal_tail
from ggzy.store.database import writing
from ggzy.store.upsert import upsert

if TYPE_CHECKING:
    from ggzy.node.context import NodeContext

__all__ = [
    "BACKUP_VERIFIED_AT",
    "CLOCK_SKEW_ALERT_SECONDS",
    "HeartbeatResult",
    "PlatformHealth",
    "build_payload",
    "heartbeat_loop",
    "last_error",
    "probe_platform",
    "record_sample",
    "send_heartbeat",
    "software_versions",
]

# The hub refuses signatures beyond ±300 s by default; warn well before that.
CLOCK_SKEW_ALERT_SECONDS = 60.0
PLATFORM_TIMEOUT = httpx.Timeout(5.0)
_SINCE = "heartbeat.since"  # node_state: end of the window the last delivered beat covered
_LAST_ERROR = "last_error"  # node_state: {"at": ISO time, "message": text}
# node_state: ISO time of the last backup verified restorable, written by the backup tooling and
# reported to the hub, which flags a province whose backups go unverified (Art. 21).
BACKUP_VERIFIED_AT = "backup.verified_at"


@dataclass(frozen=True, slots=True)
class PlatformHealth:
    ok: bool
    latency_ms: float
    error: str | None = None


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    ok: bool
    payload: dict[str, Any]
    server_time: dt.datetime | None = None
    skew_seconds: float | None = None  # hub clock minus node clock (positive: the node is behind)
    error: str | None = None


Probe = Callable[[str], PlatformHealth]


def probe_platform(url: str) -> PlatformHealth:
    """GET the provincial platform's health URL: any 2xx/3xx answer within the timeout is healthy."""
    started = time.perf_counter()
    try:
        response = httpx.get(url, timeout=PLATFORM_TIMEOUT)
    except httpx.HTTPError as exc:
        return PlatformHealth(
            False, (time.perf_counter() - started) * 1000, f"{type(exc).__name__}: {exc}"[:500]
        )
    latency = (time.perf_counter() - started) * 1000
    if response.status_code >= 400:
        return PlatformHealth(False, latency, f"HTTP {response.status_code}")
    return PlatformHealth(True, latency)


# --- node_state helpers ---


def _read_state(connection: Connection, name: str) -> str | None:
    value = connection.execute(select(state.c.value).where(state.c.name == name)).scalar()
    return str(value) if value is not None else None


def _write_state(engine: Engine, name: str, value: str) -> None:
    with writing(engine) as connection:
        upsert(connection, state, [{"name": name, "value": value}], ["name"], replace=["value"])


def note_error(engine: Engine, message: str, now: dt.datetime | None = None) -> None:
    """Remember the node's latest error for the next heartbeat."""
    moment = now or dt.datetime.now(dt.UTC)
    _write_state(
        engine,
        _LAST_ERROR,
        json.dumps({"at": moment.isoformat(), "message": message[:2000]}, ensure_ascii=False),
    )


# --- what a beat says ---


def software_versions(engine: Engine) -> dict[str, str]:
    """The versions the national side manages on a front-end node (Art. 13)."""
    try:
        release = platform.freedesktop_os_release().get("PRETTY_NAME", "")
    except OSError:
        release = ""
    kernel = f"{platform.system()} {platform.release()}".strip()
    database = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(engine.dialect.name, engine.dialect.name)
    info = engine.dialect.server_version_info
    number = ".".join(str(part) for part in info) if info else ""
    return {
        "software": f"ggzy-exchange {__version__}",
        "os": f"{release} ({kernel})" if release else kernel,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "database": f"{database} {number}".strip(),
    }


def last_error(engine: Engine) -> str | None:
    """The most recent of: an open warning/critical alert, a failed unacknowledged batch, a noted error."""
    found: list[tuple[dt.datetime, str]] = []
    with engine.connect() as connection:
        alert = connection.execute(
            select(alerts.c.at, alerts.c.kind, alerts.c.message)
            .where(alerts.c.resolved_at.is_(None), alerts.c.level.in_(("warning", "critical")))
            .order_by(alerts.c.at.desc(), alerts.c.id.desc())
            .limit(1)
        ).first()
        if alert is not None:
            found.append((aware(alert.at) or alert.at, f"{alert.kind}: {alert.message}"))
        batch = connection.execute(
            select(batches.c.created_at, batches.c.batch_id, batches.c.last_error)
            .where(batches.c.acknowledged_at.is_(None), batches.c.last_error.is_not(None))
            .order_by(batches.c.created_at.desc())
            .limit(1)
        ).first()
        if batch is not None:
            found.append(
                (aware(batch.created_at) or batch.created_at, f"batch {batch.batch_id}: {batch.last_error}")
            )
        noted = _read_state(connection, _LAST_ERROR)
    if noted:
        try:
            item = json.loads(noted)
            found.append((dt.datetime.fromisoformat(item["at"]), str(item["message"])))
        except (ValueError, KeyError, TypeError):
            pass
    if not found:
        return None
    return max(found, key=lambda pair: pair[0])[1][:2000]


def _attempts(engine: Engine, since: dt.datetime, until: dt.datetime) -> tuple[int, int]:
    """(failed, total) link attempts in (since, until]."""
    a = link_attempts.c
    with engine.connect() as connection:
        row = connection.execute(
            select(func.count(), func.coalesce(func.sum(case((a.ok.is_(False), 1), else_=0)), 0)).where(
                a.at > since, a.at <= until
            )
        ).one()
    return int(row[1]), int(row[0])


MAX_DOWN_SPANS = 100  # the hub accepts this many per beat; more are joined into one


def link_down_spans(engine: Engine, since: dt.datetime, until: dt.datetime) -> list[list[str]]:
    """When the node could not reach the hub in (since, until]: from each failed attempt to the next
    attempt that got through (Art. 18, time-based network availability).

    The window starts where the last delivered beat ended, so the link was up at its start; a failure
    still open at ``until`` ends there (this beat is the next attempt; if it fails too, the next beat's
    window starts at the same place and reports the whole span again).
    """
    a = link_attempts.c
    with engine.connect() as connection:
        attempts = connection.execute(
            select(a.at, a.ok).where(a.at > since, a.at <= until).order_by(a.at, a.id)
        ).all()
    spans: list[tuple[dt.datetime, dt.datetime]] = []
    started: dt.datetime | None = None
    for at, ok in attempts:
        moment = aware(at) or at
        if not ok and started is None:
            started = moment
        elif ok and started is not None:
            spans.append((started, moment))
            started = None
    if started is not None:
        spans.append((started, until))
    if len(spans) > MAX_DOWN_SPANS:  # never dropped: the excess is joined, counting more down time, not less
        spans = [*spans[: MAX_DOWN_SPANS - 1], (spans[MAX_DOWN_SPANS - 1][0], spans[-1][1])]
    return [[start.isoformat(), end.isoformat()] for start, end in spans]


def window_start(ctx: NodeContext, now: dt.datetime) -> dt.datetime:
    """Where the window of the next beat starts: the end of the last delivered one.

    The first beat ever starts one interval back; that start is stored at once, so a first beat
    that fails does not move the window of the next one.
    """
    with ctx.engine.connect() as connection:
        text = _read_state(connection, _SINCE)
    if text:
        with contextlib.suppress(ValueError):
            return dt.datetime.fromisoformat(text)
    start = now - dt.timedelta(seconds=ctx.settings.heartbeat_seconds)
    _write_state(ctx.engine, _SINCE, start.isoformat())
    return start


def build_payload(
    ctx: NodeContext,
    now: dt.datetime,
    since: dt.datetime,
    *,
    usage: UsageFunction = shutil.disk_usage,
    probe: Probe = probe_platform,
) -> dict[str, Any]:
    depths = ctx.outbox.depths()
    queues: dict[str, dict[str, int]] = {"1": {}, "2": {}}
    for (channel, row_state), count in sorted(depths.by_channel_state.items()):
        queues.setdefault(str(channel), {})[row_state] = count
    oldest = {
        str(channel): round((now - when).total_seconds(), 3) if when is not None else None
        for channel, when in sorted(depths.oldest_unsent.items())
    }
    try:
        volume = disk_usage(ctx.settings.disk_path, usage)
        disk: dict[str, Any] | None = {
            "used_ratio": round(used_ratio(volume), 6),
            "total_bytes": volume.total,
            "free_bytes": volume.free,
        }
    except OSError:
        disk = None
    failed, total = _attempts(ctx.engine, since, now)
    down = link_down_spans(ctx.engine, since, now)
    url = ctx.settings.platform_health_url
    platform_health: dict[str, Any] = {"configured": bool(url)}
    if url:
        health = probe(url)
        platform_health.update(ok=health.ok, latency_ms=round(health.latency_ms, 3), error=health.error)
    with ctx.engine.connect() as connection:
        backup_verified_at = _read_state(connection, BACKUP_VERIFIED_AT)
    return {
        **audit_anchor_payload(ctx),
        "version": __version__,
        "sent_at": now.isoformat(),
        "backup_verified_at": backup_verified_at,
        "queues": queues,
        "oldest_unsent_seconds": oldest,
        "disk": disk,
        "last_error": last_error(ctx.engine),
        "link": {"failed": failed, "total": total, "since": since.isoformat(), "down": down},
        "platform": platform_health,
        "versions": software_versions(ctx.engine),
    }


def audit_anchor_payload(ctx: NodeContext) -> dict[str, Any]:
    """Seal the tail of the node's audit chain and report its newest checkpoint, which the hub keeps
    off this host (Art. 24; ``ggzy.security.audit_anchor``): the tail unanchored is at most one beat."""
    anchor = seal_tail(ctx.engine, ctx.audit)
    return {"audit_checkpoint": anchor.to_dict()} if anchor is not None else {}


def _check_clock(ctx: NodeContext, skew: float, now: dt.datetime) -> None:
    if abs(skew) <= CLOCK_SKEW_ALERT_SECONDS:
        resolve_alerts(ctx.engine, "clock", at=now)
    elif not open_alerts(ctx.engine, "clock"):
        raise_alert(
            ctx.engine,
            "clock",
            "warning",
            f"本机时钟与国家平台相差 {skew:+.0f} 秒，超过 {CLOCK_SKEW_ALERT_SECONDS:.0f} 秒；"
            "请校准时间（超过签名允许偏差后上传将被拒绝）(E-NODE-CLOCK)",
            at=now,
        )


def record_sample(ctx: NodeContext, payload: dict[str, Any], ok: bool, at: dt.datetime) -> None:
    """Keep what a beat said (and whether it got through) for the portal's charts; prune old samples."""
    queues = payload.get("queues") or {}

    def waiting(channel: str) -> int:
        counts = queues.get(channel) or {}
        return int(counts.get("queued", 0)) + int(counts.get("sent", 0))

    disk = payload.get("disk") or {}
    with writing(ctx.engine) as connection:
        connection.execute(
            insert(node_samples),
            {
                "at": at,
                "beat_ok": ok,
                "disk_used_ratio": disk.get("used_ratio"),
                "waiting_1": waiting("1"),
                "waiting_2": waiting("2"),
            },
        )
        cutoff = at - dt.timedelta(days=ctx.settings.history_days)
        connection.execute(delete(node_samples).where(node_samples.c.at < cutoff))


def send_heartbeat(
    ctx: NodeContext,
    client: HubClient,
    *,
    now: dt.datetime | None = None,
    usage: UsageFunction = shutil.disk_usage,
    probe: Probe = probe_platform,
) -> HeartbeatResult:
    """Send one beat; the outcome is returned (and noted), never raised."""
    moment = now or dt.datetime.now(dt.UTC)
    since = window_start(ctx, moment)
    payload = build_payload(ctx, moment, since, usage=usage, probe=probe)
    started = time.perf_counter()
    wall_sent = dt.datetime.now(dt.UTC)  # the real clock, whatever ``now`` says, for the skew
    try:
        answer = client.heartbeat(payload)
    except (HubUnavailable, HubRefused) as exc:
        elapsed = time.perf_counter() - started
        record_link_attempt(ctx.engine, False, elapsed, at=moment + dt.timedelta(seconds=elapsed))
        message = f"心跳发送失败 heartbeat failed: {exc}"
        note_error(ctx.engine, message, moment)
        record_sample(ctx, payload, False, moment)
        return HeartbeatResult(False, payload, error=message)
    elapsed = time.perf_counter() - started
    # The attempt is stamped after ``moment``, so it is counted in the next beat's window.
    record_link_attempt(ctx.engine, True, elapsed, at=moment + dt.timedelta(seconds=elapsed))
    _write_state(ctx.engine, _SINCE, moment.isoformat())
    record_sample(ctx, payload, True, moment)
    server_time: dt.datetime | None = None
    skew: float | None = None
    with contextlib.suppress(ValueError):
        server_time = dt.datetime.fromisoformat(str(answer.get("server_time")))
    if server_time is not None and server_time.tzinfo is not None:
        # The hub read its clock somewhere during the exchange; the midpoint is the best guess.
        skew = (server_time - (wall_sent + dt.timedelta(seconds=elapsed / 2))).total_seconds()
        _check_clock(ctx, skew, moment)
    return HeartbeatResult(True, payload, server_time, skew)


def heartbeat_loop(ctx: NodeContext, client: HubClient, stop: threading.Event) -> None:
    """Beat every ``heartbeat_seconds`` until ``stop`` is set (for the service's thread)."""
    while not stop.is_set():
        started = time.monotonic()
        send_heartbeat(ctx, client)
        stop.wait(max(0.0, ctx.settings.heartbeat_seconds - (time.monotonic() - started)))
