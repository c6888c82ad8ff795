"""Automatic incidents (Art. 25–26): conditions the hub watches and the incidents they open.

Each check looks at every subject it knows (a node, a province) and says whether its condition
holds now. A condition that starts holding opens one incident (one per trigger and subject while it
stays open) and notifies the duty roster; a condition that stops holding marks its incident
recovered. The checks:

* ``node_down``: no heartbeat from an active node for ``node_down_incident_seconds`` (approved
  maintenance in progress suppresses it);
* ``error_rate``: a province's rejection rate today is ``error_rate_jump`` above its rate over the
  previous seven days (with at least ``error_rate_min_records`` records today);
* ``realtime_late``: the node's oldest realtime record has waited longer than 10 minutes
  (``realtime_late_seconds``), as the node's latest heartbeat reports it;
* ``disk``: the node's disk is fuller than ``disk_threshold`` (90 %) in its latest heartbeat;
* ``backup``: no backup of the province verified within ``backup_max_age_days`` (read through the
  :class:`~ggzy.hub.ops.backups.BackupSource` seam).

:func:`run_detection` is what ``ggzy ops watch`` runs every cycle.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from ggzy.hub.models import node_heartbeats, nodes, stats_daily
from ggzy.hub.ops.backups import BackupSource, HeartbeatBackupSource
from ggzy.hub.ops.incidents import Incident, open_auto_incident, recover_auto_incident
from ggzy.hub.ops.notify import Delivery, Notifier, recipients, record_deliveries
from ggzy.hub.ops.outages import approved_windows
from ggzy.hub.ops.periods import SHANGHAI, utc
from ggzy.hub.ops.session import Actor, Clock, OpsSession, system_clock
from ggzy.security.audit import AuditLog
from ggzy.settings import OpsSettings

__all__ = ["DETECTOR", "Condition", "DetectionResult", "check_conditions", "run_detection"]

DETECTOR = Actor(account="system:ops-detect", role="system", source="hub")


@dataclass(frozen=True, slots=True)
class Condition:
    trigger: str
    subject: str
    province: str
    active: bool
    title: str = ""
    started_at: dt.datetime | None = None
    node_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class DetectionResult:
    opened: list[Incident] = field(default_factory=list)
    recovered: list[Incident] = field(default_factory=list)
    deliveries: dict[int, list[Delivery]] = field(default_factory=dict)


def _latest_beats(connection: Connection) -> dict[str, Any]:
    newest = (
        select(node_heartbeats.c.node_id, func.max(node_heartbeats.c.id).label("id"))
        .group_by(node_heartbeats.c.node_id)
        .subquery()
    )
    rows = connection.execute(select(node_heartbeats).join(newest, node_heartbeats.c.id == newest.c.id))
    return {row.node_id: row for row in rows}


def _node_checks(connection: Connection, settings: OpsSettings, now: dt.datetime) -> list[Condition]:
    latest = _latest_beats(connection)
    found: list[Condition] = []
    grace = dt.timedelta(seconds=settings.heartbeat_seconds * settings.down_after_beats)
    for node in connection.execute(select(nodes).where(nodes.c.status == "active")):
        beat = latest.get(node.node_id)
        last = utc(beat.received_at) if beat is not None else utc(node.created_at)
        silent = (now - last).total_seconds()
        in_maintenance = any(
            s <= now < e
            for s, e in approved_windows(connection, node.province, (now, now + dt.timedelta(microseconds=1)))
        )
        down = silent > settings.node_down_incident_seconds and not in_maintenance
        found.append(
            Condition(
                "node_down",
                node.node_id,
                node.province,
                down,
                f"前置机 {node.node_id} 已 {int(silent // 60)} 分钟无心跳（中断）",
                last + grace if beat is not None else last,
                node.node_id,
                {
                    "last_heartbeat": last.isoformat() if beat is not None else None,
                    "silent_seconds": round(silent),
                },
            )
        )
        if beat is None:
            continue
        waiting = (beat.payload or {}).get("oldest_unsent_seconds", {}).get("1")
        late = isinstance(waiting, int | float) and waiting > settings.realtime_late_seconds
        found.append(
            Condition(
                "realtime_late",
                node.node_id,
                node.province,
                bool(late),
                f"前置机 {node.node_id} 实时数据已等待 {int((waiting or 0) // 60)} 分钟未送达（超过10分钟）",
                utc(beat.received_at) - dt.timedelta(seconds=float(waiting or 0)),
                node.node_id,
                {"oldest_unsent_seconds": waiting},
            )
        )
        ratio = beat.disk_used_ratio
        full = ratio is not None and ratio > settings.disk_threshold
        found.append(
            Condition(
                "disk",
                node.node_id,
                node.province,
                bool(full),
                f"前置机 {node.node_id} 磁盘使用率 {(ratio or 0):.0%}，超过 {settings.disk_threshold:.0%}",
                utc(beat.received_at),
                node.node_id,
                {"disk_used_ratio": ratio},
            )
        )
    return found


def _error_rate_checks(connection: Connection, settings: OpsSettings, now: dt.datetime) -> list[Condition]:
    today = now.astimezone(SHANGHAI).date()
    d = stats_daily.c

    def rates(start: dt.date, end: dt.date) -> dict[str, tuple[int, int]]:
        rows = connection.execute(
            select(d.province, func.sum(d.received), func.sum(d.rejected))
            .where(d.day >= start, d.day <= end)
            .group_by(d.province)
        )
        return {row[0]: (int(row[1] or 0), int(row[2] or 0)) for row in rows}

    now_rates = rates(today, today)
    before = rates(today - dt.timedelta(days=7), today - dt.timedelta(days=1))
    found = []
    for province, (received, rejected) in now_rates.items():
        base_received, base_rejected = before.get(province, (0, 0))
        rate = Fraction(rejected, received) if received else Fraction(0)
        baseline = Fraction(base_rejected, base_received) if base_received else Fraction(0)
        # exact: a rise of exactly the threshold counts, whatever binary floats would say
        jumped = received >= settings.error_rate_min_records and rate - baseline >= Fraction(
            str(settings.error_rate_jump)
        )
        found.append(
            Condition(
                "error_rate",
                province,
                province,
                jumped,
                f"省份 {province} 今日错误率 {float(rate):.1%}，前7日 {float(baseline):.1%}，突增 {float(rate - baseline):.1%}",
                dt.datetime(today.year, today.month, today.day, tzinfo=SHANGHAI).astimezone(dt.UTC),
                None,
                {
                    "received": received,
                    "rejected": rejected,
                    "rate": float(rate),
                    "baseline": float(baseline),
                },
            )
        )
    return found


def _backup_checks(
    connection: Connection, settings: OpsSettings, now: dt.datetime, source: BackupSource
) -> list[Condition]:
    found = []
    limit = dt.timedelta(days=settings.backup_max_age_days)
    provinces = connection.execute(
        select(nodes.c.province).where(nodes.c.status == "active").distinct()
    ).scalars()
    for province in sorted(provinces):
        verified = source.verified_at(connection, province, now)
        stale = verified is None or now - verified > limit
        found.append(
            Condition(
                "backup",
                province,
                province,
                stale,
                f"省份 {province} 的备份"
                + (f"自 {verified.astimezone(SHANGHAI):%Y-%m-%d} 起" if verified else "从未")
                + f"验证可恢复，超过 {settings.backup_max_age_days} 天",
                (verified + limit) if verified is not None else now,
                None,
                {"verified_at": verified.isoformat() if verified else None},
            )
        )
    return found


def check_conditions(
    connection: Connection, settings: OpsSettings, now: dt.datetime, backups: BackupSource | None = None
) -> list[Condition]:
    """Every watched condition of every subject, holding or not."""
    return (
        _node_checks(connection, settings, now)
        + _error_rate_checks(connection, settings, now)
        + _backup_checks(connection, settings, now, backups or HeartbeatBackupSource())
    )


def run_detection(
    engine: Engine,
    audit: AuditLog,
    settings: OpsSettings,
    *,
    clock: Clock = system_clock,
    notifier: Notifier | None = None,
    backups: BackupSource | None = None,
) -> DetectionResult:
    """One cycle: open incidents for new conditions, recover cleared ones, notify about the new."""
    result = DetectionResult()
    now = clock()
    with engine.connect() as plain:
        connection = plain.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            session = OpsSession(connection, audit, DETECTOR, settings, clock)
            for condition in check_conditions(connection, settings, now, backups):
                if condition.active:
                    opened = open_auto_incident(
                        session,
                        condition.province,
                        condition.trigger,
                        condition.subject,
                        condition.title,
                        condition.started_at or now,
                        condition.detail,
                        condition.node_id,
                    )
                    if opened is not None:
                        result.opened.append(opened)
                else:
                    recovered = recover_auto_incident(
                        session, f"{condition.trigger}:{condition.subject}", now
                    )
                    if recovered is not None:
                        result.recovered.append(recovered)
            targets = {i.id: recipients(connection, settings, i.province) for i in result.opened}
    notifier = notifier or Notifier(settings)
    for incident in result.opened:
        deliveries = notifier.send(incident, targets[incident.id])
        result.deliveries[incident.id] = deliveries
        if not deliveries:
            continue
        with engine.connect() as plain:
            connection = plain.execution_options(sqlite_begin="IMMEDIATE")
            with connection.begin():
                record_deliveries(connection, incident.id, deliveries, clock())
                OpsSession(connection, audit, DETECTOR, settings, clock).changed(
                    "ops.incident.notify",
                    f"incident:{incident.id}",
                    {
                        "deliveries": [
                            {"channel": d.channel, "ok": d.ok, "error": d.error} for d in deliveries
                        ]
                    },
                )
    return result
