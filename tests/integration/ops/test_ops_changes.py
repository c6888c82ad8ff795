"""Art. 22: a launch needs its pre-launch security check, every change a second person's approval
(never the requester's), and the result is recorded; each step is audited."""

from __future__ import annotations

import pytest
from opsdb import OpsDb, shanghai
from sqlalchemy import select

from ggzy.hub.models import audit_log
from ggzy.hub.ops.changes import (
    PRELAUNCH_CHECKLIST,
    approve_change,
    record_prelaunch_check,
    record_result,
    reject_change,
    request_change,
)
from ggzy.hub.ops.session import Actor, OpsError
from ggzy.hub.ops.versions import list_upgrades

ZHANG = Actor("fj-zhang", "operator", "35")
LI = Actor("fj-li", "operator", "35")
BEIJING = Actor("bj-op", "operator", "11")
NATIONAL_A = Actor("nat-a", "operator")
NATIONAL_B = Actor("nat-b", "operator")
PASS = {item: {"result": "pass"} for item in PRELAUNCH_CHECKLIST}


def _refused(db: OpsDb, fn, actor: Actor) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(OpsError) as refused:
        db.run(fn, actor)
    return refused.value.code


def test_a_launch_needs_a_passed_check_and_a_second_person(ops_db: OpsDb) -> None:
    change = ops_db.run(lambda s: request_change(s, "35", "launch", "电子交易系统 V3 上线", "新系统"), ZHANG)
    cid = change["id"]
    assert change["status_zh"] == "待审核"
    assert _refused(ops_db, lambda s: approve_change(s, cid), LI) == "E-OPS-CHANGE-CHECK"  # no check yet
    assert _refused(
        ops_db, lambda s: record_prelaunch_check(s, cid, {"patches": {"result": "pass"}}), ZHANG
    ) == ("E-OPS-CHANGE-CHECK")
    failed = ops_db.run(
        lambda s: record_prelaunch_check(
            s, cid, {**PASS, "vulnerability_scan": {"result": "fail", "note": "高危2个"}}
        ),
        ZHANG,
    )
    assert failed["check_failed"] == ["vulnerability_scan"]
    assert _refused(ops_db, lambda s: approve_change(s, cid), LI) == "E-OPS-CHANGE-CHECK"
    ops_db.run(lambda s: record_prelaunch_check(s, cid, PASS), ZHANG)
    assert _refused(ops_db, lambda s: approve_change(s, cid), ZHANG) == "E-OPS-CHANGE-SAME-PERSON"
    assert _refused(ops_db, lambda s: approve_change(s, cid), BEIJING) == "E-OPS-SCOPE"
    approved = ops_db.run(lambda s: approve_change(s, cid, "同意上线"), LI)
    assert (approved["status"], approved["decided_by"], approved["requested_by"]) == (
        "approved",
        "fj-li",
        "fj-zhang",
    )
    assert _refused(ops_db, lambda s: approve_change(s, cid), LI) == "E-OPS-WORKFLOW"  # decided once
    done = ops_db.run(lambda s: record_result(s, cid, True, "已上线，运行正常"), ZHANG)
    assert done["status_zh"] == "已实施"
    with ops_db.engine.connect() as connection:
        actions = [
            (r.action, r.account)
            for r in connection.execute(
                select(audit_log.c.action, audit_log.c.account).where(audit_log.c.object == f"change:{cid}")
            )
        ]
    assert actions == [
        ("ops.change.request", "fj-zhang"),
        ("ops.change.check", "fj-zhang"),
        ("ops.change.check", "fj-zhang"),
        ("ops.change.approve", "fj-li"),
        ("ops.change.result", "fj-zhang"),
    ]


def test_a_rejected_upgrade_cannot_be_carried_out(ops_db: OpsDb) -> None:
    cid = ops_db.run(lambda s: request_change(s, "35", "upgrade", "数据库升级"), ZHANG)["id"]
    assert (
        _refused(ops_db, lambda s: reject_change(s, cid, "未做回退方案"), ZHANG) == "E-OPS-CHANGE-SAME-PERSON"
    )
    ops_db.run(lambda s: reject_change(s, cid, "未做回退方案"), LI)
    assert _refused(ops_db, lambda s: record_result(s, cid, True), ZHANG) == "E-OPS-WORKFLOW"


def test_a_node_upgrade_is_the_national_sides_and_becomes_its_upgrade_record(ops_db: OpsDb) -> None:
    ops_db.add_node("fj-01", "35", shanghai(2026, 1, 1))
    upgrade = {"node_id": "fj-01", "component": "database", "to_version": "PostgreSQL 16.4"}
    assert _refused(ops_db, lambda s: request_change(s, "35", "upgrade", "升级数据库", **upgrade), ZHANG) == (
        "E-OPS-NATIONAL"
    )
    cid = ops_db.run(lambda s: request_change(s, "35", "upgrade", "升级数据库", **upgrade), NATIONAL_A)["id"]
    assert _refused(ops_db, lambda s: approve_change(s, cid), LI) == "E-OPS-NATIONAL"
    ops_db.run(lambda s: approve_change(s, cid, "同意"), NATIONAL_B)
    ops_db.run(lambda s: record_result(s, cid, True, "升级完成"), NATIONAL_A)
    with ops_db.engine.connect() as connection:
        (recorded,) = list_upgrades(connection, node_id="fj-01")
    assert (recorded["to_version"], recorded["change_id"]) == ("PostgreSQL 16.4", cid)
