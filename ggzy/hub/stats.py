"""The hub's measurement of each province (Art. 8, 9, 11), read from the maintained aggregates.

``ggzy.hub.ingest`` keeps ``stats_daily`` (per province × table × Asia/Shanghai day × channel) and
``stats_rules`` (per province × table × day × rule) up to date as batches arrive, production data
only. Everything here is a GROUP BY over those two small tables; ``records`` is never scanned, so a
year of statistics costs the same as a day.

The three rates and their targets:

* 数据合格率 (pass rate, Art. 8) = accepted / received, target ≥ 95 %;
* 及时报送率 (timely rate, Art. 9) = timely_ok / timely_due, target ≥ 95 %, over realtime records
  (channel 1): trade information is due within ten minutes of its local publication, subject,
  expert, credit and supervision information on the Beijing calendar day of its publication. A
  realtime record without a publication time is never left out to the province's advantage: trade
  information is refused (``E-EXCH-PUBLISHED-MISSING``), the other classes count as not on time;
  both are counted in ``untimed`` (:func:`publication_missing` splits them);
* 修复成功率 (repair rate, Art. 11) = repaired / rejected_keys, target ≥ 90 %. A repair is booked
  on the day and channel of the original rejection, so a period's rate says how many of the keys
  rejected in that period have been repaired so far (recent periods rise as repairs come in).

A rate whose denominator is 0 has no value (None) and is neither met nor missed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from fractions import Fraction
from types import MappingProxyType
from typing import Any, Final

from sqlalchemy import Column, ColumnElement, Connection, func, select

from ggzy.hub.models import nodes, stats_daily, stats_rules
from ggzy.spec import InfoClass, load_regions, load_spec
from ggzy.validation import RULES, Severity

__all__ = [
    "COUNTERS",
    "MAX_SPAN_DAYS",
    "RATE_LABELS_ZH",
    "TARGETS",
    "DayRow",
    "Measures",
    "NationalOverview",
    "ProvinceRow",
    "ProvinceSummary",
    "Rate",
    "RuleRow",
    "StatsRangeError",
    "TableRow",
    "Totals",
    "check_range",
    "national_overview",
    "province_summary",
    "publication_missing",
]

# The regulation's targets, in one place: every report, API answer and colour comes from here.
TARGETS: Final[Mapping[str, float]] = MappingProxyType({"pass": 0.95, "timely": 0.95, "repair": 0.90})
RATE_LABELS_ZH: Final[Mapping[str, str]] = MappingProxyType(
    {"pass": "数据合格率", "timely": "及时报送率", "repair": "修复成功率"}
)
# A leap year: a whole year of statistics in one request, and no more (a bound on the answer's size).
MAX_SPAN_DAYS: Final = 366


class StatsRangeError(ValueError):
    """The period asked for is empty or too long."""

    code = "E-REQ-RANGE"

    def __init__(self, message_zh: str, message_en: str) -> None:
        super().__init__(message_en)
        self.message_zh, self.message_en = message_zh, message_en


def check_range(start: dt.date, end: dt.date) -> None:
    """Refuse a period that ends before it starts or spans more than :data:`MAX_SPAN_DAYS` days."""
    if start > end:
        raise StatsRangeError(
            f"统计起始日期 {start} 晚于截止日期 {end}",
            f"the period starts ({start}) after it ends ({end})",
        )
    span = (end - start).days + 1
    if span > MAX_SPAN_DAYS:
        raise StatsRangeError(
            f"统计期间共 {span} 天，超过上限 {MAX_SPAN_DAYS} 天",
            f"the period spans {span} days, more than {MAX_SPAN_DAYS}",
        )


@dataclass(frozen=True, slots=True)
class Totals:
    """The counters of ``stats_daily`` summed over some buckets (same names as the columns)."""

    received: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    timely_due: int = 0
    timely_ok: int = 0
    rejected_keys: int = 0
    repaired: int = 0
    repair_seconds: int = 0
    untimed: int = 0  # realtime records without a publication time (refused, or counted late)

    def __add__(self, other: Totals) -> Totals:
        return Totals(*(getattr(self, n) + getattr(other, n) for n in COUNTERS))

    def to_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS}


COUNTERS: Final = tuple(f.name for f in fields(Totals))


@dataclass(frozen=True, slots=True)
class Rate:
    numerator: int
    denominator: int
    target: float

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    @property
    def met(self) -> bool | None:
        """Whether the target is reached; exact (no float rounding at the boundary), None without data."""
        if not self.denominator:
            return None
        return Fraction(self.numerator, self.denominator) >= Fraction(str(self.target))

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "target": self.target,
            "met": self.met,
            "numerator": self.numerator,
            "denominator": self.denominator,
        }


@dataclass(frozen=True, slots=True)
class Measures:
    """Counts and the three rates of one slice (a province, a table, a day, the country)."""

    totals: Totals

    @property
    def pass_rate(self) -> Rate:
        return Rate(self.totals.accepted, self.totals.received, TARGETS["pass"])

    @property
    def timely_rate(self) -> Rate:
        return Rate(self.totals.timely_ok, self.totals.timely_due, TARGETS["timely"])

    @property
    def repair_rate(self) -> Rate:
        return Rate(self.totals.repaired, self.totals.rejected_keys, TARGETS["repair"])

    @property
    def rates(self) -> dict[str, Rate]:
        return {"pass": self.pass_rate, "timely": self.timely_rate, "repair": self.repair_rate}

    @property
    def average_repair_seconds(self) -> float | None:
        repaired = self.totals.repaired
        return self.totals.repair_seconds / repaired if repaired else None

    @property
    def all_met(self) -> bool | None:
        """False when any rate misses its target, True when all with data meet it, None without data."""
        verdicts = [rate.met for rate in self.rates.values() if rate.met is not None]
        return all(verdicts) if verdicts else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "totals": self.totals.to_dict(),
            "rates": {name: rate.to_dict() for name, rate in self.rates.items()},
            "average_repair_seconds": self.average_repair_seconds,
        }


@dataclass(frozen=True, slots=True)
class TableRow:
    table: str
    name_zh: str | None  # None for a name that is no table of the specification (rejected as such)
    measures: Measures

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "name_zh": self.name_zh, **self.measures.to_dict()}


@dataclass(frozen=True, slots=True)
class DayRow:
    day: dt.date
    measures: Measures

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), **self.measures.to_dict()}


@dataclass(frozen=True, slots=True)
class RuleRow:
    code: str
    count: int
    title_zh: str | None  # None for a code no longer in the catalogue
    severity: Severity

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "count": self.count,
            "title_zh": self.title_zh,
            "severity": self.severity.value,
        }


@dataclass(frozen=True, slots=True)
class ProvinceRow:
    province: str
    name_zh: str | None
    measures: Measures

    def to_dict(self) -> dict[str, Any]:
        return {"province": self.province, "name_zh": self.name_zh, **self.measures.to_dict()}


@dataclass(frozen=True, slots=True)
class ProvinceSummary:
    province: str
    name_zh: str | None
    start: dt.date
    end: dt.date
    table: str | None
    overall: Measures
    tables: list[TableRow]
    days: list[DayRow]  # every day of the period, zeros included (a continuous axis for trend charts)
    rules: list[RuleRow]  # errors first, then by count

    def to_dict(self) -> dict[str, Any]:
        return {
            "province": self.province,
            "name_zh": self.name_zh,
            **_period(self.start, self.end, self.table),
            **self.overall.to_dict(),
            "publication": publication_missing(self.tables),
            "tables": [row.to_dict() for row in self.tables],
            "days": [row.to_dict() for row in self.days],
            "rules": [row.to_dict() for row in self.rules],
        }


@dataclass(frozen=True, slots=True)
class NationalOverview:
    start: dt.date
    end: dt.date
    table: str | None
    provinces: list[ProvinceRow]  # provinces with data or a registered node, by code
    total: Measures
    tables: list[TableRow]
    days: list[DayRow]
    rules: list[RuleRow]

    def to_dict(self) -> dict[str, Any]:
        return {
            **_period(self.start, self.end, self.table),
            "provinces": [row.to_dict() for row in self.provinces],
            "total": self.total.to_dict(),
            "publication": publication_missing(self.tables),
            "tables": [row.to_dict() for row in self.tables],
            "days": [row.to_dict() for row in self.days],
            "rules": [row.to_dict() for row in self.rules],
        }


def _period(start: dt.date, end: dt.date, table: str | None) -> dict[str, Any]:
    return {"from": start.isoformat(), "to": end.isoformat(), "table": table}


def province_summary(
    connection: Connection,
    province: str,
    start: dt.date,
    end: dt.date,
    table: str | None = None,
    *,
    top_rules: int | None = 10,
) -> ProvinceSummary:
    """One province's measurement over ``start``–``end`` (Shanghai days, inclusive).

    ``table`` (English name or DATA_NO) narrows everything to one table; ``top_rules`` bounds the
    rule list (None: every rule that fired).
    """
    check_range(start, end)
    table = _canonical_table(table)
    where = _conditions(start, end, province, table)
    tables = _table_rows(connection, where)
    return ProvinceSummary(
        province=province,
        name_zh=load_regions().provinces().get(province),
        start=start,
        end=end,
        table=table,
        overall=Measures(_sum(row.measures.totals for row in tables)),
        tables=tables,
        days=_day_rows(connection, where, start, end),
        rules=_rule_rows(connection, start, end, province, table, top_rules),
    )


def national_overview(
    connection: Connection,
    start: dt.date,
    end: dt.date,
    table: str | None = None,
    *,
    top_rules: int | None = 10,
) -> NationalOverview:
    """Every province side by side, the country total, and the country's tables, days and rules."""
    check_range(start, end)
    table = _canonical_table(table)
    where = _conditions(start, end, None, table)
    by_province = _grouped(connection, stats_daily.c.province, where)
    registered = set(connection.execute(select(nodes.c.province).distinct()).scalars())
    names = load_regions().provinces()
    provinces = [
        ProvinceRow(code, names.get(code), Measures(by_province.get(code, Totals())))
        for code in sorted(registered | set(by_province))
    ]
    return NationalOverview(
        start=start,
        end=end,
        table=table,
        provinces=provinces,
        total=Measures(_sum(by_province.values())),
        tables=_table_rows(connection, where),
        days=_day_rows(connection, where, start, end),
        rules=_rule_rows(connection, start, end, None, table, top_rules),
    )


