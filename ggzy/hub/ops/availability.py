"""Availability of each province's node, network and provincial system (Art. 13, 18, 27).

Time-based, from what is stored, with the clock injected:

* **Node** (前置机系统可用率, target ≥ 98 %): a node is up at time *t* when a heartbeat arrived in
  ``(t − down_after_beats × heartbeat_seconds, t]``, i.e. it is down once three intervals pass
  without a beat. Several nodes of one province count as up while any of them beats. The measured
  period starts when the first node of the province was registered and ends at the period's end or
  now, whichever is earlier; approved maintenance (in-time outage notices) is taken out of it.
* **Network** (网络可用率, target ≥ 99 %): the share of link attempts that got through, in both
  directions: node → hub attempts as the node reports them with its heartbeats (a beat whose window
  overlaps approved maintenance is left out), plus the hub's own probes of the node (``ops_probes``).
* **Provincial system** (省级平台系统可用率, target ≥ 99 %/year): down while the node's probe of the
  platform's health address fails (each beat's verdict holds until the next beat, at most the down
  threshold) and during every outage the province's fault reports give; maintenance excluded.
* **Fault rate** (故障率, Art. 27): incidents of the province that started in the period.

Downtime that no notice covers is reported as *unnotified*; downtime covered only by a late notice
as *late-notice* downtime (both count against availability).

The beats are not read one by one: :mod:`ggzy.hub.ops.uptime` keeps runs of up time, per-day sums and
the platform verdict's changes with every beat, and gives the same figures (a period reads its runs
and days; only days that approved maintenance can touch, and partial days at its ends, read beats).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection, func, select

from ggzy.hub.models import nodes, ops_tables
from ggzy.hub.ops.outages import list_notices
from ggzy.hub.ops.periods import Interval, Period, clip, duration, intersect, merge, subtract, utc
from ggzy.hub.ops.session import Clock, system_clock
from ggzy.hub.ops.uptime import BeatTotals, beat_totals, grace_of, platform_failing, up_spans
from ggzy.settings import OpsSettings

__all__ = ["AvailabilityFigure", "ProvinceAvailability", "province_availability", "up_intervals"]

INCIDENTS = ops_tables.incidents
PROBES = ops_tables.probes
_TICK = dt.timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class AvailabilityFigure:
    """One availability: ``numerator / denominator`` (seconds or attempts) against ``target``."""

    numerator: float
    denominator: float
    target: float
    unit: str  # seconds | attempts

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    @property
    def met(self) -> bool | None:
        if not self.denominator:
            return None
        return Fraction(self.numerator) / Fraction(self.denominator) >= Fraction(str(self.target))

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "target": self.target,
            "met": self.met,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "unit": self.unit,
        }


@dataclass(frozen=True, slots=True)
class ProvinceAvailability:
    province: str
    period: Period
    measured: Interval | None  # None: no node registered before the period's end
    node: AvailabilityFigure
    network: AvailabilityFigure
    system: AvailabilityFigure
    maintenance_seconds: float
    node_down: list[Interval] = field(default_factory=list)
    unnotified_down_seconds: float = 0.0
    late_notice_down_seconds: float = 0.0
    heartbeats: int = 0
    faults: int = 0
    probe_configured: bool = False

    @property
    def evidence(self) -> str:
        return f"/api/v1/ops/availability?province={self.province}&period={self.period.label}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "province": self.province,
            "period": self.period.label,
            "from": self.period.start.isoformat(),
            "to": self.period.end.isoformat(),
            "measured": [m.isoformat() for m in self.measured] if self.measured else None,
            "node": self.node.to_dict(),
            "network": self.network.to_dict(),
            "system": self.system.to_dict(),
            "maintenance_seconds": self.maintenance_seconds,
            "node_down": [[s.isoformat(), e.isoformat()] for s, e in self.node_down],
            "unnotified_down_seconds": self.unnotified_down_seconds,
            "late_notice_down_seconds": self.late_notice_down_seconds,
            "heartbeats": self.heartbeats,
            "faults": self.faults,
            "probe_configured": self.probe_configured,
            "evidence": self.evidence,
        }


def up_intervals(beats: Sequence[dt.datetime], grace: dt.timedelta) -> list[Interval]:
    """Each beat keeps its node up for ``grace`` (the down threshold); the union of those spans."""
    return merge((beat, beat + grace) for beat in beats)


def province_availability(
    connection: Connection,
    province: str,
    period: Period,
    settings: OpsSettings | None = None,
    clock: Clock = system_clock,
) -> ProvinceAvailability:
    settings = settings or OpsSettings()
    grace = grace_of(settings)
    targets = {"node": 0.98, "network": 0.99, "system": 0.99} | settings.targets
    registered = connection.execute(
        select(func.min(nodes.c.created_at)).where(nodes.c.province == province)
    ).scalar()
    end = min(period.end, clock())
    start = max(period.start, utc(registered)) if registered is not None else None
    faults = int(
        connection.execute(
            select(func.count()).where(
                INCIDENTS.c.province == province,
                INCIDENTS.c.started_at >= period.start,
                INCIDENTS.c.started_at < period.end,
            )
        ).scalar_one()
    )
    if start is None or start >= end:
        empty = AvailabilityFigure(0, 0, targets["node"], "seconds")
        return ProvinceAvailability(
            province,
            period,
            None,
            empty,
            AvailabilityFigure(0, 0, targets["network"], "attempts"),
            AvailabilityFigure(0, 0, targets["system"], "seconds"),
            0.0,
            faults=faults,
        )
    measured: Interval = (start, end)
    notices = list_notices(connection, province, measured)
    approved = clip([(n.starts_at, n.ends_at) for n in notices if n.in_time], measured)
    late = clip([(n.starts_at, n.ends_at) for n in notices if not n.in_time], measured)
    counted = subtract([measured], approved)
    counted_seconds = duration(counted)

    # From the aggregates kept with every beat (ggzy/hub/ops/uptime.py): runs, days and verdict changes,
    # not the month's beats; days that approved maintenance can touch are read beat by beat.
    spans = up_spans(connection, province, measured, grace)
    up = intersect(spans, counted)
    down = subtract(counted, up)
    node = AvailabilityFigure(duration(up), counted_seconds, targets["node"], "seconds")
    totals = beat_totals(connection, province, measured, approved)
    network = _network(connection, province, totals, measured, targets["network"])
    # A verdict given within the down threshold before the start still holds at the start.
    configured = bool(totals.platform_beats) or bool(
        beat_totals(connection, province, (start - grace + _TICK, start)).platform_beats
    )
    system = _system(
        connection, province, intersect(platform_failing(connection, province, measured), spans),
        configured, measured, counted, end, targets["system"],
    )  # fmt: skip
    return ProvinceAvailability(
        province=province,
        period=period,
        measured=measured,
        node=node,
        network=network,
        system=system,
        maintenance_seconds=duration(approved),
        node_down=down,
        unnotified_down_seconds=duration(subtract(down, late)),
        late_notice_down_seconds=duration(intersect(down, late)),
        heartbeats=totals.beats,
        faults=faults,
        probe_configured=configured,
    )


def _network(
    connection: Connection, province: str, totals: BeatTotals, measured: Interval, target: float
) -> AvailabilityFigure:
    probe_rows = connection.execute(
        select(PROBES.c.ok, func.count())
        .where(PROBES.c.province == province, PROBES.c.at >= measured[0], PROBES.c.at < measured[1])
        .group_by(PROBES.c.ok)
    )
    probes = {bool(ok): int(count) for ok, count in probe_rows}
    reached = (totals.total - totals.failed) + probes.get(True, 0)
    attempts = totals.total + probes.get(True, 0) + probes.get(False, 0)
    return AvailabilityFigure(reached, attempts, target, "attempts")


def _system(
    connection: Connection,
    province: str,
    probe_failing: list[Interval],
    configured: bool,
    measured: Interval,
    counted: Sequence[Interval],
    end: dt.datetime,
    target: float,
) -> AvailabilityFigure:
    failing = list(probe_failing)
    reported = connection.execute(
        select(INCIDENTS.c.started_at, INCIDENTS.c.ended_at).where(
            INCIDENTS.c.province == province,
            INCIDENTS.c.fault_reported_at.is_not(None),
            INCIDENTS.c.started_at < measured[1],
        )
    )
    for started, ended in reported:
        failing.append((utc(started), utc(ended) if ended is not None else end))
    down = intersect(failing, counted)
    counted_seconds = duration(counted)
    if not configured and not failing:
        return AvailabilityFigure(0, 0, target, "seconds")
    return AvailabilityFigure(counted_seconds - duration(down), counted_seconds, target, "seconds")
