"""operations records: absences, training, notices to provinces, node versions and upgrades, self-checks, change requests

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 09:00:00.000000

Art. 29–30 (absences of the people on the roster, training), notices to provinces with their
e-mail/webhook deliveries, Art. 13 (software, OS, Python and database versions of each node as its
heartbeats report them, the approved versions, upgrades recorded by the national side), Art. 20
(security self-checks) and Art. 22 (change requests with a pre-launch security check and a second
person's approval). New tables only: nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def _id() -> sa.Column[int]:
    return sa.Column("id", _ID, autoincrement=True, nullable=False)


def upgrade() -> None:
    op.create_table(
        "ops_roster_absences",
        _id(),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("cancelled_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_roster_absences")),
    )
    op.create_index(
        "ix_ops_roster_absences_province_starts", "ops_roster_absences", ["province", "starts_on"]
    )
    op.create_table(
        "ops_trainings",
        _id(),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("topic", sa.String(length=16), nullable=False),
        sa.Column("participants", _JSON, nullable=False),
        sa.Column("hours", sa.Float(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_trainings")),
    )
    op.create_index("ix_ops_trainings_province_held", "ops_trainings", ["province", "held_on"])
    op.create_table(
        "ops_notices",
        _id(),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), server_default="", nullable=False),
        sa.Column("link", sa.String(length=500), server_default="", nullable=False),
        sa.Column("ref", sa.String(length=100), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("read_at", _TS, nullable=True),
        sa.Column("read_by", sa.String(length=128), nullable=True),
        sa.Column("delivered_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_notices")),
        sa.UniqueConstraint("province", "ref", name="uq_ops_notices_province_ref"),
    )
    op.create_index("ix_ops_notices_province_read", "ops_notices", ["province", "read_at"])
    op.create_index("ix_ops_notices_delivered", "ops_notices", ["delivered_at"])
    op.create_table(
        "ops_notice_deliveries",
        _id(),
        sa.Column("notice_id", _ID, nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_notice_deliveries")),
    )
    op.create_index(op.f("ix_ops_notice_deliveries_notice_id"), "ops_notice_deliveries", ["notice_id"])
    op.create_table(
        "ops_node_versions",
        _id(),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("seen_at", _TS, nullable=False),
        sa.Column("software", sa.String(length=200), nullable=False),
        sa.Column("os", sa.String(length=200), server_default="", nullable=False),
        sa.Column("python", sa.String(length=200), server_default="", nullable=False),
        sa.Column("database", sa.String(length=200), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_node_versions")),
    )
    op.create_index("ix_ops_node_versions_node_seen", "ops_node_versions", ["node_id", "seen_at"])
    op.create_table(
        "ops_approved_versions",
        _id(),
        sa.Column("component", sa.String(length=16), nullable=False),
        sa.Column("pattern", sa.String(length=200), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("approved_at", _TS, nullable=False),
        sa.Column("approved_by", sa.String(length=128), nullable=False),
        sa.Column("withdrawn_at", _TS, nullable=True),
        sa.Column("withdrawn_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_approved_versions")),
    )
    op.create_table(
        "ops_node_upgrades",
        _id(),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("component", sa.String(length=16), nullable=False),
        sa.Column("from_version", sa.String(length=200), server_default="", nullable=False),
        sa.Column("to_version", sa.String(length=200), nullable=False),
        sa.Column("performed_at", _TS, nullable=False),
        sa.Column("performed_by", sa.String(length=128), nullable=False),
        sa.Column("change_id", _ID, nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_node_upgrades")),
    )
    op.create_index("ix_ops_node_upgrades_node_performed", "ops_node_upgrades", ["node_id", "performed_at"])
    op.create_table(
        "ops_self_checks",
        _id(),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("performed_on", sa.Date(), nullable=True),
        sa.Column("items", _JSON, nullable=False),
        sa.Column("findings", sa.Text(), server_default="", nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("performed_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_self_checks")),
    )
    op.create_index("ix_ops_self_checks_province_due", "ops_self_checks", ["province", "due_on"])
    op.create_table(
        "ops_change_requests",
        _id(),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("component", sa.String(length=16), nullable=True),
        sa.Column("to_version", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("requested_at", _TS, nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("check_items", _JSON, nullable=True),
        sa.Column("checked_at", _TS, nullable=True),
        sa.Column("checked_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", _TS, nullable=True),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decision_note", sa.Text(), server_default="", nullable=False),
        sa.Column("result_at", _TS, nullable=True),
        sa.Column("result_by", sa.String(length=128), nullable=True),
        sa.Column("result_note", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_change_requests")),
    )
    op.create_index(
        "ix_ops_change_requests_province_requested",
        "ops_change_requests",
        ["province", "requested_at"],
    )


def downgrade() -> None:
    for table in (
        "ops_change_requests",
        "ops_self_checks",
        "ops_node_upgrades",
        "ops_approved_versions",
        "ops_node_versions",
        "ops_notice_deliveries",
        "ops_notices",
        "ops_trainings",
        "ops_roster_absences",
    ):
        op.drop_table(table)
