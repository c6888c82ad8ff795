"""Time arithmetic of availability: half-open intervals and the Asia/Shanghai calendar periods.

All availability figures are time-based: a period is a half-open interval ``[start, end)`` of aware
UTC datetimes, and up time, down time and maintenance are unions of such intervals. Overlapping
maintenance windows or fault reports are merged before they are measured, so nothing is counted
twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

__all__ = [
    "SHANGHAI",
    "Interval",
    "Period",
    "clip",
    "day_period",
    "duration",
    "intersect",
    "merge",
    "month_period",
    "parse_period",
    "subtract",
    "utc",
    "year_period",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")
Interval = tuple[dt.datetime, dt.datetime]


def utc(moment: dt.datetime) -> dt.datetime:
    """A stored time as aware UTC (SQLite returns naive values, always written in UTC)."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


@dataclass(frozen=True, slots=True)
class Period:
    """A named calendar period ``[start, end)``: a Shanghai day, month or year."""

    label: str  # 2026-11-05 | 2026-11 | 2026
    start: dt.datetime
    end: dt.datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def first_day(self) -> dt.date:
        return self.start.astimezone(SHANGHAI).date()

    @property
    def last_day(self) -> dt.date:
        return (self.end - dt.timedelta(microseconds=1)).astimezone(SHANGHAI).date()

    def interval(self) -> Interval:
        return (self.start, self.end)


def _local_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).astimezone(dt.UTC)


def day_period(day: dt.date) -> Period:
    return Period(day.isoformat(), _local_midnight(day), _local_midnight(day + dt.timedelta(days=1)))


def month_period(year: int, month: int) -> Period:
    following = dt.date(year + (month == 12), month % 12 + 1, 1)
    return Period(
        f"{year:04d}-{month:02d}", _local_midnight(dt.date(year, month, 1)), _local_midnight(following)
    )


def year_period(year: int) -> Period:
    return Period(
        f"{year:04d}", _local_midnight(dt.date(year, 1, 1)), _local_midnight(dt.date(year + 1, 1, 1))
    )


def parse_period(text: str) -> Period:
    """``2026`` (a year), ``2026-11`` (a month) or ``2026-11-05`` (a day), Asia/Shanghai calendar."""
    parts = text.strip().split("-")
    try:
        numbers = [int(part) for part in parts]
        if len(numbers) == 1 and len(parts[0]) == 4:
            return year_period(numbers[0])
        if len(numbers) == 2:
            if not 1 <= numbers[1] <= 12:
                raise ValueError
            return month_period(numbers[0], numbers[1])
        if len(numbers) == 3:
            return day_period(dt.date(*numbers))
    except (ValueError, OverflowError):  # 0001-01 and 9999-12 fall off the calendar in UTC
        pass
    raise ValueError(f"期间“{text}”应为 YYYY、YYYY-MM 或 YYYY-MM-DD (a year, month or day)")


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """The union of ``intervals`` as sorted, disjoint intervals (empty ones dropped)."""
    merged: list[Interval] = []
    for start, end in sorted((s, e) for s, e in intervals if e > s):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def clip(intervals: Iterable[Interval], window: Interval) -> list[Interval]:
    """``intervals`` cut to ``window`` and merged."""
    low, high = window
    return merge((max(s, low), min(e, high)) for s, e in intervals)


def intersect(left: Iterable[Interval], right: Iterable[Interval]) -> list[Interval]:
    result: list[Interval] = []
    b = merge(right)
    for start, end in merge(left):
        result.extend((max(start, s), min(end, e)) for s, e in b if s < end and e > start)
    return merge(result)


def subtract(intervals: Iterable[Interval], holes: Iterable[Interval]) -> list[Interval]:
    """``intervals`` minus ``holes``."""
    remaining = merge(intervals)
    for hole_start, hole_end in merge(holes):
        next_round: list[Interval] = []
        for start, end in remaining:
            if hole_end <= start or hole_start >= end:
                next_round.append((start, end))
                continue
            if start < hole_start:
                next_round.append((start, hole_start))
            if hole_end < end:
                next_round.append((hole_end, end))
        remaining = next_round
    return remaining


def duration(intervals: Iterable[Interval]) -> float:
    """Seconds covered by ``intervals`` (overlaps counted once)."""
    return sum((end - start).total_seconds() for start, end in merge(intervals))