def _canonical_table(table: str | None) -> str | None:
    """``502`` and ``SECTION`` name the same table; an unknown name is kept as given."""
    if table is None:
        return None
    found = load_spec().table(table)
    return found.name if found is not None else table


def _conditions(
    start: dt.date, end: dt.date, province: str | None, table: str | None
) -> list[ColumnElement[bool]]:
    d = stats_daily.c
    where = [d.day >= start, d.day <= end]
    if province is not None:
        where.append(d.province == province)
    if table is not None:
        where.append(d.table_name == table)
    return where


def _grouped(
    connection: Connection, key: Column[Any], where: Sequence[ColumnElement[bool]]
) -> dict[Any, Totals]:
    sums = [func.coalesce(func.sum(stats_daily.c[name]), 0).label(name) for name in COUNTERS]
    rows = connection.execute(select(key.label("group_key"), *sums).where(*where).group_by(key))
    # PostgreSQL sums BIGINT into NUMERIC: int() brings every backend to plain integers.
    return {row.group_key: Totals(*(int(row._mapping[name]) for name in COUNTERS)) for row in rows}


def _sum(parts: Iterable[Totals]) -> Totals:
    total = Totals()
    for part in parts:
        total += part
    return total


def _table_rows(connection: Connection, where: Sequence[ColumnElement[bool]]) -> list[TableRow]:
    spec = load_spec()
    rows = []
    for name, totals in sorted(_grouped(connection, stats_daily.c.table_name, where).items()):
        found = spec.table(name)
        rows.append(TableRow(name, found.name_zh if found is not None else None, Measures(totals)))
    return rows


