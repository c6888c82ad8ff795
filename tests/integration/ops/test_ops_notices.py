"""Provinces are told: orders, 通报, national outages, assessment results and free messages become
notices of the province, mailed (a local aiosmtpd sink) and posted (a local webhook receiver) to its
roster, listed read/unread, and shown to ``ggzy node doctor``."""

from __future__ import annotations

from email.header import decode_header, make_header
from typing import Any

import pytest
from opsdb import NATIONAL, OpsDb, shanghai
from sqlalchemy import func, select

from ggzy.hub.models import audit_log, ops_tables
from ggzy.hub.ops.doctor import hub_findings
from ggzy.hub.ops.notices import (
    announce_national_outage,
    deliver_pending,
    list_notices,
    mark_all_read,
    mark_read,
    publish_notice_list,
    send_message,
    unread_count,
)
from ggzy.hub.ops.rectification import issue_order
from ggzy.hub.ops.roster import set_entry
from ggzy.hub.ops.session import Actor, OpsError

FUJIAN = Actor("fj-op", "operator", "35")
BEIJING = Actor("bj-op", "operator", "11")


@pytest.fixture
def two(ops_db: OpsDb) -> OpsDb:
    ops_db.add_node("fj-01", "35", shanghai(2026, 1, 1))
    ops_db.add_node("bj-01", "11", shanghai(2026, 1, 1))
    ops_db.clock.now = shanghai(2026, 12, 8, 9)
    return ops_db


def _kinds(db: OpsDb, province: str) -> list[str]:
    with db.engine.connect() as connection:
        return [n.kind for n in list_notices(connection, province)]


def test_an_order_and_its_place_on_the_notice_list_are_told_once(two: OpsDb) -> None:
    order = two.run(lambda s: issue_order(s, "35", 2, "合格率低于95%", deadline_days=0))
    assert _kinds(two, "35") == ["order"] and _kinds(two, "11") == []
    with two.engine.connect() as connection:
        (told,) = list_notices(connection, "35")
    assert f"#{order['id']}" in told.title and "2026-12-08" in told.body
    assert two.run(lambda s: publish_notice_list(s, s.now())) == []  # not overdue yet
    two.clock.now = shanghai(2026, 12, 9, 0, 0, 1)
    (bulletin,) = two.run(lambda s: publish_notice_list(s, s.now()))
    assert bulletin.kind == "bulletin" and "逾期未改正" in bulletin.title
    assert two.run(lambda s: publish_notice_list(s, s.now())) == []  # once per order and state


def test_national_outages_and_messages_reach_every_province_or_the_named_one(two: OpsDb) -> None:
    told = two.run(
        lambda s: announce_national_outage(
            s, shanghai(2026, 12, 12, 22), shanghai(2026, 12, 13, 2), "国家平台升级"
        )
    )
    assert sorted(n.province for n in told) == ["11", "35"]
    assert "2026-12-12 22:00 至 2026-12-13 02:00" in told[0].title  # Beijing time
    assert [n.province for n in two.run(lambda s: send_message(s, ["35"], "请核对十一月数据", ""))] == ["35"]
    with pytest.raises(OpsError) as provincial:
        two.run(lambda s: send_message(s, None, "越权", ""), FUJIAN)
    assert provincial.value.code == "E-OPS-NATIONAL"
    with pytest.raises(OpsError) as nowhere:
        two.run(lambda s: send_message(s, ["99"], "标题", ""))
    assert nowhere.value.code == "E-OPS-PROVINCE"
    with pytest.raises(OpsError) as empty:
        two.run(lambda s: send_message(s, ["35"], "  ", ""))
    assert empty.value.code == "E-OPS-FIELD-REQUIRED"


def test_only_the_province_marks_its_notices_read_and_each_read_is_audited(two: OpsDb) -> None:
    (fj,) = two.run(lambda s: send_message(s, ["35"], "通知一", "内容"))
    two.run(lambda s: send_message(s, ["35"], "通知二", ""))
    with pytest.raises(OpsError) as national:
        two.run(lambda s: mark_read(s, fj.id), NATIONAL)
    assert national.value.code == "E-OPS-NOTICE-READER"
    with pytest.raises(OpsError) as other:
        two.run(lambda s: mark_read(s, fj.id), BEIJING)
    assert other.value.code == "E-OPS-SCOPE"
    read = two.run(lambda s: mark_read(s, fj.id), FUJIAN)
    assert read.read_by == "fj-op" and read.read_at == two.clock.now
    with two.engine.connect() as connection:
        assert unread_count(connection, "35") == 1
        findings = hub_findings(connection, "35", two.settings, two.clock.now)
        assert [n["title_zh"] for n in findings["notices"]] == ["通知二"]  # what ggzy node doctor shows
    assert two.run(mark_all_read, FUJIAN) == 1
    with two.engine.connect() as connection:
        assert unread_count(connection, "35") == 0
        reads = connection.execute(
            select(func.count()).where(audit_log.c.action == "ops.notice.read")
        ).scalar_one()
    assert reads == 2


def test_notices_are_mailed_and_posted_to_the_province_roster_once(
    two: OpsDb, smtp: Any, webhook: Any
) -> None:
    inbox, port = smtp
    posted, url = webhook
    two.settings = two.settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "webhook_url": url,
            "national_duty_emails": ["d@n.example"],
        }
    )
    for post, name, mobile in (("lead_ops", "张三", "13812345678"), ("security", "李四", "13912345678")):
        two.run(
            lambda s, p=post, n=name, m=mobile: set_entry(
                s, "35", p, "primary", name=n, phone="0591-87654321", mobile=m, email=f"{m}@fj.example"
            ),
            FUJIAN,
        )
    two.run(lambda s: issue_order(s, "35", 8, "重大活动期间擅自变更配置"))
    done = deliver_pending(two.engine, two.audit, two.settings, clock=two.clock)
    assert [(d.channel, d.ok) for ds in done.values() for d in ds] == [("email", True), ("webhook", True)]
    ((rcpt, message),) = inbox.messages
    assert rcpt == [
        "13812345678@fj.example"
    ]  # the province's 运行负责人; not security staff, not national duty
    assert "整改通知" in str(make_header(decode_header(message["Subject"])))
    (payload,) = posted
    assert payload["event"] == "ops.notice" and payload["notice"]["province"] == "35"
    assert payload["notice"]["kind_zh"] == "整改通知"
    assert deliver_pending(two.engine, two.audit, two.settings, clock=two.clock) == {}  # nothing twice
    with two.engine.connect() as connection:
        rows = connection.execute(select(ops_tables.notice_deliveries)).all()
    assert {r.channel for r in rows} == {"email", "webhook"} and all(r.ok for r in rows)


def test_a_failed_delivery_is_recorded_not_lost(two: OpsDb) -> None:
    from tests_free_port import free_port

    two.settings = two.settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": free_port()})
    two.run(
        lambda s: set_entry(
            s,
            "35",
            "duty",
            "primary",
            name="王五",
            phone="0591-87654321",
            mobile="13700000003",
            email="w@fj.example",
        ),
        FUJIAN,
    )
    two.run(lambda s: send_message(s, ["35"], "测试", ""))
    (deliveries,) = deliver_pending(two.engine, two.audit, two.settings, clock=two.clock).values()
    assert deliveries[0].ok is False and deliveries[0].error
    with two.engine.connect() as connection:
        (notice,) = list_notices(connection, "35")
    assert notice.delivered_at is not None and notice.read_at is None  # still unread on the portal
