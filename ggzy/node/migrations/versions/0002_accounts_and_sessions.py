"""accounts and sessions of people (issue 5) and the intake API tokens of provincial systems

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 19:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _create_account_tables() -> None:
    op.create_table(
        "accounts",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("province", sa.String(length=2), nullable=True),
        sa.Column("person_key", sa.String(length=96), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("password_changed_at", _timestamp(), nullable=False),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("totp_secret", sa.Text(), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", _timestamp(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.Column("last_sign_in_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_accounts")),
        sa.UniqueConstraint("person_key", name=op.f("uq_accounts_person_key")),
    )
    op.create_table(
        "password_history",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("retired_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_history")),
    )
    op.create_index("ix_password_history_account", "password_history", ["account", "id"], unique=False)
    op.create_table(
        "people_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("province", sa.String(length=2), nullable=True),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("last_seen_at", _timestamp(), nullable=False),
        sa.Column("ended_at", _timestamp(), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_people_sessions")),
    )
    op.create_index(op.f("ix_people_sessions_account"), "people_sessions", ["account"], unique=False)
    op.create_table(
        "sign_in_attempts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("at", _timestamp(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_attempts")),
    )
    op.create_index("ix_sign_in_attempts_source_at", "sign_in_attempts", ["source", "at"], unique=False)


def _drop_account_tables() -> None:
    op.drop_index("ix_sign_in_attempts_source_at", table_name="sign_in_attempts")
    op.drop_table("sign_in_attempts")
    op.drop_index(op.f("ix_people_sessions_account"), table_name="people_sessions")
    op.drop_table("people_sessions")
    op.drop_index("ix_password_history_account", table_name="password_history")
    op.drop_table("password_history")
    op.drop_table("accounts")


def upgrade() -> None:
    _create_account_tables()
    op.create_table(
        "api_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("revoked_at", _timestamp(), nullable=True),
        sa.Column("last_used_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("name", name=op.f("uq_api_tokens_name")),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
    _drop_account_tables()
