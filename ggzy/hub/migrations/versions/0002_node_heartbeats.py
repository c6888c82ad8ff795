"""node heartbeats

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "node_heartbeats",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("queue_depths", _JSON, nullable=False),
        sa.Column("oldest_unsent_seconds", sa.Float(), nullable=True),
        sa.Column("disk_used_ratio", sa.Float(), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("total_attempts", sa.Integer(), nullable=False),
        sa.Column("platform_ok", sa.Boolean(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("payload", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_heartbeats")),
    )
    op.create_index(
        "ix_node_heartbeats_node_received", "node_heartbeats", ["node_id", "received_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_node_heartbeats_node_received", table_name="node_heartbeats")
    op.drop_table("node_heartbeats")
