"""The node's portal in real headless Chromium: sign-in with TOTP, the 总览 charts, the rejects export.

Screenshots land in ``test-artifacts/browser/`` (git-ignored) as ``node-*.png``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from browser_world import CHROMIUM, enrol, open_as, require_browser, screenshot, serve
from openpyxl import load_workbook

from ggzy.node.corrections import EXPORT_HEADERS
from ggzy.security.accounts import Caller, NewAccount
from ggzy.security.permissions import Principal, Role

sys.path.insert(0, str(Path(__file__).parent.parent / "integration" / "node"))
from nodeportal_world import NodeWorld, build_node_world


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, first_sign_in: Callable[..., str]) -> Iterator[Any]:
    """The node world served live, with a person ``b-op`` (operator) enrolled for the browser."""
    require_browser()
    folder = tmp_path_factory.mktemp("node-browser")
    for world in build_node_world(f"sqlite:///{folder / 'node.db'}", folder, first_sign_in):
        service = world.app.state.people.service
        one_time = service.create(
            Principal("t-admin", Role.SYSADMIN),
            NewAccount("b-op", "浏览器操作员", Role.OPERATOR, staff_number="NB1"),
            Caller(source="127.0.0.1"),
        )
        people = {"b-op": enrol(service, "b-op", one_time)}
        for base in serve(world.app):
            yield SimpleNamespace(world=world, base=base, people=people, sessions={})


@pytest.fixture(scope="module")
def browser(node: Any) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


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
