"""The workplace end to end in Chromium: what operators and administrators do every week, done the
way they do it — filling in the forms, clicking the buttons — and seen at once on the page.

A fresh hub (one node registered for Guangdong's operator) so nothing else's data is in the way.
Screenshots of each step land in ``test-artifacts/browser/work-*.png``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_world import LiveSite, chromium, live_empty_hub, opener, require_browser, screenshot
from sqlalchemy import select

from ggzy.hub.models import audit_log
from ggzy.security.signing import sign_request

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    require_browser()
    yield from live_empty_hub(tmp_path_factory.mktemp("workplace"))


@pytest.fixture(scope="module")
def browser(site: LiveSite) -> Iterator[Any]:
    yield from chromium()


@pytest.fixture
def page_as(browser: Any, site: LiveSite) -> Iterator[Any]:
    yield from opener(browser, site, accept_dialogs=True)


def actions(site: LiveSite, action: str) -> list[Any]:
    with site.app.state.hub.engine.connect() as connection:
        return connection.execute(select(audit_log).where(audit_log.c.action == action)).all()


def local(moment: dt.datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


# --- 系统管理 ---


def test_an_administrator_creates_an_account_and_sees_its_password_once(site: LiveSite, page_as: Any) -> None:
    page = page_as("admin", "/portal/admin/accounts")
    form = page.locator("#account-form")
    form.locator("[name=account]").fill("zhaoliu")
    form.locator("[name=name]").fill("赵六")
    form.locator("[name=role]").select_option("operator")
    form.locator("[name=staff_number]").fill("2001")
    form.locator("[name=province]").fill("44")
    form.locator("button[type=submit]").click()
    password = page.locator("#one-time-password").inner_text().strip()
    assert len(password) >= 12 and "账号已创建" in page.locator("#flash").inner_text()
    row = page.locator("#accounts tr[data-account=zhaoliu]")
    assert "赵六" in row.inner_text() and "系统操作员" in row.inner_text()
    screenshot(page, "work-account-created")
    page.goto(site.base + "/portal/admin/accounts")
    assert password not in page.content()  # shown once, on the answer to the form only
    (entry,) = [e for e in actions(site, "account.create") if e.object == "account:zhaoliu"]
    assert entry.account == "admin" and entry.source == "127.0.0.1"
    service = site.app.state.hub.accounts  # the password is the account's
    from ggzy.security.accounts import Caller

    assert service.sign_in("zhaoliu", password, Caller(source="127.0.0.1")).stage == "password"


def test_an_administrator_registers_a_node_and_its_key_is_shown_once_and_works(
    site: LiveSite, page_as: Any
) -> None:
    page = page_as("admin", "/portal/admin/nodes")
    form = page.locator("#node-form")
    form.locator("[name=node_id]").fill("gd-01")
    form.locator("[name=province]").select_option("44")
    form.locator("[name=name]").fill("广东省交换前置")
    form.locator("[name=networks]").fill("127.0.0.0/8\n10.44.0.0/16")
    form.locator("button[type=submit]").click()
    key = page.locator("#node-key").inner_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    screenshot(page, "work-node-registered")
    headers = sign_request("gd-01", bytes.fromhex(key), "GET", "/api/v1/spec", b"").as_dict()
    assert httpx.get(site.base + "/api/v1/spec", headers=headers).status_code == 200
    page.goto(site.base + "/portal/admin/nodes")
    assert key not in page.content()
    row = page.locator("#nodes tr[data-node=gd-01]")
    assert "从未连接" in row.inner_text() and "10.44.0.0/16" in row.inner_text()

    row.locator("summary").click()
    row.locator("button[data-action=rotate-key]").click()
    new_key = page.locator("#node-key").inner_text().strip()
    assert new_key != key
    assert httpx.get(site.base + "/api/v1/spec", headers=headers).status_code == 401  # the old key fails
    assert [e.action for e in actions(site, "node.add") + actions(site, "node.rotate-key")] == [
        "node.add",
        "node.rotate-key",
    ]


# --- 运行管理: a province's operator ---


def test_a_province_files_an_outage_notice(site: LiveSite, page_as: Any) -> None:
    page = page_as("op44", "/portal/work/outages")
    start = dt.datetime.now(SHANGHAI).replace(second=0, microsecond=0) + dt.timedelta(days=3)
    form = page.locator("#outage-form")
    form.locator("[name=kind]").select_option("cutover")
    form.locator("[name=starts_at]").fill(local(start))
    form.locator("[name=ends_at]").fill(local(start + dt.timedelta(hours=4)))
    form.locator("[name=impact]").fill("省级线路割接，第一通道暂停四小时，结束后补传")
    form.locator("button[type=submit]").click()
    assert "计划停用通知已提交" in page.locator("#flash").inner_text()
    row = page.locator("#outages tbody tr").first
    assert "线路割接" in row.inner_text() and start.strftime("%Y-%m-%d %H:%M") in row.inner_text()
    assert "72.0 小时" in row.inner_text() or "71.9 小时" in row.inner_text()
    screenshot(page, "work-outage")
    assert len(actions(site, "ops.outage.notify")) == 1


def test_a_fault_report_is_carried_through_to_closing(site: LiveSite, page_as: Any) -> None:
    page = page_as("op44", "/portal/work/incidents")
    form = page.locator("#incident-form")
    form.locator("[name=title]").fill("省级平台机房停电")
    form.locator("[name=classification]").select_option("power")
    form.locator("[name=started_at]").fill(local(dt.datetime.now(SHANGHAI) - dt.timedelta(hours=3)))
    form.locator("[name=impact]").fill("数据上传中断约两小时")
    form.locator("button[type=submit]").click()
    assert "故障报告已提交" in page.locator("#flash").inner_text()
    for status in ("handling", "recovered"):
        page.locator(f"#status-form button[value={status}]").click()
        assert page.locator(f"#progress li[data-status={status}].met").count() == 1
    page.locator("#status-form button[value=closed]").click()
    assert "E-OPS-CLOSE-REPORT" in page.locator("#form-error").inner_text()  # cause and measures first
    report = page.locator("#report-form")
    report.locator("[name=cause]").fill("市电中断，UPS 容量不足")
    report.locator("[name=corrective_actions]").fill("更换 UPS 电池，增加双路供电")
    report.locator("button[type=submit]").click()
    page.locator("#status-form button[value=closed]").click()
    assert page.locator("#progress li[data-status=closed].met").count() == 1
    assert page.locator("#status-form").count() == 0  # closed: nothing further
    screenshot(page, "work-incident-closed")
    assert [e.detail["status"] for e in actions(site, "ops.incident.status")] == [
        "handling",
        "recovered",
        "closed",
    ]


def test_a_province_changes_its_roster(site: LiveSite, page_as: Any) -> None:
    page = page_as("op44", "/portal/work/roster")
    assert "运行负责人岗位未备案主岗人员" in page.locator("#roster-gaps").inner_text()
    form = page.locator("#roster-form")
    form.locator("[name=post]").select_option("lead_ops")
    form.locator("[name=rank]").select_option("primary")
    form.locator("[name=name]").fill("王五")
    for name, value in (("phone", "020-87654321"), ("mobile", "13900000000"), ("email", "ww@gd.gov.cn")):
        form.locator(f"[name={name}]").fill(value)
    form.locator("button[type=submit]").click()
    assert "运行负责人岗位未备案主岗人员" not in page.locator("#roster-gaps").inner_text()
    row = page.locator("#roster tr[data-post=lead_ops][data-rank=primary]")
    row.locator("summary").click()
    row.locator("[name=name]").fill("钱七")
    row.locator("form.work button[type=submit]").click()
    assert "钱七" in page.locator("#roster tr[data-post=lead_ops][data-rank=primary]").inner_text()
    assert "王五 → 钱七" in page.locator("#roster-history").inner_text()
    screenshot(page, "work-roster")


def test_an_order_is_issued_answered_with_evidence_and_closed(
    site: LiveSite, page_as: Any, tmp_path: Path
) -> None:
    national = page_as("op", "/portal/work/orders?province=44")
    form = national.locator("#order-form")
    form.locator("[name=condition]").select_option("6")
    form.locator("[name=basis]").fill("未备案应急预案，未开展年度演练")
    form.locator("button[type=submit]").click()
    assert "整改通知已下达" in national.locator("#flash").inner_text()

    province = page_as("op44", "/portal/work/orders")
    order = province.locator("section.order").first
    evidence = tmp_path / "应急预案备案回执.pdf"
    evidence.write_bytes(b"%PDF-1.4\n% plan filed\n")
    order.locator("[name=text]").fill("已备案应急预案，并于本月完成链路中断演练")
    order.locator("[name=evidence]").set_input_files(str(evidence))
    order.locator("form[enctype] button[type=submit]").click()
    answered = province.locator("section.order").first
    assert "已备案应急预案" in answered.inner_text() and "应急预案备案回执.pdf" in answered.inner_text()
    with province.expect_download() as download:
        answered.get_by_text("应急预案备案回执.pdf").click()
    saved = tmp_path / "downloaded.pdf"
    download.value.save_as(saved)
    assert saved.read_bytes() == evidence.read_bytes()
    screenshot(province, "work-order-answered")
    assert "确认整改完成并关闭" not in province.content()  # closing is the national side's

    national.goto(site.base + "/portal/work/orders?province=44")
    closing = national.locator("section.order").first
    closing.locator("form:has(button.danger) [name=note]").fill("已核实预案与演练记录")
    closing.locator("button.danger").click()
    assert national.locator("section.order[data-status=closed]").count() == 1
    assert len(actions(site, "ops.rectification.answer")) == 1
