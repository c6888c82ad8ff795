"""The operations tables, defined on the hub's metadata by :func:`define_ops_tables` (migrations hub 0005, 0009)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["OpsTables", "define_ops_tables"]

Json = JSON().with_variant(JSONB(), "postgresql")
Timestamp = DateTime(timezone=True)
Id = BigInteger().with_variant(Integer(), "sqlite")


@dataclass(frozen=True, slots=True)
class OpsTables:
    outage_notices: Table
    incidents: Table
    notifications: Table
    plans: Table
    plan_activations: Table
    drills: Table
    roster: Table
    roster_history: Table
    register: Table
    inspections: Table
    rectifications: Table
    probes: Table
    # hub migration 0009
    absences: Table
    trainings: Table
    notices: Table
    notice_deliveries: Table
    node_versions: Table
    approved_versions: Table
    node_upgrades: Table
    self_checks: Table
    change_requests: Table
    rectification_answers: Table


def _id() -> Column[int]:
    return Column("id", Id, primary_key=True, autoincrement=True)


def define_ops_tables(metadata: MetaData) -> OpsTables:
    outage_notices = Table(
        "ops_outage_notices",
        metadata,
        _id(),
        Column("province", String(2), nullable=False),
        Column("kind", String(16), nullable=False),  # power | relocation | cutover | maintenance
        Column("starts_at", Timestamp, nullable=False),
        Column("ends_at", Timestamp, nullable=False),
        Column("impact", Text, nullable=False),
        Column("notified_at", Timestamp, nullable=False),
        Column("in_time", Boolean, nullable=False),  # notified at least the lead time ahead: excluded
        Column("status", String(16), nullable=False),  # active | withdrawn
        Column("created_by", String(128), nullable=False),
        Index("ix_ops_outage_notices_province_starts", "province", "starts_at"),
    )
    incidents = Table(
        "ops_incidents",
        metadata,
        _id(),
        Column("province", String(2), nullable=False),
        Column("node_id", String(64)),
        Column("origin", String(8), nullable=False),  # auto | report
        Column("trigger", String(24)),  # node_down | error_rate | realtime_late | disk | backup
        Column("dedupe_key", String(128)),  # one open automatic incident per trigger and subject
        Column("classification", String(16)),  # power | link | equipment | software | security | other
        Column("title", String(300), nullable=False),
        Column("impact", Text, nullable=False, server_default=""),
        Column("cause", Text, nullable=False, server_default=""),
        Column("handling", Text, nullable=False, server_default=""),
        Column("lessons", Text, nullable=False, server_default=""),
        Column("corrective_actions", Text, nullable=False, server_default=""),
        Column("started_at", Timestamp, nullable=False),
        Column("ended_at", Timestamp),
        Column("status", String(16), nullable=False),  # reported | handling | recovered | closed
        Column("reported_at", Timestamp, nullable=False),
        Column("handling_at", Timestamp),
        Column("recovered_at", Timestamp),
        Column("closed_at", Timestamp),
        Column("fault_reported_at", Timestamp),  # the province's fault report (故障报告) was filed
        Column("detail", Json, nullable=False),
        Index("ix_ops_incidents_province_started", "province", "started_at"),
        Index("ix_ops_incidents_dedupe", "dedupe_key", "status"),
    )
    notifications = Table(
        "ops_notifications",
        metadata,
        _id(),
        Column("incident_id", Id, nullable=False, index=True),
        Column("channel", String(8), nullable=False),  # email | webhook
        Column("target", String(500), nullable=False),
        Column("at", Timestamp, nullable=False),
        Column("ok", Boolean, nullable=False),
        Column("error", Text),
    )
    plans = Table(
        "ops_plans",
        metadata,
        _id(),
        Column("province", String(2), nullable=False),
        Column("version", Integer, nullable=False),
        Column("title", String(300), nullable=False),
        Column("activation_procedure", Text, nullable=False),
        Column("closing_procedure", Text, nullable=False),
        Column("content", Text, nullable=False, server_default=""),
        Column("effective_on", Date, nullable=False),
        Column("created_at", Timestamp, nullable=False),
        Column("created_by", String(128), nullable=False),
        UniqueConstraint("province", "version", name="uq_ops_plans_version"),
    )
    plan_activations = Table(
        "ops_plan_activations",
        metadata,
        _id(),
        Column("plan_id", Id, nullable=False, index=True),
        Column("incident_id", Id),
        Column("activated_at", Timestamp, nullable=False),
        Column("closed_at", Timestamp),
        Column("note", Text, nullable=False, server_default=""),
    )
    drills = Table(
        "ops_drills",
        metadata,
        _id(),
        Column("province", String(2), nullable=False),
        Column("plan_id", Id),
        Column("held_on", Date, nullable=False),
        Column("scenario", String(300), nullable=False),
        Column("participants", Json, nullable=False),
        Column("recovery_seconds", Float),
        Column("data_loss_records", Integer),
        Column("findings", Text, nullable=False, server_default=""),
        Column("origin", String(8), nullable=False),  # manual | tool (ggzy drill)
        Column("detail", Json, nullable=False),
        Column("created_at", Timestamp, nullable=False),
        Column("created_by", String(128), nullable=False),
        Index("ix_ops_drills_province_held", "province", "held_on"),
    )
    roster = Table(
        "ops_roster",
        metadata,
        Column("province", String(2), primary_key=True),
        Column("post", String(24), primary_key=True),
        Column("rank", String(8), primary_key=True),  # primary | backup
        Column("name", String(100), nullable=False),
        Column("phone", String(40), nullable=False, server_default=""),
        Column("mobile", String(40), nullable=False, server_default=""),
        Column("email", String(200), nullable=False, server_default=""),
        Column("updated_at", Timestamp, nullable=False),
        Column("updated_by", String(128), nullable=False),
    )
    roster_history = Table(
        "ops_roster_history",
        metadata,
        _id(),
        Column("province", String(2), nullable=False),
        Column("post", String(24), nullable=False),
        Column("rank", String(8), nullable=False),
        Column("action", String(8), nullable=False),  # set | remove
        Column("before", Json),
        Column("after", Json),
        Column("at", Timestamp, nullable=False),
        Column("by", String(128), nullable=False),
        Index("ix_ops_roster_history_province_at", "province", "at"),
    )
    register = Table(
        "ops_register",
        metadata,
        _id(),
        Column("province", String(2), nullable=False),
        Column("system_kind", String(16), nullable=False),  # service | trading | expert
        Column("system_code", String(100), nullable=False),
        Column("version", Integer, nullable=False),
        Column("data", Json, nullable=False),
        Column("recorded_at", Timestamp, nullable=False),
        Column("recorded_by", String(128), nullable=False),
        UniqueConstraint("province", "system_kind", "system_code", "version", name="uq_ops_register_version"),
    )
    inspections = Table(
        "ops_inspections",
        metadata,
        _id(),
        Column("province", String(2), nullable=False),
        Column("kind", String(12), nullable=False),  # scheduled | spot
        Column("planned_on", Date, nullable=False),
        Column("performed_at", Timestamp),
        Column("inspector", String(128), nullable=False),
        Column("checklist", Json, nullable=False),  # item → {"result": pass|fail|na, "note": text}
        Column("findings", Text, nullable=False, server_default=""),
        Column("follow_up", Text, nullable=False, server_default=""),
        Column("follow_up_due", Date),
        Column("followed_up_at", Timestamp),
        Column("status", String(12), nullable=False),  # planned | done | followed_up
        Column("created_at", Timestamp, nullable=False),
        Index("ix_ops_inspections_province_planned", "province", "planned_on"),
    )
    rectifications = Table(
        "ops_rectifications",
        metadata,
        _id(),
        Column("province", String(2), nullable=False),
        Column("condition", Integer, nullable=False),  # 1..8: the items of Art. 35
        Column("period", String(16), nullable=False),  # the assessment period that found it, or "inspection"
        Column("basis", Text, nullable=False),
        Column("evidence", String(500), nullable=False, server_default=""),
        Column("source", String(12), nullable=False),  # auto | inspector
        Column("issued_at", Timestamp, nullable=False),
        Column("deadline", Timestamp, nullable=False),
        Column("closed_at", Timestamp),
        Column("closing_note", Text, nullable=False, server_default=""),
        Column("issued_by", String(128), nullable=False),
        Index("ix_ops_rectifications_province_condition", "province", "condition"),
    )
    probes = Table(
        "ops_probes",
        metadata,
        _id(),
        Column("node_id", String(64), nullable=False),
        Column("province", String(2), nullable=False),
        Column("at", Timestamp, nullable=False),
        Column("ok", Boolean, nullable=False),
        Column("latency_ms", Float),
        Column("error", Text),
        Index("ix_ops_probes_node_at", "node_id", "at"),
    )
    # A province's answer to an order, with its evidence file kept in the database (hub migration 0013):
    # backed up, restored and access-checked with everything else, and bounded by evidence_max_bytes.
    rectification_answers = Table(
        "ops_rectification_answers",
        metadata,
        _id(),
        Column("rectification_id", Id, nullable=False),
        Column("province", String(2), nullable=False),
        Column("answered_at", Timestamp, nullable=False),
        Column("answered_by", String(128), nullable=False),
        Column("text", Text, nullable=False),
        Column("evidence_name", String(255)),
        Column("evidence_type", String(100)),
        Column("evidence_size", Integer),
        Column("evidence_sha256", String(64)),
        Column("evidence", LargeBinary),
        Index("ix_ops_rectification_answers_order", "rectification_id", "answered_at"),
    )
    tables_0009 = _define_0009(metadata)
    return OpsTables(
        **tables_0009,
        outage_notices=outage_notices,
        incidents=incidents,
        notifications=notifications,
        plans=plans,
        plan_activations=plan_activations,
        drills=drills,
        roster=roster,
        roster_history=roster_history,
        register=register,
        inspections=inspections,
        rectifications=rectifications,
        probes=probes,
        rectification_answers=rectification_answers,
    )


def _define_0009(metadata: MetaData) -> dict[str, Table]:
    """Absences and training (Art. 29–30), notices to provinces, node versions and upgrades (Art. 13),
    security self-checks (Art. 20) and change requests with their pre-launch check (Art. 22)."""
    absences = Table(
        "ops_roster_absences",
        metadata,
        _id(),
        Column("province", String(2), nullable=False),
        Column("name", String(100), nullable=False),  # the person, as filed on the roster
        Column("starts_on", Date, nullable=False),  # Beijing days, both included
        Column("ends_on", Date, nullable=False),
        Column("reason", Text, nullable=False, server_default=""),
        Column("created_at", Timestamp, nullable=False),
        Column("created_by", String(128), nullable=False),
        Column("cancelled_at", Timestamp),
        Index("ix_ops_roster_absences_province_starts", "province", "starts_on"),
    )
    trainings = Table(
        "ops_trainings",
        metadata,
        _id(),
        Column("province", String(2), nullable=False),
        Column("held_on", Date, nullable=False),
        Column("subject", String(300), nullable=False),
        Column("topic", String(16), nullable=False),  # security | sharing | operations | emergency
        Column("participants", Json, nullable=False),
        Column("hours", Float),
        Column("created_at", Timestamp, nullable=False),
        Column("created_by", String(128), nullable=False),
        Index("ix_ops_trainings_province_held", "province", "held_on"),
    )
    notices = Table(
        "ops_notices",
        metadata,
        _id(),
        Column("province", String(2), nullable=False),
        Column("kind", String(24), nullable=False),  # order | bulletin | outage | assessment | message …
        Column("title", String(300), nullable=False),
        Column("body", Text, nullable=False, server_default=""),
        Column("link", String(500), nullable=False, server_default=""),
        Column("ref", String(100)),  # what it is about (rectification:12 …): told once per province
        Column("created_at", Timestamp, nullable=False),
        Column("created_by", String(128), nullable=False),
        Column("read_at", Timestamp),
        Column("read_by", String(128)),
        Column("delivered_at", Timestamp),  # e-mail/webhook attempted (see ops_notice_deliveries)
        UniqueConstraint("province", "ref", name="uq_ops_notices_province_ref"),
        Index("ix_ops_notices_province_read", "province", "read_at"),
        Index("ix_ops_notices_delivered", "delivered_at"),
    )
    notice_deliveries = Table(
        "ops_notice_deliveries",
        metadata,
        _id(),
        Column("notice_id", Id, nullable=False, index=True),
        Column("channel", String(8), nullable=False),  # email | webhook
        Column("target", String(500), nullable=False),
        Column("at", Timestamp, nullable=False),
        Column("ok", Boolean, nullable=False),
        Column("error", Text),
    )
    node_versions = Table(
        "ops_node_versions",
        metadata,
        _id(),
        Column("node_id", String(64), nullable=False),
        Column("province", String(2), nullable=False),
        Column("seen_at", Timestamp, nullable=False),  # the first beat that reported these versions
        Column("software", String(200), nullable=False),
        Column("os", String(200), nullable=False, server_default=""),
        Column("python", String(200), nullable=False, server_default=""),
        Column("database", String(200), nullable=False, server_default=""),
        Index("ix_ops_node_versions_node_seen", "node_id", "seen_at"),
    )
    approved_versions = Table(
        "ops_approved_versions",
        metadata,
        _id(),
        Column("component", String(16), nullable=False),  # software | os | python | database
        Column("pattern", String(200), nullable=False),  # exact, or a shell pattern such as 3.11.*
        Column("note", Text, nullable=False, server_default=""),
        Column("approved_at", Timestamp, nullable=False),
        Column("approved_by", String(128), nullable=False),
        Column("withdrawn_at", Timestamp),
        Column("withdrawn_by", String(128)),
    )
    node_upgrades = Table(
        "ops_node_upgrades",
        metadata,
        _id(),
        Column("node_id", String(64), nullable=False),
        Column("province", String(2), nullable=False),
        Column("component", String(16), nullable=False),
        Column("from_version", String(200), nullable=False, server_default=""),
        Column("to_version", String(200), nullable=False),
        Column("performed_at", Timestamp, nullable=False),
        Column("performed_by", String(128), nullable=False),
        Column("change_id", Id),
        Column("note", Text, nullable=False, server_default=""),
        Index("ix_ops_node_upgrades_node_performed", "node_id", "performed_at"),
    )
    self_checks = Table(
        "ops_self_checks",
        metadata,
        _id(),
        Column("province", String(2), nullable=False),
        Column("due_on", Date, nullable=False),
        Column("kind", String(12), nullable=False),  # scheduled | ad_hoc
        Column("performed_on", Date),
        Column("items", Json, nullable=False),  # item → {"result": pass|fail|na, "note": text}
        Column("findings", Text, nullable=False, server_default=""),
        Column("status", String(12), nullable=False),  # scheduled | done
        Column("created_at", Timestamp, nullable=False),
        Column("created_by", String(128), nullable=False),
        Column("performed_by", String(128)),
        Index("ix_ops_self_checks_province_due", "province", "due_on"),
    )
    change_requests = Table(
        "ops_change_requests",
        metadata,
        _id(),
        Column("province", String(2), nullable=False),
        Column("node_id", String(64)),  # a front-end node's upgrade (national side); else the platform's
        Column("kind", String(8), nullable=False),  # launch | upgrade
        Column("title", String(300), nullable=False),
        Column("description", Text, nullable=False, server_default=""),
        Column("component", String(16)),
        Column("to_version", String(200)),
        Column("status", String(12), nullable=False),  # requested | approved | rejected | done | failed
        Column("requested_at", Timestamp, nullable=False),
        Column("requested_by", String(128), nullable=False),
        Column("check_items", Json),  # the pre-launch security check: item → {"result", "note"}
        Column("checked_at", Timestamp),
        Column("checked_by", String(128)),
        Column("decided_at", Timestamp),
        Column("decided_by", String(128)),
        Column("decision_note", Text, nullable=False, server_default=""),
        Column("result_at", Timestamp),
        Column("result_by", String(128)),
        Column("result_note", Text, nullable=False, server_default=""),
        Index("ix_ops_change_requests_province_requested", "province", "requested_at"),
    )
    return {
        "absences": absences,
        "trainings": trainings,
        "notices": notices,
        "notice_deliveries": notice_deliveries,
        "node_versions": node_versions,
        "approved_versions": approved_versions,
        "node_upgrades": node_upgrades,
        "self_checks": self_checks,
        "change_requests": change_requests,
    }
