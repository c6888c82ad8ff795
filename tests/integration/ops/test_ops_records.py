"""Plans with versions, drills and the 12-month flag, the roster with history and gaps, the
information register with history, inspections with their checklist, and the audit trail of each."""

from __future__ import annotations

import datetime as dt

import pytest
from opsdb import OpsDb, shanghai
from sqlalchemy import func, select

from ggzy.hub.models import audit_log
from ggzy.hub.ops.inspections import CHECKLIST, follow_up, perform_inspection, plan_inspection
from ggzy.hub.ops.preparedness import (
    activate_plan,
    close_activation,
    file_plan,
    list_plans,
    provinces_without_drill,
    record_drill,
)
from ggzy.hub.ops.register import register_history, register_of, register_system
from ggzy.hub.ops.roster import (
    KEY_POSTS,
    POSTS,
    remove_entry,
    roster_at,
    roster_gaps,
    roster_history,
    set_entry,
)
from ggzy.hub.ops.session import Actor, OpsError

FUJIAN = Actor("fj-op", "operator", "35")


def _audited(db: OpsDb, action: str) -> int:
    with db.engine.connect() as connection:
        return int(connection.execute(select(func.count()).where(audit_log.c.action == action)).scalar_one())


def test_plans_keep_their_versions_and_activations_close(ops_db: OpsDb) -> None:
    first = ops_db.run(lambda s: file_plan(s, "35", "预案", "报告后启动", "恢复后关闭"), FUJIAN)
    second = ops_db.run(
        lambda s: file_plan(s, "35", "预案（修订）", "值班员报告后启动", "核对后关闭"), FUJIAN
    )
    assert (first.version, second.version) == (1, 2)
    with ops_db.engine.connect() as connection:
        assert [p.title for p in list_plans(connection, "35")] == ["预案", "预案（修订）"]
    activation = ops_db.run(lambda s: activate_plan(s, second.id, note="链路中断"), FUJIAN)
    ops_db.run(lambda s: close_activation(s, activation, "已恢复"), FUJIAN)
    with pytest.raises(OpsError):
        ops_db.run(lambda s: close_activation(s, activation), FUJIAN)
    with pytest.raises(OpsError) as refused:
        ops_db.run(lambda s: file_plan(s, "35", "无程序", "", ""), FUJIAN)
    assert refused.value.code == "E-OPS-PLAN-PROCEDURE"
    assert _audited(ops_db, "ops.plan.file") == 2 and _audited(ops_db, "ops.plan.close") == 1


def test_a_province_without_a_drill_in_twelve_months_is_flagged(ops_db: OpsDb) -> None:
    ops_db.add_node("fj-01", "35", shanghai(2025, 1, 1))
    ops_db.add_node("bj-01", "11", shanghai(2025, 1, 1))
    ops_db.clock.now = shanghai(2026, 11, 20)
    ops_db.run(lambda s: record_drill(s, "35", dt.date(2025, 11, 20), "停电", ["张三"]), FUJIAN)
    with ops_db.engine.connect() as connection:
        flagged = provinces_without_drill(connection, dt.date(2026, 11, 20), 365)
        assert flagged == [{"province": "11", "last_drill": None}]  # 365 days ago still counts
        flagged = provinces_without_drill(connection, dt.date(2026, 11, 21), 365)
        assert [f["province"] for f in flagged] == ["11", "35"]
    with pytest.raises(OpsError):
        ops_db.run(lambda s: record_drill(s, "35", dt.date(2026, 12, 1), "未来", []), FUJIAN)


def test_the_roster_records_history_and_flags_gaps(ops_db: OpsDb) -> None:
    with ops_db.engine.connect() as connection:
        assert len(roster_gaps(connection, "35")) == 3 + 2 * len(KEY_POSTS)  # all empty
    for number, (post, rank) in enumerate(
        (p, r) for p in POSTS for r in (("primary", "backup") if p in KEY_POSTS else ("primary",))
    ):
        ops_db.run(
            lambda s, p=post, r=rank, k=number: set_entry(
                s,
                "35",
                p,
                r,
                name=f"{p}{r}",
                phone="0591-87654321",
                mobile=f"1391234{k:04d}",
                email=f"{p}{r}@fj.example",
            ),
            FUJIAN,
        )
    changed_at = ops_db.clock.now = shanghai(2026, 11, 3)
    ops_db.run(
        lambda s: set_entry(
            s,
            "35",
            "network",
            "backup",
            name="网络备岗",
            phone="0591-87654321",
            mobile="",
            email="nb@fj.example",
        ),
        FUJIAN,
    )
    ops_db.clock.now = shanghai(2026, 11, 4)
    ops_db.run(lambda s: remove_entry(s, "35", "lead_ops", "primary"), FUJIAN)
    with ops_db.engine.connect() as connection:
        codes = sorted(g.code for g in roster_gaps(connection, "35"))
        assert codes == ["E-ROSTER-CONTACT", "E-ROSTER-EMPTY"]
        history = roster_history(connection, "35")
        assert history[0]["action"] == "remove" and history[0]["before"]["name"] == "lead_opsprimary"
        assert history[1]["before"]["name"] == "networkbackup" and history[1]["after"]["mobile"] == ""
        as_before = roster_at(connection, "35", changed_at - dt.timedelta(seconds=1))
        assert roster_gaps(connection, "35", as_before) == []
    with pytest.raises(OpsError):
        ops_db.run(
            lambda s: set_entry(s, "11", "duty", "primary", name="x", phone="", mobile="", email=""), FUJIAN
        )


