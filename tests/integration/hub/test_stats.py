"""The hub's measurement (Art. 8, 9, 11): situations built with known answers, on both backends."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import HubFixture, ingest, province_records
from openpyxl import load_workbook
from sqlalchemy import func, select
from typer.testing import CliRunner

from ggzy.cli import app
from ggzy.hub.ingest import SHANGHAI
from ggzy.hub.models import open_rejections, stats_daily, stats_rules
from ggzy.hub.stats import (
    MAX_SPAN_DAYS,
    TARGETS,
    NationalOverview,
    ProvinceSummary,
    StatsRangeError,
    national_overview,
    province_summary,
)
from ggzy.settings import get_settings
from ggzy.simulate import province_systems
from ggzy.spec import InfoClass, load_spec
from ggzy.validation import RULES

SPEC = load_spec()


def today() -> dt.date:
    return dt.datetime.now(SHANGHAI).date()


def around_today() -> tuple[dt.date, dt.date]:
    """Uploads through the API are bucketed on the real Shanghai day, which may turn during a test."""
    return today() - dt.timedelta(days=1), today() + dt.timedelta(days=1)


def summary_of(
    hub: HubFixture, start: dt.date, end: dt.date, province: str = "35", table: str | None = None
) -> ProvinceSummary:
    with hub.state.engine.connect() as connection:
        return province_summary(connection, province, start, end, table, top_rules=None)


def overview_of(hub: HubFixture, start: dt.date, end: dt.date) -> NationalOverview:
    with hub.state.engine.connect() as connection:
        return national_overview(connection, start, end, top_rules=None)


def is_trade(record: dict[str, Any]) -> bool:
    table = SPEC.table(record["table"])
    assert table is not None
    return table.info_class is InfoClass.TRADE


def expected_rule_counts(receipt: dict[str, Any]) -> Counter[str]:
    """What the verdicts say: each error code once per rejected record, every warning finding."""
    counts: Counter[str] = Counter()
    for result in receipt["results"]:
        findings = result["findings"]
        counts.update({f["code"] for f in findings if f["severity"] == "error"})
        counts.update(f["code"] for f in findings if f["severity"] == "warning")
    return counts


def test_a_clean_upload_counts_every_record_of_every_table(hub: HubFixture) -> None:
    records = province_records()
    receipt = hub.client.upload(2, "clean-1", records)
    assert receipt["rejected"] == 0
    summary = summary_of(hub, *around_today())

    per_table = Counter(r["table"] for r in records)
    assert {row.table: row.measures.totals.received for row in summary.tables} == per_table
    assert {row.table: row.measures.totals.accepted for row in summary.tables} == per_table
    assert all(row.name_zh == SPEC.tables[row.table].name_zh for row in summary.tables)
    overall = summary.overall
    assert (overall.totals.received, overall.totals.accepted, overall.totals.rejected) == (
        len(records),
    ) * 2 + (0,)
    assert overall.pass_rate.value == 1.0 and overall.pass_rate.met is True
    assert overall.pass_rate.target == TARGETS["pass"] == 0.95
    # History records on channel 2 are held to neither the ten-minute nor the same-day rule.
    assert sum(not is_trade(r) for r in records) > 0
    assert overall.totals.timely_due == 0 and overall.timely_rate.value is None
    assert overall.repair_rate.value is None and overall.repair_rate.met is None
    assert overall.average_repair_seconds is None
    assert summary.rules == []
    assert sum(row.measures.totals.received for row in summary.days) == len(records)
    assert len(summary.days) == 3  # every day of the period, empty ones included

    narrowed = summary_of(hub, *around_today(), table="502")  # a DATA_NO names the table too
    assert narrowed.table == "SECTION"
    assert [row.table for row in narrowed.tables] == ["SECTION"]
    assert narrowed.overall.totals.received == per_table["SECTION"]

    overview = overview_of(hub, *around_today())
    assert [row.province for row in overview.provinces] == ["35"]
    assert overview.provinces[0].name_zh == "福建省"
    assert overview.provinces[0].measures == overall == overview.total


def test_rejections_and_rules_match_the_receipt_verdicts(hub: HubFixture) -> None:
    records = province_records(transactions=4, error_rate=0.3)
    receipt = hub.client.upload(2, "defects-1", records)
    assert receipt["rejected"] > 0 and receipt["accepted"] > 0
    summary = summary_of(hub, *around_today())

    results = receipt["results"]
    by_table: dict[str, Counter[str]] = {}
    for result in results:
        by_table.setdefault(result["table"], Counter())[result["outcome"]] += 1
    assert {r.table: (r.measures.totals.accepted, r.measures.totals.rejected) for r in summary.tables} == {
        table: (counts["accepted"], counts["rejected"]) for table, counts in by_table.items()
    }
    overall = summary.overall.totals
    assert (overall.received, overall.accepted, overall.rejected) == (
        len(records),
        receipt["accepted"],
        receipt["rejected"],
    )
    rate = summary.overall.pass_rate
    assert rate.value == pytest.approx(receipt["accepted"] / len(records))
    assert rate.met is (receipt["accepted"] / len(records) >= 0.95)

    expected = expected_rule_counts(receipt)
    assert {row.code: row.count for row in summary.rules} == expected
    errors_first = sorted(expected.items(), key=lambda kv: (RULES[kv[0]].severity != "error", -kv[1], kv[0]))
    assert [(row.code, row.count) for row in summary.rules] == errors_first
    assert all(row.title_zh == RULES[row.code].title_zh for row in summary.rules)
    with hub.state.engine.connect() as connection:
        top = province_summary(connection, "35", *around_today(), top_rules=3)
    assert [row.code for row in top.rules] == [code for code, _ in errors_first[:3]]

    rejected_keys = {
        (r["table"], r["key"])
        for r in results
        if r["outcome"] == "rejected"
        and r["key"]
        and all(f["code"] != "E-XR-DUPLICATE" for f in r["findings"])
    }
    assert overall.rejected_keys == len(rejected_keys) > 0


def test_the_timely_rate_counts_ten_minutes_for_trade_and_the_same_day_for_the_rest(
    hub: HubFixture,
) -> None:
    now = dt.datetime.combine(today(), dt.time(12, 0), SHANGHAI)
    records = province_records(category="realtime")
    lags = [dt.timedelta(minutes=5), dt.timedelta(minutes=10), dt.timedelta(minutes=15)]
    on_time = 0
    for index, record in enumerate(records):
        if is_trade(record):
            lag = lags[index % 3]
            record["published_at"] = (now - lag).isoformat()
            on_time += lag <= dt.timedelta(minutes=10)
        else:
            # The same-day rule counts the Beijing day of publication (not of the node's acquisition).
            published = now - (dt.timedelta(hours=2) if index % 2 else dt.timedelta(days=1))
            record["published_at"] = published.isoformat()
            record["acquired_at"] = now.isoformat()
            on_time += published.date() == now.date()
    ingest(hub, 1, "realtime-1", records, now)

    totals = summary_of(hub, now.date(), now.date()).overall
    assert totals.totals.timely_due == len(records)
    assert totals.totals.timely_ok == on_time
    assert 0 < on_time < len(records)
    assert totals.timely_rate.value == on_time / len(records)
    assert totals.timely_rate.met is False

    trade = [r for r in records if r["table"] == "TENDER_INVITATION"]
    row = next(r for r in summary_of(hub, now.date(), now.date()).tables if r.table == "TENDER_INVITATION")
    assert row.measures.totals.timely_due == len(trade)
    assert row.measures.totals.timely_ok == sum(
        dt.datetime.fromisoformat(r["published_at"]) >= now - dt.timedelta(minutes=10) for r in trade
    )


def test_a_corrected_record_is_a_repair_and_a_duplicate_is_not_a_key_to_repair(hub: HubFixture) -> None:
    records = province_records()
    first_section = next(i for i, r in enumerate(records) if r["table"] == "SECTION")
    start = dt.datetime.combine(today() - dt.timedelta(days=3), dt.time(9, 0), SHANGHAI)
    receipt = ingest(hub, 2, "parents", records[:first_section], start)
    assert receipt["rejected"] == 0

    good = records[first_section]
    bad = copy.deepcopy(good)
    bad["data"]["CURRENCY_CODE"] = "XXX"  # not in the currency code list
    never_fixed = copy.deepcopy(
        next(r for r in records[first_section + 1 :] if r["table"] == "LEGAL_PERSON_BASE")
    )
    never_fixed["data"]["REG_CAP_CURRENCY"] = "XXX"
    rejected_at = start + dt.timedelta(minutes=1)
    receipt = ingest(hub, 2, "bad", [bad, never_fixed], rejected_at)
    assert receipt["rejected"] == 2
    bad_codes = {f["code"] for f in receipt["results"][0]["findings"] if f["severity"] == "error"}
    assert bad_codes

    repaired_at = rejected_at + dt.timedelta(days=1, hours=1, seconds=7)
    assert ingest(hub, 2, "fixed", [good], repaired_at)["accepted"] == 1
    again = ingest(hub, 2, "again", [good], repaired_at + dt.timedelta(minutes=5))
    assert [f["code"] for f in again["results"][0]["findings"]] == ["E-XR-DUPLICATE"]

    summary = summary_of(hub, rejected_at.date(), repaired_at.date())
    totals = summary.overall.totals
    assert (totals.rejected_keys, totals.repaired) == (2, 1)
    assert totals.duplicates == 1 and totals.rejected == 3
    assert totals.repair_seconds == (repaired_at - rejected_at).total_seconds() == 90007
    assert summary.overall.average_repair_seconds == 90007
    assert summary.overall.repair_rate.value == 0.5 and summary.overall.repair_rate.met is False
    days = {row.day: row.measures.totals for row in summary.days}
    assert days[rejected_at.date()].repaired == 1  # booked on the day of the rejection
    assert days[repaired_at.date()].repaired == 0 and days[repaired_at.date()].duplicates == 1
    section = next(row for row in summary.tables if row.table == "SECTION")
    assert section.measures.repair_rate.value == 1.0 and section.measures.repair_rate.met is True
    rules = {row.code: row.count for row in summary.rules}
    assert rules["E-XR-DUPLICATE"] == 1 and all(rules[code] >= 1 for code in bad_codes)
    with hub.state.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(open_rejections)).scalar_one() == 1


def test_test_data_never_appears_in_any_statistic(hub: HubFixture) -> None:
    records = province_records(category="test", error_rate=0.3)
    receipt = hub.client.upload(2, "test-1", records)
    assert receipt["accepted"] > 0 and receipt["rejected"] > 0  # both outcomes were exercised
    summary = summary_of(hub, *around_today())
    assert summary.overall.totals.received == 0 and summary.tables == [] and summary.rules == []
    with hub.state.engine.connect() as connection:
        for table in (stats_daily, stats_rules, open_rejections):
            assert connection.execute(select(func.count()).select_from(table)).scalar_one() == 0


def test_the_api_answers_the_callers_own_province_only(hub: HubFixture) -> None:
    fujian = province_records()
    hub.client.upload(2, "fj", fujian)
    _, guangdong_client = hub.add_node(
        "gd-01", "44", platform_codes=list(province_systems("44", 1).platform_codes)
    )
    guangdong = province_records("44", transactions=1)
    assert guangdong_client.upload(2, "gd", guangdong)["rejected"] == 0
    start, end = around_today()
    params = {"from": start.isoformat(), "to": end.isoformat(), "province": "35"}  # no such parameter

    own = guangdong_client.http.get("/api/v1/stats", params=params)
    assert own.status_code == 200, own.text
    body = own.json()
    assert body["ok"] is True and body["province"] == "44" and body["name_zh"] == "广东省"
    assert body["totals"]["received"] == len(guangdong)
    assert {row["table"] for row in body["tables"]} == {r["table"] for r in guangdong}
    assert body["rates"]["pass"] == {
        "value": 1.0,
        "target": 0.95,
        "met": True,
        "numerator": len(guangdong),
        "denominator": len(guangdong),
    }
    assert len(body["days"]) == 3

    mine = hub.client.http.get("/api/v1/stats", params={**params, "table": "SECTION"}).json()
    assert mine["province"] == "35" and mine["table"] == "SECTION"
    assert mine["totals"]["received"] == sum(r["table"] == "SECTION" for r in fujian)
    assert json.dumps(mine, ensure_ascii=False)


@pytest.mark.parametrize(
    ("start", "end", "status", "code"),
    [
        ("2026-11-30", "2026-11-01", 400, "E-REQ-RANGE"),
        ("2025-01-01", "2026-01-02", 400, "E-REQ-RANGE"),  # 367 days, one more than allowed
        ("2026-11-01", "2026-13-01", 422, "E-REQ-PARAMETER"),
    ],
)
def test_the_api_refuses_a_bad_period(hub: HubFixture, start: str, end: str, status: int, code: str) -> None:
    response = hub.client.http.get("/api/v1/stats", params={"from": start, "to": end})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_the_api_refuses_an_unsigned_request_and_accepts_a_full_year(hub: HubFixture) -> None:
    unsigned = hub.http.get("/api/v1/stats", params={"from": "2026-01-01", "to": "2026-01-31"})
    assert unsigned.status_code == 401
    assert unsigned.json()["error"]["code"].startswith("E-AUTH-")
    year = hub.client.http.get("/api/v1/stats", params={"from": "2024-01-01", "to": "2024-12-31"})
    assert year.status_code == 200 and len(year.json()["days"]) == MAX_SPAN_DAYS


def test_the_period_check_is_shared_by_every_caller() -> None:
    with pytest.raises(StatsRangeError) as raised:
        province_summary(None, "35", dt.date(2026, 2, 1), dt.date(2026, 1, 1))  # type: ignore[arg-type]
    assert raised.value.code == "E-REQ-RANGE" and "晚于" in raised.value.message_zh


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hub: HubFixture, cli_session: Callable[..., str]
) -> Iterator[None]:
    monkeypatch.setenv("GGZY_HUB__KEY_DIR", str(tmp_path / "cli-keys"))
    get_settings.cache_clear()
    cli_session("operator", db=hub.state.settings.db_url)  # statistics are the 系统操作员's (stats:read)
    yield
    get_settings.cache_clear()


def test_the_cli_reports_in_chinese_and_writes_a_workbook(
    hub: HubFixture, cli_env: None, tmp_path: Path
) -> None:
    records = province_records(error_rate=0.2)
    receipt = hub.client.upload(2, "cli-1", records)
    start, end = (d.isoformat() for d in around_today())
    db = hub.state.settings.db_url
    runner = CliRunner()

    shown = runner.invoke(app, ["hub", "stats", "--province", "35", "--from", start, "--to", end, "--db", db])
    assert shown.exit_code == 0, shown.output
    assert "合格率" in shown.output and "福建省" in shown.output
    assert f"接收 {len(records)} 条，合格 {receipt['accepted']} 条" in shown.output

    as_json = runner.invoke(app, ["hub", "stats", "--from", start, "--to", end, "-f", "json", "--db", db])
    assert as_json.exit_code == 0, as_json.output
    national = json.loads(as_json.stdout)
    assert [row["province"] for row in national["provinces"]] == ["35"]
    assert national["total"]["totals"]["accepted"] == receipt["accepted"]

    target = tmp_path / "stats.xlsx"
    written = runner.invoke(
        app,
        [
            "hub",
            "stats",
            "--province",
            "35",
            "--from",
            start,
            "--to",
            end,
            "-f",
            "xlsx",
            "-o",
            str(target),
            "--db",
            db,
        ],
    )
    assert written.exit_code == 0, written.output
    book = load_workbook(target)
    assert book.sheetnames == ["汇总", "按数据表", "按日", "按规则"]
    tables = book["按数据表"]
    assert tables.max_row == 1 + len({r["table"] for r in records})
    assert tables["A1"].font.bold and tables.freeze_panes == "A2" and tables.auto_filter.ref
    headers = [cell.value for cell in tables[1]]
    pass_column = headers.index("数据合格率 pass rate") + 1
    assert tables.cell(row=2, column=pass_column).number_format == "0.00%"
    summary_rows = {row[0]: row[1] for row in book["汇总"].iter_rows(min_row=2, values_only=True)}
    assert summary_rows["数据合格率"] == pytest.approx(receipt["accepted"] / len(records))
    assert summary_rows["接收 received"] == len(records)
    rules = list(book["按规则"].iter_rows(min_row=2, values_only=True))
    assert {row[0]: row[3] for row in rules} == expected_rule_counts(receipt)

    refused = runner.invoke(app, ["hub", "stats", "--from", end, "--to", start, "--db", db])
    assert refused.exit_code == 2 and "E-REQ-RANGE" in refused.output
