"""The hub's database schema (SQLAlchemy Core tables; Alembic migrations in ``ggzy/hub/migrations``).

Core rather than the ORM: the ingest path writes thousands of rows a second with ``executemany``
and reads them back in bulk, which the ORM's unit of work only slows down.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from ggzy.backup.models import define_backup_tables
from ggzy.hub.ops.models import define_ops_tables
from ggzy.hub.portal.tables import define_portal_tables
from ggzy.security.accounts.tables import define_account_tables
from ggzy.security.audit import define_audit_tables

__all__ = ["metadata", "ops_tables"]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Json = JSON().with_variant(JSONB(), "postgresql")
Timestamp = DateTime(timezone=True)
# BIGINT ids on PostgreSQL; SQLite only makes INTEGER PRIMARY KEY an alias of the rowid.
Id = BigInteger().with_variant(Integer(), "sqlite")

nodes = Table(
    "nodes",
    metadata,
    Column("node_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, server_default=""),
    Column("province", String(2), nullable=False),
    Column("platform_codes", Json, nullable=False),  # registered 交易系统标识码 (USCC list)
    Column("networks", Json, nullable=False),  # allowed source networks (CIDR list)
    Column("key", String(128), nullable=False),  # signing key (hex)
    Column("algorithm", String(16), nullable=False, server_default="HMAC-SHA256"),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("created_at", Timestamp, nullable=False),
    Column("key_rotated_at", Timestamp, nullable=False),
)

nonces = Table(
    "nonces",
    metadata,
    Column("node_id", String(64), primary_key=True),
    Column("nonce", String(64), primary_key=True),
    Column("seen_at", Timestamp, nullable=False, index=True),
)

batches = Table(
    "batches",
    metadata,
    Column("node_id", String(64), primary_key=True),
    Column("batch_id", String(64), primary_key=True),
    Column("channel", Integer, nullable=False),
    Column("body_digest", String(64), nullable=False),
    Column("received_at", Timestamp, nullable=False),
    Column("records", Integer, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("receipt", Json, nullable=False),
)


def _record_columns() -> list[Column[object]]:
    return [
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("table_name", String(64), nullable=False),
        Column("key", String(512), nullable=False),
        Column("version", Integer, nullable=False),
        Column("op", String(8), nullable=False),
        Column("category", String(16), nullable=False),
        Column("channel", Integer, nullable=False),
        Column("node_id", String(64), nullable=False),
        Column("province", String(2), nullable=False),
        Column("batch_id", String(64), nullable=False),
        Column("digest", String(32), nullable=False),
        Column("data", Json, nullable=False),
        Column("deal_code", String(40)),
        Column("published_at", Timestamp),
        Column("acquired_at", Timestamp),
        Column("sent_at", Timestamp),
        Column("received_at", Timestamp, nullable=False),
        Column("decided_at", Timestamp, nullable=False),
    ]


# Every accepted version of every production record (history); the newest is in record_heads.
records = Table(
    "records",
    metadata,
    *_record_columns(),
    UniqueConstraint("table_name", "key", "version", name="uq_records_version"),
    Index("ix_records_deal_code", "deal_code"),
    # Covers the portal's timeliness histogram and realtime latency (index-only reads, migration 0006).
    Index("ix_records_province_received_latency", "province", "received_at", "channel", "published_at"),
)

# Test data (Art. 10) is validated and answered like the rest but kept apart from production.
test_records = Table(
    "test_records",
    metadata,
    *_record_columns(),
    UniqueConstraint("table_name", "key", "version", name="uq_test_records_version"),
)

# The current version of each key, per namespace ("prod" or "test").
record_heads = Table(
    "record_heads",
    metadata,
    Column("namespace", String(8), primary_key=True),
    Column("table_name", String(64), primary_key=True),
    Column("key", String(512), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("digest", String(32), nullable=False),
    Column("node_id", String(64), nullable=False),
    Column("province", String(2), nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("event_time", String(14)),
    Column("acquired_day", Date),  # Asia/Shanghai day the node acquired the record: reconciliation bucket
    # The 统一交易标识码 a registering record (a section, a lot, a listing …) gave its transaction, so
    # that a code already in use is found by one index search (ggzy.validation.dealcodes, 0010).
    Column("deal_code", String(40)),
    Index(
        "ix_record_heads_deal_code",
        "namespace",
        "deal_code",
        sqlite_where=text("deal_code IS NOT NULL"),
        postgresql_where=text("deal_code IS NOT NULL"),
    ),
    sqlite_with_rowid=False,  # read and written by its key only: one B-tree, not table + key index (0008)
)

# Values of the fields that other tables link to (parents, earlier stages), for cross-record rules.
record_refs = Table(
    "record_refs",
    metadata,
    Column("namespace", String(8), primary_key=True),
    Column("table_name", String(64), primary_key=True),
    Column("field", String(64), primary_key=True),
    Column("value", String(512), primary_key=True),
    Column("key", String(512), primary_key=True),
    sqlite_with_rowid=False,
)

# What each node reads back: one entry per batch receipt, re-upload request or notice, in order.
feed = Table(
    "feed",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("node_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # receipt | reupload | notice
    Column("batch_id", String(64)),
    Column("body", Json, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Index("ix_feed_node_id_id", "node_id", "id"),
)

# Maintained per province × table × Asia/Shanghai day × channel as data arrives (production only).
stats_daily = Table(
    "stats_daily",
    metadata,
    Column("province", String(2), primary_key=True),
    Column("table_name", String(64), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("channel", Integer, primary_key=True),
    Column("received", Integer, nullable=False, server_default="0"),
    Column("accepted", Integer, nullable=False, server_default="0"),
    Column("rejected", Integer, nullable=False, server_default="0"),
    Column("duplicates", Integer, nullable=False, server_default="0"),
    Column("timely_due", Integer, nullable=False, server_default="0"),
    Column("timely_ok", Integer, nullable=False, server_default="0"),
    Column("rejected_keys", Integer, nullable=False, server_default="0"),
    Column("repaired", Integer, nullable=False, server_default="0"),
    Column("repair_seconds", BigInteger, nullable=False, server_default="0"),
    # Realtime records without a publication time (Art. 9): refused trade records, same-day classes
    # counted as not on time (migration 0010).
    Column("untimed", Integer, nullable=False, server_default="0"),
)

stats_rules = Table(
    "stats_rules",
    metadata,
    Column("province", String(2), primary_key=True),
    Column("table_name", String(64), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("rule_code", String(48), primary_key=True),
    Column("count", Integer, nullable=False, server_default="0"),
)

# Keys whose latest verdict was a rejection and that no accepted version has repaired yet.
open_rejections = Table(
    "open_rejections",
    metadata,
    Column("table_name", String(64), primary_key=True),
    Column("key", String(512), primary_key=True),
    Column("province", String(2), nullable=False),
    Column("channel", Integer, nullable=False),
    Column("day", Date, nullable=False),
    Column("rejected_at", Timestamp, nullable=False),
)

mismatch_reports = Table(
    "mismatch_reports",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("node_id", String(64), nullable=False),
    Column("province", String(2), nullable=False),
    Column("table_name", String(64), nullable=False),
    Column("day", Date, nullable=False),
    Column("local_count", Integer, nullable=False),
    Column("hub_count", Integer, nullable=False),
    Column("missing_at_hub", Json, nullable=False),
    Column("unknown_locally", Json, nullable=False),
    # "key:version" of records whose content at the hub differs from the node's (migration 0010)
    Column("content_differs", Json, nullable=False, server_default="[]"),
    Column("note", Text, nullable=False, server_default=""),
    Column("reported_at", Timestamp, nullable=False),
)

# One row per node heartbeat (Art. 13, 16): what the node reported about itself, kept for the
# availability and capacity figures of operations; read by node and time.
node_heartbeats = Table(
    "node_heartbeats",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("node_id", String(64), nullable=False),
    Column("province", String(2), nullable=False),
    Column("received_at", Timestamp, nullable=False),
    Column("version", String(32), nullable=False),
    Column("queue_depths", Json, nullable=False),  # {"1": {"queued": n, "sent": n, ...}, "2": {...}}
    Column("oldest_unsent_seconds", Float),
    Column("disk_used_ratio", Float),
    Column("failed_attempts", Integer, nullable=False),
    Column("total_attempts", Integer, nullable=False),
    Column("platform_ok", Boolean),  # None when the node has no provincial platform probe configured
    Column("last_error", Text),
    Column("payload", Json, nullable=False),
    Index("ix_node_heartbeats_node_received", "node_id", "received_at"),
    # A province's beats by time: the successor of a beat (aggregate upkeep) and partial days.
    Index("ix_node_heartbeats_province_received", "province", "received_at"),
)

# Aggregates of the heartbeats, kept in the transaction that stores each beat (ggzy/hub/ops/uptime.py),
# so that availability reads a few intervals and one row per node and day instead of every beat.
# Runs of a node's beats with no gap above the down threshold in force when they were kept.
heartbeat_runs = Table(
    "heartbeat_runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("node_id", String(64), nullable=False),
    Column("province", String(2), nullable=False),
    Column("first_at", Timestamp, nullable=False),
    Column("last_at", Timestamp, nullable=False),
    Column("beats", Integer, nullable=False),
    Column("max_gap_seconds", Float, nullable=False),  # at least the largest gap between its beats
    Index("ix_heartbeat_runs_node_last", "node_id", "province", "last_at"),
    Index("ix_heartbeat_runs_province_last", "province", "last_at"),
)

# Per node and Asia/Shanghai day of receipt: sums of what the beats reported.
heartbeat_days = Table(
    "heartbeat_days",
    metadata,
    Column("province", String(2), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("node_id", String(64), primary_key=True),
    Column("beats", Integer, nullable=False),
    Column("failed_attempts", BigInteger, nullable=False),
    Column("total_attempts", BigInteger, nullable=False),
    Column("platform_beats", Integer, nullable=False),  # beats carrying a platform verdict
    Column("link_since", Timestamp, nullable=False),  # earliest start of a link window reported
)

# Per province: from a beat whose platform verdict failed (kind "failing") or that carried none
# ("unverified": no probe result) to the next beat whose verdict differs (ended_at None: the latest
# beat still says so). Independent of the down threshold; "unverified" since migration 0010.
heartbeat_platform_failing = Table(
    "heartbeat_platform_failing",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("province", String(2), nullable=False),
    Column("started_at", Timestamp, nullable=False),
    Column("ended_at", Timestamp),
    Column("kind", String(12), nullable=False, server_default="failing"),
    Index("ix_heartbeat_platform_failing_province_ended", "province", "ended_at"),
)

# When the network was down between a node and the hub (Art. 18), per node and direction: "node"
# (the node's attempts to reach the hub failed, as its heartbeats report them) or "hub" (the hub's
# probes of the node failed). Overlapping spans of one node and direction are merged (0010).
network_down = Table(
    "network_down",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("node_id", String(64), nullable=False),
    Column("province", String(2), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("started_at", Timestamp, nullable=False),
    Column("ended_at", Timestamp, nullable=False),
    Index("ix_network_down_node_ended", "node_id", "direction", "ended_at"),
    Index("ix_network_down_province_ended", "province", "ended_at"),
)

# The newest audit checkpoint of each node, as its heartbeats report it: the node's chain anchored
# off its host (Art. 24, ggzy.security.audit_anchor). Append-only per (node, sequence); older days
# are thinned to one anchor per node and day (ggzy.hub.anchors).
audit_anchors = Table(
    "audit_anchors",
    metadata,
    Column("node_id", String(64), primary_key=True),
    Column("sequence", BigInteger, primary_key=True),
    Column("entry_id", BigInteger, nullable=False),
    Column("entry_hash", String(64), nullable=False),
    Column("checkpoint_at", Timestamp, nullable=False),
    Column("received_at", Timestamp, nullable=False),
)

audit_tables = define_audit_tables(metadata)  # the chain, signed checkpoints, archive records
audit_log = audit_tables.log
backup_tables = define_backup_tables(metadata)  # backups made and their restore checks

# Operations management (Art. 12, 13, 18, 25–35): see ggzy/hub/ops/models.py.
ops_tables = define_ops_tables(metadata)
account_tables = define_account_tables(metadata)
portal_rejections, portal_rejection_rules, portal_cursors = define_portal_tables(metadata)
