"""The node's portal in real headless Chromium: sign-in with TOTP, the 总览 charts, the rejects export.

Screenshots land in ``test-artifacts/browser/`` (git-ignored) as ``node-*.png``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from browser_world import chromium, enrol, open_as, require_browser, screenshot, serve, walk
from openpyxl import load_workbook

from ggzy.node.corrections import EXPORT_HEADERS
from ggzy.security.accounts import Caller, NewAccount
from ggzy.security.permissions import Principal, Role

sys.path.insert(0, str(Path(__file__).parent.parent / "integration" / "node"))
from nodeportal_world import NodeWorld, build_node_world


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The node world served live; its administrator, auditor and operator enrolled for the browser
    (``t-admin``, ``t-audit``, ``t-op``), and ``b-op``, a second operator."""
    require_browser()
    folder = tmp_path_factory.mktemp("node-browser")
    people: dict[str, Any] = {}

    def for_the_browser(service: Any, account: str, one_time: str) -> str:
        people[account] = enrol(service, account, one_time)
        return "-"  # the world's API token: not used by the browser

    for world in build_node_world(f"sqlite:///{folder / 'node.db'}", folder, for_the_browser):
        service = world.app.state.people.service
        one_time = service.create(
            Principal("t-admin", Role.SYSADMIN),
            NewAccount("b-op", "浏览器操作员", Role.OPERATOR, staff_number="NB1"),
            Caller(source="127.0.0.1"),
        )
        people["b-op"] = enrol(service, "b-op", one_time)
        for base in serve(world.app):
            yield SimpleNamespace(world=world, base=base, people=people, sessions={})


@pytest.fixture(scope="module")
def browser(node: Any) -> Iterator[Any]:
    yield from chromium()


def test_an_operator_signs_in_with_totp_and_sees_the_overview_charts(node: Any, browser: Any) -> None:
    world: NodeWorld = node.world
    page = open_as(browser, node, "b-op", "/portal/overview")
    try:
        assert page.url.endswith("/portal/overview")
        assert page.locator(".portal-nav a").all_inner_texts() == ["总览", "退回记录", "对账"]
        page.wait_for_selector("#chart-history[data-rendered=true]")
        assert page.locator("[data-rendered=true]").count() == 2
        assert page.locator("#chart-history canvas").count() >= 1
        plotted = page.evaluate(
            """() => {
                const chart = window.echarts.getInstanceByDom(document.getElementById('chart-history'));
                const [sent, failed] = chart.getOption().series;
                const sum = values => values.reduce((a, b) => a + b, 0);
                return [sum(sent.data), sum(failed.data)];
            }"""
        )
        beats = world.expected.beats.values()
        assert plotted == [sum(ok for ok, _ in beats), sum(failed for _, failed in beats)]
        assert "85.0%" in page.locator("#disk").inner_text()
        screenshot(page, "node-overview")
    finally:
        page.context.close()


def test_the_rejects_xlsx_downloads_and_opens(node: Any, browser: Any, tmp_path: Path) -> None:
    world: NodeWorld = node.world
    page = open_as(browser, node, "b-op", "/portal/rejects")
    try:
        assert page.locator("#rejects tbody tr").count() == 50
        screenshot(page, "node-rejects")
        with page.expect_download() as download:
            page.click("#export")
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        assert saved.suffix == ".xlsx"
        rows = list(load_workbook(saved, read_only=True).active.iter_rows(values_only=True))
        assert rows[0] == EXPORT_HEADERS and len(rows) - 1 == world.expected.findings
    finally:
        page.context.close()


NODE_PAGES = {
    "t-op": {"/portal/overview", "/portal/rejects", "/portal/reconcile"},
    "t-admin": {"/portal/admin/accounts", "/portal/admin/tokens", "/portal/admin/settings"},
    "t-audit": {"/portal/audit"},
}


@pytest.mark.parametrize("who", sorted(NODE_PAGES))
def test_every_node_page_of_every_role_is_clean(node: Any, browser: Any, who: str) -> None:
    """As on the hub: 200, no console or HTTP error, no code as text, Beijing time; screenshots."""
    page = open_as(browser, node, who, "/portal")
    try:
        visits = walk(page, node.base, f"node-{who}")
    finally:
        page.context.close()
    problems = {v.path: v.problems for v in visits if v.problems}
    assert problems == {}, problems
    assert all(v.status == 200 for v in visits)
    assert NODE_PAGES[who] <= {v.path.split("?")[0] for v in visits}
