"""The backup register kept in the backed-up database itself: what was made, and how its checks went."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import JSON, BigInteger, Column, DateTime, Float, Integer, MetaData, String, Table
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["BackupTables", "define_backup_tables"]

_Id = BigInteger().with_variant(Integer(), "sqlite")
_Json = JSON().with_variant(JSONB(), "postgresql")
_Timestamp = DateTime(timezone=True)


@dataclass(frozen=True, slots=True)
class BackupTables:
    backups: Table
    verifications: Table


def define_backup_tables(metadata: MetaData) -> BackupTables:
    backups = Table(
        "backups",
        metadata,
        Column("id", _Id, primary_key=True, autoincrement=True),
        Column("file_name", String(256), nullable=False, unique=True),
        Column("created_at", _Timestamp, nullable=False),
        Column("kind", String(16), nullable=False),  # manual | scheduled | safety
        Column("dialect", String(16), nullable=False),
        Column("size", BigInteger, nullable=False),
        Column("checksum", String(64), nullable=False),  # SM3 of the whole file
        Column("schema_revision", String(32), nullable=False),
        Column("row_counts", _Json, nullable=False),
        Column("cipher", String(16), nullable=False),
        Column("key_id", String(16), nullable=False),
        Column("offsite", String(512)),  # where the off-host copy went, if one was made
    )
    verifications = Table(
        "backup_verifications",
        metadata,
        Column("id", _Id, primary_key=True, autoincrement=True),
        Column("file_name", String(256), nullable=False, index=True),
        Column("verified_at", _Timestamp, nullable=False),
        Column("seconds", Float, nullable=False),
        Column("outcome", String(16), nullable=False),  # passed | failed
        Column("schema_revision", String(32), nullable=False),
        Column("detail", _Json, nullable=False),
    )
    return BackupTables(backups, verifications)
