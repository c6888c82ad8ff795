"""rectification answers: a province's reply to an order, with its evidence file

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-10 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ops_rectification_answers",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("rectification_id", _ID, nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_by", sa.String(length=128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("evidence_name", sa.String(length=255), nullable=True),
        sa.Column("evidence_type", sa.String(length=100), nullable=True),
        sa.Column("evidence_size", sa.Integer(), nullable=True),
        sa.Column("evidence_sha256", sa.String(length=64), nullable=True),
        sa.Column("evidence", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_rectification_answers")),
    )
    op.create_index(
        "ix_ops_rectification_answers_order",
        "ops_rectification_answers",
        ["rectification_id", "answered_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_ops_rectification_answers_order", table_name="ops_rectification_answers")
    op.drop_table("ops_rectification_answers")
