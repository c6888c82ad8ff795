"""Availability arithmetic with a controlled clock: gaps, maintenance, late notices, overlaps, years.

Expected figures are worked out by hand in minutes from the beat times below (beats every 10 min,
each showing its node up for those 10 min: the resolution, not the 30 min incident grace), not read
back from the code.
"""

from __future__ import annotations

import datetime as dt

import pytest
from opsdb import OpsDb, shanghai

from ggzy.hub.ops.availability import province_availability
from ggzy.hub.ops.incidents import Classification, FaultReport, file_fault_report
from ggzy.hub.ops.outages import OutageKind, notify_outage
from ggzy.hub.ops.periods import day_period, year_period
from ggzy.hub.ops.session import OpsSession

DAY = dt.date(2026, 11, 5)
MINUTES_IN_DAY = 1440


def _day_with_gap(db: OpsDb) -> None:
    """Beats all day on 5 Nov except between 10:00 and 12:00 (last 09:50, next 12:00)."""
    db.add_node("fj-01", "35", shanghai(2026, 11, 1))
    db.beats("fj-01", "35", shanghai(2026, 11, 4, 23, 40), shanghai(2026, 11, 5, 10))
    db.beats("fj-01", "35", shanghai(2026, 11, 5, 12), shanghai(2026, 11, 6))
    db.clock.now = shanghai(2026, 11, 10)


def _availability(db: OpsDb, period=None):  # type: ignore[no-untyped-def]
    with db.engine.connect() as connection:
        return province_availability(connection, "35", period or day_period(DAY), db.settings, db.clock)


def _notice(db: OpsDb, start: dt.datetime, end: dt.datetime, notified: dt.datetime) -> None:
    db.clock.now = notified

    def give(session: OpsSession) -> None:
        notify_outage(session, "35", OutageKind.CUTOVER, start, end, "线路割接，期间前置机断开")

    db.run(give)
    db.clock.now = shanghai(2026, 11, 10)


def test_a_gap_longer_than_one_interval_is_down_time(ops_db: OpsDb) -> None:
    _day_with_gap(ops_db)
    result = _availability(ops_db)
    # down from 09:50 + 10 min = 10:00 until the 12:00 beat: 120 minutes
    assert result.node.denominator == MINUTES_IN_DAY * 60
    assert result.node.value == pytest.approx((MINUTES_IN_DAY - 120) / MINUTES_IN_DAY)
    assert result.node_down == [(shanghai(2026, 11, 5, 10), shanghai(2026, 11, 5, 12))]
    assert result.unnotified_down_seconds == 120 * 60
    assert result.resolution_seconds == 600
    assert result.node.met is False  # 91.7 % < 98 %


def test_an_outage_shorter_than_the_incident_grace_still_counts(ops_db: OpsDb) -> None:
    """Beats every 30 s (the default), one outage of 60 s: the 90 s grace must not swallow it."""
    from ggzy.settings import OpsSettings

    settings = OpsSettings()  # 30 s beats, 5 s allowance, incident after 3 missed beats (90 s)
    ops_db.settings = settings
    ops_db.add_node("fj-01", "35", shanghai(2026, 11, 1))
    ops_db.beats("fj-01", "35", shanghai(2026, 11, 5), shanghai(2026, 11, 5, 10, 0, 30))  # last 10:00:00
    ops_db.beats("fj-01", "35", shanghai(2026, 11, 5, 10, 1, 30), shanghai(2026, 11, 6))  # next 10:01:30
    ops_db.clock.now = shanghai(2026, 11, 10)
    result = _availability(ops_db)
    # The node missed the 10:00:30 and 10:01:00 beats: down from 10:00:35 (one interval and the
    # allowance after the last beat) to 10:01:30, 55 s — exact to the 35 s resolution.
    assert result.node_down == [(shanghai(2026, 11, 5, 10, 0, 35), shanghai(2026, 11, 5, 10, 1, 30))]
    assert result.node.denominator - result.node.numerator == 55
    assert result.resolution_seconds == 35


def test_a_notice_in_time_excludes_its_window(ops_db: OpsDb) -> None:
    _day_with_gap(ops_db)
    _notice(ops_db, shanghai(2026, 11, 5, 10), shanghai(2026, 11, 5, 11), notified=shanghai(2026, 11, 3, 9))
    result = _availability(ops_db)
    # counted: 1440 − 60 = 1380 min; down: 11:00–12:00 = 60 min
    assert result.maintenance_seconds == 60 * 60
    assert result.node.denominator == 1380 * 60
    assert result.node.value == pytest.approx(1320 / 1380)


def test_a_late_notice_is_flagged_and_not_excluded(ops_db: OpsDb) -> None:
    _day_with_gap(ops_db)
    _notice(ops_db, shanghai(2026, 11, 5, 10), shanghai(2026, 11, 5, 11), notified=shanghai(2026, 11, 5, 9))
    result = _availability(ops_db)
    assert result.maintenance_seconds == 0
    assert result.node.value == pytest.approx(1320 / 1440)
    assert result.late_notice_down_seconds == 60 * 60  # 10:00–11:00
    assert result.unnotified_down_seconds == 60 * 60  # 11:00–12:00


