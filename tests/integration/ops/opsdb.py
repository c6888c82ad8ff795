"""Helpers of the operations tests: a migrated hub database, its audit chain, heartbeats at chosen times."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, insert, update

from ggzy.hub.heartbeat import HeartbeatReport, record_heartbeat
from ggzy.hub.models import node_heartbeats, nodes
from ggzy.hub.ops.periods import SHANGHAI
from ggzy.hub.ops.probes import record_probe
from ggzy.hub.ops.session import Actor, OpsSession
from ggzy.hub.ops.uptime import coverage_of, rebuild_heartbeat_aggregates
from ggzy.hub.registry import add_node
from ggzy.security.audit import AuditLog
from ggzy.settings import OpsSettings
from ggzy.store.database import writing

NATIONAL = Actor("national-op", "operator")


def shanghai(*parts: int) -> dt.datetime:
    """A Beijing wall time as aware UTC."""
    return dt.datetime(*parts, tzinfo=SHANGHAI).astimezone(dt.UTC)  # type: ignore[misc]


@dataclass
class Clock:
    now: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class OpsDb:
    engine: Engine
    audit: AuditLog
    clock: Clock
    # A beat every 10 min shows its node up for exactly 10 min (no delivery allowance): figures in
    # whole minutes, worked out by hand.
    settings: OpsSettings = field(
        default_factory=lambda: OpsSettings(heartbeat_seconds=600, heartbeat_allowance_seconds=0)
    )

    def session(self, connection: Any, actor: Actor = NATIONAL) -> OpsSession:
        return OpsSession(connection, self.audit, actor, self.settings, self.clock)

    def run(self, fn: Callable[[OpsSession], Any], actor: Actor = NATIONAL) -> Any:
        with writing(self.engine) as connection:
            return fn(self.session(connection, actor))

    def add_node(self, node_id: str, province: str, created_at: dt.datetime) -> None:
        with writing(self.engine) as connection:
            add_node(connection, node_id, province)
            connection.execute(update(nodes).where(nodes.c.node_id == node_id).values(created_at=created_at))

    def beat(self, node_id: str, province: str, at: dt.datetime, **options: Any) -> None:
        with writing(self.engine) as connection:
            record_heartbeat(
                connection, node_id, province, _report(at, **options), at, coverage=coverage_of(self.settings)
            )

    def probe(self, node_id: str, province: str, at: dt.datetime, ok: bool) -> None:
        """The hub's probe of a node, stored as ``ggzy ops watch`` stores it."""
        holds = dt.timedelta(seconds=self.settings.probe_seconds)
        with writing(self.engine) as connection:
            record_probe(connection, {"node_id": node_id, "province": province, "at": at, "ok": ok}, holds)

    def beats(
        self, node_id: str, province: str, start: dt.datetime, end: dt.datetime, **options: Any
    ) -> None:
        """A beat every ``heartbeat_seconds`` in [start, end), stored as ``record_heartbeat`` stores one
        (in bulk; the province's aggregates are then rebuilt as the migration builds them)."""
        step = dt.timedelta(seconds=self.settings.heartbeat_seconds)
        rows = []
        moment = start
        while moment < end:
            report = _report(moment, **options)
            platform = report.platform
            rows.append(
                {
                    "node_id": node_id,
                    "province": province,
                    "received_at": moment,
                    "version": report.version,
                    "queue_depths": report.queues,
                    "oldest_unsent_seconds": report.oldest_unsent(),
                    "disk_used_ratio": report.disk.used_ratio if report.disk else None,
                    "failed_attempts": report.link.failed,
                    "total_attempts": report.link.total,
                    "platform_ok": platform.ok if platform is not None and platform.configured else None,
                    "last_error": None,
                    "payload": report.model_dump(mode="json"),
                }
            )
            moment += step
        with writing(self.engine) as connection:
            connection.execute(insert(node_heartbeats), rows)
            rebuild_heartbeat_aggregates(connection, coverage_of(self.settings), province)


def _report(
    at: dt.datetime,
    *,
    failed: int = 0,
    total: int = 0,
    since: dt.datetime | None = None,
    down: list[tuple[dt.datetime, dt.datetime]] | None = None,
    platform_ok: bool | None = None,
    disk: float | None = None,
    oldest_unsent: dict[str, float | None] | None = None,
    extra: dict[str, Any] | None = None,
) -> HeartbeatReport:
    return HeartbeatReport.model_validate(
        {
            "version": "test",
            "queues": {"1": {}, "2": {}},
            "oldest_unsent_seconds": oldest_unsent or {},
            "disk": {"used_ratio": disk} if disk is not None else None,
            "link": {
                "failed": failed,
                "total": total,
                "since": (since or at).isoformat(),
                "down": [[s.isoformat(), e.isoformat()] for s, e in down or []],
            },
            "platform": {"configured": platform_ok is not None, "ok": platform_ok},
            **(extra or {}),
        }
    )
