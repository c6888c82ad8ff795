"""records blocked by a held one, a held-key index for supersession, alerts kept per condition

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 09:00:00.000000

``outbox.blocked_by``: a queued record that needs a record held for correction is set aside
(state ``blocked``) with the held row named, so it neither clogs its channel nor waits silently.
``ix_outbox_held_key``: held rows by key (a partial index: held rows are few), for intake to find
the held version a newer full version supersedes. ``alerts.condition`` and ``updated_at``: one open
alert per lasting condition, updated in place.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_HELD = sa.text("state = 'held'")


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.add_column(sa.Column("blocked_by", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_outbox_held_key",
            ["table_name", "key"],
            unique=False,
            sqlite_where=_HELD,
            postgresql_where=_HELD,
        )
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.add_column(sa.Column("condition", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Records set aside go back to the queue they came from (where they wait as before).
    op.execute("UPDATE outbox SET state = 'queued' WHERE state = 'blocked'")
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.drop_column("updated_at")
        batch_op.drop_column("condition")
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_index("ix_outbox_held_key")
        batch_op.drop_column("blocked_by")
