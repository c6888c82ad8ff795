"""The tables of people's accounts, kept in the hub's and each node's own database.

``define_account_tables(metadata)`` is called by ``ggzy/hub/models.py`` and ``ggzy/node/models.py``;
``define_api_token_table(metadata)`` only by the node (its local intake API's callers).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["AccountTables", "define_account_tables", "define_api_token_table"]

Timestamp = DateTime(timezone=True)
Id = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


@dataclass(frozen=True, slots=True)
class AccountTables:
    accounts: Table
    password_history: Table
    sessions: Table
    sign_in_attempts: Table
    unknown_names: Table
    approvals: Table
    notices: Table


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
        # The keyed hash of the ID number whenever one was given (required for sysadmin and auditor):
        # unique on its own, so a staff number cannot give a person with an ID-keyed account a second one.
        Column("id_key", String(96), unique=True),
        Column("status", String(16), nullable=False),  # active | disabled
        Column("password_hash", String(256), nullable=False),
        Column("password_changed_at", Timestamp, nullable=False),
        Column("must_change_password", Boolean, nullable=False),  # one-time password not yet replaced
        Column("totp_secret", Text),  # encrypted with a key kept outside the database
        Column("totp_last_step", BigInteger),  # last accepted time step: a code works once
        Column("failed_attempts", Integer, nullable=False, server_default="0"),  # wrong passwords in a row
        # wrong second-factor codes in a row: a right password does not reset them
        Column("totp_failures", Integer, nullable=False, server_default="0"),
        Column("locked_until", Timestamp),
        Column("valid_until", Timestamp),  # end of the term (任期); required for sysadmin and auditor
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
    # Failures against names that are no account, counted exactly like an account's, so that the
    # answers (and the lockout after five) do not tell which names exist.
    unknown_names = Table(
        "sign_in_unknown_names",
        metadata,
        Column("name", String(64), primary_key=True),
        Column("failed_attempts", Integer, nullable=False, server_default="0"),
        Column("locked_until", Timestamp),
        Column("updated_at", Timestamp, nullable=False),
    )
    # The second person of 三员分立: a 系统管理员's change of an auditor's (or the last
    # administrator's) credentials or role waits for another auditor's approval; used once.
    approvals = Table(
        "account_approvals",
        metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("account", String(64), nullable=False),  # whose account would change
        Column("action", String(32), nullable=False),  # reset-password | reset-totp | role
        Column("change", Json, nullable=False),  # the exact change approved (e.g. the new role)
        Column("requested_by", String(64), nullable=False),
        Column("requested_at", Timestamp, nullable=False),
        Column("expires_at", Timestamp, nullable=False),
        Column("approved_by", String(64)),
        Column("approved_at", Timestamp),
        Column("used_at", Timestamp),
        Index("ix_account_approvals_account", "account", "action"),
    )
    # What every auditor is told at their next sign-in (offline recoveries, new privileged accounts).
    notices = Table(
        "account_notices",
        metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("account", String(64), nullable=False),  # the auditor told
        Column("at", Timestamp, nullable=False),
        Column("kind", String(32), nullable=False),
        Column("message", Text, nullable=False),
        Column("seen_at", Timestamp),
        Index("ix_account_notices_account", "account", "seen_at"),
    )
    return AccountTables(
        accounts, password_history, sessions, sign_in_attempts, unknown_names, approvals, notices
    )


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
        # source networks (CIDR) the system may push from (Art. 15); empty: any address
        Column("networks", Json, nullable=False, server_default="[]"),
    )
