"""The portal on a young site: a node registered but never connected, provinces without data, an
empty database. Every page answers with a page (never a 500, never the upload API's JSON error)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from portal_world import header_authenticator

from ggzy.hub.app import create_app
from ggzy.hub.registry import add_node
from ggzy.settings import HubSettings
from ggzy.store.database import writing

HTML = {"Accept": "text/html"}


@pytest.fixture
def young_hub(hub_db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """A hub whose only node was registered (with a network, as the README does) and never connected."""
    app = create_app(HubSettings(db_url=hub_db_url, key_dir=tmp_path / "keys", portal_refresh_seconds=3600))
    app.state.authenticate = header_authenticator
    with writing(app.state.hub.engine) as connection:
        add_node(connection, "fj-01", "35", name="福建省交换前置", networks=["10.35.0.0/16"])
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    app.state.hub.engine.dispose()


def _get(client: TestClient, path: str, role: str = "operator", province: str | None = None) -> object:
    headers = {**HTML, "X-Test-Role": role}
    if province:
        headers["X-Test-Province"] = province
    return client.get(path, headers=headers)


def test_the_province_page_of_a_node_that_never_connected_is_a_page(young_hub: TestClient) -> None:
    response = _get(young_hub, "/portal/provinces/35")
    assert response.status_code == 200, response.text[:500]
    assert "fj-01" in response.text and "从未连接" in response.text


def test_a_failure_on_a_portal_page_is_an_html_page_in_chinese(young_hub: TestClient) -> None:
    """A server fault behind a page shows a page (request id, way back), not the upload API's JSON."""

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    import ggzy.hub.portal.routes as routes

    original = routes.overview
    routes.overview = broken  # type: ignore[assignment]
    try:
        response = _get(young_hub, "/portal/overview")
    finally:
        routes.overview = original
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert "请稍后用同一批次号重试" not in response.text and "内部错误" in response.text
    assert response.headers["x-request-id"] in response.text
    assert 'href="/portal"' in response.text  # a way back into the portal


def test_an_unknown_portal_page_is_an_html_404(young_hub: TestClient) -> None:
    response = _get(young_hub, "/portal/no-such-page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "页面不存在" in response.text


def test_the_api_keeps_its_json_errors(young_hub: TestClient) -> None:
    response = young_hub.get("/portal/api/provinces/35/nothing", headers={"X-Test-Role": "operator"})
    assert response.status_code == 404 and response.json()["ok"] is False


def test_the_assessment_defaults_to_the_national_summary_and_scores_nothing_without_data(
    young_hub: TestClient,
) -> None:
    summary = _get(young_hub, "/portal/assessment?month=2026-11")
    assert summary.status_code == 200 and "assessment-summary" in summary.text
    fujian = summary.text.split('data-province="35"')[1].split("</tr>")[0]
    beijing = summary.text.split('data-province="11"')[1].split("</tr>")[0]
    assert "期内未收到数据和心跳，不评分" in fujian  # registered, never connected: nothing to score
    assert "未登记交换前置节点，不评分" in beijing
    detail = _get(young_hub, "/portal/assessment?province=11&month=2026-11")
    score = detail.text.split('id="score"')[1].split("</p>")[0]
    assert "<strong>—</strong>" in score and "不评分" in score
    own = _get(young_hub, "/portal/ops", province="35")  # a province's staff see their own province
    assert own.status_code == 200 and "福建省" in own.text


def test_every_page_has_a_favicon_and_says_its_times_are_beijing_time(young_hub: TestClient) -> None:
    page = _get(young_hub, "/portal/overview")
    assert '<link rel="icon" href="/static/favicon.svg"' in page.text and "北京时间" in page.text
    icon = young_hub.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg")
    refused = _get(young_hub, "/portal/admin/accounts")  # an operator: 403, with a way back
    assert refused.status_code == 403 and 'href="/portal"' in refused.text and "返回门户首页" in refused.text
