"""Schema steps of the accounts' second security round, shared by the hub's and the node's migrations.

Both databases hold the same account tables (``define_account_tables``); hub migration 0011 and node
migration 0009 call these so the two stay one schema. The audit tables also get a PostgreSQL
statement trigger refusing TRUNCATE (row triggers never see it).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

__all__ = ["downgrade_accounts", "upgrade_accounts"]

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_AUDIT_TABLES = ("audit_log", "audit_checkpoints", "audit_archives")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade_accounts(op: Any) -> None:
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.add_column(sa.Column("id_key", sa.String(length=96), nullable=True))
        batch_op.add_column(sa.Column("totp_failures", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("valid_until", _timestamp(), nullable=True))
        batch_op.create_unique_constraint(op.f("uq_accounts_id_key"), ["id_key"])
    # an account made with an ID number already names its person by the keyed hash
    op.execute("UPDATE accounts SET id_key = person_key WHERE person_key LIKE 'id:%'")
    # privileged accounts carry an end date from now on: the longest default term, counted from the
    # upgrade (an older start would lock out today's administrators at once)
    op.get_bind().execute(
        sa.text(
            "UPDATE accounts SET valid_until = :until "
            "WHERE role IN ('sysadmin', 'auditor') AND valid_until IS NULL"
        ),
        {"until": dt.datetime.now(dt.UTC) + dt.timedelta(days=365)},
    )
    op.create_table(
        "sign_in_unknown_names",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", _timestamp(), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sign_in_unknown_names")),
    )
    op.create_table(
        "account_approvals",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("change", _JSON, nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", _timestamp(), nullable=False),
        sa.Column("expires_at", _timestamp(), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_at", _timestamp(), nullable=True),
        sa.Column("used_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_approvals")),
    )
    op.create_index("ix_account_approvals_account", "account_approvals", ["account", "action"], unique=False)
    op.create_table(
        "account_notices",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("at", _timestamp(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("seen_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_notices")),
    )
    op.create_index("ix_account_notices_account", "account_notices", ["account", "seen_at"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        for table in _AUDIT_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION ggzy_audit_append_only()"
            )


def downgrade_accounts(op: Any) -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _AUDIT_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    op.drop_index("ix_account_notices_account", table_name="account_notices")
    op.drop_table("account_notices")
    op.drop_index("ix_account_approvals_account", table_name="account_approvals")
    op.drop_table("account_approvals")
    op.drop_table("sign_in_unknown_names")
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_constraint(op.f("uq_accounts_id_key"), type_="unique")
        batch_op.drop_column("valid_until")
        batch_op.drop_column("totp_failures")
        batch_op.drop_column("id_key")
