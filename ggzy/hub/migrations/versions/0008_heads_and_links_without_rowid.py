"""SQLite: record_heads and record_refs become WITHOUT ROWID tables (nothing changes on PostgreSQL)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:00:00.000000

Both tables are only ever read and written by their primary key. As rowid tables, SQLite kept each
row twice: in the table under a hidden rowid and in the primary key's index, so every insert wrote
two B-trees and every lookup searched two. Clustered on the primary key, each is one B-tree. The
rows are copied over in one statement per table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _heads(name: str, *, rowid: bool) -> sa.Table:
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("namespace", sa.String(length=8), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("event_time", sa.String(length=14), nullable=True),
        sa.Column("acquired_day", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("namespace", "table_name", "key", name="pk_record_heads"),
        sqlite_with_rowid=rowid,
    )


def _refs(name: str, *, rowid: bool) -> sa.Table:
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("namespace", sa.String(length=8), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=512), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "table_name", "field", "value", "key", name="pk_record_refs"),
        sqlite_with_rowid=rowid,
    )


def _rebuild(*, rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name, build in (("record_heads", _heads), ("record_refs", _refs)):
        rebuilt = build(f"{name}_rebuilt", rowid=rowid)
        rebuilt.create(op.get_bind())
        columns = ", ".join(f'"{column.name}"' for column in rebuilt.columns)
        op.execute(f'INSERT INTO "{rebuilt.name}" ({columns}) SELECT {columns} FROM "{name}"')
        op.drop_table(name)
        op.rename_table(rebuilt.name, name)


def upgrade() -> None:
    _rebuild(rowid=False)


def downgrade() -> None:
    _rebuild(rowid=True)
