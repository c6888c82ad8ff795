"""Automatic incidents: each trigger opens one incident, clears it, and the roster is told by email
(a local aiosmtpd server) and webhook (a local HTTP receiver)."""

from __future__ import annotations

import datetime as dt
from email.header import decode_header, make_header
from typing import Any

import pytest
from opsdb import OpsDb, shanghai
from sqlalchemy import Connection, insert, select
from tests_free_port import free_port

from ggzy.hub.models import ops_tables, stats_daily
from ggzy.hub.ops.detect import run_detection
from ggzy.hub.ops.incidents import (
    Classification,
    FaultReport,
    advance_incident,
    file_fault_report,
    list_incidents,
    unreported_incidents,
)
from ggzy.hub.ops.roster import set_entry
from ggzy.hub.ops.session import Actor, OpsError
from ggzy.store.database import writing

FUJIAN = Actor("fj-op", "operator", province="35")


class FakeBackups:
    def __init__(self, verified: dt.datetime | None) -> None:
        self.verified = verified

    def verified_at(self, connection: Connection, province: str, before: dt.datetime) -> dt.datetime | None:
        return self.verified


def _detect(db: OpsDb, backups: Any = None) -> Any:
    return run_detection(
        db.engine, db.audit, db.settings, clock=db.clock, backups=backups or FakeBackups(db.clock.now)
    )


def _open(db: OpsDb, trigger: str) -> list[Any]:
    with db.engine.connect() as connection:
        return [i for i in list_incidents(connection) if i.trigger == trigger and i.status == "reported"]


@pytest.fixture
def node(ops_db: OpsDb) -> OpsDb:
    ops_db.add_node("fj-01", "35", shanghai(2026, 11, 1))
    ops_db.clock.now = shanghai(2026, 11, 5, 12)
    return ops_db


def test_a_silent_node_opens_one_incident_and_recovers_when_it_beats(node: OpsDb) -> None:
    node.beat("fj-01", "35", shanghai(2026, 11, 5, 11, 58))
    assert not _detect(node).opened  # 120 s of silence is below the 300 s threshold
    node.beat("fj-01", "35", shanghai(2026, 11, 5, 11, 59))
    node.clock.now = shanghai(2026, 11, 5, 12, 10)  # 11 minutes since the last beat
    first = _detect(node)
    assert [i.trigger for i in first.opened] == ["node_down"]
    assert not _detect(node).opened  # still down: the same incident, no second one
    node.beat("fj-01", "35", shanghai(2026, 11, 5, 12, 11))
    node.clock.now = shanghai(2026, 11, 5, 12, 11)
    assert [i.trigger for i in _detect(node).recovered] == ["node_down"]


def test_approved_maintenance_suppresses_the_node_down_incident(node: OpsDb) -> None:
    from ggzy.hub.ops.outages import OutageKind, notify_outage

    node.beat("fj-01", "35", shanghai(2026, 11, 5, 11))
    node.clock.now = shanghai(2026, 11, 3)
    node.run(
        lambda s: notify_outage(
            s, "35", OutageKind.POWER, shanghai(2026, 11, 5, 11), shanghai(2026, 11, 5, 13), "停电"
        )
    )
    node.clock.now = shanghai(2026, 11, 5, 12)
    assert not [i for i in _detect(node).opened if i.trigger == "node_down"]


def test_realtime_records_waiting_past_ten_minutes(node: OpsDb) -> None:
    node.beat("fj-01", "35", shanghai(2026, 11, 5, 11, 59, 50), oldest_unsent={"1": 599.0})
    assert not [i for i in _detect(node).opened if i.trigger == "realtime_late"]
    node.beat("fj-01", "35", shanghai(2026, 11, 5, 11, 59, 55), oldest_unsent={"1": 601.0, "2": 9000.0})
    assert [i.trigger for i in _detect(node).opened] == ["realtime_late"]


