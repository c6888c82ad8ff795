"""Node heartbeats (Art. 13, 16): what each node says about its queues, disk and links, kept per beat.

Every heartbeat is one row of ``node_heartbeats``; operations derive a node's availability (the
gaps between beats, the failed link attempts it reports) from aggregates kept with each beat
(``ggzy.hub.ops.uptime``) and capacity trends from the rows; the software, OS, Python and database
versions a beat reports are kept as a history of changes (``ggzy.hub.ops.versions``, Art. 13). The
Prometheus gauge of queue depths shows the latest beat of each node seen by this process.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import Connection, insert, select

from ggzy.hub.metrics import HubMetrics
from ggzy.hub.models import node_heartbeats
from ggzy.hub.ops.network import NODE, note_down
from ggzy.hub.ops.periods import clip, utc
from ggzy.hub.ops.uptime import Beat, coverage_of, lock_province, note_heartbeat
from ggzy.hub.ops.versions import note_versions
from ggzy.settings import OpsSettings

__all__ = [
    "AuditCheckpointReport",
    "DiskReport",
    "HeartbeatReport",
    "LinkReport",
    "PlatformReport",
    "VersionsReport",
    "latest_heartbeat",
    "record_heartbeat",
    "update_metrics",
]

_CHANNELS = ("1", "2")
_MAX_COUNT = 2**31 - 1  # the attempt columns are 32-bit INTEGERs
Count = Annotated[int, Field(ge=0, le=2**53)]
Age = Annotated[float, Field(ge=0)]


class DiskReport(BaseModel):
    used_ratio: float = Field(ge=0, le=1)
    total_bytes: int | None = Field(None, ge=0)
    free_bytes: int | None = Field(None, ge=0)


class LinkReport(BaseModel):
    failed: int = Field(ge=0, le=_MAX_COUNT)
    total: int = Field(ge=0, le=_MAX_COUNT)
    since: dt.datetime | None = None
    # When the node could not reach the hub in the window: [start, end] pairs (Art. 18, time-based).
    down: list[tuple[AwareDatetime, AwareDatetime]] = Field(default_factory=list, max_length=100)


class PlatformReport(BaseModel):
    configured: bool
    ok: bool | None = None
    latency_ms: float | None = Field(None, ge=0)
    error: str | None = Field(None, max_length=500)


class VersionsReport(BaseModel):
    """What the node runs (Art. 13): exchange software, operating system, Python and database."""

    software: str = Field("", max_length=200)
    os: str = Field("", max_length=200)
    python: str = Field("", max_length=200)
    database: str = Field("", max_length=200)


class AuditCheckpointReport(BaseModel):
    """The node's newest audit checkpoint: anchored at the hub (``ggzy.hub.anchors``)."""

    sequence: int = Field(ge=1, le=2**62)
    entry: int = Field(ge=1, le=2**62)
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    at: dt.datetime


class HeartbeatReport(BaseModel):
    """The body of ``POST /api/v1/heartbeat``; unknown fields are kept in the payload, not refused."""

    model_config = ConfigDict(extra="allow")

    version: str = Field(min_length=1, max_length=32)
    sent_at: dt.datetime | None = None
    # channel ("1"/"2") → outbox state → number of records
    queues: dict[str, dict[str, Count]] = Field(max_length=8)
    oldest_unsent_seconds: dict[str, Age | None] = Field(default_factory=dict, max_length=8)
    disk: DiskReport | None = None
    last_error: str | None = Field(None, max_length=2000)
    link: LinkReport
    platform: PlatformReport | None = None
    versions: VersionsReport | None = None  # absent from nodes older than this field
    audit_checkpoint: AuditCheckpointReport | None = None  # nodes before issue 16 send none

    def oldest_unsent(self) -> float | None:
        ages = [age for age in self.oldest_unsent_seconds.values() if age is not None]
        return max(ages) if ages else None

    def waiting(self, channel: str) -> int:
        """Records of ``channel`` not yet decided by the hub (queued, or sent and unanswered)."""
        states = self.queues.get(channel, {})
        return states.get("queued", 0) + states.get("sent", 0)


def record_heartbeat(
    connection: Connection,
    node_id: str,
    province: str,
    report: HeartbeatReport,
    received_at: dt.datetime,
    *,
    coverage: dt.timedelta | None = None,
) -> int:
    """Store one beat and bring the availability aggregates up to date in the same transaction.

    ``coverage`` is how long one beat shows its node up (``OpsSettings``, :func:`coverage_of`): how
    far apart beats may be and still extend one run of up time. The spans in which the node reports
    it could not reach the hub are kept as network down time, within the beat's own window.
    """
    platform_ok = report.platform.ok if report.platform is not None and report.platform.configured else None
    lock_province(connection, province)
    result = connection.execute(
        insert(node_heartbeats).returning(node_heartbeats.c.id),
        {
            "node_id": node_id,
            "province": province,
            "received_at": received_at,
            "version": report.version,
            "queue_depths": report.queues,
            "oldest_unsent_seconds": report.oldest_unsent(),
            "disk_used_ratio": report.disk.used_ratio if report.disk is not None else None,
            "failed_attempts": report.link.failed,
            "total_attempts": report.link.total,
            "platform_ok": platform_ok,
            "last_error": report.last_error,
            "payload": report.model_dump(mode="json"),
        },
    )
    heartbeat_id = int(result.scalar_one())
    versions = report.versions.model_dump() if report.versions is not None else {"software": report.version}
    note_versions(connection, node_id, province, versions, received_at)
    since = report.link.since
    beat = Beat(
        node_id,
        province,
        received_at,
        report.link.failed,
        report.link.total,
        platform_ok,
        utc(since) if since is not None else received_at,
    )
    note_heartbeat(connection, beat, coverage if coverage is not None else coverage_of(OpsSettings()))
    window = (min(beat.link_since, utc(received_at)), utc(received_at))
    spans = clip(((utc(s), utc(e)) for s, e in report.link.down if s <= e), window)
    if spans:
        note_down(connection, node_id, province, NODE, spans)
    return heartbeat_id


def update_metrics(metrics: HubMetrics, node_id: str, report: HeartbeatReport) -> None:
    for channel in _CHANNELS:
        metrics.node_queue.labels(node_id, channel).set(report.waiting(channel))


def latest_heartbeat(connection: Connection, node_id: str) -> dict[str, Any] | None:
    row = connection.execute(
        select(node_heartbeats)
        .where(node_heartbeats.c.node_id == node_id)
        .order_by(node_heartbeats.c.received_at.desc(), node_heartbeats.c.id.desc())
        .limit(1)
    ).first()
    return dict(row._mapping) if row is not None else None
