"""The timely-reporting rate (Art. 9) cannot be improved by leaving the publication time out or
putting it in the future, and same-day classes count the Beijing calendar day of publication."""

from __future__ import annotations

import copy
import datetime as dt
import io
from functools import cache
from typing import Any

from conftest import HubFixture, ingest
from rich.console import Console

from ggzy.cli.hub_stats import _render_province
from ggzy.hub.portal.province import province_page
from ggzy.hub.portal.scope import Scope
from ggzy.hub.stats import Totals, province_summary
from ggzy.simulate import simulate

BEIJING = dt.timezone(dt.timedelta(hours=8))
DAY = dt.date(2026, 11, 20)


@cache
def _simulated() -> tuple[dict[str, Any], ...]:
    start = dt.datetime(2026, 10, 1)
    return tuple(s.record for s in simulate("35", seed=1, transactions=30, start=start, category="realtime"))


def records_of(table: str, n: int = 1) -> list[dict[str, Any]]:
    found = [copy.deepcopy(r) for r in _simulated() if r["table"] == table][:n]
    assert len(found) == n
    return found


def totals(hub: HubFixture, day: dt.date = DAY) -> Totals:
    with hub.state.engine.connect() as connection:
        return province_summary(connection, "35", day, day).overall.totals


def codes(result: dict[str, Any]) -> set[str]:
    return {f["code"] for f in result["findings"] if f["severity"] == "error"}


def test_realtime_trade_without_a_publication_time_is_refused_and_shown(hub: HubFixture) -> None:
    now = dt.datetime.combine(DAY, dt.time(12, 0), BEIJING)
    silent, history, dated = records_of("PROJECT", 3)
    for record in (silent, history):
        del record["published_at"]  # PROJECT has no publication-time field: nothing dates it
    history["category"] = "history"
    dated["published_at"] = (now - dt.timedelta(minutes=3)).isoformat()
    other = records_of("OTHER_TRADE_PUB_INFO")[0]
    del other["published_at"]  # its PUBLISHING_TIME field dates it instead
    other["data"]["PUBLISHING_TIME"] = (now - dt.timedelta(minutes=4)).strftime("%Y%m%d%H%M%S")

    realtime = ingest(hub, 1, "rt", [silent, dated, other], now)
    assert [r["outcome"] for r in realtime["results"]] == ["rejected", "accepted", "accepted"]
    assert codes(realtime["results"][0]) == {"E-EXCH-PUBLISHED-MISSING"}
    message = realtime["results"][0]["findings"][0]["message_zh"]
    assert "PROJECT" in message and "10分钟" in message
    assert ingest(hub, 2, "hist", [history], now)["accepted"] == 1  # history is not measured

    measured = totals(hub)
    assert (measured.received, measured.timely_due, measured.timely_ok, measured.untimed) == (4, 2, 2, 1)

    console = Console(file=io.StringIO(), width=200)
    with hub.state.engine.connect() as connection:
        _render_province(
            console, province_summary(connection, "35", DAY, DAY)
        )  # what `ggzy hub stats` prints
        page = province_page(connection, Scope(None), "35", DAY, DAY, now)
    assert "缺少发布时间 1 条（实时交易信息拒收 1 条，其他信息计为不及时 0 条）" in console.file.getvalue()  # type: ignore[attr-defined]
    assert page["totals"]["untimed"] == 1
    assert page["publication"] == {"untimed": 1, "refused": 1, "counted_late": 0}


