"""heartbeat aggregates: runs of up time, per-day sums and platform verdicts, kept with every beat

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 10:00:00.000000

The tables are filled from the heartbeats already stored (one pass over them, ordered by province
and time). Runs are cut at the default down threshold; a hub configured otherwise still gets exact
figures (``ggzy.hub.ops.uptime``: a reader splits a run whose gaps exceed its threshold).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("node_heartbeats", schema=None) as batch_op:
        batch_op.create_index("ix_node_heartbeats_province_received", ["province", "received_at"])
    op.create_table(
        "heartbeat_runs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("beats", sa.Integer(), nullable=False),
        sa.Column("max_gap_seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heartbeat_runs")),
    )
    op.create_index("ix_heartbeat_runs_node_last", "heartbeat_runs", ["node_id", "province", "last_at"])
    op.create_index("ix_heartbeat_runs_province_last", "heartbeat_runs", ["province", "last_at"])
    op.create_table(
        "heartbeat_days",
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("beats", sa.Integer(), nullable=False),
        sa.Column("failed_attempts", sa.BigInteger(), nullable=False),
        sa.Column("total_attempts", sa.BigInteger(), nullable=False),
        sa.Column("platform_beats", sa.Integer(), nullable=False),
        sa.Column("link_since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("province", "day", "node_id", name=op.f("pk_heartbeat_days")),
    )
    op.create_table(
        "heartbeat_platform_failing",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heartbeat_platform_failing")),
    )
    op.create_index(
        "ix_heartbeat_platform_failing_province_ended", "heartbeat_platform_failing", ["province", "ended_at"]
    )
    # The code of today fills them: the same pass `bench/portal.py` and the tests use.
    from ggzy.hub.ops.uptime import grace_of, rebuild_heartbeat_aggregates
    from ggzy.settings import OpsSettings

    rebuild_heartbeat_aggregates(op.get_bind(), grace_of(OpsSettings()))


def downgrade() -> None:
    op.drop_index("ix_heartbeat_platform_failing_province_ended", table_name="heartbeat_platform_failing")
    op.drop_table("heartbeat_platform_failing")
    op.drop_table("heartbeat_days")
    op.drop_index("ix_heartbeat_runs_province_last", table_name="heartbeat_runs")
    op.drop_index("ix_heartbeat_runs_node_last", table_name="heartbeat_runs")
    op.drop_table("heartbeat_runs")
    with op.batch_alter_table("node_heartbeats", schema=None) as batch_op:
        batch_op.drop_index("ix_node_heartbeats_province_received")
