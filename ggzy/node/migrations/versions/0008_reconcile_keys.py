"""reconciliation: keep key, version and content digest of records the disk guard removes

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 10:00:00.000000

``reconcile_keys`` holds, for each key whose accepted rows were removed, the latest version the hub
accepted, its content digest and the moment the hub files it under; ``reconcile_results`` counts
records whose content differs at the same version. Rows removed before this migration are gone: a
reconciliation of their days may still list them as unknown locally.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reconcile_keys",
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("op", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("filed_day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("table_name", "key", name=op.f("pk_reconcile_keys")),
    )
    op.create_index("ix_reconcile_keys_day", "reconcile_keys", ["filed_day", "table_name"])
    with op.batch_alter_table("reconcile_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_differs", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("reconcile_results", schema=None) as batch_op:
        batch_op.drop_column("content_differs")
    op.drop_index("ix_reconcile_keys_day", table_name="reconcile_keys")
    op.drop_table("reconcile_keys")
