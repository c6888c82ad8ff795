"""Failed inspection items raise rectification orders by themselves, Art. 35 (5) and (8) included."""

from __future__ import annotations

import datetime as dt

import pytest
from opsdb import OpsDb, shanghai

from ggzy.hub.ops.inspections import CHECKLIST, perform_inspection, plan_inspection
from ggzy.hub.ops.rectification import list_orders
from ggzy.hub.ops.session import OpsError


def test_failed_items_raise_one_order_per_condition(ops_db: OpsDb) -> None:
    ops_db.clock.now = shanghai(2026, 12, 8, 0, 30)
    planned = ops_db.run(lambda s: plan_inspection(s, "35", "spot", dt.date(2026, 12, 8)))
    results = {item: {"result": "pass"} for item in CHECKLIST} | {
        "security": {"result": "fail", "note": "防火墙未按访问策略配置"},
        "organisation": {"result": "fail", "note": "未落实主备制"},
        "rules": {"result": "fail"},
        "funding": {"result": "fail", "note": "安全设备经费未落实，发生病毒事件"},
        "major_events": {"result": "fail", "note": "进博会保障期间擅自变更配置"},
    }
    done = ops_db.run(
        lambda s: perform_inspection(
            s, planned["id"], results, "多项不合格", follow_up_due=dt.date(2026, 12, 20)
        )
    )
    orders = {o["condition"]: o for o in done["orders"]}
    assert sorted(orders) == [1, 5, 8]
    assert "未落实主备制" in orders[1]["basis"] and "运行维护制度" in orders[1]["basis"]
    assert "防火墙" in orders[5]["basis"] and "病毒事件" in orders[5]["basis"]
    assert all(o["source"] == "inspection" and o["deadline_date"] == "2026-12-20" for o in orders.values())
    assert orders[8]["evidence"] == f"/api/v1/ops/inspections/{planned['id']}"
    with ops_db.engine.connect() as connection:
        assert {o["id"] for o in list_orders(connection, ops_db.clock.now, "35")} == {
            o["id"] for o in orders.values()
        }
    with pytest.raises(OpsError) as again:  # a second result would order everything twice
        ops_db.run(lambda s: perform_inspection(s, planned["id"], results, "重复"))
    assert again.value.code == "E-OPS-WORKFLOW"


def test_an_inspection_that_passes_raises_no_order(ops_db: OpsDb) -> None:
    planned = ops_db.run(lambda s: plan_inspection(s, "35", "scheduled", dt.date(2026, 11, 8)))
    done = ops_db.run(
        lambda s: perform_inspection(s, planned["id"], {i: {"result": "pass"} for i in CHECKLIST}, "")
    )
    assert done["orders"] == [] and done["checklist_zh"]["funding"].endswith("合格")
