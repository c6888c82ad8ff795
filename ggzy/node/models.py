"""The node's local store: the durable outbox and what the node needs to run unattended.

A record lives in ``outbox`` from the moment intake acknowledges it until the hub's final verdict,
and (once accepted) until the retention period has passed. Row states:

``held``        pre-validation found errors; waits for an operator's correction (a newer full
                version of the same key, arriving from the source, supersedes it)
``queued``      ready to send on its channel
``blocked``     queued, but it needs an earlier record (an earlier version of its key, a parent, an
                earlier stage) that is held for correction; ``blocked_by`` names that held row.
                Queued again when the held row is superseded
``sent``        in a batch that has been (or is being) sent; the batch id is fixed, so a retry after a
                crash resends exactly the same batch and the hub answers with the same receipt
``accepted``    the hub stored it (``hub_version`` is its version there)
``rejected``    the hub refused it; ``findings`` says why
``superseded``  a correction of the same key replaced it before it was accepted
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
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
    text,
)

from ggzy.backup.models import define_backup_tables
from ggzy.security.accounts.tables import define_account_tables, define_api_token_table
from ggzy.security.audit import define_audit_tables

__all__ = ["OUTBOX_STATES", "metadata"]

OUTBOX_STATES = ("held", "queued", "blocked", "sent", "accepted", "rejected", "superseded")
UNDECIDED = ("held", "queued", "blocked", "sent")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)
Timestamp = DateTime(timezone=True)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("table_name", String(64), nullable=False),
    Column("key", String(512), nullable=False),
    Column("op", String(8), nullable=False),
    Column("category", String(16), nullable=False),
    Column("channel", Integer, nullable=False),
    Column("record", JSON, nullable=False),  # the envelope exactly as it will be sent
    Column("state", String(16), nullable=False),
    Column("expedite", Boolean, nullable=False, server_default="0"),  # needed soon by a channel-1 record
    Column("batch_id", String(64)),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("findings", JSON),  # pre-validation findings (held) or the hub's (rejected)
    Column("hub_version", Integer),
    Column("redacted", JSON),  # names of fields masked or removed before the record was stored
    Column("source", String(16), nullable=False),  # push | file | pull | correction | reupload
    Column("source_ref", String(512), nullable=False, server_default=""),
    Column("corrects", Integer),  # id of the rejected or held row this one corrects
    Column("blocked_by", Integer),  # state blocked: the held row it waits for
    Column("published_at", Timestamp),
    Column("acquired_at", Timestamp, nullable=False),
    Column("sent_at", Timestamp),
    Column("decided_at", Timestamp),
    Index("ix_outbox_send", "channel", "state", "expedite", "id"),
    Index("ix_outbox_key", "table_name", "key"),
    # Held rows only (few): intake looks up whether a new version supersedes one, at every call.
    Index(
        "ix_outbox_held_key",
        "table_name",
        "key",
        sqlite_where=text("state = 'held'"),
        postgresql_where=text("state = 'held'"),
    ),
    # Decided rows only: intake inserts undecided ones, and every reader compares decided_at.
    Index(
        "ix_outbox_state_decided",
        "state",
        "decided_at",
        sqlite_where=text("decided_at IS NOT NULL"),
        postgresql_where=text("decided_at IS NOT NULL"),
    ),
)

# Values of the fields that other tables link to, so that a record is never sent before the
# records it depends on (a result notice after its tender notice), whatever their channels.
outbox_refs = Table(
    "outbox_refs",
    metadata,
    Column("outbox_id", Integer, primary_key=True),
    Column("table_name", String(64), primary_key=True),
    Column("field", String(64), primary_key=True),
    Column("value", String(512), nullable=False),
    Index("ix_outbox_refs_lookup", "table_name", "field", "value"),
)

batches = Table(
    "batches",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("channel", Integer, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("acknowledged_at", Timestamp),
    Column("last_error", Text),
)

# Small named values that must survive restarts: pull cursors, the feedback cursor, counters.
state = Table(
    "node_state",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("value", Text, nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Timestamp, nullable=False),
    Column("kind", String(32), nullable=False),  # latency | blocked | disk | hub | intake | reconcile
    Column("level", String(8), nullable=False),  # info | warning | critical
    Column("message", Text, nullable=False),
    Column("resolved_at", Timestamp),
    # An alert about a lasting condition (realtime records late, records blocked…): one open alert
    # per (kind, condition), its level and message updated in place while the condition lasts.
    Column("condition", String(128)),
    Column("updated_at", Timestamp),
)

# Every attempt to reach the hub, for the network availability the heartbeat reports (Art. 18).
link_attempts = Table(
    "link_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Timestamp, nullable=False, index=True),
    Column("ok", Boolean, nullable=False),
    Column("seconds", Float, nullable=False),
)

# One row per heartbeat attempted: the node's recent history for its portal (beats sent or failed,
# disk usage, records waiting per channel). Kept ``node.history_days``; pruned as beats are written.
node_samples = Table(
    "node_samples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Timestamp, nullable=False, index=True),
    Column("beat_ok", Boolean, nullable=False),
    Column("disk_used_ratio", Float),
    Column("waiting_1", Integer, nullable=False),
    Column("waiting_2", Integer, nullable=False),
)

# Each table's outcome in each reconciliation run (Art. 8), for the portal's 对账 page; the audit
# entry of the run keeps only totals.
reconcile_results = Table(
    "reconcile_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_at", Timestamp, nullable=False),
    Column("day", Date, nullable=False),  # the Asia/Shanghai acquisition day compared
    Column("table_name", String(64), nullable=False),
    Column("local_count", Integer, nullable=False),
    Column("hub_count", Integer, nullable=False),
    Column("consistent", Boolean, nullable=False),
    Column("missing_at_hub", Integer, nullable=False),
    Column("unknown_locally", Integer, nullable=False),
    Column("version_mismatch", Integer, nullable=False),
    Column("in_flight", Integer, nullable=False),
    Column("resent", Integer, nullable=False),
    Column("report_id", Integer),
    Column("account", String(128), nullable=False),
    # records whose content at the hub differs from the node's at the same version (migration 0008)
    Column("content_differs", Integer, nullable=False, server_default="0"),
    Index("ix_reconcile_results_day", "day", "table_name"),
)

# The latest version the hub accepted of each key whose outbox rows the disk guard removed: what
# reconciliation needs (key, version, content digest, the moment the hub files it under), so that
# cleaning never creates differences (ggzy.node.buckets, migration 0008).
reconcile_keys = Table(
    "reconcile_keys",
    metadata,
    Column("table_name", String(64), primary_key=True),
    Column("key", String(512), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("op", String(8), nullable=False),
    Column("channel", Integer, nullable=False),
    Column("digest", String(32), nullable=False),
    Column("filed_at", Timestamp, nullable=False),
    Column("filed_day", Date, nullable=False),
    Index("ix_reconcile_keys_day", "filed_day", "table_name"),
)

audit_tables = define_audit_tables(metadata)  # the chain, signed checkpoints, archive records
audit_log = audit_tables.log
backup_tables = define_backup_tables(metadata)  # backups made and their restore checks
account_tables = define_account_tables(metadata)
api_tokens = define_api_token_table(metadata)
