"""figures a province cannot game: untimed records, deal-code owners, network down time, content differences

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10 10:00:00.000000

* ``stats_daily.untimed``: realtime records whose publication time is missing (Art. 9), counted from
  now on (earlier batches were not told apart; they stay 0).
* ``record_heads.deal_code`` and its partial index: the 统一交易标识码 each registering record gave
  its transaction (Art. 7), filled from the stored versions of the current heads.
* ``heartbeat_platform_failing.kind`` ("failing", or "unverified": a beat without a platform verdict)
  and ``network_down`` (Art. 18, 27); the heartbeat aggregates are rebuilt from the beats at the new
  resolution (one heartbeat interval plus the delivery allowance instead of the incident grace).
* ``mismatch_reports.content_differs``: records whose content at the hub differs from the node's at
  the same version (Art. 8).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


# The registering tables of specification 2.0 (ggzy.validation.dealcodes; a test keeps them equal).
REGISTERING = (
    "TENDER_PROJECT",
    "SECTION",
    "PURCHASE_PROJECT",
    "DEAL_BEHAVIOR_INFO",
    "EXPLOR_BID_AUCTION_TRANS_ANN",
    "MINING_BID_AUCTION_TRANS_ANN",
    "EXPLOR_TRANS_PUB_INFO",
    "MINING_TRANS_PUB_INFO",
    "MINING_DISTRICT_RANGE_PUB",
    "NON_OIL_GAS_EXPLOR_REG_ANN",
    "NON_OIL_GAS_MINING_REG_ANN",
    "OIL_GAS_EXPLOR_REG_ANN",
    "OIL_GAS_MINING_REG_ANN",
    "LISTING_PUB_INFO",
    "STOCK_LISTING_PUB_INFO",
    "OTHER_TRADE_PUB_INFO",
)
_WHERE = sa.text("deal_code IS NOT NULL")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("stats_daily", schema=None) as batch_op:
        batch_op.add_column(sa.Column("untimed", sa.Integer(), server_default="0", nullable=False))
    # Not batch mode: SQLite adds the column in place and the table stays WITHOUT ROWID (0008).
    op.add_column("record_heads", sa.Column("deal_code", sa.String(length=40), nullable=True))
    tables = ", ".join(f"'{name}'" for name in REGISTERING)
    for namespace, versions in (("prod", "records"), ("test", "test_records")):
        op.execute(
            f"UPDATE record_heads SET deal_code = (SELECT v.deal_code FROM {versions} v "
            "WHERE v.table_name = record_heads.table_name AND v.key = record_heads.key "
            "AND v.version = record_heads.version) "
            f"WHERE namespace = '{namespace}' AND table_name IN ({tables}) AND NOT deleted"
        )
    op.create_index(
        "ix_record_heads_deal_code",
        "record_heads",
        ["namespace", "deal_code"],
        sqlite_where=_WHERE,
        postgresql_where=_WHERE,
    )
    with op.batch_alter_table("heartbeat_platform_failing", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=12), server_default="failing", nullable=False))
    op.create_table(
        "network_down",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("province", sa.String(length=2), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_down")),
    )
    op.create_index("ix_network_down_node_ended", "network_down", ["node_id", "direction", "ended_at"])
    op.create_index("ix_network_down_province_ended", "network_down", ["province", "ended_at"])

    with op.batch_alter_table("mismatch_reports", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "content_differs",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                server_default="[]",
                nullable=False,
            )
        )

    from ggzy.hub.ops.uptime import coverage_of, rebuild_heartbeat_aggregates
    from ggzy.settings import OpsSettings

    rebuild_heartbeat_aggregates(op.get_bind(), coverage_of(OpsSettings()))


def downgrade() -> None:
    with op.batch_alter_table("mismatch_reports", schema=None) as batch_op:
        batch_op.drop_column("content_differs")
    op.drop_index("ix_network_down_province_ended", table_name="network_down")
    op.drop_index("ix_network_down_node_ended", table_name="network_down")
    op.drop_table("network_down")
    op.execute("DELETE FROM heartbeat_platform_failing WHERE kind <> 'failing'")
    with op.batch_alter_table("heartbeat_platform_failing", schema=None) as batch_op:
        batch_op.drop_column("kind")
    op.drop_index("ix_record_heads_deal_code", table_name="record_heads")
    op.drop_column("record_heads", "deal_code")
    with op.batch_alter_table("stats_daily", schema=None) as batch_op:
        batch_op.drop_column("untimed")
