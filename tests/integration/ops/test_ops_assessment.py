"""The assessment of a simulated month with known answers, and the Art. 35 → order → 通报 path.

Two provinces in November 2026 (beats every 30 min, so a node stays up 90 min after a beat):
Fujian (35) does everything right but for a 2-hour silence; Beijing (11) stops beating on the 16th,
misses its rates, has no roster, plan, drill or backup and leaves an incident unreported. Every
expected figure below is derived from those facts by hand, not read from the code.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from opsdb import NATIONAL, OpsDb, shanghai
from sqlalchemy import Connection, insert

from ggzy.hub.models import stats_daily
from ggzy.hub.ops.assessment import Assessment, assess_province
from ggzy.hub.ops.incidents import Classification, FaultReport, file_fault_report, open_auto_incident
from ggzy.hub.ops.periods import month_period
from ggzy.hub.ops.preparedness import file_plan, record_drill
from ggzy.hub.ops.rectification import check_article35, close_order, issue_orders, notice_list
from ggzy.hub.ops.roster import KEY_POSTS, POSTS, record_training, set_entry
from ggzy.hub.ops.session import Actor, OpsError
from ggzy.store.database import writing

NOVEMBER = month_period(2026, 11)
MONTH_MINUTES = 30 * 1440


class FakeBackups:
    def __init__(self, verified: dict[str, dt.datetime]) -> None:
        self.verified = verified

    def verified_at(self, connection: Connection, province: str, before: dt.datetime) -> dt.datetime | None:
        return self.verified.get(province)


BACKUPS = FakeBackups({"35": shanghai(2026, 11, 28)})


def _stats(
    db: OpsDb, province: str, *, received: int, accepted: int, due: int, timely: int, keys: int, repaired: int
) -> None:
    with writing(db.engine) as connection:
        connection.execute(
            insert(stats_daily),
            {
                "province": province,
                "table_name": "TENDER_PROJECT",
                "day": dt.date(2026, 11, 10),
                "channel": 1,
                "received": received,
                "accepted": accepted,
                "rejected": received - accepted,
                "timely_due": due,
                "timely_ok": timely,
                "rejected_keys": keys,
                "repaired": repaired,
            },
        )


@pytest.fixture
def month(ops_db: OpsDb) -> OpsDb:
    db = ops_db
    db.settings = db.settings.model_copy(update={"heartbeat_seconds": 1800.0})
    fujian, beijing = Actor("fj", "operator", "35"), Actor("bj", "operator", "11")
    db.add_node("fj-01", "35", shanghai(2026, 10, 1))
    db.add_node("bj-01", "11", shanghai(2026, 10, 1))
    # Fujian: silent 10:00–12:00 on the 5th (last beat 09:30 shows it up to 10:00: down 120 min)
    db.beats("fj-01", "35", shanghai(2026, 10, 31, 23), shanghai(2026, 11, 5, 10), total=10, platform_ok=True)
    db.beats("fj-01", "35", shanghai(2026, 11, 5, 12), shanghai(2026, 12, 1), total=10, platform_ok=True)
    # Beijing: beats from the 1st 00:00 to the 15th 23:30 (up to the 16th 00:00), one attempt in ten
    # fails (attempts are no longer counted: the network is up while the beats arrive), no platform probe
    db.beats("bj-01", "11", shanghai(2026, 11, 1), shanghai(2026, 11, 16), failed=1, total=10)
    _stats(db, "35", received=1000, accepted=970, due=500, timely=490, keys=30, repaired=28)
    _stats(db, "11", received=1000, accepted=900, due=500, timely=450, keys=100, repaired=95)

    db.clock.now = shanghai(2026, 6, 1, 12)
    db.run(
        lambda s: file_plan(
            s, "35", "前置机故障应急预案", "值班员确认故障后报告运行负责人启动", "恢复并核对数据后关闭"
        ),
        fujian,
    )
    db.run(
        lambda s: record_drill(
            s,
            "35",
            dt.date(2026, 6, 1),
            "链路中断",
            ["张三", "李四"],
            recovery_seconds=300,
            data_loss_records=0,
        ),
        fujian,
    )
    db.run(
        lambda s: record_training(s, "35", dt.date(2026, 6, 1), "运行安全培训", "security", ["张三", "李四"]),
        fujian,
    )
    db.clock.now = shanghai(2026, 10, 20)
    for number, (post, rank) in enumerate(
        (p, r) for p in POSTS for r in (("primary", "backup") if p in KEY_POSTS else ("primary",))
    ):
        person = f"{post}-{rank}"
        db.run(
            lambda s, p=post, r=rank, n=person, k=number: set_entry(
                s,
                "35",
                p,
                r,
                name=n,
                phone="0591-87654321",
                mobile=f"1381234{k:04d}",
                email=f"{n}@fj.example",
            ),
            fujian,
        )

    db.clock.now = shanghai(2026, 11, 10, 9)
    disk = db.run(
        lambda s: open_auto_incident(s, "35", "disk", "fj-01", "磁盘", shanghai(2026, 11, 10, 9), {}, "fj-01")
    )
    db.run(
        lambda s: file_fault_report(
            s,
            "35",
            FaultReport(
                "磁盘满",
                Classification.EQUIPMENT,
                disk.started_at,
                shanghai(2026, 11, 10, 10),
                cause="日志",
                corrective_actions="轮转",
            ),
            disk.id,
        ),
        fujian,
    )
    db.clock.now = shanghai(2026, 11, 16, 1, 10)
    db.run(
        lambda s: open_auto_incident(
            s, "11", "node_down", "bj-01", "中断", shanghai(2026, 11, 16, 1), {}, "bj-01"
        )
    )
    db.clock.now = shanghai(2026, 12, 5)
    _ = beijing
    return db


def _assess(db: OpsDb, province: str) -> Assessment:
    with db.engine.connect() as connection:
        return assess_province(connection, province, NOVEMBER, db.settings, clock=db.clock, backups=BACKUPS)


def _values(assessment: Assessment) -> dict[str, Any]:
    return {i.key: (i.value, i.met) for i in assessment.indicators}


def test_a_province_that_does_everything_right(month: OpsDb) -> None:
    result = _assess(month, "35")
    values = _values(result)
    assert values["pass_rate"] == (pytest.approx(0.97), True)
    assert values["timely_rate"] == (pytest.approx(0.98), True)
    assert values["repair_rate"] == (pytest.approx(28 / 30), True)
    assert values["node_availability"] == (pytest.approx((MONTH_MINUTES - 120) / MONTH_MINUTES), True)
    # no beat is no reach: the 120 silent minutes count against the network too
    assert values["network_availability"] == (pytest.approx((MONTH_MINUTES - 120) / MONTH_MINUTES), True)
    # healthy whenever a beat said so; no beat for 120 min, and the fault report adds 09:00–10:00 on the 10th
    assert values["system_availability"] == (pytest.approx((MONTH_MINUTES - 180) / MONTH_MINUTES), True)
    assert values["system_probe"] == ("已配置", True)
    assert values["backups_verified"][1] is True
    assert values["drill_held"] == ("2026-06-01", True)
    assert values["roster_complete"] == (0, True)
    assert values["incidents_reported"] == (1.0, True)
    assert values["frontend_deployed"][1] is True
    assert result.score == 1.0
    assert [v.condition for v in check_article35(result)] == []
    assert all(i.evidence.startswith("/api/v1/ops/") for i in result.indicators)


def test_a_province_that_fails_most_indicators(month: OpsDb) -> None:
    result = _assess(month, "11")
    values = _values(result)
    assert values["pass_rate"] == (pytest.approx(0.90), False)
    assert values["timely_rate"] == (pytest.approx(0.90), False)
    assert values["repair_rate"] == (pytest.approx(0.95), True)
    assert values["node_availability"] == (pytest.approx(15 * 1440 / MONTH_MINUTES), False)
    assert values["network_availability"] == (pytest.approx(15 * 1440 / MONTH_MINUTES), False)
    assert values["system_availability"] == (None, None)  # no probe: no figure …
    assert values["system_probe"] == ("未配置", False)  # … and the missing probe is a finding
    assert values["backups_verified"] == (None, False)
    assert values["drill_held"] == (None, False)
    assert values["roster_complete"][1] is False
    assert values["incidents_reported"] == (0.0, False)
    assert values["frontend_deployed"] == (15 * 48, True)
    assert result.score == pytest.approx(2 / 11)  # repair and front-end met, of eleven with a verdict
    violations = check_article35(result)
    assert [v.condition for v in violations] == [1, 2, 3, 4, 6, 7]
    assert "未配置" in next(v.basis for v in violations if v.condition == 4)
    notes = {i.key: i.note for i in result.indicators}
    assert "精度：一次心跳 1800 秒" in notes["network_availability"]
    assert "无心跳 21600.0 分钟" in notes["network_availability"]  # the 16th to the 30th
    assert "未配置省级平台健康探测" in notes["system_availability"]
    assert "教育培训" in next(v.basis for v in violations if v.condition == 6)


def test_weights_are_configurable(month: OpsDb) -> None:
    month.settings = month.settings.model_copy(update={"weights": {"repair_rate": 3.0}})
    assert _assess(month, "11").score == pytest.approx((3 + 1) / (3 + 10))


def test_an_order_not_closed_by_its_deadline_goes_on_the_notice_list(month: OpsDb) -> None:
    assessment = _assess(month, "11")
    orders = month.run(lambda s: issue_orders(s, assessment))
    assert [o["condition"] for o in orders] == [1, 2, 3, 4, 6, 7]
    assert month.run(lambda s: issue_orders(s, assessment)) == []  # one order per condition and period
    deadline = dt.datetime.fromisoformat(orders[0]["deadline"])
    # issued on Beijing's 2026-12-05: 30 days later is 2027-01-04, due by the end of that day
    assert deadline == shanghai(2027, 1, 5) and orders[0]["deadline_date"] == "2027-01-04"
    by_condition = {o["condition"]: o["id"] for o in orders}

    month.clock.now = deadline - dt.timedelta(days=1)
    month.run(lambda s: close_order(s, by_condition[2], "已修正校验流程"))
    with month.engine.connect() as connection:
        assert notice_list(connection, month.clock.now) == []

    month.clock.now = deadline + dt.timedelta(seconds=1)
    with month.engine.connect() as connection:
        listed = notice_list(connection, month.clock.now)
    assert sorted(o["condition"] for o in listed) == [1, 3, 4, 6, 7]
    assert {o["notice_zh"] for o in listed} == {"逾期未改正"}

    month.run(lambda s: close_order(s, by_condition[3], "补报完成"))
    with month.engine.connect() as connection:
        late = {o["condition"]: o["notice_zh"] for o in notice_list(connection, month.clock.now)}
    assert late[3] == "逾期后改正" and 2 not in late


def test_only_national_operators_issue_orders(month: OpsDb) -> None:
    assessment = _assess(month, "11")
    with pytest.raises(OpsError) as refused:
        month.run(lambda s: issue_orders(s, assessment), Actor("bj", "operator", "11"))
    assert refused.value.code == "E-OPS-NATIONAL"
    assert NATIONAL.province is None


def test_assessment_and_notice_list_export_to_xlsx_and_chinese_pdf(month: OpsDb, tmp_path: Any) -> None:
    from openpyxl import load_workbook
    from pypdf import PdfReader

    from ggzy.hub.ops.exports import assessment_report, notice_report, write_pdf, write_xlsx

    assessments = [_assess(month, "35"), _assess(month, "11")]
    report = assessment_report(assessments)
    write_xlsx(report, tmp_path / "a.xlsx")
    write_pdf(report, tmp_path / "a.pdf")
    overview = load_workbook(tmp_path / "a.xlsx")["考核总览"]
    rows = list(overview.iter_rows(values_only=True))
    assert rows[2][:3] == ("省份", "名称", "得分")
    assert [r[0] for r in rows[3:]] == ["35", "11"] and rows[4][2] == "18.18%"
    text = "".join(page.extract_text() for page in PdfReader(tmp_path / "a.pdf").pages)
    # an eleventh indicator narrows the overview's columns: its headings wrap
    flat = text.replace("\n", "")
    assert "省级平台运行考核（2026-11）" in text and "前置机系统可用率" in flat and "未达标" in flat

    orders = month.run(lambda s: issue_orders(s, assessments[1]))
    month.clock.now = dt.datetime.fromisoformat(orders[0]["deadline"]) + dt.timedelta(days=1)
    with month.engine.connect() as connection:
        listed = notice_list(connection, month.clock.now)
    write_pdf(notice_report(listed), tmp_path / "n.pdf")
    text = "".join(page.extract_text() for page in PdfReader(tmp_path / "n.pdf").pages)
    assert "拒不改正情况通报" in text and "逾期未改正" in text and "未执行数据规范标准" in text
