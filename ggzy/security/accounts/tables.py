"""The tables of people's accounts, kept in the hub's and each node's own database.

``define_account_tables(metadata)`` is called by ``ggzy/hub/models.py`` and ``ggzy/node/models.py``;
``define_api_token_table(metadata)`` only by the node (its local intake API's callers).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Index, Integer, MetaData, String, Table, Text

__all__ = ["AccountTables", "define_account_tables", "define_api_token_table"]

Timestamp = DateTime(timezone=True)
Id = BigInteger().with_variant(Integer(), "sqlite")


@dataclass(frozen=True, slots=True)
class AccountTables:
    accounts: Table
    password_history: Table
    sessions: Table
    sign_in_attempts: Table


def define_account_tables(metadata: MetaData) -> AccountTables:
    accounts = Table(
        "accounts",
        metadata,
        Column("account", String(64), primary_key=True),
        Column("name", String(100), nullable=False),
        Column("role", String(16), nullable=False),  # one role per account (三员分立)
        Column("province", String(2)),  # hub operators limited to one province; None: national
        # One account per person: "staff:<number>" or "id:<keyed hash of the ID number>".
        Column("person_key", String(96), nullable=False, unique=True),
        Column("status", String(16), nullable=False),  # active | disabled
        Column("password_hash", String(256), nullable=False),
        Column("password_changed_at", Timestamp, nullable=False),
        Column("must_change_password", Boolean, nullable=False),  # one-time password not yet replaced
        Column("totp_secret", Text),  # encrypted with a key kept outside the database
        Column("totp_last_step", BigInteger),  # last accepted time step: a code works once
        Column("failed_attempts", Integer, nullable=False, server_default="0"),
        Column("locked_until", Timestamp),
        Column("created_at", Timestamp, nullable=False),
        Column("created_by", String(64), nullable=False),
        Column("updated_at", Timestamp, nullable=False),
        Column("last_sign_in_at", Timestamp),
    )
    password_history = Table(
        "password_history",
        metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("account", String(64), nullable=False),
        Column("password_hash", String(256), nullable=False),
        Column("retired_at", Timestamp, nullable=False),
        Index("ix_password_history_account", "account", "id"),
    )
    sessions = Table(
        "people_sessions",
        metadata,
        Column("token_hash", String(64), primary_key=True),  # SHA-256 of the token; the token is never stored
        Column("account", String(64), nullable=False, index=True),
        Column("role", String(16), nullable=False),
        Column("province", String(2)),
        # password → totp → full; or change-password / enrol-totp before full
        Column("stage", String(16), nullable=False),
        Column("kind", String(8), nullable=False),  # web | cli
        Column("source", String(64), nullable=False),
        Column("created_at", Timestamp, nullable=False),
        Column("last_seen_at", Timestamp, nullable=False),
        Column("ended_at", Timestamp),
        Column("end_reason", String(32)),
    )
    sign_in_attempts = Table(
        "sign_in_attempts",
        metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("at", Timestamp, nullable=False),
        Column("source", String(64), nullable=False),
        Column("account", String(64), nullable=False),
        Column("ok", Boolean, nullable=False),
        Index("ix_sign_in_attempts_source_at", "source", "at"),
    )
    return AccountTables(accounts, password_history, sessions, sign_in_attempts)


def define_api_token_table(metadata: MetaData) -> Table:
    """Tokens of the provincial systems that push records to a node's local intake API."""
    return Table(
        "api_tokens",
        metadata,
        Column("token_hash", String(64), primary_key=True),
        Column("name", String(64), nullable=False, unique=True),
        Column("created_at", Timestamp, nullable=False),
        Column("created_by", String(64), nullable=False),
        Column("revoked_at", Timestamp),
        Column("last_used_at", Timestamp),
    )
