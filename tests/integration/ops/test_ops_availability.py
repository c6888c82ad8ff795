"""Availability arithmetic with a controlled clock: gaps, maintenance, late notices, overlaps, years.

Expected figures are worked out by hand in minutes from the beat times below (beats every 10 min,
so a node counts as up for 30 min after each beat), not read back from the code.
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
from ggzy.store.database import writing

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


def test_a_gap_longer_than_three_intervals_is_down_time(ops_db: OpsDb) -> None:
    _day_with_gap(ops_db)
    result = _availability(ops_db)
    # down from 09:50 + 30 min = 10:20 until the 12:00 beat: 100 minutes
    assert result.node.denominator == MINUTES_IN_DAY * 60
    assert result.node.value == pytest.approx((MINUTES_IN_DAY - 100) / MINUTES_IN_DAY)
    assert result.node_down == [(shanghai(2026, 11, 5, 10, 20), shanghai(2026, 11, 5, 12))]
    assert result.unnotified_down_seconds == 100 * 60
    assert result.node.met is False  # 93.1 % < 98 %


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
    assert result.node.value == pytest.approx(1340 / 1440)
    assert result.late_notice_down_seconds == 40 * 60  # 10:20–11:00
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
    # 2026: measured 20:00–24:00 (240 min) from registration, down 23:30–24:00
    assert old.node.denominator == 240 * 60
    assert old.node.value == pytest.approx(210 / 240)
    # 2027: measured 00:00–03:00 (the clock), down 00:00–01:00
    assert new.node.denominator == 180 * 60
    assert new.node.value == pytest.approx(120 / 180)


def test_before_registration_nothing_is_measured(ops_db: OpsDb) -> None:
    ops_db.add_node("fj-01", "35", shanghai(2026, 11, 6))
    result = _availability(ops_db)
    assert result.measured is None and result.node.value is None and result.node.met is None


def test_network_counts_attempts_both_ways_and_skips_maintenance(ops_db: OpsDb) -> None:
    from ggzy.hub.models import ops_tables

    ops_db.add_node("fj-01", "35", shanghai(2026, 11, 1))
    ops_db.beat("fj-01", "35", shanghai(2026, 11, 5, 8), failed=2, total=100)
    ops_db.beat("fj-01", "35", shanghai(2026, 11, 5, 9), failed=1, total=50)
    # this beat's window (since 10:00) overlaps the approved window 10:00–11:00: left out
    ops_db.beat(
        "fj-01", "35", shanghai(2026, 11, 5, 11, 5), failed=40, total=40, since=shanghai(2026, 11, 5, 10)
    )
    _notice(ops_db, shanghai(2026, 11, 5, 10), shanghai(2026, 11, 5, 11), notified=shanghai(2026, 11, 1))
    with writing(ops_db.engine) as connection:
        connection.execute(
            ops_tables.probes.insert(),
            [
                {"node_id": "fj-01", "province": "35", "at": shanghai(2026, 11, 5, 8), "ok": True},
                {"node_id": "fj-01", "province": "35", "at": shanghai(2026, 11, 5, 9), "ok": False},
            ],
        )
    result = _availability(ops_db)
    assert result.network.numerator == (150 - 3) + 1
    assert result.network.denominator == 150 + 2
    assert result.network.met is False  # 148/152 = 97.4 % < 99 %


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
    assert result.probe_configured is True
    assert result.faults == 1
