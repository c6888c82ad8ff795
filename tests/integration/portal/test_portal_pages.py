"""The portal's query services and pages over a simulated month, on both backends.

Expected figures are computed from the batch receipts the ingest returned (what each node was
told), not from the aggregates the services read, so a service that sums the wrong rows fails.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from io import BytesIO
from typing import Any

import pytest
from openpyxl import load_workbook
from portal_world import NOW, World, world_fixture  # noqa: F401  (the ``world`` fixture)
from sqlalchemy import select

from ggzy.hub.models import audit_log, records
from ggzy.hub.stats import TARGETS
from ggzy.security.permissions import Role
from ggzy.spec import InfoClass, load_spec

SPEC = load_spec()
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
TODAY = NOW.astimezone(SHANGHAI).date()


def _day(receipt: dict[str, Any]) -> dt.date:
    return dt.datetime.fromisoformat(receipt["received_at"]).astimezone(SHANGHAI).date()


def received_in_month(world: World, node_id: str | None = None) -> int:
    return sum(
        receipt["records"]
        for node, receipts in world.receipts.items()
        if node_id in (None, node)
        for receipt in receipts
        if _day(receipt).month == TODAY.month
    )


def rejected_results(world: World, node_id: str | None = None) -> list[dict[str, Any]]:
    return [
        result
        for node, receipts in world.receipts.items()
        if node_id in (None, node)
        for receipt in receipts
        for result in receipt["results"]
        if result["outcome"] == "rejected"
    ]


# --- 总览 ---


def test_overview_totals_match_what_the_nodes_were_told(world: World) -> None:
    data = world.get("/portal/api/overview").json()
    assert data["totals"]["month"]["received"] == received_in_month(world)
    today = sum(r["records"] for rs in world.receipts.values() for r in rs if _day(r) == TODAY)
    assert data["totals"]["today"]["received"] == today > 0
    by_code = {p["province"]: p for p in data["provinces"]}
    assert by_code["35"]["month"]["received"] == received_in_month(world, "fj-01")
    assert by_code["44"]["month"]["received"] == received_in_month(world, "gd-01")
    assert by_code["11"]["month"]["received"] == 0 and by_code["11"]["month"]["pass"]["met"] is None
    # 31 mainland provinces in the grid, none outside it without a node.
    assert len(data["provinces"]) == 31
    assert by_code["35"]["nodes_online"] == 1  # the last beat is 20 s before the portal's clock


def test_overview_colours_each_rate_against_its_target(world: World) -> None:
    data = world.get("/portal/api/overview").json()
    for province in data["provinces"]:
        for name, target in TARGETS.items():
            rate = province["month"][name]
            if rate["denominator"]:
                assert rate["met"] == (rate["numerator"] / rate["denominator"] >= target)
    page = world.get("/portal/overview")
    assert page.status_code == 200
    assert 'class="num missed"' in page.text or 'class="num met"' in page.text


def test_a_province_operator_sees_only_its_province_in_the_overview(world: World) -> None:
    data = world.get("/portal/api/overview", province="44").json()
    assert [p["province"] for p in data["provinces"]] == ["44"]
    assert "totals" not in data  # national figures are not a province's business
    html = world.get("/portal/overview", province="44").text
    assert "广东省" in html and "福建省" not in html


# --- province page ---


def test_province_volumes_per_channel_add_up_to_the_receipts(world: World) -> None:
    data = world.get("/portal/api/provinces/35", **{"from": "2026-10-01", "to": TODAY.isoformat()}).json()
    assert sum(row["received"] for row in data["channels"]) == received_in_month(world, "fj-01")
    assert {row["channel"] for row in data["channels"] if row["received"]} == {1}  # realtime only
    assert len(data["days"]) == TODAY.day


def test_top_rules_come_with_examples_of_that_rule_from_that_province(world: World) -> None:
    data = world.get("/portal/api/provinces/35", **{"from": "2026-10-01", "to": TODAY.isoformat()}).json()
    assert data["rules"], "the simulated month has rejections"
    rejected_keys = {(r["table"], r["key"]) for r in rejected_results(world, "fj-01")}
    for rule in data["rules"]:
        for example in rule["examples"]:
            assert (example["table"], example["key"]) in rejected_keys
    codes = Counter(
        code
        for result in rejected_results(world, "fj-01")
        for code in {f["code"] for f in result["findings"] if f["severity"] == "error"}
    )
    top = data["rules"][0]
    assert top["count"] == codes[top["code"]] and top["examples"]


def test_timeliness_histogram_counts_every_realtime_record_of_the_period(world: World) -> None:
    data = world.get("/portal/api/provinces/35", **{"from": "2026-10-01", "to": TODAY.isoformat()}).json()
    with world.state.engine.connect() as connection:
        rows = connection.execute(
            select(records.c.published_at, records.c.received_at).where(
                records.c.province == "35", records.c.channel == 1, records.c.published_at.is_not(None)
            )
        ).all()
    delays = [(_utc(row.received_at) - _utc(row.published_at)).total_seconds() for row in rows]
    assert sum(bucket["count"] for bucket in data["timeliness"]) == len(delays) > 0
    # The first three buckets end at the ten-minute deadline (Art. 9).
    assert sum(bucket["count"] for bucket in data["timeliness"][:3]) == sum(1 for d in delays if d <= 600)
    assert data["timeliness"][-1]["count"] == sum(1 for d in delays if d > 6 * 3600)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def test_province_page_shows_heartbeat_history_and_repairs(world: World) -> None:
    data = world.get("/portal/api/provinces/35").json()
    (node,) = data["nodes"]
    assert node["node_id"] == "fj-01" and node["online"] is True
    assert len(node["history"]) >= 24 * (TODAY.day - 1)  # one beat an hour all month
    assert node["history"][0]["disk_used_ratio"] is not None
    assert data["rates"]["repair"]["numerator"] > 0  # the world re-sends fixed versions
    assert data["reconciliation"]["status"] == "ok"
    # the figures a province cannot game, with what they consist of (issue 17)
    assert set(data["publication"]) == {"untimed", "refused", "counted_late"}
    assert set(data["deal_code_conflicts"]) == {"E-XR-DEAL-CODE-REUSED", "E-XR-DEAL-CODE-MISMATCH"}
    availability = data["availability"]
    assert availability["resolution_seconds"] == 35 and availability["network"]["unit"] == "seconds"
    page = world.get("/portal/provinces/35")
    for text in ("缺少发布时间", "统一交易标识码冲突", "网络可用率", "内容不一致的记录", "精度为一次心跳"):
        assert text in page.text, text


def test_a_province_operator_cannot_open_another_province(world: World) -> None:
    refused = world.get("/portal/api/provinces/35", province="44")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "E-AUTH-SCOPE"
    assert world.get("/portal/provinces/35", province="44").status_code == 403
    assert world.get("/portal/api/provinces/44", province="44").status_code == 200


# --- transaction search ---


def _single_lot_trade(world: World) -> tuple[str, str, set[str]]:
    """A construction trade of one lot: its deal code, project code and the stage tables accepted."""
    with world.state.engine.connect() as connection:
        rows = connection.execute(
            select(records.c.deal_code, records.c.data).where(
                records.c.table_name == "SECTION", records.c.province == "35"
            )
        ).all()
    lots = Counter(row.data["TENDER_PROJECT_CODE"] for row in rows)
    for row in rows:
        tender_project = row.data["TENDER_PROJECT_CODE"]
        if lots[tender_project] != 1:
            continue
        project = tender_project[:-3]
        accepted = {
            result["table"]
            for receipts in world.receipts.values()
            for receipt in receipts
            for result in receipt["results"]
            if result["outcome"] == "accepted"
            and result["key"].startswith(project)
            and SPEC.tables[result["table"]].stage is not None
            and SPEC.tables[result["table"]].info_class is InfoClass.TRADE
        }
        if {"PROJECT", "WIN_RESULT_ANNO"} <= accepted:
            return row.deal_code, project, accepted
    pytest.fail("the simulated month has no single-lot construction trade that reached its result")


def test_the_timeline_shows_every_stage_of_a_simulated_trade(world: World) -> None:
    deal_code, _, stages = _single_lot_trade(world)
    data = world.get("/portal/api/trade", q=deal_code).json()
    assert data["kind"] == "deal_code" and data["found"]
    assert {stage["table"] for stage in data["stages"]} >= stages
    numbers = [stage["stage"] for stage in data["stages"]]
    assert numbers == sorted(numbers)
    first = data["stages"][0]["records"][0]["versions"][0]
    assert first["received_at"] and first["verdict"] == "accepted"
    html = world.get("/portal/trade", q=deal_code).text
    for table in stages:
        assert f'data-table="{table}"' in html


def test_a_trade_is_found_by_its_project_code_too(world: World) -> None:
    _deal_code, project, stages = _single_lot_trade(world)
    data = world.get("/portal/api/trade", q=project).json()
    assert data["kind"] == "code"
    assert {stage["table"] for stage in data["stages"]} >= stages


def test_another_province_cannot_find_the_trade(world: World) -> None:
    deal_code, _, _ = _single_lot_trade(world)
    data = world.get("/portal/api/trade", province="44", q=deal_code).json()
    assert data["found"] is False and data["stages"] == []


def test_reading_a_trade_is_audited(world: World) -> None:
    deal_code, _, _ = _single_lot_trade(world)
    world.get("/portal/api/trade", q=deal_code)
    with world.state.engine.connect() as connection:
        entry = connection.execute(
            select(audit_log).where(audit_log.c.action == "data.read.trade").order_by(audit_log.c.id.desc())
        ).first()
    assert entry is not None and entry.object == f"trade:{deal_code}" and entry.account == "test-operator-cn"


# --- feedback explorer ---


def test_every_rejected_record_is_in_the_explorer_once(world: World) -> None:
    seen: list[int] = []
    before = None
    while True:
        params = {"from": "2026-10-01", "to": TODAY.isoformat()} | ({"before": before} if before else {})
        page = world.get("/portal/api/feedback", **params).json()
        seen += [item["id"] for item in page["items"]]
        before = page["next_before"]
        if before is None:
            break
    assert len(seen) == len(set(seen)) == len(rejected_results(world)) == page["total"]


def test_feedback_filters_by_rule_and_table(world: World) -> None:
    results = rejected_results(world, "fj-01")
    code = Counter(f["code"] for r in results for f in r["findings"] if f["severity"] == "error").most_common(
        1
    )[0][0]
    page = world.get("/portal/api/feedback", province="35", rule=code).json()
    expected = [r for r in results if code in {f["code"] for f in r["findings"]}]
    assert page["total"] == len(expected)
    assert all(code in item["rules"] and item["province"] == "35" for item in page["items"])
    table = expected[0]["table"]
    narrowed = world.get("/portal/api/feedback", province="35", rule=code, table=table).json()
    assert narrowed["total"] == sum(1 for r in expected if r["table"] == table)


def test_a_province_operator_sees_only_its_rejections(world: World) -> None:
    page = world.get("/portal/api/feedback", province="44").json()
    assert page["total"] == len(rejected_results(world, "gd-01"))
    assert {item["province"] for item in page["items"]} == {"44"}
    # Asking for another province by parameter is refused, not silently widened.
    refused = world.http.get(
        "/portal/api/feedback",
        params={"province": "35"},
        headers={"X-Test-Role": "operator", "X-Test-Province": "44"},
    )
    assert refused.status_code == 403


def test_the_xlsx_export_opens_with_one_row_per_finding(world: World) -> None:
    response = world.get("/portal/api/feedback.xlsx", province="35")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(BytesIO(response.content), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "接收时间（北京时间）"
    expected = sum(len(r["findings"]) for r in rejected_results(world, "fj-01"))
    assert len(rows) - 1 == expected
    assert {row[1] for row in rows[1:]} == {"35 福建省"}


# --- 运行监测 and 考核 (issue 6's services) ---


def test_operations_page_shows_the_province_availability_from_its_heartbeats(world: World) -> None:
    page = world.get("/portal/ops?province=35&month=2026-10")
    assert page.status_code == 200
    assert (
        "前置机可用率" in page.text and "/api/v1/ops/availability?province=35&amp;period=2026-10" in page.text
    )
    assert world.get("/portal/ops", province="44", month="2026-10").status_code == 200
    refused = world.http.get(
        "/portal/ops", params={"province": "35"}, headers={"X-Test-Role": "operator", "X-Test-Province": "44"}
    )
    assert refused.status_code == 403


def test_assessment_is_for_national_operators(world: World) -> None:
    page = world.get("/portal/assessment?province=35&month=2026-10")
    assert page.status_code == 200 and "数据合格率" in page.text and "通报" in page.text
    assert "省级平台健康探测" in page.text and "精度：一次心跳" in page.text and "缺少发布时间" in page.text
    assert world.get("/portal/assessment", province="44").status_code == 403  # province staff judge no one


# --- 审计 and 系统管理 ---


def test_the_auditor_finds_the_reads_of_business_data_in_the_audit_log(world: World) -> None:
    deal_code, _, _ = _single_lot_trade(world)
    world.get("/portal/api/trade", q=deal_code)
    page = world.get("/portal/audit", role=Role.AUDITOR, action="data.read.*")
    assert page.status_code == 200
    assert f"trade:{deal_code}" in page.text
    verified = world.get("/portal/audit", role=Role.AUDITOR, verify="true")
    assert "审计链完整" in verified.text
    export = world.get("/portal/audit/export", role=Role.AUDITOR, action="data.read.*")
    sheet = load_workbook(BytesIO(export.content), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "序号" and any(f"trade:{deal_code}" in str(row) for row in rows[1:])


def test_the_administrator_sees_accounts_nodes_and_settings_but_no_secret(world: World) -> None:
    home = world.http.get("/portal/admin", headers={"X-Test-Role": "sysadmin"}, follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/portal/admin/accounts"
    assert world.get("/portal/admin/accounts", role=Role.SYSADMIN).status_code == 200
    nodes = world.get("/portal/admin/nodes", role=Role.SYSADMIN)
    settings = world.get("/portal/admin/settings", role=Role.SYSADMIN)
    assert nodes.status_code == 200 and settings.status_code == 200
    for node in ("fj-01", "gd-01"):
        assert node in nodes.text
    assert "hub.portal_refresh_seconds" in settings.text
    with world.state.engine.connect() as connection:
        from ggzy.hub.registry import list_nodes

        keys = [node.key for node in list_nodes(connection)]
    assert not any(key in page.text for key in keys for page in (nodes, settings))
    key_dir = str(world.state.settings.key_dir)
    assert key_dir not in settings.text and "（已隐藏）" in settings.text  # where the keys live: not shown


# --- permissions ---

PORTAL_ROUTES = (
    ("/portal/api/overview", Role.OPERATOR),
    ("/portal/api/provinces/35", Role.OPERATOR),
    ("/portal/api/trade?q=x", Role.OPERATOR),
    ("/portal/api/feedback", Role.OPERATOR),
    ("/portal/api/feedback.xlsx", Role.OPERATOR),
    ("/portal/overview", Role.OPERATOR),
    ("/portal/provinces/35", Role.OPERATOR),
    ("/portal/trade", Role.OPERATOR),
    ("/portal/feedback", Role.OPERATOR),
    ("/portal/ops?province=35&month=2026-10", Role.OPERATOR),
    ("/portal/assessment?province=35&month=2026-10", Role.OPERATOR),
    ("/portal/audit", Role.AUDITOR),
    ("/portal/audit/export", Role.AUDITOR),
    ("/portal/admin/accounts", Role.SYSADMIN),
    ("/portal/admin/nodes", Role.SYSADMIN),
    ("/portal/admin/settings", Role.SYSADMIN),
)


@pytest.mark.parametrize(("path", "allowed"), PORTAL_ROUTES)
def test_each_page_opens_for_its_role_only(world: World, path: str, allowed: Role) -> None:
    assert world.http.get(path, follow_redirects=False).status_code in (401, 303)
    for role in Role:
        status = world.http.get(path, headers={"X-Test-Role": role.value}).status_code
        assert (status == 200) == (role is allowed), (role, status)


def test_every_portal_route_declares_a_permission() -> None:
    from fastapi.routing import APIRoute

    from ggzy.hub.portal.routes import api, pages

    portal = [r for r in [*api.routes, *pages.routes] if isinstance(r, APIRoute)]
    assert len(portal) >= 10
    for route in portal:
        declared = [d.call for d in route.dependant.dependencies if hasattr(d.call, "permission")]
        assert declared, f"{route.path} declares no permission"