def test_disk_above_ninety_percent(node: OpsDb) -> None:
    node.beat("fj-01", "35", shanghai(2026, 11, 5, 11, 59), disk=0.90)
    assert not _detect(node).opened
    node.beat("fj-01", "35", shanghai(2026, 11, 5, 11, 59, 30), disk=0.91)
    opened = _detect(node).opened
    assert [i.trigger for i in opened] == ["disk"] and opened[0].detail["disk_used_ratio"] == 0.91


def test_a_jump_of_the_error_rate(node: OpsDb) -> None:
    node.beat("fj-01", "35", shanghai(2026, 11, 5, 11, 59))

    def day(day: dt.date, received: int, rejected: int) -> dict[str, Any]:
        return {
            "province": "35",
            "table_name": "TENDER_PROJECT",
            "day": day,
            "channel": 1,
            "received": received,
            "accepted": received - rejected,
            "rejected": rejected,
        }

    with writing(node.engine) as connection:
        connection.execute(insert(stats_daily), [day(dt.date(2026, 11, d), 100, 2) for d in range(1, 5)])
        connection.execute(insert(stats_daily), [day(dt.date(2026, 11, 5), 100, 11)])  # +9 points: not yet
    assert not _detect(node).opened
    with writing(node.engine) as connection:
        connection.execute(
            stats_daily.update().where(stats_daily.c.day == dt.date(2026, 11, 5)).values(rejected=12)
        )
    opened = _detect(node).opened
    assert [i.trigger for i in opened] == ["error_rate"] and opened[0].province == "35"


def test_backups_not_verified_for_n_days(node: OpsDb) -> None:
    node.beat("fj-01", "35", shanghai(2026, 11, 5, 11, 59))
    recent = FakeBackups(node.clock.now - dt.timedelta(days=6, hours=23))
    assert not _detect(node, recent).opened
    stale = FakeBackups(node.clock.now - dt.timedelta(days=7, hours=1))
    assert [i.trigger for i in _detect(node, stale).opened] == ["backup"]
    assert [i.trigger for i in _detect(node, FakeBackups(node.clock.now)).recovered] == ["backup"]


def test_the_heartbeat_is_the_default_source_of_backup_verification(node: OpsDb) -> None:
    node.beat(
        "fj-01",
        "35",
        shanghai(2026, 11, 5, 11, 59),
        extra={"backup_verified_at": shanghai(2026, 11, 4).isoformat()},
    )
    run = run_detection(node.engine, node.audit, node.settings, clock=node.clock)
    assert not [i for i in run.opened if i.trigger == "backup"]
    node.clock.now = shanghai(2026, 11, 12)
    node.beat(
        "fj-01", "35", shanghai(2026, 11, 12), extra={"backup_verified_at": shanghai(2026, 11, 4).isoformat()}
    )
    run = run_detection(node.engine, node.audit, node.settings, clock=node.clock)
    assert [i.trigger for i in run.opened] == ["backup"]


# --- notification ---


def test_an_incident_is_mailed_and_posted_to_the_roster(node: OpsDb, smtp: Any, webhook: Any) -> None:
    inbox, port = smtp
    posted, url = webhook
    node.settings = node.settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "webhook_url": url,
            "national_duty_emails": ["duty@nation.example"],
        }
    )
    node.run(
        lambda s: set_entry(
            s,
            "35",
            "duty",
            "primary",
            name="张三",
            phone="0591-87654321",
            mobile="13812345678",
            email="zs@fj.example",
        )
    )
    node.run(
        lambda s: set_entry(
            s,
            "35",
            "network",
            "primary",
            name="李四",
            phone="0591-87654322",
            mobile="13912345678",
            email="ls@fj.example",
        )
    )
    node.beat("fj-01", "35", shanghai(2026, 11, 5, 11, 59), disk=0.97)
    result = _detect(node)
    assert [i.trigger for i in result.opened] == ["disk"]
    assert len(inbox.messages) == 1
    rcpt, message = inbox.messages[0]
    assert rcpt == ["duty@nation.example", "zs@fj.example"]  # network staff are not on the duty list
    assert "磁盘使用率" in str(make_header(decode_header(message["Subject"])))
    assert "fj-01" in message.get_payload(decode=True).decode()
    assert posted and posted[0]["incident"]["trigger"] == "disk"
    with node.engine.connect() as connection:
        sent = connection.execute(
            select(ops_tables.notifications.c.channel, ops_tables.notifications.c.ok)
        ).all()
    assert sorted(sent) == [("email", True), ("webhook", True)]