def test_overlapping_notices_are_counted_once(ops_db: OpsDb) -> None:
    _day_with_gap(ops_db)
    _notice(ops_db, shanghai(2026, 11, 5, 10), shanghai(2026, 11, 5, 11), notified=shanghai(2026, 11, 1))
    _notice(
        ops_db, shanghai(2026, 11, 5, 10, 30), shanghai(2026, 11, 5, 11, 30), notified=shanghai(2026, 11, 1)
    )
    result = _availability(ops_db)
    assert result.maintenance_seconds == 90 * 60
    assert result.node.value == pytest.approx((1350 - 30) / 1350)  # down 11:30–12:00


def test_the_year_boundary_splits_down_time_and_the_clock_ends_the_period(ops_db: OpsDb) -> None:
    ops_db.add_node("fj-01", "35", shanghai(2026, 12, 31, 20))
    ops_db.beats("fj-01", "35", shanghai(2026, 12, 31, 20), shanghai(2026, 12, 31, 23, 10))  # last 23:00
    ops_db.beats("fj-01", "35", shanghai(2027, 1, 1, 1), shanghai(2027, 1, 1, 3))  # last 02:50
    ops_db.clock.now = shanghai(2027, 1, 1, 3)
    old = _availability(ops_db, year_period(2026))
    new = _availability(ops_db, year_period(2027))
    # 2026: measured 20:00–24:00 (240 min) from registration, down 23:10–24:00
    assert old.node.denominator == 240 * 60
    assert old.node.value == pytest.approx(190 / 240)
    # 2027: measured 00:00–03:00 (the clock), down 00:00–01:00
    assert new.node.denominator == 180 * 60
    assert new.node.value == pytest.approx(120 / 180)


def test_before_registration_nothing_is_measured(ops_db: OpsDb) -> None:
    ops_db.add_node("fj-01", "35", shanghai(2026, 11, 6))
    result = _availability(ops_db)
    assert result.measured is None and result.node.value is None and result.node.met is None


def test_network_is_time_based_both_ways_and_skips_maintenance(ops_db: OpsDb) -> None:
    """The share of time the node reached the hub and the hub the node (not of attempts)."""
    ops_db.add_node("fj-01", "35", shanghai(2026, 11, 1))
    ops_db.beats("fj-01", "35", shanghai(2026, 11, 5), shanghai(2026, 11, 5, 10))
    ops_db.beats("fj-01", "35", shanghai(2026, 11, 5, 10, 30), shanghai(2026, 11, 6))  # no beat 10:00–10:30
    # 08:00 beat (window 07:50–08:00) got through after uploads failed 07:52–07:57 …
    ops_db.beat(
        "fj-01",
        "35",
        shanghai(2026, 11, 5, 8),
        failed=5,
        total=6,
        since=shanghai(2026, 11, 5, 7, 50),
        down=[(shanghai(2026, 11, 5, 7, 52), shanghai(2026, 11, 5, 7, 57))],
    )
    # … a node cannot claim down time outside its beat's window (clipped to 13:50–14:00) …
    ops_db.beat(
        "fj-01",
        "35",
        shanghai(2026, 11, 5, 14),
        since=shanghai(2026, 11, 5, 13, 50),
        down=[(shanghai(2026, 11, 5, 3), shanghai(2026, 11, 5, 13, 55))],
    )
    # … and uploads failing during approved maintenance say nothing.
    ops_db.beat(
        "fj-01",
        "35",
        shanghai(2026, 11, 5, 16, 10),
        since=shanghai(2026, 11, 5, 16),
        down=[(shanghai(2026, 11, 5, 16), shanghai(2026, 11, 5, 16, 10))],
    )
    _notice(ops_db, shanghai(2026, 11, 5, 16), shanghai(2026, 11, 5, 17), notified=shanghai(2026, 11, 1))
    # The hub could not reach the node at 09:00 (holds 1 min) nor at 20:00, until 20:00:30.
    ops_db.probe("fj-01", "35", shanghai(2026, 11, 5, 8), ok=True)
    ops_db.probe("fj-01", "35", shanghai(2026, 11, 5, 9), ok=False)
    ops_db.probe("fj-01", "35", shanghai(2026, 11, 5, 20), ok=False)
    ops_db.probe("fj-01", "35", shanghai(2026, 11, 5, 20, 0, 30), ok=True)
    result = _availability(ops_db)
    counted = (MINUTES_IN_DAY - 60) * 60
    down = 5 * 60 + 5 * 60 + 30 * 60 + 60 + 30  # 07:52–57, 13:50–55, no beat 10:00–10:30, probes
    assert result.network.unit == "seconds"
    assert (result.network.numerator, result.network.denominator) == (counted - down, counted)
    assert result.network.evidence == {
        "no_heartbeat_seconds": 30 * 60,
        "node_to_hub_down_seconds": 10 * 60,
        "hub_to_node_down_seconds": 90,
    }
    assert result.node_probes is True
    assert result.network.met is False  # 97.0 % < 99 %


