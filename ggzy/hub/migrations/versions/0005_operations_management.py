"""operations management: outages, incidents, plans, drills, roster, register, inspections, orders

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 19:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ops_drills",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("plan_id", _ID, nullable=True),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("scenario", sa.String(length=300), nullable=False),
        sa.Column("participants", _JSON, nullable=False),
        sa.Column("recovery_seconds", sa.Float(), nullable=True),
        sa.Column("data_loss_records", sa.Integer(), nullable=True),
        sa.Column("findings", sa.Text(), server_default="", nullable=False),
        sa.Column("origin", sa.String(length=8), nullable=False),
        sa.Column("detail", _JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_drills")),
    )
    op.create_index("ix_ops_drills_province_held", "ops_drills", ["province", "held_on"], unique=False)
    op.create_table(
        "ops_incidents",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=True),
        sa.Column("origin", sa.String(length=8), nullable=False),
        sa.Column("trigger", sa.String(length=24), nullable=True),
        sa.Column("dedupe_key", sa.String(length=128), nullable=True),
        sa.Column("classification", sa.String(length=16), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("impact", sa.Text(), server_default="", nullable=False),
        sa.Column("cause", sa.Text(), server_default="", nullable=False),
        sa.Column("handling", sa.Text(), server_default="", nullable=False),
        sa.Column("lessons", sa.Text(), server_default="", nullable=False),
        sa.Column("corrective_actions", sa.Text(), server_default="", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handling_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recovered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fault_reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_incidents")),
    )
    op.create_index("ix_ops_incidents_dedupe", "ops_incidents", ["dedupe_key", "status"], unique=False)
    op.create_index(
        "ix_ops_incidents_province_started", "ops_incidents", ["province", "started_at"], unique=False
    )
    op.create_table(
        "ops_inspections",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("planned_on", sa.Date(), nullable=False),
        sa.Column("performed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("inspector", sa.String(length=128), nullable=False),
        sa.Column("checklist", _JSON, nullable=False),
        sa.Column("findings", sa.Text(), server_default="", nullable=False),
        sa.Column("follow_up", sa.Text(), server_default="", nullable=False),
        sa.Column("follow_up_due", sa.Date(), nullable=True),
        sa.Column("followed_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_inspections")),
    )
    op.create_index(
        "ix_ops_inspections_province_planned", "ops_inspections", ["province", "planned_on"], unique=False
    )
    op.create_table(
        "ops_notifications",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("incident_id", _ID, nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_notifications")),
    )
    op.create_index(
        op.f("ix_ops_notifications_incident_id"), "ops_notifications", ["incident_id"], unique=False
    )
    op.create_table(
        "ops_outage_notices",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("impact", sa.Text(), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("in_time", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_outage_notices")),
    )
    op.create_index(
        "ix_ops_outage_notices_province_starts", "ops_outage_notices", ["province", "starts_at"], unique=False
    )
    op.create_table(
        "ops_plan_activations",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("plan_id", _ID, nullable=False),
        sa.Column("incident_id", _ID, nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_plan_activations")),
    )
    op.create_index(
        op.f("ix_ops_plan_activations_plan_id"), "ops_plan_activations", ["plan_id"], unique=False
    )
    op.create_table(
        "ops_plans",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("activation_procedure", sa.Text(), nullable=False),
        sa.Column("closing_procedure", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), server_default="", nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_plans")),
        sa.UniqueConstraint("province", "version", name="uq_ops_plans_version"),
    )
    op.create_table(
        "ops_probes",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_probes")),
    )
    op.create_index("ix_ops_probes_node_at", "ops_probes", ["node_id", "at"], unique=False)
    op.create_table(
        "ops_rectifications",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("condition", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("evidence", sa.String(length=500), server_default="", nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closing_note", sa.Text(), server_default="", nullable=False),
        sa.Column("issued_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_rectifications")),
    )
    op.create_index(
        "ix_ops_rectifications_province_condition",
        "ops_rectifications",
        ["province", "condition"],
        unique=False,
    )
    op.create_table(
        "ops_register",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("system_kind", sa.String(length=16), nullable=False),
        sa.Column("system_code", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_register")),
        sa.UniqueConstraint(
            "province", "system_kind", "system_code", "version", name="uq_ops_register_version"
        ),
    )
    op.create_table(
        "ops_roster",
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("post", sa.String(length=24), nullable=False),
        sa.Column("rank", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=40), server_default="", nullable=False),
        sa.Column("mobile", sa.String(length=40), server_default="", nullable=False),
        sa.Column("email", sa.String(length=200), server_default="", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("province", "post", "rank", name=op.f("pk_ops_roster")),
    )
    op.create_table(
        "ops_roster_history",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("post", sa.String(length=24), nullable=False),
        sa.Column("rank", sa.String(length=8), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("before", _JSON, nullable=True),
        sa.Column("after", _JSON, nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_roster_history")),
    )
    op.create_index(
        "ix_ops_roster_history_province_at", "ops_roster_history", ["province", "at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_ops_roster_history_province_at", table_name="ops_roster_history")
    op.drop_table("ops_roster_history")
    op.drop_table("ops_roster")
    op.drop_table("ops_register")
    op.drop_index("ix_ops_rectifications_province_condition", table_name="ops_rectifications")
    op.drop_table("ops_rectifications")
    op.drop_index("ix_ops_probes_node_at", table_name="ops_probes")
    op.drop_table("ops_probes")
    op.drop_table("ops_plans")
    op.drop_index(op.f("ix_ops_plan_activations_plan_id"), table_name="ops_plan_activations")
    op.drop_table("ops_plan_activations")
    op.drop_index("ix_ops_outage_notices_province_starts", table_name="ops_outage_notices")
    op.drop_table("ops_outage_notices")
    op.drop_index(op.f("ix_ops_notifications_incident_id"), table_name="ops_notifications")
    op.drop_table("ops_notifications")
    op.drop_index("ix_ops_inspections_province_planned", table_name="ops_inspections")
    op.drop_table("ops_inspections")
    op.drop_index("ix_ops_incidents_province_started", table_name="ops_incidents")
    op.drop_index("ix_ops_incidents_dedupe", table_name="ops_incidents")
    op.drop_table("ops_incidents")
    op.drop_index("ix_ops_drills_province_held", table_name="ops_drills")
    op.drop_table("ops_drills")