def test_a_publication_time_ahead_of_the_hub_clock_is_refused(hub: HubFixture) -> None:
    now = dt.datetime.combine(DAY, dt.time(12, 0), BEIJING)
    ahead, within = records_of("PROJECT", 2)
    ahead["published_at"] = (now + dt.timedelta(seconds=301)).isoformat()
    within["published_at"] = (now + dt.timedelta(seconds=299)).isoformat()  # clocks differ a little
    field_ahead = records_of("OTHER_TRADE_PUB_INFO")[0]
    del field_ahead["published_at"]
    field_ahead["data"]["PUBLISHING_TIME"] = (now + dt.timedelta(hours=2)).strftime("%Y%m%d%H%M%S")
    subject = records_of("LEGAL_PERSON_BASE")[0]
    subject["published_at"] = (now + dt.timedelta(days=1)).isoformat()

    receipt = ingest(hub, 1, "future", [ahead, within, field_ahead, subject], now)
    outcomes = [(r["outcome"], codes(r)) for r in receipt["results"]]
    assert outcomes == [
        ("rejected", {"E-EXCH-PUBLISHED-FUTURE"}),
        ("accepted", set()),
        ("rejected", {"E-EXCH-PUBLISHED-FUTURE"}),
        ("rejected", {"E-EXCH-PUBLISHED-FUTURE"}),
    ]
    assert receipt["results"][2]["findings"][0]["field"] == "PUBLISHING_TIME"
    measured = totals(hub)
    # A time the hub's clock has not reached proves nothing: due, and not on time.
    assert (measured.timely_due, measured.timely_ok) == (4, 1)


def test_same_day_classes_count_the_beijing_day_of_publication_around_midnight(hub: HubFixture) -> None:
    late, early, silent = records_of("LEGAL_PERSON_BASE", 3)
    # 23:59 Beijing is 15:59 UTC; received two minutes later it is the next Beijing day, same UTC day.
    late["published_at"] = dt.datetime(2026, 11, 19, 15, 59, tzinfo=dt.UTC).isoformat()
    # 00:01 Beijing is 16:01 UTC of the day before; received 23:59 Beijing (15:59 UTC the next UTC day).
    early["published_at"] = dt.datetime(2026, 11, 19, 16, 1, tzinfo=dt.UTC).isoformat()
    del silent["published_at"]
    ingest(hub, 1, "late", [late], dt.datetime(2026, 11, 19, 16, 1, tzinfo=dt.UTC))
    ingest(hub, 1, "early", [early, silent], dt.datetime(2026, 11, 20, 15, 59, tzinfo=dt.UTC))
    deletion = {
        "table": "LEGAL_PERSON_BASE",
        "op": "delete",
        "category": "realtime",
        "data": {"LEGAL_CODE": late["data"]["LEGAL_CODE"]},
    }
    assert (
        ingest(hub, 1, "delete", [deletion], dt.datetime(2026, 11, 20, 15, 59, tzinfo=dt.UTC))["accepted"]
        == 1
    )

    measured = totals(hub)
    assert measured.received == 4
    # late: 23:59 → 00:01 crosses the Beijing midnight (not on time, though the UTC date is the same);
    # early: 00:01 → 23:59 of one Beijing day (on time, though the UTC dates differ); silent: no
    # publication time, due and late; the deletion publishes nothing and is not measured.
    assert (measured.timely_due, measured.timely_ok) == (3, 1)
    assert measured.untimed == 1
    with hub.state.engine.connect() as connection:
        page = province_page(
            connection, Scope(None), "35", DAY, DAY, dt.datetime(2026, 11, 20, 16, 0, tzinfo=dt.UTC)
        )
    assert page["publication"] == {"untimed": 1, "refused": 0, "counted_late": 1}


def test_the_api_applies_the_configured_clock_tolerance(hub: HubFixture) -> None:
    record = records_of("PROJECT")[0]
    record["published_at"] = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)).isoformat()
    assert hub.client.upload(1, "within", [record])["accepted"] == 1  # 2 minutes ahead: within 300 s
    hub.state.settings = hub.state.settings.model_copy(update={"clock_tolerance_seconds": 10})
    record = records_of("PROJECT", 2)[1]
    record["published_at"] = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)).isoformat()
    result = hub.client.upload(1, "beyond", [record])["results"][0]
    assert (result["outcome"], codes(result)) == ("rejected", {"E-EXCH-PUBLISHED-FUTURE"})
    assert "10秒" in result["findings"][0]["message_zh"]
