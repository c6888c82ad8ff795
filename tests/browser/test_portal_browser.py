"""The portal in real headless Chromium: sign-in with TOTP, who sees what, charts, timeline, export.

Screenshots of every page land in ``test-artifacts/browser/`` (git-ignored).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_world import (
    LiveHub,
    LiveSite,
    Visit,
    chromium,
    live_empty_hub,
    live_hub,
    opener,
    require_browser,
    screenshot,
    walk,
)
from openpyxl import load_workbook
from sqlalchemy import select

from ggzy.hub.models import audit_log, records
from ggzy.hub.registry import add_node
from ggzy.spec import InfoClass, load_spec
from ggzy.store.database import writing
from ggzy.web.portal import beijing


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    """The simulated month (Fujian, Guangdong), plus a node registered in Beijing that never connected:
    a province page of a silent node, an assessment of a province without data."""
    require_browser()
    for live in live_hub(tmp_path_factory.mktemp("browser")):
        with writing(live.world.state.engine) as connection:
            add_node(connection, "bj-01", "11", name="北京市交换前置", networks=["10.11.0.0/16"])
        yield live


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory, hub: LiveHub) -> Iterator[LiveSite]:
    """A hub on an empty database: nothing received, no node, no roster — every page still a page."""
    yield from live_empty_hub(tmp_path_factory.mktemp("empty-hub"))


@pytest.fixture(scope="module")
def browser(hub: LiveHub) -> Iterator[Any]:
    yield from chromium()


@pytest.fixture
def page_as(browser: Any, hub: LiveHub) -> Iterator[Callable[[str, str], Any]]:
    yield from opener(browser, hub)


@pytest.fixture
def empty_page_as(browser: Any, empty: LiveSite) -> Iterator[Callable[[str, str], Any]]:
    yield from opener(browser, empty)


def test_an_operator_signs_in_with_totp_and_sees_every_province(
    hub: LiveHub, page_as: Callable[[str, str], Any]
) -> None:
    page = page_as("op", "/portal/overview")
    assert page.url.endswith("/portal/overview")
    assert page.locator("#province-grid tbody tr").count() == 31
    assert page.locator("#province-grid").get_by_text("福建省").count() == 1
    assert page.locator(".portal-nav a").all_inner_texts() == [
        "总览",
        "交易查询",
        "反馈查询",
        "运行监测",
        "运行管理",
        "检查考核",
        "通知",
    ]
    screenshot(page, "overview")
    assert page.goto(hub.base + "/portal/audit").status == 403  # an operator reads no audit log


def test_a_province_operator_sees_only_its_province(hub: LiveHub, page_as: Callable[[str, str], Any]) -> None:
    page = page_as("op44", "/portal/overview")
    assert page.locator("#province-grid tbody tr").count() == 1
    assert "广东省" in page.locator("#province-grid").inner_text()
    assert "福建省" not in page.content()
    screenshot(page, "overview-province-44")
    response = page.goto(hub.base + "/portal/provinces/35")
    assert response.status == 403
    assert "无权查看福建省的数据" in page.content()


def test_an_auditor_sees_no_business_data(hub: LiveHub, page_as: Callable[[str, str], Any]) -> None:
    page = page_as("audit", "/portal")
    assert page.url.endswith("/portal/audit")  # the auditor lands on the audit log
    assert page.locator(".portal-nav a").all_inner_texts() == ["审计"]
    assert page.locator("#audit-entries tbody tr").count() > 0
    page.click("#chain-status a")
    assert "审计链完整" in page.locator("#chain-status").inner_text()
    screenshot(page, "audit")
    for path in ("/portal/overview", "/portal/provinces/35", "/portal/trade", "/portal/feedback"):
        response = page.goto(hub.base + path)
        assert response.status == 403, path
        assert "E-AUTH-FORBIDDEN" in page.content()
        assert "福建省" not in page.content()
    screenshot(page, "auditor-refused")


def test_an_administrator_sees_no_business_data_and_no_audit_log(
    hub: LiveHub, page_as: Callable[[str, str], Any]
) -> None:
    page = page_as("admin", "/portal")
    assert page.url.endswith("/portal/admin/accounts")
    assert page.locator(".portal-nav a").all_inner_texts() == ["系统管理"]
    assert page.locator("#accounts tbody tr").count() >= 4
    screenshot(page, "admin")
    page.goto(hub.base + "/portal/admin/nodes")
    assert page.locator("#nodes tbody tr").count() == 3
    assert "从未连接" in page.locator("#nodes tr[data-node=bj-01]").inner_text()
    for path in ("/portal/overview", "/portal/feedback", "/portal/trade", "/portal/audit"):
        response = page.goto(hub.base + path)
        assert response.status == 403, path
        assert "#audit-entries" not in page.content() and "province-grid" not in page.content()


def test_charts_render_with_the_simulated_month(hub: LiveHub, page_as: Callable[[str, str], Any]) -> None:
    page = page_as("op", "/portal/provinces/35?from=2026-10-01&to=2026-10-30")
    page.wait_for_selector("[data-rendered=true]")
    assert page.locator("[data-rendered=true]").count() >= 5  # four charts and the node's history
    plotted = page.evaluate(
        """() => {
            const chart = window.echarts.getInstanceByDom(document.getElementById('chart-volumes'));
            return chart.getOption().series.flatMap(s => s.data).reduce((a, b) => a + b, 0);
        }"""
    )
    assert plotted == sum(r["records"] for r in hub.world.receipts["fj-01"]) > 0
    assert page.locator("#chart-volumes canvas").count() >= 1
    screenshot(page, "province-35")


def _simulated_trade(hub: LiveHub) -> tuple[str, set[str]]:
    spec = load_spec()
    with hub.world.state.engine.connect() as connection:
        sections = connection.execute(
            select(records.c.deal_code, records.c.data).where(records.c.table_name == "SECTION")
        ).all()
    lots = Counter(row.data["TENDER_PROJECT_CODE"] for row in sections)
    for row in sections:
        if lots[row.data["TENDER_PROJECT_CODE"]] != 1:
            continue
        project = row.data["TENDER_PROJECT_CODE"][:-3]
        stages = {
            result["table"]
            for receipts in hub.world.receipts.values()
            for receipt in receipts
            for result in receipt["results"]
            if result["outcome"] == "accepted"
            and result["key"].startswith(project)
            and spec.tables[result["table"]].stage is not None
            and spec.tables[result["table"]].info_class is InfoClass.TRADE
        }
        if {"PROJECT", "CONTRACT_PERFORMANCE"} <= stages:
            return row.deal_code, stages
    pytest.fail("no complete single-lot trade in the simulated month")


def test_the_timeline_shows_all_stages_of_a_simulated_trade(
    hub: LiveHub, page_as: Callable[[str, str], Any]
) -> None:
    deal_code, stages = _simulated_trade(hub)
    page = page_as("op", "/portal/trade")
    page.fill("#q", deal_code)
    page.click("form[role=search] button[type=submit]")
    page.wait_for_selector("#timeline")
    shown = set(page.locator("#timeline > li").evaluate_all("items => items.map(i => i.dataset.table)"))
    assert shown >= stages
    screenshot(page, "trade-timeline")


def test_the_xlsx_export_downloads_and_opens(
    hub: LiveHub, page_as: Callable[[str, str], Any], tmp_path: Path
) -> None:
    page = page_as("op", "/portal/feedback?from=2026-10-01&to=2026-10-30")
    assert page.locator("#rejections tbody tr").count() > 1
    screenshot(page, "feedback")
    with page.expect_download() as download:
        page.click("#export")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    sheet = load_workbook(saved, read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "接收时间（北京时间）" and len(rows) > 1
    assert saved.suffix == ".xlsx"


def test_operations_and_assessment_pages_show_a_province_month(
    hub: LiveHub, page_as: Callable[[str, str], Any]
) -> None:
    page = page_as("op", "/portal/ops?province=35&month=2026-10")
    assert page.locator("#availability .card").count() == 4
    screenshot(page, "ops-35")
    page.goto(hub.base + "/portal/assessment?province=35&month=2026-10")
    assert page.locator("#indicators tbody tr").count() >= 10
    screenshot(page, "assessment-35")


def test_the_overview_scales_up_on_a_wall_display(hub: LiveHub, page_as: Callable[[str, str], Any]) -> None:
    page = page_as("op", "/portal/overview")
    normal = page.evaluate("() => getComputedStyle(document.documentElement).fontSize")
    page.set_viewport_size({"width": 2560, "height": 1440})
    wall = page.evaluate("() => getComputedStyle(document.documentElement).fontSize")
    assert (normal, wall) == ("15px", "20px")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 2560  # no sideways scrolling
    screenshot(page, "overview-wall")


# --- every page, every role: no error, no code for a word, Beijing time -------------------------


def _assert_clean(visits: list[Visit], expected: set[str]) -> None:
    problems = {v.path: v.problems for v in visits if v.problems}
    assert problems == {}, problems
    assert all(v.status == 200 for v in visits), [(v.path, v.status) for v in visits if v.status != 200]
    walked = {v.path.split("?")[0] for v in visits}
    assert expected <= walked, expected - walked


HUB_PAGES = {
    "op": {"/portal/overview", "/portal/trade", "/portal/feedback", "/portal/ops", "/portal/work/outages",
           "/portal/work/incidents", "/portal/work/roster", "/portal/work/register", "/portal/work/preparedness",
           "/portal/work/orders", "/portal/assessment", "/portal/inspections"},
    "op44": {"/portal/overview", "/portal/ops", "/portal/work/roster", "/portal/work/orders", "/portal/provinces/44"},
    "admin": {"/portal/admin/accounts", "/portal/admin/nodes", "/portal/admin/settings"},
    "audit": {"/portal/audit"},
}  # fmt: skip


@pytest.mark.parametrize("who", sorted(HUB_PAGES))
def test_every_page_of_every_role_is_clean(
    hub: LiveHub, page_as: Callable[[str, str], Any], who: str
) -> None:
    """Nav, tabs and one link of each kind, as each role: 200, no console or HTTP error, no English
    code or Python literal as text, no time other than Beijing time. Screenshots: test-artifacts/."""
    page = page_as(who, "/portal")
    visits = walk(page, hub.base, f"hub-{who}")
    _assert_clean(visits, HUB_PAGES[who])
    _assert_clean(walk(page, hub.base, f"hub-{who}", start="/auth/account", limit=1), set())
    assert page.locator(".portal-nav a").count() >= 1  # the account page keeps the navigation
    if who == "op":  # the province of the node that never connected, and one without data
        for path in (
            "/portal/provinces/11",
            "/portal/assessment?province=11",
            "/portal/assessment?province=12",
        ):
            _assert_clean(walk(page, hub.base, f"hub-{who}", start=path, limit=1), set())


def test_the_same_pages_on_an_empty_database(
    empty: LiveSite, empty_page_as: Callable[[str, str], Any]
) -> None:
    """Nothing received, no node, no roster: the business pages (the administrator's and the auditor's
    show no business data; they are walked on the simulated month above)."""
    page = empty_page_as("op", "/portal")
    _assert_clean(walk(page, empty.base, "empty-op"), HUB_PAGES["op"])


def test_times_are_beijing_times_on_the_audit_page_and_the_charts(
    hub: LiveHub, page_as: Callable[[str, str], Any]
) -> None:
    page = page_as("audit", "/portal/audit")
    first = page.locator("#audit-entries tbody tr").first
    shown_id, shown_at = (cell.strip() for cell in first.locator("td").all_inner_texts()[:2])
    with hub.world.state.engine.connect() as connection:
        stored = connection.execute(
            select(audit_log.c.at).where(audit_log.c.id == int(shown_id))
        ).scalar_one()
    assert shown_at == beijing(stored)  # the stored UTC time, shown +8 h
    chart = page_as("op", "/portal/provinces/35?from=2026-10-01&to=2026-10-30")
    chart.wait_for_selector("#chart-node-0[data-rendered=true]")
    hours = chart.evaluate(
        "() => window.echarts.getInstanceByDom(document.getElementById('chart-node-0')).getOption().xAxis[0].data"
    )
    assert hours[-1] == "10-30 20时"  # the last hour with beats: 20:00 Beijing, 12:00 UTC