def _day_rows(
    connection: Connection, where: Sequence[ColumnElement[bool]], start: dt.date, end: dt.date
) -> list[DayRow]:
    by_day = _grouped(connection, stats_daily.c.day, where)
    days = (start + dt.timedelta(days=n) for n in range((end - start).days + 1))
    return [DayRow(day, Measures(by_day.get(day, Totals()))) for day in days]


def _rule_rows(
    connection: Connection,
    start: dt.date,
    end: dt.date,
    province: str | None,
    table: str | None,
    limit: int | None,
) -> list[RuleRow]:
    r = stats_rules.c
    where = [r.day >= start, r.day <= end]
    if province is not None:
        where.append(r.province == province)
    if table is not None:
        where.append(r.table_name == table)
    counted = connection.execute(
        select(r.rule_code, func.sum(r.count).label("occurrences")).where(*where).group_by(r.rule_code)
    )
    rows = [_rule_row(row.rule_code, int(row.occurrences)) for row in counted]
    # What blocks acceptance first (errors), then the most frequent; the code breaks ties stably.
    rows.sort(key=lambda row: (row.severity is not Severity.ERROR, -row.count, row.code))
    return rows if limit is None else rows[:limit]


def publication_missing(tables: Iterable[TableRow]) -> dict[str, int]:
    """Realtime records without a publication time (Art. 9), split as the hub treated them.

    ``refused``: trade information (``E-EXCH-PUBLISHED-MISSING``); ``counted_late``: subject, expert,
    credit and supervision information, due and not on time.
    """
    spec = load_spec()
    refused = late = 0
    for row in tables:
        found = spec.table(row.table)
        if found is not None and found.info_class is InfoClass.TRADE:
            refused += row.measures.totals.untimed
        else:
            late += row.measures.totals.untimed
    return {"untimed": refused + late, "refused": refused, "counted_late": late}


def _rule_row(code: str, count: int) -> RuleRow:
    rule = RULES.get(code)
    if rule is not None:
        return RuleRow(code, count, rule.title_zh, rule.severity)
    # A retired code keeps its meaning by the catalogue's naming convention (W- warns, the rest block).
    return RuleRow(code, count, None, Severity.WARNING if code.startswith("W-") else Severity.ERROR)
