"""the node portal's history: heartbeat samples and per-table reconciliation results

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node_samples",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("beat_ok", sa.Boolean(), nullable=False),
        sa.Column("disk_used_ratio", sa.Float(), nullable=True),
        sa.Column("waiting_1", sa.Integer(), nullable=False),
        sa.Column("waiting_2", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_samples")),
    )
    op.create_index(op.f("ix_node_samples_at"), "node_samples", ["at"], unique=False)
    op.create_table(
        "reconcile_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("local_count", sa.Integer(), nullable=False),
        sa.Column("hub_count", sa.Integer(), nullable=False),
        sa.Column("consistent", sa.Boolean(), nullable=False),
        sa.Column("missing_at_hub", sa.Integer(), nullable=False),
        sa.Column("unknown_locally", sa.Integer(), nullable=False),
        sa.Column("version_mismatch", sa.Integer(), nullable=False),
        sa.Column("in_flight", sa.Integer(), nullable=False),
        sa.Column("resent", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconcile_results")),
    )
    op.create_index("ix_reconcile_results_day", "reconcile_results", ["day", "table_name"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_reconcile_results_day", table_name="reconcile_results")
    op.drop_table("reconcile_results")
    op.drop_index(op.f("ix_node_samples_at"), table_name="node_samples")
    op.drop_table("node_samples")
