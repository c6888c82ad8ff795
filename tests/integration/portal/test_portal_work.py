"""The portal as a workplace, over HTTP: every form calls the same service as the API, with the same
permission, scope and audit entry, and answers a refusal with a page saying why (never a 500).

The browser tests (``tests/browser/test_workplace_browser.py``) walk the main workflows in Chromium;
these cover every form, both backends, quickly.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from portal_world import header_authenticator
from sqlalchemy import select

from ggzy.hub.app import create_app
from ggzy.hub.models import audit_log, ops_tables
from ggzy.hub.registry import add_node
from ggzy.settings import HubSettings
from ggzy.store.database import writing

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 11, 20, 10, 0, tzinfo=SHANGHAI)
TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


class Site:
    """The hub app with a test sign-in by header; forms carry the CSRF token a page gave."""

    def __init__(self, http: TestClient, engine: Any) -> None:
        self.http, self.engine = http, engine

    def headers(self, role: str, province: str | None) -> dict[str, str]:
        headers = {"Accept": "text/html", "X-Test-Role": role}
        if province:
            headers["X-Test-Province"] = province
        return headers

    def get(self, path: str, role: str = "operator", province: str | None = None) -> Any:
        return self.http.get(path, headers=self.headers(role, province))

    def post(
        self,
        path: str,
        data: dict[str, Any],
        role: str = "operator",
        province: str | None = None,
        **extra: Any,
    ) -> Any:
        page = self.get("/portal/work/outages" if role == "operator" else "/auth/sign-in", role, province)
        (token,) = set(TOKEN.findall(page.text))
        return self.http.post(
            path,
            data={**data, "csrf_token": token},
            headers=self.headers(role, province),
            follow_redirects=False,
            **extra,
        )

    def audited(self, action: str) -> list[Any]:
        with self.engine.connect() as connection:
            return connection.execute(select(audit_log).where(audit_log.c.action == action)).all()


@pytest.fixture
def site(hub_db_url: str, tmp_path: Path) -> Iterator[Site]:
    app = create_app(HubSettings(db_url=hub_db_url, key_dir=tmp_path / "keys", portal_refresh_seconds=3600))
    app.state.authenticate = header_authenticator
    app.state.portal_clock = lambda: NOW
    with writing(app.state.hub.engine) as connection:
        add_node(connection, "fj-01", "35")
    with TestClient(app, client=("127.0.0.1", 50000), raise_server_exceptions=False) as http:
        yield Site(http, app.state.hub.engine)
    app.state.hub.engine.dispose()


def local(moment: dt.datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")


# --- 计划停用 ---


def test_an_outage_notice_is_filed_changed_and_withdrawn_by_its_province(site: Site) -> None:
    start = dt.datetime.now(SHANGHAI) + dt.timedelta(days=3)
    notice = {"kind": "cutover", "starts_at": local(start), "ends_at": local(start + dt.timedelta(hours=4)),
              "impact": "线路割接，第一通道暂停"}  # fmt: skip
    filed = site.post("/portal/work/outages", notice, province="35")
    assert filed.status_code == 303 and "done=outage" in filed.headers["location"]
    page = site.get(filed.headers["location"], province="35")
    assert "计划停用通知已提交" in page.text and "线路割接，第一通道暂停" in page.text
    assert (
        '<span class="code" title="cutover">线路割接</span>' in page.text
    )  # the label, the code in its tooltip
    (row,) = site.audited("ops.outage.notify")
    assert row.account == "test-operator-35"

    with site.engine.connect() as connection:
        (notice_id,) = connection.execute(select(ops_tables.outage_notices.c.id)).scalars()
    later = {**notice, "ends_at": local(start + dt.timedelta(hours=6))}
    changed = site.post(f"/portal/work/outages/{notice_id}/change", later, province="35")
    assert changed.status_code == 303
    with site.engine.connect() as connection:
        states = dict(
            connection.execute(
                select(ops_tables.outage_notices.c.id, ops_tables.outage_notices.c.status)
            ).all()
        )
    assert sorted(states.values()) == ["active", "withdrawn"] and states[notice_id] == "withdrawn"
    assert len(site.audited("ops.outage.withdraw")) == 1 and len(site.audited("ops.outage.notify")) == 2


def test_an_outage_form_with_mistakes_names_each_field_and_keeps_what_was_typed(site: Site) -> None:
    answer = site.post(
        "/portal/work/outages",
        {"kind": "", "starts_at": "2026-11-25T10:00", "ends_at": "2026-11-25T09:00", "impact": "检修"},
        province="35",
    )
    assert answer.status_code == 400
    assert "请选择停用类型" in answer.text and "结束时间应晚于开始时间" in answer.text
    assert 'value="2026-11-25T10:00"' in answer.text and site.audited("ops.outage.notify") == []


def test_a_province_cannot_file_for_another_province(site: Site) -> None:
    start = dt.datetime.now(SHANGHAI) + dt.timedelta(days=3)
    notice = {
        "kind": "power",
        "starts_at": local(start),
        "ends_at": local(start + dt.timedelta(hours=1)),
        "impact": "x",
    }
    answer = site.post("/portal/work/outages?province=44", notice, province="35")
    assert answer.status_code == 403 and "E-AUTH-SCOPE" in answer.text
    assert site.audited("ops.outage.notify") == []


# --- 故障报告 ---


def test_a_fault_report_goes_from_reported_to_closed_and_closing_needs_the_cause(site: Site) -> None:
    report = {
        "title": "机房停电",
        "classification": "power",
        "started_at": "2026-11-19T08:00",
        "impact": "数据上传中断",
    }
    filed = site.post("/portal/work/incidents", report, province="35")
    assert filed.status_code == 303
    incident_url = filed.headers["location"].split("?")[0]
    incident_id = int(incident_url.rsplit("/", 1)[1])
    assert "故障报告已提交" in site.get(filed.headers["location"], province="35").text

    for status in ("handling", "recovered"):
        moved = site.post(f"{incident_url}/status", {"status": status}, province="35")
        assert moved.status_code == 303, moved.text
    refused = site.post(f"{incident_url}/status", {"status": "closed"}, province="35")
    assert refused.status_code == 409 and "E-OPS-CLOSE-REPORT" in refused.text  # no cause yet

    completed = {
        **report,
        "ended_at": "2026-11-19T09:30",
        "cause": "市电中断",
        "corrective_actions": "加装UPS",
    }
    assert site.post(f"{incident_url}/report", completed, province="35").status_code == 303
    closed = site.post(f"{incident_url}/status", {"status": "closed"}, province="35")
    assert closed.status_code == 303
    page = site.get(incident_url, province="35")
    assert "已关闭" in page.text and "加装UPS" in page.text
    backwards = site.post(f"{incident_url}/status", {"status": "handling"}, province="35")
    assert backwards.status_code == 409 and "E-OPS-WORKFLOW" in backwards.text
    assert [r.detail["status"] for r in site.audited("ops.incident.status")] == [
        "handling",
        "recovered",
        "closed",
    ]
    assert (
        site.get(f"/portal/work/incidents/{incident_id}", province="44").status_code == 404
    )  # not Guangdong's


# --- 人员备案, 信息报送, 预案与演练 ---


def test_the_roster_is_filed_changed_and_its_gaps_shrink(site: Site) -> None:
    before = site.get("/portal/work/roster", province="35").text
    assert "运行负责人岗位未备案主岗人员" in before
    person = {"post": "lead_ops", "rank": "primary", "name": "张三", "phone": "0591-87654321", "mobile": "13800000000",
              "email": "zs@fj.gov.cn"}  # fmt: skip
    assert site.post("/portal/work/roster", person, province="35").status_code == 303
    after = site.get("/portal/work/roster?done=roster", province="35").text
    assert "运行负责人岗位未备案主岗人员" not in after and "张三" in after and "人员备案已保存" in after
    renamed = site.post("/portal/work/roster", {**person, "name": "李四"}, province="35")
    assert renamed.status_code == 303
    assert "张三 → 李四" in site.get("/portal/work/roster", province="35").text
    bad = site.post("/portal/work/roster", {**person, "email": "not-an-email"}, province="35")
    assert bad.status_code == 400 and "E-OPS-FIELD-EMAIL" in bad.text


def test_the_register_keeps_versions(site: Site) -> None:
    entry = {"kind": "trading", "code": "FJ-TRADE", "trading.name": "福建省电子交易系统", "trading.operator": "某公司",
             "trading.uscc": "91350000MA0000000F", "trading.trade_areas": "工程建设、政府采购"}  # fmt: skip
    assert site.post("/portal/work/register", entry, province="35").status_code == 303
    assert site.post("/portal/work/register", entry, province="35").status_code == 303
    page = site.get("/portal/work/register", province="35").text
    assert "福建省电子交易系统" in page and "v2" in page and "工程建设、政府采购" in page
    missing = site.post("/portal/work/register", {"kind": "service", "code": "S1"}, province="35")
    assert missing.status_code == 400 and "E-OPS-REGISTER-FIELDS" in missing.text


def test_a_plan_is_filed_activated_and_closed_and_a_drill_recorded(site: Site) -> None:
    plan = {
        "title": "数据交换中断应急预案",
        "activation_procedure": "值班人员报告后启动",
        "closing_procedure": "恢复后关闭",
    }
    assert site.post("/portal/work/plans", plan, province="35").status_code == 303
    with site.engine.connect() as connection:
        (plan_id,) = connection.execute(select(ops_tables.plans.c.id)).scalars()
    assert (
        site.post(f"/portal/work/plans/{plan_id}/activate", {"note": "演练"}, province="35").status_code
        == 303
    )
    with site.engine.connect() as connection:
        (activation,) = connection.execute(select(ops_tables.plan_activations.c.id)).scalars()
    assert (
        site.post(f"/portal/work/activations/{activation}/close", {"note": "完毕"}, province="35").status_code
        == 303
    )
    again = site.post(f"/portal/work/activations/{activation}/close", {"note": "完毕"}, province="35")
    assert again.status_code == 409 and "E-OPS-WORKFLOW" in again.text
    drill = {"held_on": "2026-11-18", "scenario": "国家平台链路中断", "participants": "张三、李四",
             "recovery_minutes": "12", "plan_id": str(plan_id)}  # fmt: skip
    assert site.post("/portal/work/drills", drill, province="35").status_code == 303
    page = site.get("/portal/work/preparedness", province="35").text
    assert "国家平台链路中断" in page and "张三、李四" in page and "12.0 分钟" in page
    future = site.post("/portal/work/drills", {**drill, "held_on": "2027-01-01"}, province="35")
    assert future.status_code == 400 and "演练日期不能晚于今天" in future.text


# --- 整改通知 ---


def test_an_order_is_issued_answered_with_evidence_and_closed(site: Site) -> None:
    issued = site.post("/portal/work/orders?province=35", {"condition": "1", "basis": "未备案运行负责人"})
    assert issued.status_code == 303
    with site.engine.connect() as connection:
        (order_id,) = connection.execute(select(ops_tables.rectifications.c.id)).scalars()
    page = site.get("/portal/work/orders", province="35")
    (token,) = set(TOKEN.findall(page.text))
    answered = site.http.post(
        f"/portal/work/orders/{order_id}/answer",
        data={"text": "已备案运行负责人张三", "csrf_token": token},
        files={"evidence": ("备案表.pdf", b"%PDF-1.4 roster", "application/pdf")},
        headers=site.headers("operator", "35"),
        follow_redirects=False,
    )
    assert answered.status_code == 303, answered.text
    page = site.get("/portal/work/orders", province="35")
    assert "已备案运行负责人张三" in page.text and "备案表.pdf" in page.text
    (link,) = re.findall(r'href="(/portal/work/evidence/\d+)"', page.text)
    assert site.get(link, province="35").content == b"%PDF-1.4 roster"
    assert site.get(link, province="44").status_code == 404
    refused = site.post(f"/portal/work/orders/{order_id}/close", {"note": "核实"}, province="35")
    assert refused.status_code == 403  # a province cannot close its own order (ops:assess)
    closed = site.post(f"/portal/work/orders/{order_id}/close?province=35", {"note": "已核实"})
    assert closed.status_code == 303
    assert (
        len(site.audited("ops.rectification.answer")) == 1
        and len(site.audited("ops.rectification.close")) == 1
    )


def test_an_auditor_and_an_administrator_have_no_workplace(site: Site) -> None:
    for role in ("auditor", "sysadmin"):
        assert site.get("/portal/work/outages", role=role).status_code == 403
        assert "返回门户首页" in site.get("/portal/work/outages", role=role).text  # a way back
