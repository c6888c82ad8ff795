"""accounts, second round (issue 16): second-factor counter, end dates, ID key, unknown-name counters,
second-person approvals, notices to auditors; TRUNCATE refused on the audit tables (PostgreSQL)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

from alembic import op

from ggzy.security.accounts.migration import downgrade_accounts, upgrade_accounts

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    upgrade_accounts(op)


def downgrade() -> None:
    downgrade_accounts(op)