def test_a_mail_server_that_is_down_is_recorded_not_fatal(node: OpsDb) -> None:
    node.settings = node.settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": free_port(), "national_duty_emails": ["d@x.example"]}
    )
    node.beat("fj-01", "35", shanghai(2026, 11, 5, 11, 59), disk=0.97)
    result = _detect(node)
    (delivery,) = result.deliveries[result.opened[0].id]
    assert delivery.channel == "email" and not delivery.ok and delivery.error


# --- fault reports and the workflow ---


def test_a_province_reports_an_automatic_incident_and_walks_the_workflow(node: OpsDb) -> None:
    node.beat("fj-01", "35", shanghai(2026, 11, 5, 11, 59), disk=0.97)
    (incident,) = _detect(node).opened
    with node.engine.connect() as connection:
        assert [i.id for i, overdue in unreported_incidents(connection, node.clock.now, 24)] == [incident.id]
        node.clock.now += dt.timedelta(hours=25)
        assert unreported_incidents(connection, node.clock.now, 24)[0][1] is True  # overdue now
    with pytest.raises(OpsError) as refused:
        node.run(lambda s: advance_incident(s, incident.id, "closed"), FUJIAN)
    assert refused.value.code == "E-OPS-CLOSE-REPORT"
    report = FaultReport(
        "前置机磁盘满",
        Classification.EQUIPMENT,
        incident.started_at,
        cause="日志未清理",
        corrective_actions="配置日志轮转",
    )
    node.run(lambda s: file_fault_report(s, "35", report, incident.id), FUJIAN)
    handled = node.run(lambda s: advance_incident(s, incident.id, "handling"), FUJIAN)
    assert handled.handling_at == node.clock.now
    with pytest.raises(OpsError) as backwards:
        node.run(lambda s: advance_incident(s, incident.id, "reported"), FUJIAN)
    assert backwards.value.code == "E-OPS-WORKFLOW"
    closed = node.run(lambda s: advance_incident(s, incident.id, "closed"), FUJIAN)
    assert closed.status == "closed" and closed.closed_at == node.clock.now and closed.ended_at is not None
    with node.engine.connect() as connection:
        assert unreported_incidents(connection, node.clock.now, 24) == []


def test_a_province_cannot_report_for_another(node: OpsDb) -> None:
    report = FaultReport("x", Classification.OTHER, shanghai(2026, 11, 5))
    with pytest.raises(OpsError) as refused:
        node.run(lambda s: file_fault_report(s, "11", report), FUJIAN)
    assert refused.value.code == "E-OPS-SCOPE" and refused.value.status == 403


def test_the_hub_probes_nodes_for_network_availability(node: OpsDb) -> None:
    import httpx

    from ggzy.hub.ops.probes import probe_nodes

    node.add_node("bj-01", "11", shanghai(2026, 11, 1))
    settings = node.settings.model_copy(
        update={
            "node_probe_urls": {
                "fj-01": "http://fj.example/healthz",
                "bj-01": "http://bj.example/healthz",
                "gone": "http://x",
            }
        }
    )
    answers = {"fj.example": 200, "bj.example": 503}
    client = httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(answers[request.url.host]))
    )
    rows = probe_nodes(node.engine, settings, now=node.clock, http=client)
    assert sorted((r["node_id"], r["ok"]) for r in rows) == [("bj-01", False), ("fj-01", True)]
    with node.engine.connect() as connection:
        stored = connection.execute(select(ops_tables.probes.c.province, ops_tables.probes.c.error)).all()
    assert sorted(stored, key=lambda r: r[0]) == [("11", "HTTP 503"), ("35", None)]