def test_another_node_of_the_province_keeps_the_network_up(ops_db: OpsDb) -> None:
    ops_db.add_node("fj-01", "35", shanghai(2026, 11, 1))
    ops_db.add_node("fj-02", "35", shanghai(2026, 11, 1))
    ops_db.beats("fj-01", "35", shanghai(2026, 11, 5), shanghai(2026, 11, 6))
    ops_db.beats("fj-02", "35", shanghai(2026, 11, 5), shanghai(2026, 11, 6))
    ops_db.beat(
        "fj-01",
        "35",
        shanghai(2026, 11, 5, 8),
        since=shanghai(2026, 11, 5, 7, 50),
        down=[(shanghai(2026, 11, 5, 7, 50), shanghai(2026, 11, 5, 8))],
    )
    ops_db.probe("fj-02", "35", shanghai(2026, 11, 5, 12), ok=False)
    ops_db.clock.now = shanghai(2026, 11, 10)
    result = _availability(ops_db)
    assert result.network.value == 1.0  # fj-01's link down while fj-02's worked, and the reverse
    assert result.network.evidence["node_to_hub_down_seconds"] == 10 * 60


def test_system_availability_from_the_probe_and_fault_reports(ops_db: OpsDb) -> None:
    ops_db.add_node("fj-01", "35", shanghai(2026, 11, 1))
    ops_db.beats("fj-01", "35", shanghai(2026, 11, 5), shanghai(2026, 11, 5, 6), platform_ok=True)
    ops_db.beats(
        "fj-01", "35", shanghai(2026, 11, 5, 6), shanghai(2026, 11, 5, 7), platform_ok=False
    )  # 60 min
    ops_db.beats("fj-01", "35", shanghai(2026, 11, 5, 7), shanghai(2026, 11, 6), platform_ok=True)
    report = FaultReport(
        "机房非计划停电",
        Classification.POWER,
        shanghai(2026, 11, 5, 6, 30),
        shanghai(2026, 11, 5, 8),
        impact="省级平台停用",
        cause="市电中断",
    )
    ops_db.run(lambda session: file_fault_report(session, "35", report))
    ops_db.clock.now = shanghai(2026, 11, 10)
    result = _availability(ops_db)
    # probe down 06:00–07:00, report 06:30–08:00: union 06:00–08:00 = 120 min
    assert result.system.value == pytest.approx((1440 - 120) / 1440)
    assert result.system.evidence["failing_seconds"] == 60 * 60
    assert result.system.evidence["reported_fault_seconds"] == 90 * 60
    assert result.probe_configured is True
    assert result.faults == 1


def test_without_a_platform_probe_the_system_figure_is_no_data(ops_db: OpsDb) -> None:
    """A province's own fault reports cannot stand in for a probe (it would report nothing)."""
    ops_db.add_node("fj-01", "35", shanghai(2026, 11, 1))
    ops_db.beats("fj-01", "35", shanghai(2026, 11, 5), shanghai(2026, 11, 6))  # no platform verdict
    report = FaultReport(
        "省级平台故障",
        Classification.SOFTWARE,
        shanghai(2026, 11, 5, 6),
        shanghai(2026, 11, 5, 7),
        impact="省级平台停用",
        cause="程序缺陷",
    )
    ops_db.run(lambda session: file_fault_report(session, "35", report))
    ops_db.clock.now = shanghai(2026, 11, 10)
    result = _availability(ops_db)
    assert result.probe_configured is False
    assert result.system.value is None and result.system.met is None


def test_dropping_the_probe_or_the_beats_never_helps_the_system_figure(ops_db: OpsDb) -> None:
    ops_db.add_node("fj-01", "35", shanghai(2026, 11, 1))
    ops_db.beats("fj-01", "35", shanghai(2026, 11, 5), shanghai(2026, 11, 5, 6), platform_ok=True)
    # 06:00–08:00 the beats carry no verdict (the probe was switched off), 08:00–09:00 no beats at all
    ops_db.beats("fj-01", "35", shanghai(2026, 11, 5, 6), shanghai(2026, 11, 5, 8))
    ops_db.beats("fj-01", "35", shanghai(2026, 11, 5, 9), shanghai(2026, 11, 6), platform_ok=True)
    ops_db.clock.now = shanghai(2026, 11, 10)
    result = _availability(ops_db)
    assert result.probe_configured is True
    assert result.system.value == pytest.approx((1440 - 180) / 1440)
    assert result.system.evidence == {
        "failing_seconds": 0,
        "unverified_seconds": 120 * 60,
        "no_heartbeat_seconds": 60 * 60,
        "reported_fault_seconds": 0,
    }
