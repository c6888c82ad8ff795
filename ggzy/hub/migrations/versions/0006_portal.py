"""portal: projection of rejected records with their rule codes, its cursor, and the latency index on records

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "portal_rejections",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("feed_id", sa.BigInteger(), nullable=False),
        sa.Column("item", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=True),
        sa.Column("channel", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rules", sa.String(length=1024), nullable=False),
        sa.Column("findings", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_rejections")),
        sa.UniqueConstraint("feed_id", "item", name="uq_portal_rejections_item"),
    )
    op.create_index("ix_portal_rejections_province_day", "portal_rejections", ["province", "day"])
    op.create_index("ix_portal_rejections_day", "portal_rejections", ["day"])
    op.create_index("ix_portal_rejections_table_key", "portal_rejections", ["table_name", "key"])
    op.create_table(
        "portal_rejection_rules",
        sa.Column("rule_code", sa.String(length=48), nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("rejection_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "rule_code", "province", "day", "rejection_id", name=op.f("pk_portal_rejection_rules")
        ),
    )
    op.create_table(
        "portal_cursors",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_portal_cursors")),
    )
    # The wider index answers the same (province, received_at) ranges as the one it replaces, and
    # the latency columns come from the index itself: one index to maintain on ingest, not two.
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_index("ix_records_province_received")
        batch_op.create_index(
            "ix_records_province_received_latency", ["province", "received_at", "channel", "published_at"]
        )


def downgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_index("ix_records_province_received_latency")
        batch_op.create_index("ix_records_province_received", ["province", "received_at"])
    op.drop_table("portal_cursors")
    op.drop_table("portal_rejection_rules")
    op.drop_index("ix_portal_rejections_table_key", table_name="portal_rejections")
    op.drop_index("ix_portal_rejections_day", table_name="portal_rejections")
    op.drop_index("ix_portal_rejections_province_day", table_name="portal_rejections")
    op.drop_table("portal_rejections")
