"""Art. 20: a schedule of security self-checks per province with results, overdue ones shown to the
province, and the 信息安全通报 built from security incidents, audit findings and self-checks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from opsdb import OpsDb, shanghai
from pypdf import PdfReader

from ggzy.hub.ops.doctor import hub_findings
from ggzy.hub.ops.exports import write_pdf, write_xlsx
from ggzy.hub.ops.incidents import Classification, FaultReport, file_fault_report
from ggzy.hub.ops.inspections import CHECKLIST, perform_inspection, plan_inspection
from ggzy.hub.ops.notices import list_notices
from ggzy.hub.ops.periods import month_period
from ggzy.hub.ops.selfchecks import (
    ITEMS,
    list_self_checks,
    publish_security_bulletin,
    record_self_check,
    schedule_self_checks,
    security_bulletin,
)
from ggzy.hub.ops.session import Actor, OpsError
from ggzy.security.audit import AuditEntry

FUJIAN = Actor("fj-op", "operator", "35")
ALL_PASS = {item: {"result": "pass"} for item in ITEMS}


def test_a_schedule_of_self_checks_with_results_and_overdue_ones(ops_db: OpsDb) -> None:
    ops_db.clock.now = shanghai(2026, 12, 1, 9)
    planned = ops_db.run(lambda s: schedule_self_checks(s, "35", dt.date(2026, 12, 7), 3, 4), FUJIAN)
    assert [c["due_on"] for c in planned] == ["2026-12-07", "2027-03-07", "2027-06-07", "2027-09-07"]
    with pytest.raises(OpsError) as incomplete:
        ops_db.run(
            lambda s: record_self_check(s, {"accounts": {"result": "pass"}}, check_id=planned[0]["id"]),
            FUJIAN,
        )
    assert incomplete.value.code == "E-OPS-SELFCHECK-ITEMS" and "未填" in incomplete.value.message_zh
    ops_db.clock.now = shanghai(2026, 12, 8, 0, 30)  # Beijing's 8th: the check due on the 7th is late
    with ops_db.engine.connect() as connection:
        assert [c["overdue"] for c in list_self_checks(connection, "35", dt.date(2026, 12, 8))][:2] == [
            True,
            False,
        ]
        (finding,) = [
            f
            for f in hub_findings(connection, "35", ops_db.settings, ops_db.clock.now)["findings"]
            if f["code"] == "OPS-SELFCHECK-OVERDUE"
        ]
    assert "2026-12-07" in finding["title_zh"]
    done = ops_db.run(
        lambda s: record_self_check(
            s,
            {**ALL_PASS, "backup": {"result": "fail", "note": "恢复演练未做"}},
            "备份未验证",
            check_id=planned[0]["id"],
        ),
        FUJIAN,
    )
    assert done["performed_on"] == "2026-12-08" and done["failed_items"] == ["backup"] and not done["overdue"]
    with pytest.raises(OpsError) as twice:
        ops_db.run(lambda s: record_self_check(s, ALL_PASS, check_id=planned[0]["id"]), FUJIAN)
    assert twice.value.code == "E-OPS-WORKFLOW"
    with pytest.raises(OpsError) as elsewhere:
        ops_db.run(lambda s: record_self_check(s, ALL_PASS, province="11"), FUJIAN)
    assert elsewhere.value.code == "E-OPS-SCOPE"
    ad_hoc = ops_db.run(lambda s: record_self_check(s, ALL_PASS, province="35"), FUJIAN)
    assert ad_hoc["kind_zh"] == "不定期自查"


def test_the_security_bulletin_comes_from_incidents_audit_findings_and_self_checks(
    ops_db: OpsDb, tmp_path: Path
) -> None:
    ops_db.add_node("fj-01", "35", shanghai(2026, 1, 1))
    ops_db.clock.now = shanghai(2026, 12, 3, 10)
    ops_db.run(
        lambda s: file_fault_report(
            s,
            "35",
            FaultReport(
                "前置机发现木马",
                Classification.SECURITY,
                shanghai(2026, 12, 3, 8),
                shanghai(2026, 12, 3, 9),
                cause="弱口令",
                corrective_actions="更换口令并加固",
            ),
        ),
        FUJIAN,
    )
    ops_db.run(
        lambda s: file_fault_report(
            s, "35", FaultReport("停电", Classification.POWER, shanghai(2026, 12, 3, 8), None)
        ),
        FUJIAN,
    )  # not a security incident
    inspection = ops_db.run(lambda s: plan_inspection(s, "35", "spot", dt.date(2026, 12, 3)))
    results = {i: {"result": "pass"} for i in CHECKLIST} | {
        "security": {"result": "fail", "note": "防火墙全通"}
    }
    ops_db.run(lambda s: perform_inspection(s, inspection["id"], results, "安全措施不合格"))
    ops_db.run(
        lambda s: record_self_check(s, {**ALL_PASS, "patches": {"result": "fail"}}, province="35"), FUJIAN
    )
    with ops_db.engine.begin() as connection:  # a refused request in the hub's own audit log
        ops_db.audit.append(
            connection,
            AuditEntry("exchange.upload", "batch", "refused", at=shanghai(2026, 12, 3, 11)),
        )
    ops_db.clock.now = shanghai(2026, 12, 31, 12)
    december = month_period(2026, 12)
    with ops_db.engine.connect() as connection:
        report = security_bulletin(connection, december, ops_db.clock.now)
    summary, incidents, findings, checks = report.sections
    assert summary.rows == [["35", 1, 1, 1, 1, 0, 1]]
    assert [r[2] for r in incidents.rows] == ["前置机发现木马"] and incidents.rows[0][3] == "2026-12-03 08:00"
    assert [r[2] for r in findings.rows] == ["防火墙全通", "exchange.upload（拒绝）"]
    assert checks.rows[0][5] == ITEMS["patches"]
    write_pdf(report, tmp_path / "b.pdf")
    text = "".join(page.extract_text() for page in PdfReader(tmp_path / "b.pdf").pages)
    assert "信息安全通报（2026-12）" in text and "前置机发现木马" in text
    write_xlsx(report, tmp_path / "b.xlsx")
    assert (tmp_path / "b.xlsx").read_bytes().startswith(b"PK")
    (told,) = ops_db.run(lambda s: publish_security_bulletin(s, december))
    assert told.province == "35" and "安全事件 1 起" in told.title
    assert ops_db.run(lambda s: publish_security_bulletin(s, december)) == []  # once per period
    with ops_db.engine.connect() as connection:
        assert "security_bulletin" in {n.kind for n in list_notices(connection, "35")}
