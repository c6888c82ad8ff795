"""The node's portal pages on both backends: what each page shows, who may open it, that reads are audited.

The world (``nodeportal_world.py``) is built through the node's own code paths; the figures expected
here are counted from how it was built.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from nodeportal_world import DAY, HUB_LACKS, NOW, RULE_A, RULE_B, NodeWorld, node_world_fixture  # noqa: F401
from openpyxl import load_workbook
from sqlalchemy import select

from ggzy.node.corrections import EXPORT_HEADERS, RejectFilter, export_rejects_xlsx
from ggzy.node.models import audit_log

ROWS = re.compile(r"<tr data-id=")


def chart_option(html: str, name: str) -> dict[str, Any]:
    found = re.search(rf'<script type="application/json" id="opt-{name}">(.*?)</script>', html, re.S)
    assert found, name
    option: dict[str, Any] = json.loads(found.group(1))
    return option


def row_html(html: str, marker: str) -> str:
    start = html.index(marker)
    return html[start : html.index("</tr>", start)]


def cells(row: str) -> dict[str, int]:
    return {state: int(n) for state, n in re.findall(r'data-state="(\w+)">(\d+)<', row)}


# --- 总览 ---


def test_overview_shows_queues_latency_late_records_breakers_and_disk(node_world: NodeWorld) -> None:
    page = node_world.get("/portal/overview")
    assert page.status_code == 200, page.text
    html = page.text
    # channel 1: four accepted, one waiting; channel 2: 58 rejected, one held, four accepted, one re-sent
    assert cells(row_html(html, 'data-channel="1"')) == {
        "held": 0, "queued": 1, "blocked": 0, "sent": 0, "accepted": 4, "rejected": 0, "superseded": 0,
    }  # fmt: skip
    assert cells(row_html(html, 'data-channel="2"')) == {
        "held": 1, "queued": 1, "blocked": 0, "sent": 0, "accepted": 4, "rejected": 58, "superseded": 0,
    }  # fmt: skip
    assert "闭合" in row_html(html, 'data-channel="1"') and "断开" in row_html(html, 'data-channel="2"')
    late = html[html.index('id="late"') : html.index('id="latency"')]
    assert "1 条" in late and "最久 9.0 分钟" in late
    # accepted 10, 20, 30, 40 s after publication, sent at the same moment: nearest-rank p50 20 s, p99 40 s
    latency = html[html.index('id="latency"') : html.index('id="rate"')]
    assert "发布→接收 p50 20 秒 · p99 40 秒" in latency and "发布→发送 p50 20 秒 · p99 40 秒" in latency
    disk = html[html.index('id="disk"') : html.index("</div>\n</div>", html.index('id="disk"'))]
    assert 'data-level="warn"' in disk and "85.0%" in disk and "告警 80% · 清理 90% · 拒收 95%" in disk
    contact = html[html.index('id="contact"') : html.index('id="disk"')]
    assert re.search(r"(59|60) 秒前", contact) and "2026-11-20 11:59:00" in contact  # the last beat sent


def test_overview_charts_count_the_beats_sent_and_failed_per_hour(node_world: NodeWorld) -> None:
    html = node_world.get("/portal/overview").text
    option = chart_option(html, "history")
    hours = option["xAxis"]["data"]
    assert len(hours) == 24
    sent, failed, disk = (series["data"] for series in option["series"])
    shown = {hour: (sent[i], failed[i]) for i, hour in enumerate(hours) if sent[i] or failed[i]}
    assert shown == node_world.expected.beats
    assert {disk[i] for i, hour in enumerate(hours) if hour in shown} == {85.0}
    assert all(disk[i] is None for i, hour in enumerate(hours) if hour not in shown)
    assert [m["yAxis"] for m in option["series"][2]["markLine"]["data"]] == [80, 90, 95]
    waiting = chart_option(html, "waiting")
    assert [s["name"] for s in waiting["series"]] == ["第一通道（实时）", "第二通道（历史/测试）"]


# --- 退回记录 ---


def test_rejects_are_listed_newest_first_fifty_a_page(node_world: NodeWorld) -> None:
    first = node_world.get("/portal/rejects").text
    assert "共 59 条，第 1/2 页" in first
    assert len(ROWS.findall(first)) == 50
    second = node_world.get("/portal/rejects", page=2).text
    assert len(ROWS.findall(second)) == 9
    ids = [int(i) for i in re.findall(r'<tr data-id="(\d+)"', first + second)]
    assert len(set(ids)) == 59
    times = re.findall(r'<tr data-id="\d+"><td>([\d :-]+)</td>', first + second)
    assert times == sorted(times, reverse=True) and times[0] == "2026-11-20 11:10:00"
    states = re.findall(r'<span class="tag \w+">(国家平台拒收|预校验暂存)</span>', first)
    assert states[:4] == ["国家平台拒收"] * 3 + ["预校验暂存"]  # decided 11:10, held since 10:00


def test_rejects_filter_by_rule_table_and_date(node_world: NodeWorld) -> None:
    by_rule = node_world.get("/portal/rejects", rule=RULE_B).text
    assert len(ROWS.findall(by_rule)) == node_world.expected.rejected_b_rows + node_world.expected.held
    by_table = node_world.get("/portal/rejects", table="PROJECT").text
    assert len(ROWS.findall(by_table)) == 0 and "没有符合条件的拒收或暂存记录" in by_table
    yesterday = node_world.get("/portal/rejects", **{"from": "2026-11-19", "to": "2026-11-19"}).text
    assert "共 55 条" in yesterday
    # the page links keep the filter
    assert 'href="?rule=E-CODE-LIST' not in by_rule  # one page only
    assert "from=2026-11-19&amp;to=2026-11-19&page=2" in yesterday


def test_the_local_repair_rate_counts_rejected_keys_with_a_later_accepted_version(
    node_world: NodeWorld,
) -> None:
    html = node_world.get("/portal/rejects").text
    repair = html[html.index('id="repair"') : html.index('role="status"')]
    expected = node_world.expected
    assert f"已修复 {expected.repaired} / 被拒收 {expected.rejected_keys}" in repair
    assert f"{expected.repaired / expected.rejected_keys * 100:.1f}%" in repair and "missed" in repair


def test_the_xlsx_export_is_the_workbook_the_cli_writes(node_world: NodeWorld, tmp_path: Path) -> None:
    response = node_world.get("/portal/rejects.xlsx")
    assert response.status_code == 200
    assert response.headers["content-disposition"].endswith('.xlsx"')
    rows = list(load_workbook(BytesIO(response.content), read_only=True).active.iter_rows(values_only=True))
    assert rows[0] == EXPORT_HEADERS and len(rows) - 1 == node_world.expected.findings
    export_rejects_xlsx(node_world.ctx.engine, RejectFilter(), tmp_path / "cli.xlsx")
    cli = list(load_workbook(tmp_path / "cli.xlsx", read_only=True).active.iter_rows(values_only=True))
    assert rows == cli
    only_b = node_world.get("/portal/rejects.xlsx", rule=RULE_B)
    sheet = load_workbook(BytesIO(only_b.content), read_only=True).active
    codes = [row[6] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert codes == [RULE_B] * (node_world.expected.rejected_b_rows + node_world.expected.held)
    assert RULE_A not in codes


# --- 对账 ---


def test_the_reconciliation_page_shows_each_tables_latest_result(node_world: NodeWorld) -> None:
    html = node_world.get("/portal/reconcile").text
    row = row_html(html, f'data-day="{DAY}" data-table="PROJECT"')
    numbers = [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', row)]
    # local 3, hub 2, hub lacks 1, unknown 0, versions 0, content 0, in flight 0, re-sent 1
    assert numbers == [3, 2, 1, 0, 0, 0, 0, 1]
    assert "不一致" in row and "<td>7</td>" in row
    assert html.count("<tr data-day=") == 1
    assert "对账不一致：PROJECT" in html  # the open reconcile alert
    assert HUB_LACKS not in html  # keys are in the report to the hub, not on the page


# --- who sees what ---

PAGES = (
    ("/portal/overview", "operator"),
    ("/portal/rejects", "operator"),
    ("/portal/rejects.xlsx", "operator"),
    ("/portal/reconcile", "operator"),
    ("/portal/audit", "auditor"),
    ("/portal/audit/export", "auditor"),
    ("/portal/admin", "sysadmin"),
)


@pytest.mark.parametrize(("path", "allowed"), PAGES)
def test_each_page_opens_for_its_role_only(node_world: NodeWorld, path: str, allowed: str) -> None:
    anonymous = node_world.client()
    assert anonymous.get(path).status_code == 401
    browser = anonymous.get(path, headers={"Accept": "text/html"}, follow_redirects=False)
    assert browser.status_code == 303 and browser.headers["location"].startswith("/auth/sign-in?next=")
    for who in ("operator", "auditor", "sysadmin"):
        response = node_world.get(path, who)
        assert (response.status_code == 200) == (who == allowed), (who, response.status_code)
        if who != allowed:
            assert response.status_code == 403
            assert "A3501002611010001" not in response.text  # no business data in a refusal


def test_the_navigation_and_the_landing_page_follow_the_role(node_world: NodeWorld) -> None:
    expected = {
        "operator": (["总览", "退回记录", "对账"], "/portal/overview"),
        "auditor": (["审计"], "/portal/audit"),
        "sysadmin": (["系统管理"], "/portal/admin"),
    }
    for who, (labels, landing) in expected.items():
        home = node_world.client(who).get("/portal", follow_redirects=False)
        assert home.status_code == 303 and home.headers["location"] == landing
        html = node_world.get(landing, who).text
        nav = html[html.index('class="portal-nav"') : html.index("</span>", html.index('class="portal-nav"'))]
        assert re.findall(r">([^<>]+)</a>", nav) == labels, who


def test_every_page_read_is_audited_and_the_auditor_finds_it(node_world: NodeWorld) -> None:
    table = node_world.ctx.audit.table
    with node_world.ctx.engine.connect() as connection:
        before = connection.execute(select(table.c.id).order_by(table.c.id.desc()).limit(1)).scalar()
    reads = [
        ("/portal/overview", "operator", "status.read"),
        ("/portal/rejects", "operator", "data.read.rejects"),
        ("/portal/rejects.xlsx", "operator", "data.export.rejects"),
        ("/portal/reconcile", "operator", "data.read.reconcile"),
        ("/portal/admin/accounts", "sysadmin", "accounts.list"),
        ("/portal/admin/settings", "sysadmin", "settings.read"),
        ("/portal/audit", "auditor", "audit.search"),
    ]
    for path, who, _ in reads:
        assert node_world.get(path, who).status_code == 200
    with node_world.ctx.engine.connect() as connection:
        written = connection.execute(
            select(audit_log.c.action, audit_log.c.account, audit_log.c.outcome)
            .where(audit_log.c.id > before)
            .order_by(audit_log.c.id)
        ).all()
    accounts = {"operator": "t-op", "auditor": "t-audit", "sysadmin": "t-admin"}
    assert [tuple(row) for row in written] == [(a, accounts[w], "success") for _, w, a in reads]
    found = node_world.get("/portal/audit", "auditor", action="data.read.*").text
    assert "data.read.rejects" in found and "data.read.reconcile" in found
    assert "审计链完整" in node_world.get("/portal/audit", "auditor", verify="true").text
    export = node_world.get("/portal/audit/export", "auditor", action="data.export.*", format="csv")
    assert export.status_code == 200 and "data.export.rejects" in export.content.decode("utf-8-sig")


def test_the_administrator_sees_accounts_tokens_and_settings_but_no_secret(node_world: NodeWorld) -> None:
    pages = {
        path: node_world.get(path, "sysadmin")
        for path in ("/portal/admin/accounts", "/portal/admin/tokens", "/portal/admin/settings")
    }
    assert all(page.status_code == 200 for page in pages.values())
    html = "".join(page.text for page in pages.values())
    for shown in (
        "t-op",
        "t-audit",
        "安全审计员",
        "fj-trading",
        "有效",
        "node.disk_warn",
        "node.history_days",
    ):
        assert shown in html, shown
    assert node_world.intake_token not in html
    key_file = str(node_world.ctx.settings.key_file)
    assert (
        key_file not in html and "（已隐藏）" in pages["/portal/admin/settings"].text
    )  # where the key lives
    assert "A3501002611010001" not in html  # no business data


def test_heartbeat_samples_older_than_history_days_are_pruned(db_url: str, tmp_path: Path) -> None:
    from ggzy.node.context import build_context
    from ggzy.node.heartbeat import record_sample
    from ggzy.node.models import node_samples
    from ggzy.settings import NodeSettings

    settings = NodeSettings(db_url=db_url, key_file=tmp_path / "k", disk_path=tmp_path, history_days=2)
    ctx = build_context(settings, key=b"k")
    try:
        payload = {"queues": {"1": {"queued": 3, "sent": 1, "held": 5}, "2": {}}, "disk": {"used_ratio": 0.5}}
        for days, ok in ((3, True), (1, False), (0, True)):
            record_sample(ctx, payload, ok, NOW - dt.timedelta(days=days))
        with ctx.engine.connect() as connection:
            kept = connection.execute(
                select(node_samples.c.beat_ok, node_samples.c.waiting_1, node_samples.c.waiting_2).order_by(
                    node_samples.c.at
                )
            ).all()
        assert [tuple(row) for row in kept] == [(False, 4, 0), (True, 4, 0)]  # held is not waiting to be sent
    finally:
        ctx.engine.dispose()