def test_the_register_keeps_every_version(ops_db: OpsDb) -> None:
    data = {
        "name": "福建省公共资源交易电子服务系统",
        "operator": "福建省信息中心",
        "url": "https://ggzy.fj.example",
    }
    ops_db.run(lambda s: register_system(s, "35", "service", "FJ-SVC", data), FUJIAN)
    ops_db.run(
        lambda s: register_system(s, "35", "service", "FJ-SVC", {**data, "url": "https://new.fj.example"}),
        FUJIAN,
    )
    ops_db.run(
        lambda s: register_system(
            s, "35", "expert", "FJ-EXP", {"name": "专家库", "operator": "省中心", "experts": 5210}
        ),
        FUJIAN,
    )
    with ops_db.engine.connect() as connection:
        current = {e["code"]: e for e in register_of(connection, "35")}
        assert (
            current["FJ-SVC"]["version"] == 2 and current["FJ-SVC"]["data"]["url"] == "https://new.fj.example"
        )
        assert len(register_history(connection, "35")) == 3
    with pytest.raises(OpsError) as refused:
        ops_db.run(lambda s: register_system(s, "35", "trading", "X", {"name": "交易系统"}), FUJIAN)
    assert refused.value.code == "E-OPS-REGISTER-FIELDS"


def test_an_inspection_answers_every_item_then_is_followed_up(ops_db: OpsDb) -> None:
    planned = ops_db.run(lambda s: plan_inspection(s, "35", "spot", dt.date(2026, 11, 20)))
    with pytest.raises(OpsError) as incomplete:
        ops_db.run(lambda s: perform_inspection(s, planned["id"], {"security": {"result": "pass"}}, "—"))
    assert incomplete.value.code == "E-OPS-CHECKLIST"
    results = {item: {"result": "pass"} for item in CHECKLIST} | {
        "plans": {"result": "fail", "note": "未演练"}
    }
    done = ops_db.run(
        lambda s: perform_inspection(s, planned["id"], results, "预案未演练", follow_up_text="限期演练")
    )
    assert done["status"] == "done" and done["failed_items"] == ["plans"]
    followed = ops_db.run(lambda s: follow_up(s, planned["id"], "已于12月演练"))
    assert followed["status"] == "followed_up" and "已于12月演练" in followed["follow_up"]
    with pytest.raises(OpsError) as provincial:
        ops_db.run(lambda s: plan_inspection(s, "35", "scheduled", dt.date(2026, 12, 1)), FUJIAN)
    assert provincial.value.code == "E-OPS-NATIONAL"


@pytest.mark.parametrize("hub_db_url", ["sqlite"], indirect=True)  # the checks are in Python, not SQL
def test_a_province_names_only_its_own_plans_and_incidents(ops_db: OpsDb) -> None:
    """Before: a province recorded a drill against another province's plan, and activated its plan
    for another province's incident, and ids that do not exist were stored as they came."""
    from ggzy.hub.ops.incidents import Classification, FaultReport, file_fault_report

    guangdong = Actor("gd-op", "operator", "44")
    theirs = ops_db.run(lambda s: file_plan(s, "44", "广东预案", "报告后启动", "恢复后关闭"), guangdong)
    ours = ops_db.run(lambda s: file_plan(s, "35", "福建预案", "报告后启动", "恢复后关闭"), FUJIAN)
    report = FaultReport("广东链路中断", Classification.LINK, shanghai(2026, 10, 30, 9, 0))
    incident = ops_db.run(lambda s: file_fault_report(s, "44", report), guangdong)
    day = dt.date(2026, 10, 31)
    for plan_id, code in ((theirs.id, "E-OPS-SCOPE"), (999_999, "E-OPS-NOT-FOUND")):
        with pytest.raises(OpsError) as drill:
            ops_db.run(
                lambda s, p=plan_id: record_drill(s, "35", day, "断网演练", ["张三"], plan_id=p), FUJIAN
            )
        assert drill.value.code == code
    for incident_id, code in ((incident.id, "E-OPS-SCOPE"), (999_999, "E-OPS-NOT-FOUND")):
        with pytest.raises(OpsError) as activation:
            ops_db.run(lambda s, i=incident_id: activate_plan(s, ours.id, i), FUJIAN)
        assert activation.value.code == code
    # the national operators may not mix provinces either: the records would contradict each other
    with pytest.raises(OpsError):
        ops_db.run(lambda s: record_drill(s, "35", day, "断网演练", ["张三"], plan_id=theirs.id))
    own = ops_db.run(lambda s: record_drill(s, "35", day, "断网演练", ["张三"], plan_id=ours.id), FUJIAN)
    assert own.plan_id == ours.id
