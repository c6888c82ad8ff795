"""The operations API: real permission checks, province scope, audit, exports, and the signed node routes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from ggzy.hub.app import HubState, create_app
from ggzy.hub.models import audit_log
from ggzy.hub.registry import add_node
from ggzy.protocol import HubClient
from ggzy.security.permissions import Principal, Role
from ggzy.settings import HubSettings
from ggzy.store.database import writing

NATIONAL = Principal("national", Role.OPERATOR)
FUJIAN = Principal("fj-op", Role.OPERATOR, province="35")
AUDITOR = Principal("auditor", Role.AUDITOR)


@dataclass
class Api:
    http: TestClient
    state: HubState
    who: list[Principal | None]
    node_client: HubClient

    def act_as(self, principal: Principal | None) -> None:
        self.who[0] = principal


@pytest.fixture
def api(hub_db_url: str, tmp_path: Path) -> Iterator[Api]:
    app = create_app(HubSettings(db_url=hub_db_url, key_dir=tmp_path / "keys"))
    who: list[Principal | None] = [NATIONAL]
    app.state.authenticate = lambda request: who[0]
    state: HubState = app.state.hub
    with TestClient(app) as http:
        with writing(state.engine) as connection:
            node = add_node(connection, "fj-01", "35")
        client = HubClient(
            "http://testserver", node.node_id, bytes.fromhex(node.key), transport=http._transport
        )
        yield Api(http, state, who, client)
        client.close()
    state.engine.dispose()


FAULT = {
    "province": "35",
    "title": "机房停电",
    "classification": "power",
    "started_at": "2026-11-05T10:00:00+08:00",
    "ended_at": "2026-11-05T11:00:00+08:00",
    "cause": "市电中断",
    "corrective_actions": "加装UPS",
}


def test_without_sign_in_every_route_refuses(api: Api) -> None:
    api.act_as(None)
    answer = api.http.get("/api/v1/ops/incidents")
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "E-AUTH-REQUIRED"


def test_the_auditor_role_holds_no_operations_permission(api: Api) -> None:
    api.act_as(AUDITOR)
    answer = api.http.get("/api/v1/ops/incidents")
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "E-AUTH-FORBIDDEN"


def test_a_province_acts_for_itself_only(api: Api) -> None:
    api.act_as(FUJIAN)
    filed = api.http.post("/api/v1/ops/incidents", json=FAULT)
    assert filed.status_code == 201 and filed.json()["province"] == "35"
    other = api.http.post("/api/v1/ops/incidents", json={**FAULT, "province": "11"})
    assert other.status_code == 403 and other.json()["error"]["code"] == "E-OPS-SCOPE"
    assert api.http.get("/api/v1/ops/incidents", params={"province": "11"}).status_code == 403
    api.act_as(NATIONAL)
    api.http.post("/api/v1/ops/incidents", json={**FAULT, "province": "11"})
    api.act_as(FUJIAN)
    assert {i["province"] for i in api.http.get("/api/v1/ops/incidents").json()["data"]} == {"35"}
    # a province's staff cannot judge provinces: no inspections, no orders
    planned = api.http.post(
        "/api/v1/ops/inspections", json={"province": "35", "kind": "spot", "planned_on": "2026-12-01"}
    )
    assert planned.status_code == 403
    with api.state.engine.connect() as connection:
        accounts = (
            connection.execute(select(audit_log.c.account).where(audit_log.c.action == "ops.fault.report"))
            .scalars()
            .all()
        )
    assert accounts == ["fj-op", "national"]


def test_the_workflow_and_roster_over_http(api: Api) -> None:
    api.act_as(FUJIAN)
    incident = api.http.post("/api/v1/ops/incidents", json=FAULT).json()
    handling = api.http.post(f"/api/v1/ops/incidents/{incident['id']}/status", json={"status": "handling"})
    assert handling.json()["status"] == "handling" and handling.json()["handling_at"]
    back = api.http.post(f"/api/v1/ops/incidents/{incident['id']}/status", json={"status": "handling"})
    assert back.status_code == 409 and back.json()["error"]["code"] == "E-OPS-WORKFLOW"
    person = {"name": "张三", "phone": "0591-87654321", "mobile": "13812345678", "email": "zs@fj.example"}
    assert api.http.put("/api/v1/ops/roster/35/duty/primary", json=person).status_code == 200
    gaps = api.http.get("/api/v1/ops/roster/35/gaps").json()
    assert gaps["complete"] is False and "duty" not in {g["post"] for g in gaps["gaps"]}
    assert api.http.get("/api/v1/ops/roster/35/history").json()["data"][0]["after"]["name"] == "张三"


def test_the_assessment_exports_to_pdf_and_xlsx(api: Api) -> None:
    answer = api.http.get("/api/v1/ops/assessment", params={"period": "2026-11", "province": "35"})
    indicators = {i["key"]: i for i in answer.json()["data"][0]["indicators"]}
    assert indicators["pass_rate"]["evidence"].startswith("/api/v1/ops/stats?province=35")
    assert api.http.get(indicators["pass_rate"]["evidence"]).status_code == 200  # the evidence link works
    pdf = api.http.get("/api/v1/ops/assessment", params={"period": "2026-11", "format": "pdf"})
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    xlsx = api.http.get("/api/v1/ops/notices", params={"format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.content.startswith(b"PK")
    bad = api.http.get("/api/v1/ops/assessment", params={"period": "2026-13"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "E-REQ-PERIOD"


def test_the_node_reads_its_conditions_and_reports_a_drill_signed(api: Api) -> None:
    conditions = api.node_client.ops_conditions()
    codes = {f["code"] for f in conditions["findings"]}
    assert conditions["province"] == "35" and "OPS-ROSTER_COMPLETE" in codes and "OPS-DRILL_HELD" in codes
    today = dt.datetime.now(dt.UTC).date().isoformat()
    drill: dict[str, Any] = {
        "held_on": today,
        "scenario": "链路中断",
        "recovery_seconds": 12.5,
        "data_loss_records": 0,
    }
    recorded = api.node_client.report_drill(drill)
    assert recorded["origin"] == "tool" and recorded["province"] == "35"
    assert "OPS-DRILL_HELD" not in {f["code"] for f in api.node_client.ops_conditions()["findings"]}
    unsigned = api.http.get("/api/v1/ops/node/conditions")
    assert unsigned.status_code == 401


def test_a_plan_is_filed_activated_and_closed_over_http(api: Api) -> None:
    api.act_as(FUJIAN)
    plan = {
        "province": "35",
        "title": "链路中断预案",
        "activation_procedure": "值班员报告后启动",
        "closing_procedure": "恢复并对账后关闭",
    }
    filed = api.http.post("/api/v1/ops/plans", json=plan).json()
    activated = api.http.post(f"/api/v1/ops/plans/{filed['id']}/activate", json={"note": "链路中断"})
    assert activated.status_code == 201
    activation = activated.json()["activation_id"]
    assert api.http.post(f"/api/v1/ops/plans/activations/{activation}/close", json={}).status_code == 200
    again = api.http.post(f"/api/v1/ops/plans/activations/{activation}/close", json={})
    assert again.status_code == 409 and again.json()["error"]["code"] == "E-OPS-WORKFLOW"


def _csrf(api: Api) -> dict[str, str]:
    """A pre-session cookie and its form token, as a browser holds them before a form is sent."""
    from ggzy.web.csrf import PRE_COOKIE, binding_of

    api.http.cookies.set(PRE_COOKIE, "pre-test-cookie")
    binding = binding_of(None, "pre-test-cookie")
    assert binding is not None
    people = api.http.app.state.people  # type: ignore[attr-defined]
    return {"csrf_token": people.service.secrets.csrf_token(binding)}


def test_a_notice_reaches_the_province_over_http_the_portal_and_the_doctor(api: Api) -> None:
    sent = api.http.post(
        "/api/v1/ops/province-notices", json={"provinces": ["35"], "title": "请核对十一月数据"}
    )
    assert sent.status_code == 201 and sent.json()["count"] == 1
    notice_id = sent.json()["data"][0]["id"]
    outage = api.http.post(
        "/api/v1/ops/national-outages",
        json={
            "starts_at": "2026-12-12T22:00:00+08:00",
            "ends_at": "2026-12-13T02:00:00+08:00",
            "impact": "升级",
        },
    )
    assert outage.status_code == 201 and [n["province"] for n in outage.json()["data"]] == ["35"]
    # the node's doctor, signed, sees both unread
    assert {n["title_zh"] for n in api.node_client.ops_conditions()["notices"]} >= {"请核对十一月数据"}
    api.act_as(FUJIAN)
    assert api.http.post("/api/v1/ops/province-notices", json={"title": "越权"}).status_code == 403
    listed = api.http.get("/api/v1/ops/province-notices").json()
    assert listed["unread"] == 2 and {n["kind_zh"] for n in listed["data"]} == {"通知", "国家平台停用"}
    assert api.http.get("/api/v1/ops/province-notices", params={"province": "11"}).status_code == 403
    page = api.http.get("/portal/notices")
    assert page.status_code == 200 and "请核对十一月数据" in page.text and 'id="notice-banner"' in page.text
    assert "国家平台有 2 条未读通知" in api.http.get("/portal/ops").text  # the banner on every page
    token = _csrf(api)
    refused = api.http.post(f"/portal/notices/{notice_id}/read", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    read = api.http.post(f"/portal/notices/{notice_id}/read", data=token, follow_redirects=False)
    assert read.status_code == 303
    assert api.http.get("/api/v1/ops/province-notices").json()["unread"] == 1
    assert api.http.post("/portal/notices/read-all", data=token, follow_redirects=False).status_code == 303
    assert 'id="notice-banner"' not in api.http.get("/portal/notices").text
    assert api.node_client.ops_conditions()["notices"] == []
    api.act_as(NATIONAL)
    national = api.http.get("/portal/notices").text
    assert "向省份发送通知" in national and "已读" in national
    form = api.http.post(
        "/portal/notices/send",
        data={**token, "province": "35", "title": "门户发送的通知"},
        follow_redirects=False,
    )
    assert form.status_code == 303 and form.headers["location"] == "/portal/notices?sent=1"
    bad = api.http.post("/portal/notices/send", data={**token, "province": "99", "title": "x"})
    assert bad.status_code == 400 and "E-OPS-PROVINCE" in bad.text


def test_register_problems_roster_absences_training_and_changes_over_http(api: Api) -> None:
    api.act_as(FUJIAN)
    bad = api.http.post(
        "/api/v1/ops/register/35",
        json={
            "kind": "expert",
            "code": "FJ-EXP",
            "data": {"name": "专家库", "operator": "省中心", "experts": "lots"},
        },
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "E-OPS-FIELD-NUMBER"
    assert bad.json()["error"]["problems"][0]["field"] == "experts"
    for rank, name, mobile in (("primary", "张三", "13812345678"), ("backup", "李四", "13912345678")):
        person = {"name": name, "phone": "0591-87654321", "mobile": mobile, "email": f"{mobile}@fj.example"}
        assert api.http.put(f"/api/v1/ops/roster/35/security/{rank}", json=person).status_code == 200
    same = api.http.put(
        "/api/v1/ops/roster/35/security/backup",
        json={"name": "张三", "phone": "", "mobile": "13812345678", "email": ""},
    )
    assert same.status_code == 409 and same.json()["error"]["code"] == "E-OPS-ROSTER-SAME-PERSON"
    for name in ("张三", "李四"):
        away = {"name": name, "starts_on": "2026-12-08", "ends_on": "2026-12-09", "reason": "出差"}
        assert api.http.post("/api/v1/ops/roster/35/absences", json=away).status_code == 201
    gaps = api.http.get("/api/v1/ops/roster/35/gaps", params={"at": "2026-12-08T00:30:00"}).json()  # Beijing
    assert "E-ROSTER-ABSENT" in {g["code"] for g in gaps["gaps"]}
    training = {"held_on": "2026-12-01", "subject": "等级保护", "topic": "security", "participants": ["张三"]}
    assert api.http.post("/api/v1/ops/trainings/35", json=training).status_code == 201
    assert api.http.get("/api/v1/ops/trainings").json()["count"] == 1

    change = api.http.post(
        "/api/v1/ops/changes", json={"province": "35", "kind": "upgrade", "title": "交易系统升级"}
    ).json()
    self_approval = api.http.post(f"/api/v1/ops/changes/{change['id']}/approve", json={})
    assert self_approval.status_code == 409
    assert self_approval.json()["error"]["code"] == "E-OPS-CHANGE-SAME-PERSON"
    api.act_as(Principal("fj-other", Role.OPERATOR, province="35"))
    approved = api.http.post(f"/api/v1/ops/changes/{change['id']}/approve", json={"note": "同意"})
    assert approved.status_code == 200 and approved.json()["decided_by"] == "fj-other"

    planned = api.http.post(
        "/api/v1/ops/self-checks",
        json={"province": "35", "first_due": "2026-12-01", "every_months": 6, "count": 2},
    )
    assert planned.status_code == 201 and planned.json()["count"] == 2
    assert api.http.get("/api/v1/ops/self-checks").json()["data"][0]["overdue"] in (True, False)
    api.act_as(NATIONAL)
    pdf = api.http.get("/api/v1/ops/security-bulletin", params={"period": "2026-12", "format": "pdf"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    versions = api.http.post(
        "/api/v1/ops/versions/approved", json={"component": "python", "pattern": "CPython 3.11.*"}
    )
    assert versions.status_code == 201
    assert api.http.get("/api/v1/ops/versions").json()["approved"][0]["pattern"] == "CPython 3.11.*"
