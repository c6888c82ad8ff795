"""Availability of each province's node, network and provincial system (Art. 13, 18, 27).

All three are time-based, from what is stored, with the clock injected, and exact to the same
**resolution**: one beat (or probe result) shows the state of its node for one interval plus a small
delivery allowance (``coverage_of``: 30 s + 5 s by default; a failed hub probe holds for
``probe_seconds``, 60 s). A gap between beats longer than that is down time, less that much. The
incident grace (``down_after_beats × heartbeat_seconds``) only decides when an incident is opened:
an outage shorter than it still counts here.

* **Node** (前置机系统可用率, target ≥ 98 %): a node is up while a beat covers the time; several nodes
  of one province count as up while any of them does.
* **Network** (网络可用率, target ≥ 99 %): up while the node could reach the hub and the hub the node.
  Node → hub: a beat covers the time (a beat that arrives shows the link worked) and the node does
  not report a failed attempt span in it (its uploads and beats, ``link.down``); hub → node: no
  failed probe holds (``ops_probes``; without probe addresses this direction is not measured and the
  figure says so). Per node, then any node of the province.
* **Provincial system** (省级平台系统可用率, target ≥ 99 %/year): with a health probe, up while a beat
  covers the time and its verdict on the platform's health address was "healthy"; a failing verdict,
  a beat without a verdict, time without a beat and every outage the province's fault reports give
  count as down. Without any verdict in the period the figure is "无数据" (no value), whatever the
  province reported itself, and the assessment counts the missing probe as a finding.
* **Fault rate** (故障率, Art. 27): incidents of the province that started in the period.

The measured period starts when the first node of the province was registered and ends at the
period's end or now, whichever is earlier; approved maintenance (in-time outage notices) is taken out
of it. Downtime that no notice covers is reported as *unnotified*; downtime covered only by a late
notice as *late-notice* downtime (both count against availability).

The beats are not read one by one: :mod:`ggzy.hub.ops.uptime` keeps runs of up time, per-day sums and
the platform verdict's changes with every beat, :mod:`ggzy.hub.ops.network` the network's down spans
(a period reads its runs and spans; only runs kept under a longer coverage, and partial days at the
period's ends, read beats).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection, func, select

from ggzy.hub.models import nodes, ops_tables
from ggzy.hub.ops.network import HUB, NODE, down_by_node
from ggzy.hub.ops.outages import list_notices
from ggzy.hub.ops.periods import Interval, Period, clip, duration, intersect, merge, subtract, utc
from ggzy.hub.ops.session import Clock, system_clock
from ggzy.hub.ops.uptime import UNVERIFIED, beat_totals, coverage_of, platform_failing, up_spans_by_node
from ggzy.settings import OpsSettings

__all__ = ["AvailabilityFigure", "ProvinceAvailability", "province_availability", "up_intervals"]

INCIDENTS = ops_tables.incidents
PROBES = ops_tables.probes
_TICK = dt.timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class AvailabilityFigure:
    """One availability: ``numerator / denominator`` seconds against ``target``, with the seconds that
    make up the down time (``evidence``: what kind of evidence showed it down, in Chinese)."""

    numerator: float
    denominator: float
    target: float
    unit: str  # seconds
    evidence: dict[str, float] = field(default_factory=dict)

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
            "evidence": dict(self.evidence),
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
    probe_configured: bool = False  # the provincial platform's health probe gave verdicts in the period
    node_probes: bool = False  # the hub probed a node of the province in the period
    resolution_seconds: float = 0.0

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
            "node_probes": self.node_probes,
            "resolution_seconds": self.resolution_seconds,
            "evidence": self.evidence,
        }


def up_intervals(beats: Sequence[dt.datetime], coverage: dt.timedelta) -> list[Interval]:
    """Each beat shows its node up for ``coverage`` (the resolution); the union of those spans."""
    return merge((beat, beat + coverage) for beat in beats)


def province_availability(
    connection: Connection,
    province: str,
    period: Period,
    settings: OpsSettings | None = None,
    clock: Clock = system_clock,
) -> ProvinceAvailability:
    settings = settings or OpsSettings()
    coverage = coverage_of(settings)
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
    resolution = coverage.total_seconds()
    if start is None or start >= end:
        return ProvinceAvailability(
            province,
            period,
            None,
            AvailabilityFigure(0, 0, targets["node"], "seconds"),
            AvailabilityFigure(0, 0, targets["network"], "seconds"),
            AvailabilityFigure(0, 0, targets["system"], "seconds"),
            0.0,
            faults=faults,
            resolution_seconds=resolution,
        )
    measured: Interval = (start, end)
    notices = list_notices(connection, province, measured)
    approved = clip([(n.starts_at, n.ends_at) for n in notices if n.in_time], measured)
    late = clip([(n.starts_at, n.ends_at) for n in notices if not n.in_time], measured)
    counted = subtract([measured], approved)
    counted_seconds = duration(counted)

    # From the aggregates kept with every beat (ggzy/hub/ops/uptime.py, network.py): runs and spans,
    # not the month's beats.
    by_node = up_spans_by_node(connection, province, measured, coverage)
    spans = merge(s for node_spans in by_node.values() for s in node_spans)
    up = intersect(spans, counted)
    down = subtract(counted, up)
    node = AvailabilityFigure(duration(up), counted_seconds, targets["node"], "seconds")
    network, probed = _network(connection, province, by_node, measured, counted, targets["network"])
    totals = beat_totals(connection, province, measured)
    # A verdict given within one coverage before the start still holds at the start.
    configured = bool(totals.platform_beats) or bool(
        beat_totals(connection, province, (start - coverage + _TICK, start)).platform_beats
    )
    system = _system(connection, province, spans, configured, measured, counted, end, targets["system"])
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
        node_probes=probed,
        resolution_seconds=resolution,
    )


def _network(
    connection: Connection,
    province: str,
    by_node: dict[str, list[Interval]],
    measured: Interval,
    counted: Sequence[Interval],
    target: float,
) -> tuple[AvailabilityFigure, bool]:
    """Up while some node both reached the hub (a beat covers the time, no failed attempt span) and
    was reachable by the hub (no failed probe holds); the second value: whether the hub probed."""
    down = down_by_node(connection, province, measured)
    probed = bool(
        connection.execute(
            select(func.count())
            .select_from(PROBES)
            .where(PROBES.c.province == province, PROBES.c.at >= measured[0], PROBES.c.at < measured[1])
        ).scalar_one()
    )
    up_by_node = {
        node_id: subtract(spans, [*down.get(node_id, {}).get(NODE, []), *down.get(node_id, {}).get(HUB, [])])
        for node_id, spans in by_node.items()
    }
    up = intersect(merge(s for spans in up_by_node.values() for s in spans), counted)
    counted_seconds = duration(counted)
    beats = intersect(merge(s for spans in by_node.values() for s in spans), counted)
    evidence = {
        "no_heartbeat_seconds": counted_seconds - duration(beats),
        "node_to_hub_down_seconds": duration(
            intersect(merge(s for d in down.values() for s in d.get(NODE, [])), beats)
        ),
        "hub_to_node_down_seconds": duration(
            intersect(merge(s for d in down.values() for s in d.get(HUB, [])), beats)
        ),
    }
    return AvailabilityFigure(duration(up), counted_seconds, target, "seconds", evidence), probed


def _system(
    connection: Connection,
    province: str,
    spans: list[Interval],
    configured: bool,
    measured: Interval,
    counted: Sequence[Interval],
    end: dt.datetime,
    target: float,
) -> AvailabilityFigure:
    """Up where a beat's verdict said the platform was healthy and no fault report says otherwise;
    without a verdict in the period there is no figure (the province's own reports are not enough)."""
    if not configured:
        return AvailabilityFigure(0, 0, target, "seconds")
    failing = platform_failing(connection, province, measured)
    unverified = platform_failing(connection, province, measured, UNVERIFIED)
    reported: list[Interval] = []
    for started, ended in connection.execute(
        select(INCIDENTS.c.started_at, INCIDENTS.c.ended_at).where(
            INCIDENTS.c.province == province,
            INCIDENTS.c.fault_reported_at.is_not(None),
            INCIDENTS.c.started_at < measured[1],
        )
    ):
        reported.append((utc(started), utc(ended) if ended is not None else end))
    beats = intersect(spans, counted)
    healthy = subtract(beats, [*failing, *unverified, *reported])
    counted_seconds = duration(counted)
    evidence = {
        "failing_seconds": duration(intersect(failing, beats)),
        "unverified_seconds": duration(subtract(intersect(unverified, beats), failing)),
        "no_heartbeat_seconds": counted_seconds - duration(beats),
        "reported_fault_seconds": duration(intersect(reported, counted)),
    }
    return AvailabilityFigure(duration(healthy), counted_seconds, target, "seconds", evidence)
