"""A node's audit chain anchored at the hub through its heartbeats (Art. 24).

The node seals its tail before each beat and sends its newest checkpoint; the hub keeps each one and
refuses (and audits) another hash for a sequence it holds; ``hub_anchors`` — what ``ggzy audit
verify --side node`` and the node's audit page compare with — gets them back. Emptying the node's
log, or rewriting it and sending the new checkpoints, is then found.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, text

from ggzy.hub.models import audit_anchors
from ggzy.hub.models import audit_log as hub_audit_log
from ggzy.node.context import NodeContext, build_context
from ggzy.node.heartbeat import send_heartbeat
from ggzy.node.models import audit_log, audit_tables
from ggzy.node.site import hub_anchors
from ggzy.node.status import DiskUsage
from ggzy.security.audit import AuditEntry, drop_append_only_ddl
from ggzy.settings import NodeSettings
from ggzy.store.database import writing


def _node(hub: Any, tmp_path: Path) -> NodeContext:
    settings = NodeSettings(
        node_id=hub.node.node_id,
        db_url=f"sqlite:///{tmp_path / 'node.db'}",
        key_file=tmp_path / "node" / "node.key",
        disk_path=tmp_path,
    )
    return build_context(settings, key=bytes.fromhex(hub.node.key))


def _write(ctx: NodeContext, count: int) -> None:
    with writing(ctx.engine) as connection:
        for n in range(count):
            ctx.audit.append(connection, AuditEntry(action="status.read", object=f"x:{n}", outcome="success"))


def _beat(ctx: NodeContext, hub: Any) -> None:
    usage = lambda _p: DiskUsage(total=10, used=1, free=9)  # noqa: E731
    assert send_heartbeat(ctx, hub.client, usage=usage).ok


SQLITE = pytest.mark.parametrize(
    "hub_db_url", ["sqlite"], indirect=True
)  # the hub's storage runs on both in test_heartbeat.py


@SQLITE
def test_each_beat_anchors_the_nodes_chain_at_the_hub(hub: Any, tmp_path: Path) -> None:
    ctx = _node(hub, tmp_path)
    _write(ctx, 3)
    _beat(ctx, hub)
    _write(ctx, 2)
    _beat(ctx, hub)
    with hub.state.engine.connect() as connection:
        held = connection.execute(select(audit_anchors).order_by(audit_anchors.c.sequence)).all()
    assert [(r.node_id, r.entry_id) for r in held][-1] == ("fj-01", 5)  # the tail sealed before the beat
    found = hub_anchors(ctx.settings, 0, hub.client)
    assert found.unavailable == [] and found.anchors[-1].entry_id == 5
    with ctx.engine.connect() as connection:
        assert ctx.audit.verify(connection, found.anchors) is None

    # someone with the node's host empties its log and its checkpoints
    with writing(ctx.engine) as connection:
        for statement in drop_append_only_ddl("sqlite"):
            connection.execute(text(statement))
        connection.execute(delete(audit_log))
        connection.execute(delete(audit_tables.checkpoints))
    with ctx.engine.connect() as connection:
        assert ctx.audit.verify(connection) is None  # the chain alone: nothing wrong
        problem = ctx.audit.verify(connection, hub_anchors(ctx.settings, 0, hub.client).anchors)
    assert problem is not None and problem.reason == "anchor-truncated"

    # ... and writes a new chain: its checkpoint 2 contradicts the one the hub holds, which stays
    _write(ctx, 3)
    _beat(ctx, hub)
    with hub.state.engine.connect() as connection:
        conflicts = (
            connection.execute(
                select(hub_audit_log.c.object).where(hub_audit_log.c.action == "audit.anchor-conflict")
            )
            .scalars()
            .all()
        )
        second = connection.execute(
            select(audit_anchors.c.entry_id).where(audit_anchors.c.sequence == 2)
        ).scalar()
    assert conflicts == ["node:fj-01"] and second == 3


def test_thinning_keeps_one_anchor_per_node_and_day(hub: Any) -> None:
    from ggzy.hub.anchors import record_anchor, thin_anchors
    from ggzy.security.audit_anchor import Anchor

    old = dt.datetime(2026, 1, 10, 8, tzinfo=dt.UTC)
    with writing(hub.state.engine) as connection:
        for n in range(1, 7):
            at = old + dt.timedelta(hours=5 * n)  # across two days
            record_anchor(connection, "fj-01", Anchor(n, n * 10, "a" * 64, at), at)
        removed = thin_anchors(connection, old + dt.timedelta(days=30))
        kept = (
            connection.execute(select(audit_anchors.c.sequence).order_by(audit_anchors.c.sequence))
            .scalars()
            .all()
        )
    assert removed == 4 and kept == [3, 6]
