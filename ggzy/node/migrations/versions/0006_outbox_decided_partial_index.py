"""outbox: index decided rows only (intake never touches ix_outbox_state_decided)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 22:40:00.000000

Every reader of ``ix_outbox_state_decided`` (clean-up, repair rate, status, latency) compares
``decided_at``, so rows not yet decided need not be in it; intake inserts only such rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_DECIDED = sa.text("decided_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_index("ix_outbox_state_decided")
        batch_op.create_index(
            "ix_outbox_state_decided",
            ["state", "decided_at"],
            unique=False,
            sqlite_where=_DECIDED,
            postgresql_where=_DECIDED,
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_index("ix_outbox_state_decided")
        batch_op.create_index("ix_outbox_state_decided", ["state", "decided_at"], unique=False)
