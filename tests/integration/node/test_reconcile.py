"""Reconciliation: node and hub agree on counts and digests; lost and stale keys are found and re-sent."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest
from hubfixtures import province_records
from sqlalchemy import delete, select, update

from ggzy.hub.models import mismatch_reports, record_heads, record_refs, records
from ggzy.node.context import NodeContext, build_context
from ggzy.node.models import alerts, audit_log, outbox
from ggzy.node.outbox import NewRecord
from ggzy.node.reconcile import SHANGHAI, bucket_digest, daily_reconcile, local_buckets, reconcile_day
from ggzy.protocol import HubClient, HubUnavailable
from ggzy.settings import NodeSettings
from ggzy.store.database import writing

DAY = dt.date(2026, 11, 20)
ACQUIRED = dt.datetime(2026, 11, 20, 10, 0, tzinfo=SHANGHAI)


def node_for(hub_fixture: Any, tmp_path: Path) -> NodeContext:
    settings = NodeSettings(
        node_id=hub_fixture.node.node_id,
        province=hub_fixture.node.province,
        db_url=f"sqlite:///{tmp_path / 'node.db'}",
        key_file=tmp_path / "node" / "node.key",
        disk_path=tmp_path,
    )
    return build_context(settings, key=bytes.fromhex(hub_fixture.node.key))


def enqueue(ctx: NodeContext, raws: list[dict[str, Any]], acquired: dt.datetime = ACQUIRED) -> list[int]:
    items = []
    for raw in raws:
        table = ctx.spec.tables[raw["table"]]
        record = dict(raw, acquired_at=acquired.isoformat())
        channel = 1 if raw["category"] == "realtime" else 2
        items.append(NewRecord(table, table.key_of(raw["data"]), record, channel, acquired_at=acquired))
    return ctx.outbox.enqueue(items)


def pump(ctx: NodeContext, client: HubClient) -> tuple[int, int]:
    """Upload everything the outbox will give (what the uploader threads do), return (accepted, rejected)."""
    accepted = rejected = 0
    while True:
        moved = False
        for channel in (1, 2):
            batch = ctx.outbox.form_batch(channel, 200)
            if batch is None:
                continue
            a, r = ctx.outbox.apply_receipt(batch, client.upload(channel, batch.batch_id, batch.records))
            accepted, rejected, moved = accepted + a, rejected + r, True
        if not moved:
            return accepted, rejected


def synced(hub_fixture: Any, tmp_path: Path) -> tuple[NodeContext, list[dict[str, Any]]]:
    ctx = node_for(hub_fixture, tmp_path)
    raws = province_records(transactions=2)
    enqueue(ctx, raws)
    accepted, rejected = pump(ctx, hub_fixture.client)
    assert (accepted, rejected) == (len(raws), 0)
    return ctx, raws


def test_digests_of_node_and_hub_agree_for_a_clean_day(hub: Any, tmp_path: Path) -> None:
    ctx, raws = synced(hub, tmp_path)
    local = local_buckets(ctx.engine, DAY)
    answer = hub.client.reconcile(DAY)
    hub_tables = {t["table"]: t for t in answer["tables"]}
    assert set(local) == set(hub_tables) and local
    for name, keys in local.items():
        assert len(keys) == hub_tables[name]["count"]
        assert bucket_digest((k, v.version) for k, v in keys.items()) == hub_tables[name]["digest"]
    # an updated key counts once, at its latest version
    updated = {
        (r["table"], ctx.spec.tables[r["table"]].key_of(r["data"])) for r in raws if r["op"] == "update"
    }
    assert updated and all(local[t][k].version == 2 for t, k in updated)
    assert local_buckets(ctx.engine, DAY + dt.timedelta(days=1)) == {}

    result = reconcile_day(ctx, hub.client, DAY)
    assert result.consistent and result.resent == 0
    assert sum(t.local_count for t in result.tables) == sum(len(k) for k in local.values())
    with hub.state.engine.connect() as connection:
        assert connection.execute(select(mismatch_reports)).all() == []


def _leaf_key(ctx: NodeContext, raws: list[dict[str, Any]]) -> tuple[str, str]:
    """An inserted key nothing else points to (its loss breaks no other record)."""
    targets = {link.table for t in ctx.spec.tables.values() for link in t.parents + t.predecessors}
    for raw in reversed(raws):
        if raw["op"] == "insert" and raw["table"] not in targets:
            return raw["table"], ctx.spec.tables[raw["table"]].key_of(raw["data"])
    raise AssertionError("no leaf record in the simulated data")


def test_a_key_lost_at_the_hub_is_found_resent_reported_and_then_clean(hub: Any, tmp_path: Path) -> None:
    ctx, raws = synced(hub, tmp_path)
    table, key = _leaf_key(ctx, raws)
    with writing(hub.state.engine) as connection:  # the hub loses the key (a restore from an old backup)
        for model in (record_heads, records, record_refs):
            connection.execute(delete(model).where(model.c.table_name == table, model.c.key == key))

    result = reconcile_day(ctx, hub.client, DAY)
    differing = [t for t in result.tables if not t.consistent]
    assert [t.table for t in differing] == [table]
    row = differing[0]
    assert row.missing_at_hub == [key] and row.unknown_locally == [] and row.resent == 1
    assert row.hub_count == row.local_count - 1
    with hub.state.engine.connect() as connection:
        report = connection.execute(select(mismatch_reports)).one()
    assert (report.table_name, report.day, report.missing_at_hub) == (table, DAY, [f"{key}:1"])
    assert report.local_count == row.local_count and report.node_id == hub.node.node_id
    with ctx.engine.connect() as connection:
        resent = connection.execute(select(outbox).where(outbox.c.source == "reconcile")).one()
        entry = connection.execute(select(audit_log).where(audit_log.c.action == "reconcile.run")).one()
        alert = connection.execute(select(alerts).where(alerts.c.kind == "reconcile")).one()
    assert (resent.table_name, resent.key, resent.op, resent.state) == (table, key, "insert", "queued")
    assert resent.record["acquired_at"] == ACQUIRED.isoformat()  # same bucket as the lost version
    assert entry.detail["differing"] == [table] and entry.detail["resent"] == 1
    assert table in alert.message

    # a second run before the re-sent record went out does not send it twice
    assert reconcile_day(ctx, hub.client, DAY).resent == 0

    assert pump(ctx, hub.client) == (1, 0)
    again = reconcile_day(ctx, hub.client, DAY)
    assert again.consistent and again.resent == 0


def test_a_stale_version_at_the_hub_is_resent_as_an_update(hub: Any, tmp_path: Path) -> None:
    ctx, raws = synced(hub, tmp_path)
    table, key = next(
        (r["table"], ctx.spec.tables[r["table"]].key_of(r["data"])) for r in raws if r["op"] == "update"
    )
    with writing(hub.state.engine) as connection:  # the hub lost version 2 of the key
        first = connection.execute(
            select(records.c.digest).where(
                records.c.table_name == table, records.c.key == key, records.c.version == 1
            )
        ).scalar_one()
        connection.execute(
            delete(records).where(records.c.table_name == table, records.c.key == key, records.c.version == 2)
        )
        connection.execute(
            update(record_heads)
            .where(record_heads.c.table_name == table, record_heads.c.key == key)
            .values(version=1, digest=first)
        )

    result = reconcile_day(ctx, hub.client, DAY, table)
    assert [t.table for t in result.tables] == [table]
    row = result.tables[0]
    assert not row.consistent and row.hub_behind == [f"{key}(1<2)"] and row.missing_at_hub == []
    assert row.resent == 1 and row.hub_lacks == [f"{key}:2"]
    with hub.state.engine.connect() as connection:
        assert connection.execute(select(mismatch_reports.c.missing_at_hub)).scalar_one() == [f"{key}:2"]
    assert pump(ctx, hub.client) == (1, 0)
    with hub.state.engine.connect() as connection:
        head = connection.execute(
            select(record_heads.c.version).where(
                record_heads.c.table_name == table, record_heads.c.key == key
            )
        ).scalar_one()
    assert head == 2
    assert reconcile_day(ctx, hub.client, DAY, table).consistent


def test_keys_unknown_locally_are_reported_not_sent(hub: Any, tmp_path: Path) -> None:
    ctx, raws = synced(hub, tmp_path)
    table, key = _leaf_key(ctx, raws)
    with writing(ctx.engine) as connection:  # the node forgot a record (an old local backup)
        connection.execute(delete(outbox).where(outbox.c.table_name == table, outbox.c.key == key))
    result = daily_reconcile(ctx, hub.client, DAY + dt.timedelta(days=1))
    assert result.day == DAY
    row = next(t for t in result.tables if t.table == table)
    assert row.unknown_locally == [key] and row.missing_at_hub == [] and row.resent == 0
    with hub.state.engine.connect() as connection:
        report = connection.execute(select(mismatch_reports)).one()
    assert report.unknown_locally == [f"{key}:1"] and report.hub_count == report.local_count + 1


class _Down(httpx.BaseTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)


def test_a_daily_run_the_hub_misses_leaves_an_alert(hub: Any, tmp_path: Path) -> None:
    ctx = node_for(hub, tmp_path)
    down = HubClient("http://testserver", "fj-01", bytes.fromhex(hub.node.key), transport=_Down())
    with pytest.raises(HubUnavailable):
        daily_reconcile(ctx, down, DAY + dt.timedelta(days=1))
    with ctx.engine.connect() as connection:
        (alert,) = connection.execute(select(alerts).where(alerts.c.kind == "reconcile")).all()
    assert DAY.isoformat() in alert.message and "ggzy node reconcile --date" in alert.message
    assert daily_reconcile(ctx, hub.client, DAY + dt.timedelta(days=1)).consistent  # nothing that day
    with ctx.engine.connect() as connection:
        assert connection.execute(select(alerts.c.resolved_at).where(alerts.c.kind == "reconcile")).scalar()


def test_content_changed_at_the_hub_at_the_same_version_is_named(hub: Any, tmp_path: Path) -> None:
    ctx, raws = synced(hub, tmp_path)
    table, key = _leaf_key(ctx, raws)
    with writing(hub.state.engine) as connection:  # the stored content changes, its version does not
        row = connection.execute(
            select(records.c.id, records.c.version, records.c.data).where(
                records.c.table_name == table, records.c.key == key
            )
        ).one()
        altered = {**row.data, next(n for n in row.data if n not in ("PLATFORM_CODE",)): "改动"}
        connection.execute(update(records).where(records.c.id == row.id).values(data=altered))

    result = reconcile_day(ctx, hub.client, DAY)
    differing = [t for t in result.tables if not t.consistent]
    assert [t.table for t in differing] == [table]
    outcome = differing[0]
    assert outcome.local_count == outcome.hub_count and outcome.local_digest == outcome.hub_digest
    assert outcome.content_differs == [f"{key}:{row.version}"]
    assert outcome.missing_at_hub == outcome.unknown_locally == [] and outcome.resent == 0
    assert "内容不一致1个" in outcome.note()
    with hub.state.engine.connect() as connection:
        report = connection.execute(select(mismatch_reports)).one()
    assert report.content_differs == [f"{key}:{row.version}"]


def test_cleaning_accepted_records_leaves_no_false_differences(hub: Any, tmp_path: Path) -> None:
    """The disk guard removes records the hub accepted; reconciliation still knows their versions."""
    ctx, raws = synced(hub, tmp_path)
    assert reconcile_day(ctx, hub.client, DAY).consistent
    purged = ctx.outbox.purge_accepted(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    assert purged == len(raws)
    with ctx.engine.connect() as connection:
        assert connection.execute(select(outbox)).all() == []

    result = reconcile_day(ctx, hub.client, DAY)
    assert result.consistent, [(t.table, t.unknown_locally, t.content_differs) for t in result.tables]
    assert sum(t.local_count for t in result.tables) > 0

    # A key the hub then loses is still found (its record is gone: reported, not re-sent).
    table, key = _leaf_key(ctx, raws)
    with writing(hub.state.engine) as connection:
        for model in (record_heads, records, record_refs):
            connection.execute(delete(model).where(model.c.table_name == table, model.c.key == key))
    row = next(t for t in reconcile_day(ctx, hub.client, DAY).tables if t.table == table)
    assert row.missing_at_hub == [key] and row.resent == 0 and row.purged == [key]
    assert "本地已清理" in row.note()
