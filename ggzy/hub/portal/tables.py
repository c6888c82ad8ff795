"""The portal's own tables: a projection of rejected records read from the receipts.

The hub stores only accepted versions as records; a rejected record lives in its batch receipt
(``feed`` rows of kind ``receipt``). The feedback explorer and the "top rules with examples" need
rejected records one by one, filtered by province, table, rule and day, so the portal keeps a
projection of them, caught up from the feed by id (``portal_cursors``), see
:mod:`ggzy.hub.portal.projection`.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["define_portal_tables"]


def define_portal_tables(metadata: MetaData) -> tuple[Table, Table, Table]:
    """``(portal_rejections, portal_rejection_rules, portal_cursors)`` added to the hub's ``metadata``."""
    rejections = Table(
        "portal_rejections",
        metadata,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
        Column("feed_id", BigInteger, nullable=False),
        Column("item", Integer, nullable=False),  # the record's index in its batch
        Column("node_id", String(64), nullable=False),
        Column("batch_id", String(64), nullable=False),
        Column("province", String(2), nullable=False),
        Column("table_name", String(64), nullable=False),
        Column("key", String(512)),  # None when the record was too broken to name its key
        Column("channel", Integer, nullable=False),
        Column("day", Date, nullable=False),  # Asia/Shanghai day of receipt, as in stats_daily
        Column("received_at", DateTime(timezone=True), nullable=False),
        # Error codes wrapped in spaces (" E-A E-B "): a rule filter is one LIKE on an indexed slice.
        Column("rules", String(1024), nullable=False),
        Column("findings", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
        UniqueConstraint("feed_id", "item", name="uq_portal_rejections_item"),
        Index("ix_portal_rejections_province_day", "province", "day"),
        Index("ix_portal_rejections_day", "day"),
        Index("ix_portal_rejections_table_key", "table_name", "key"),
    )
    # One row per error code of a rejection: a rule filter reads an index range instead of testing
    # every rejection of the period (a rare rule would otherwise cost a scan of the month).
    rules = Table(
        "portal_rejection_rules",
        metadata,
        Column("rule_code", String(48), primary_key=True),
        Column("province", String(2), primary_key=True),
        Column("day", Date, primary_key=True),
        Column("rejection_id", BigInteger, primary_key=True),
    )
    cursors = Table(
        "portal_cursors",
        metadata,
        Column("name", String(32), primary_key=True),
        Column("position", BigInteger, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )
    return rejections, rules, cursors
