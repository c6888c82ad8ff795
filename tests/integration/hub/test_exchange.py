"""The exchange API's behaviour (Art. 5–11): channels, scope, keys and versions, idempotency, test data,
timestamps, the feedback feed, reconciliation, body refusals and health.

Each refusal is shown next to the accepted case it differs from by one thing, so removing the check
makes the refused case pass through and the test fail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import HubFixture, province_records
from fastapi.testclient import TestClient
from sqlalchemy import Table, func, select

import ggzy.hub
from ggzy.hub import feedback
from ggzy.hub import ingest as ingest_module
from ggzy.hub.app import create_app
from ggzy.hub.ingest import NodeIdentity, ingest_batch
from ggzy.hub.models import (
    audit_log,
    batches,
    feed,
    mismatch_reports,
    open_rejections,
    record_heads,
    records,
    stats_daily,
    stats_rules,
    test_records,
)
from ggzy.hub.reconcile import bucket_digest
from ggzy.protocol import HubClient, HubRefused
from ggzy.security.audit import AuditEntry, AuditLog
from ggzy.security.crypto import Digest
from ggzy.security.signing import sign_request
from ggzy.simulate import province_systems
from ggzy.store.database import writing
from ggzy.validation import RULES
from ggzy.validation.lookup import DIGEST_V2, legacy_content_digest

CHANNEL_1 = "/api/v1/channels/1/batches"
CHANNEL_2 = "/api/v1/channels/2/batches"
STORED_TABLES = (
    records,
    test_records,
    record_heads,
    batches,
    feed,
    audit_log,
    stats_daily,
    stats_rules,
    open_rejections,
)


# --- records -------------------------------------------------------------------------------------


@cache
def _template(table: str) -> str:
    """One clean simulated record of ``table`` (as JSON, so every caller gets its own copy)."""
    return json.dumps(next(r for r in province_records(transactions=1) if r["table"] == table))


def project(number: int, *, name: str | None = None, **envelope: Any) -> dict[str, Any]:
    """A clean PROJECT record (a trading record without parents) with its own key."""
    record: dict[str, Any] = json.loads(_template("PROJECT"))
    record["data"]["PROJECT_CODE"] = code_of(number)
    if name is not None:
        record["data"]["PROJECT_NAME"] = name
    record.update(envelope)
    return record


def code_of(number: int) -> str:
    return f"N350900261019{number:04d}"


def deletion(number: int) -> dict[str, Any]:
    return {
        "table": "PROJECT",
        "op": "delete",
        "category": "history",
        "data": {"PROJECT_CODE": code_of(number)},
    }


def errors(result: dict[str, Any]) -> set[str]:
    return {f["code"] for f in result["findings"] if f["severity"] == "error"}


# --- requests and storage ------------------------------------------------------------------------


def post_signed(
    hub: HubFixture,
    path: str,
    body: bytes,
    *,
    content_type: str | None = "application/json",
    http: TestClient | None = None,
) -> httpx.Response:
    headers = sign_request("fj-01", bytes.fromhex(hub.node.key), "POST", path, body).as_dict()
    if content_type is not None:
        headers["Content-Type"] = content_type
    return (http or hub.http).post(path, content=body, headers=headers)


def get_signed(hub: HubFixture, path: str, *, http: TestClient | None = None) -> httpx.Response:
    headers = sign_request("fj-01", bytes.fromhex(hub.node.key), "GET", path, b"").as_dict()
    return (http or hub.http).get(path, headers=headers)


def batch_body(batch_id: str, batch_records: list[Any], **envelope: Any) -> bytes:
    return json.dumps(
        {"batch_id": batch_id, "records": batch_records, **envelope}, ensure_ascii=False
    ).encode()


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The one error shape, with a message in both languages."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"ok", "error", "request_id"}
    assert body["ok"] is False and body["request_id"] == response.headers["X-Request-ID"]
    assert set(body["error"]) == {"code", "message_zh", "message_en"}
    assert body["error"]["code"] == code
    assert body["error"]["message_zh"] and body["error"]["message_en"]
    return body


def row_counts(hub: HubFixture) -> dict[str, int]:
    with hub.state.engine.connect() as connection:
        return {
            table.name: int(connection.execute(select(func.count()).select_from(table)).scalar_one())
            for table in STORED_TABLES
        }


def rows(hub: HubFixture, table: Table, *where: Any) -> list[dict[str, Any]]:
    with hub.state.engine.connect() as connection:
        found = connection.execute(select(table).where(*where)).mappings()
        return [dict(row) for row in found]


def versions(hub: HubFixture, number: int) -> list[tuple[int, str]]:
    stored = rows(hub, records, records.c.table_name == "PROJECT", records.c.key == code_of(number))
    return sorted((row["version"], row["op"]) for row in stored)


def head(hub: HubFixture, number: int, namespace: str = "prod") -> dict[str, Any]:
    h = record_heads.c
    (found,) = rows(
        hub, record_heads, h.namespace == namespace, h.table_name == "PROJECT", h.key == code_of(number)
    )
    return found


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(moment: dt.datetime) -> dt.datetime:
    """SQLite gives back naive datetimes; the hub's convention is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


@pytest.fixture
def second_node(hub: HubFixture) -> Iterator[HubClient]:
    """Another node of the same province with the same registered systems."""
    codes = list(province_systems("35", 1).platform_codes)
    _, client = hub.add_node("fj-02", "35", platform_codes=codes)
    yield client
    client.close()


# --- channels and categories (Art. 10) -----------------------------------------------------------


def test_channel_1_takes_realtime_only_and_channel_2_history_and_test(hub: HubFixture) -> None:
    sent = [project(1, category="realtime"), project(2, category="history"), project(3, category="test")]
    first = hub.client.upload(1, "c1", sent)
    assert [errors(r) for r in first["results"]] == [set(), {"E-EXCH-CHANNEL"}, {"E-EXCH-CHANNEL"}]
    second = hub.client.upload(2, "c2", [project(4, category="realtime"), *sent[1:]])
    assert [errors(r) for r in second["results"]] == [{"E-EXCH-CHANNEL"}, set(), set()]
    assert [r["outcome"] for r in second["results"]] == ["rejected", "accepted", "accepted"]


def test_a_record_without_a_category_label_is_refused_on_either_channel(hub: HubFixture) -> None:
    unlabelled = project(1)
    del unlabelled["category"]
    for channel in (1, 2):
        (result,) = hub.client.upload(channel, f"u{channel}", [unlabelled])["results"]
        assert errors(result) == {"E-EXCH-CATEGORY-MISSING"}
    assert hub.client.upload(2, "labelled", [project(1)])["accepted"] == 1


# --- scope: province, registered systems, owner (Art. 7, 19) -------------------------------------


def out_of_scope_audit(hub: HubFixture) -> list[dict[str, Any]]:
    return rows(hub, audit_log, audit_log.c.action == "exchange.out-of-scope")


def test_trading_records_of_another_province_are_refused_and_audited(hub: HubFixture) -> None:
    beijing = project(1)
    beijing["data"]["REGION_CODE"] = "110101"
    receipt = hub.client.upload(2, "p1", [project(2), beijing])
    assert [errors(r) for r in receipt["results"]] == [set(), {"E-EXCH-PROVINCE"}]
    (entry,) = out_of_scope_audit(hub)
    assert entry["object"] == "node:fj-01/batch:p1" and entry["outcome"] == "refused"
    assert entry["detail"] == {"codes": {"E-EXCH-PROVINCE": 1}, "records": [1]}
    with hub.state.engine.connect() as connection:
        assert hub.state.audit.verify(connection) is None


def test_the_out_of_scope_audit_entry_is_committed_with_the_batch_or_not_at_all(
    hub: HubFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # written in a transaction of its own after the batch's, a failure there left the batch stored
    # and its refusals unaudited
    append = AuditLog.append

    def failing(self: AuditLog, connection: Any, entry: AuditEntry) -> Any:
        if entry.action == "exchange.out-of-scope":
            raise RuntimeError("the audit log cannot be written")
        return append(self, connection, entry)

    monkeypatch.setattr(AuditLog, "append", failing)
    beijing = project(1)
    beijing["data"]["REGION_CODE"] = "110101"
    with TestClient(hub.app, raise_server_exceptions=False) as http:
        response = post_signed(hub, CHANNEL_2, batch_body("atomic", [project(2), beijing]), http=http)
    assert response.status_code == 500
    counts = row_counts(hub)
    assert counts["batches"] == counts["records"] == counts["feed"] == 0
    monkeypatch.setattr(AuditLog, "append", append)
    assert hub.client.upload(2, "atomic", [project(2), beijing])["accepted"] == 1  # the retry goes through
    assert len(out_of_scope_audit(hub)) == 1


def test_a_bidder_registered_in_another_province_may_be_reported(hub: HubFixture) -> None:
    # the province rule binds trading records; subjects (bidders, agencies) come from anywhere
    subject: dict[str, Any] = json.loads(_template("LEGAL_PERSON_BASE"))
    subject["data"]["REGION_CODE"] = "110101"
    assert hub.client.upload(2, "s1", [subject])["accepted"] == 1
    assert out_of_scope_audit(hub) == []


def test_a_trading_system_not_registered_to_the_node_is_refused(hub: HubFixture) -> None:
    foreign = project(1)
    foreign["data"]["PLATFORM_CODE"] = province_systems("11", 1).platform_codes[0]
    registered = project(2)
    registered["data"]["PLATFORM_CODE"] = province_systems("35", 1).platform_codes[1]
    receipt = hub.client.upload(2, "pl1", [foreign, registered])
    assert [errors(r) for r in receipt["results"]] == [{"E-EXCH-PLATFORM"}, set()]
    assert out_of_scope_audit(hub)[0]["detail"]["codes"] == {"E-EXCH-PLATFORM": 1}


def test_only_the_node_that_first_sent_a_key_may_change_it(hub: HubFixture, second_node: HubClient) -> None:
    hub.client.upload(2, "o1", [project(1)])
    receipt = second_node.upload(2, "o2", [project(1, op="update", name="他人修改的项目"), deletion(1)])
    assert [errors(r) for r in receipt["results"]] == [{"E-EXCH-OWNER"}, {"E-EXCH-OWNER"}]
    assert out_of_scope_audit(hub)[0]["account"] == "node:fj-02"
    assert versions(hub, 1) == [(1, "insert")] and head(hub, 1)["node_id"] == "fj-01"
    # the owner may, and the other node's own keys are its own
    assert hub.client.upload(2, "o3", [project(1, op="update", name="业主修改的项目")])["accepted"] == 1
    assert second_node.upload(2, "o4", [project(2)])["accepted"] == 1


def at_first_rejection_read(monkeypatch: pytest.MonkeyPatch, action: Callable[[], object]) -> list[bool]:
    """Run ``action`` when the batch first reads its open rejections (after its heads and links);
    the list grows by one at every read, the batch's own and ``action``'s."""
    read_open_rejections = ingest_module._open_rejections
    calls: list[bool] = []

    def meanwhile(connection: Any, batch_keys: Any) -> Any:
        calls.append(True)
        if len(calls) == 1:
            action()
        return read_open_rejections(connection, batch_keys)

    monkeypatch.setattr(ingest_module, "_open_rejections", meanwhile)
    return calls


def test_two_nodes_sending_one_new_key_at_once_end_as_if_one_came_first(
    hub: HubFixture, second_node: HubClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    if hub.state.engine.dialect.name == "sqlite":
        pytest.skip("SQLite runs one writer at a time: there is no race to lose")
    # fj-02's batch holds its write transaction and has read the heads (no owner of key 1) when
    # fj-01's batch with the same key commits; fj-02's insert then fails on the unique version.
    # Without the retry in ingest_batch that failure is a 500; with it, fj-02's batch is read again
    # and its record refused as the duplicate it is, as had fj-01's batch come first.
    codes = frozenset(province_systems("35", 1).platform_codes)
    first, second = NodeIdentity("fj-01", "35", codes), NodeIdentity("fj-02", "35", codes)
    state = hub.state
    # fj-02's first read is under its write transaction, after its heads
    calls = at_first_rejection_read(
        monkeypatch,
        lambda: ingest_batch(state.engine, state.validator, state.audit, first, 2, "a", [project(1)], "a"),
    )
    result = ingest_batch(state.engine, state.validator, state.audit, second, 2, "b", [project(1)], "b")
    (outcome,) = result.receipt["results"]
    # fj-02's read, fj-01's, fj-02's again after its insert failed
    assert len(calls) == 3 and errors(outcome) == {"E-XR-DUPLICATE"}
    assert versions(hub, 1) == [(1, "insert")] and head(hub, 1)["node_id"] == "fj-01"


def test_a_batch_decided_before_another_stored_its_keys_is_decided_again(
    hub: HubFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    if hub.state.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL decides a batch in its write transaction: there is no snapshot to outlive")
    # A batch is decided on a snapshot, before its write transaction (so that another worker can
    # store meanwhile). Here the node's own earlier batch, inserting key 1, commits between that
    # snapshot and the write lock of the batch updating key 1. Stored as decided, the update would be
    # refused as a change of a missing key; read again under the lock, it is version 2.
    codes = frozenset(province_systems("35", 1).platform_codes)
    node = NodeIdentity("fj-01", "35", codes)
    state = hub.state
    # the first read is the snapshot's, outside the write lock
    at_first_rejection_read(
        monkeypatch,
        lambda: ingest_batch(state.engine, state.validator, state.audit, node, 2, "a", [project(1)], "a"),
    )
    update = project(1, op="update", name="更正后的项目名称")
    result = ingest_batch(state.engine, state.validator, state.audit, node, 2, "b", [update], "b")
    (outcome,) = result.receipt["results"]
    assert (outcome["outcome"], outcome["version"], errors(outcome)) == ("accepted", 2, set())
    assert versions(hub, 1) == [(1, "insert"), (2, "update")]
    assert head(hub, 1)["version"] == 2


def test_a_batch_decided_before_its_parent_was_stored_is_decided_again(
    hub: HubFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    if hub.state.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL decides a batch in its write transaction: there is no snapshot to outlive")
    # As above, through a link rather than the record's own key: the parent of the batch's record
    # is stored between the snapshot and the write lock.
    spec = hub.state.validator.spec
    simulated = province_records(transactions=1)
    child = next(r for r in simulated if spec.tables[r["table"]].parents)
    link = spec.tables[child["table"]].parents[0]
    child_field, parent_field = next(iter(link.fields.items()))
    parent = next(
        r
        for r in simulated
        if r["table"] == link.table and r["data"][parent_field] == child["data"][child_field]
    )
    node = NodeIdentity("fj-01", "35", frozenset(province_systems("35", 1).platform_codes))
    state = hub.state
    at_first_rejection_read(
        monkeypatch,
        lambda: ingest_batch(state.engine, state.validator, state.audit, node, 2, "p", [parent], "p"),
    )
    result = ingest_batch(state.engine, state.validator, state.audit, node, 2, "c", [child], "c")
    (outcome,) = result.receipt["results"]
    assert (outcome["outcome"], errors(outcome)) == ("accepted", set())


def test_on_sqlite_a_snapshot_nobody_wrote_after_is_stored_without_reading_again(
    hub: HubFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    if hub.state.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL decides a batch in its write transaction: there is no snapshot to check")
    read_again: list[bool] = []
    still_holds = ingest_module._Decision.still_holds

    def spy(self: Any, *args: Any) -> bool:
        read_again.append(True)
        return still_holds(self, *args)

    monkeypatch.setattr(ingest_module._Decision, "still_holds", spy)
    assert hub.client.upload(2, "s1", [project(1)])["accepted"] == 1
    assert hub.client.upload(2, "s2", [project(1, op="update", name="第二版")])["results"][0]["version"] == 2
    assert read_again == []

    def meanwhile() -> None:
        with writing(hub.state.engine) as other:
            other.execute(feed.insert().values(node_id="fj-01", kind="notice", body={}, created_at=now_utc()))

    at_first_rejection_read(monkeypatch, meanwhile)
    assert hub.client.upload(2, "s3", [project(1, op="update", name="第三版")])["results"][0]["version"] == 3
    assert read_again == [True]


# --- keys, duplicates, versions and history (Art. 8) ---------------------------------------------


def test_insert_of_a_held_key_and_change_of_a_missing_key_are_refused(hub: HubFixture) -> None:
    hub.client.upload(2, "k1", [project(1)])
    receipt = hub.client.upload(
        2,
        "k2",
        [project(1, name="同号新项目"), project(2, op="update", name="不存在的项目"), deletion(2)],
    )
    assert [errors(r) for r in receipt["results"]] == [
        {"E-XR-KEY-EXISTS"},
        {"E-XR-KEY-MISSING"},
        {"E-XR-KEY-MISSING"},
    ]
    assert versions(hub, 1) == [(1, "insert")] and versions(hub, 2) == []


def test_the_same_record_sent_again_is_a_duplicate_and_counted_as_one(hub: HubFixture) -> None:
    hub.client.upload(2, "d1", [project(1)])
    (result,) = hub.client.upload(2, "d2", [project(1)])["results"]
    assert errors(result) == {"E-XR-DUPLICATE"}
    assert versions(hub, 1) == [(1, "insert")]
    (daily,) = rows(hub, stats_daily, stats_daily.c.table_name == "PROJECT")
    assert (daily["received"], daily["accepted"], daily["rejected"], daily["duplicates"]) == (2, 1, 1, 1)


def test_a_head_stored_under_the_older_content_digest_still_recognises_a_duplicate(hub: HubFixture) -> None:
    # Heads stored before the tagged (v2) digest keep the older form: a resend of the same content
    # must still be a duplicate, and a changed record still a new version.
    hub.client.upload(2, "old-1", [project(1), project(2)])
    with writing(hub.state.engine) as connection:
        for number in (1, 2):
            stored = head(hub, number)
            assert stored["digest"].startswith(DIGEST_V2) and len(stored["digest"]) == 32
            record = project(number)
            older = legacy_content_digest(record.get("op", "insert"), record["data"])
            assert older != stored["digest"]
            connection.execute(
                record_heads.update().where(record_heads.c.key == code_of(number)).values(digest=older)
            )
    same, changed = hub.client.upload(2, "old-2", [project(1), project(2, op="update", name="新名称")])[
        "results"
    ]
    assert errors(same) == {"E-XR-DUPLICATE"}
    assert errors(changed) == set() and changed["version"] == 2
    assert head(hub, 2)["digest"].startswith(DIGEST_V2)


def test_every_accepted_version_is_kept_and_the_newest_is_current(hub: HubFixture) -> None:
    hub.client.upload(2, "v1", [project(1, name="原名称")])
    (updated,) = hub.client.upload(2, "v2", [project(1, op="update", name="更正后的名称")])["results"]
    assert updated["version"] == 2
    history = rows(hub, records, records.c.key == code_of(1))
    names = {row["version"]: row["data"]["PROJECT_NAME"] for row in history}
    assert names == {1: "原名称", 2: "更正后的名称"}
    assert (head(hub, 1)["version"], head(hub, 1)["deleted"]) == (2, False)

    (deleted,) = hub.client.upload(2, "v3", [deletion(1)])["results"]
    assert deleted["version"] == 3
    assert versions(hub, 1) == [(1, "insert"), (2, "update"), (3, "delete")]
    assert (head(hub, 1)["version"], head(hub, 1)["deleted"]) == (3, True)  # a tombstone

    (after,) = hub.client.upload(2, "v4", [project(1, op="update", name="删除后修改")])["results"]
    assert errors(after) == {"E-XR-KEY-MISSING"}
    (again,) = hub.client.upload(2, "v5", [project(1, name="重新登记")])["results"]
    assert again["version"] == 4 and errors(again) == set()
    assert (head(hub, 1)["version"], head(hub, 1)["deleted"]) == (4, False)
    assert len(rows(hub, records, records.c.key == code_of(1))) == 4


# --- idempotency ---------------------------------------------------------------------------------


def test_a_batch_sent_again_returns_the_same_receipt_and_writes_nothing(hub: HubFixture) -> None:
    sent = [project(1), project(2, op="update", name="不存在"), project(3)]
    first = post_signed(hub, CHANNEL_2, batch_body("r1", sent, sent_at="2026-11-27T09:00:00+08:00"))
    assert first.status_code == 200 and first.headers["X-GGZY-Replayed"] == "false"
    before = row_counts(hub)
    metrics_before = hub.metrics()
    # a retry: new nonce, new signature, a later sent_at, the same records
    again = post_signed(hub, CHANNEL_2, batch_body("r1", sent, sent_at="2026-11-27T09:05:00+08:00"))
    assert again.status_code == 200 and again.headers["X-GGZY-Replayed"] == "true"
    assert again.json() == first.json()
    assert row_counts(hub) == before
    assert hub.client.upload(2, "r1", sent) == first.json()
    assert row_counts(hub) == before
    records_line = 'ggzy_hub_records_total{channel="2",outcome="accepted"} 2.0'
    assert records_line in metrics_before and records_line in hub.metrics()


def test_a_batch_stored_under_the_older_digest_is_still_recognised_on_retry(hub: HubFixture) -> None:
    # orjson spells this float 1e-7 where json.dumps wrote 1e-07, so the two digests differ: without
    # BatchDigest's fallback to the older form, the retry of a batch stored before would be a 409
    odd = project(1)
    odd["data"]["TOTAL_INVESTMENT"] = 1e-07
    sent = [odd, project(2)]
    first = post_signed(hub, CHANNEL_2, batch_body("old", sent))
    assert first.status_code == 200
    legacy = json.dumps(sent, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    with hub.state.engine.begin() as connection:
        stored = connection.execute(select(batches.c.body_digest)).scalar_one()
        assert stored != hashlib.sha256(legacy.encode()).hexdigest()
        connection.execute(batches.update().values(body_digest=hashlib.sha256(legacy.encode()).hexdigest()))
    before = row_counts(hub)
    again = post_signed(hub, CHANNEL_2, batch_body("old", sent))
    assert again.status_code == 200 and again.headers["X-GGZY-Replayed"] == "true"
    assert again.json() == first.json() and row_counts(hub) == before
    assert_error(post_signed(hub, CHANNEL_2, batch_body("old", [project(3)])), 409, "E-BATCH-CONFLICT")


def test_the_same_batch_id_with_other_records_is_a_conflict(hub: HubFixture) -> None:
    hub.client.upload(2, "same-id", [project(1)])
    before = row_counts(hub)
    response = post_signed(hub, CHANNEL_2, batch_body("same-id", [project(2)]))
    assert_error(response, 409, "E-BATCH-CONFLICT")
    assert row_counts(hub) == before
    # batch ids are per node: another node may use the same id for its own records
    codes = list(province_systems("35", 1).platform_codes)
    _, other = hub.add_node("fj-02", "35", platform_codes=codes)
    assert other.upload(2, "same-id", [project(2)])["accepted"] == 1


# --- test data (Art. 10) -------------------------------------------------------------------------


def test_test_data_is_answered_but_stored_apart_and_never_counted(hub: HubFixture) -> None:
    broken = project(2, category="test")
    broken["data"]["CREATE_TIME"] = "2026-13-01"
    receipt = hub.client.upload(2, "t1", [project(1, category="test"), broken])
    assert [r["outcome"] for r in receipt["results"]] == ["accepted", "rejected"]
    assert "E-FIELD-DATETIME" in errors(receipt["results"][1])
    assert [row["key"] for row in rows(hub, test_records)] == [code_of(1)]
    assert rows(hub, records) == []
    assert rows(hub, stats_daily) == [] and rows(hub, stats_rules) == [] and rows(hub, open_rejections) == []
    assert head(hub, 1, "test")["version"] == 1
    assert hub.client.feedback()["items"][0]["body"] == receipt  # fed back like the rest
    # production is a separate namespace: the same key is new there
    (real,) = hub.client.upload(2, "t2", [project(1)])["results"]
    assert (real["outcome"], real["version"]) == ("accepted", 1)
    assert [row["received"] for row in rows(hub, stats_daily)] == [1]


# --- timestamps (Art. 9) -------------------------------------------------------------------------


def test_published_acquired_sent_received_and_decided_times_are_kept(
    hub: HubFixture, request: pytest.FixtureRequest
) -> None:
    own = project(
        1,
        published_at="2026-11-20T09:00:00+08:00",
        acquired_at="2026-11-20T09:01:00+08:00",
        sent_at="2026-11-20T09:02:00+08:00",
    )
    receipt = hub.client.upload(2, "ts1", [own])
    (row,) = rows(hub, records)
    assert as_utc(row["published_at"]) == dt.datetime(2026, 11, 20, 1, 0, tzinfo=dt.UTC)
    assert as_utc(row["acquired_at"]) == dt.datetime(2026, 11, 20, 1, 1, tzinfo=dt.UTC)
    assert as_utc(row["sent_at"]) == dt.datetime(2026, 11, 20, 1, 2, tzinfo=dt.UTC)
    assert as_utc(row["received_at"]) == dt.datetime.fromisoformat(receipt["received_at"])
    assert as_utc(row["decided_at"]) >= as_utc(row["received_at"])


def test_a_record_without_its_own_sent_at_takes_the_batch_sent_at(hub: HubFixture) -> None:
    body = batch_body(
        "ts2",
        [project(1), project(2, sent_at="2026-11-20T01:02:00+00:00")],
        sent_at="2026-11-20T01:05:00+00:00",
    )
    assert post_signed(hub, CHANNEL_2, body).json()["accepted"] == 2
    sent = {row["key"]: as_utc(row["sent_at"]) for row in rows(hub, records)}
    assert sent == {
        code_of(1): dt.datetime(2026, 11, 20, 1, 5, tzinfo=dt.UTC),
        code_of(2): dt.datetime(2026, 11, 20, 1, 2, tzinfo=dt.UTC),
    }
    bad = post_signed(hub, CHANNEL_2, batch_body("ts3", [project(3)], sent_at="2026-11-20 09:05"))
    assert_error(bad, 400, "E-REQ-SHAPE")


# --- feedback feed (Art. 11) ---------------------------------------------------------------------


def test_the_feed_returns_every_verdict_in_order_page_by_page(hub: HubFixture) -> None:
    receipts = [hub.client.upload(2, f"f{n}", [project(n)]) for n in (1, 2, 3)]
    reupload_id = feedback.push(
        hub.state.engine, "fj-01", "reupload", {"table": "PROJECT", "keys": [code_of(9)]}
    )
    notice_id = feedback.push(hub.state.engine, "fj-01", "notice", {"text": "明晚维护"})
    pages = []
    after, more = 0, True
    while more:
        page = hub.client.feedback(after=after, limit=2)
        assert len(page["items"]) <= 2
        pages.append(page["items"])
        after, more = page["next"], page["more"]
    items = [item for page in pages for item in page]
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [item["kind"] for item in items] == ["receipt"] * 3 + ["reupload", "notice"]
    assert [item["body"] for item in items[:3]] == receipts  # a lost receipt can be read again
    assert [item["batch_id"] for item in items[:3]] == ["f1", "f2", "f3"]
    received = dt.datetime.fromisoformat(receipts[0]["received_at"])
    assert dt.datetime.fromisoformat(items[0]["created_at"]) == received  # an instant on every backend
    cursors = [item["cursor"] for item in items]
    assert cursors == sorted(cursors) and cursors[3:] == [reupload_id, notice_id]
    assert items[3]["body"] == {"table": "PROJECT", "keys": [code_of(9)]}
    assert hub.client.feedback(after=after) == {"items": [], "next": after, "more": False}
    hub.client.upload(2, "f1", [project(1)])  # a replay adds nothing to read
    assert hub.client.feedback(after=after)["items"] == []
    with pytest.raises(ValueError):
        feedback.push(hub.state.engine, "fj-01", "receipt", {})


def test_a_page_is_never_longer_than_the_hub_allows(hub: HubFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in (1, 2, 3):
        hub.client.upload(2, f"f{n}", [project(n)])
    monkeypatch.setattr(hub.state.settings, "feed_page_size", 2)
    page = hub.client.feedback(limit=1000)
    assert len(page["items"]) == 2 and page["more"] is True


def test_a_node_reads_only_its_own_feed(hub: HubFixture, second_node: HubClient) -> None:
    hub.client.upload(2, "mine", [project(1)])
    feedback.push(hub.state.engine, "fj-01", "notice", {"text": "只给福建一号"})
    theirs = second_node.upload(2, "theirs", [project(2)])
    assert [item["body"] for item in second_node.feedback()["items"]] == [theirs]
    assert [item["batch_id"] for item in hub.client.feedback()["items"]] == ["mine", None]


# --- reconciliation (Art. 8) ---------------------------------------------------------------------


def reconcile_fixture(hub: HubFixture) -> dict[str, list[tuple[str, int]]]:
    """Upload records acquired on 2026-10-20 and 21 (Beijing time); the day-20 buckets from receipts."""
    day_20 = "2026-10-20T23:30:00+08:00"
    day_21 = "2026-10-20T16:30:00+00:00"  # 00:30 on the 21st in Beijing
    subject: dict[str, Any] = json.loads(_template("LEGAL_PERSON_BASE"))
    sent = [
        project(1, acquired_at=day_20),
        project(2, acquired_at=day_21),
        project(3, acquired_at=day_20),
        {**subject, "acquired_at": day_20},
        project(4, acquired_at=day_20, category="test"),  # never part of reconciliation
    ]
    receipts = [hub.client.upload(2, "rc1", sent)]
    receipts.append(hub.client.upload(2, "rc2", [project(3, op="update", name="改", acquired_at=day_20)]))
    on_day_20 = {code_of(1), code_of(3), subject["data"]["LEGAL_CODE"]}
    current: dict[tuple[str, str], int] = {}
    for receipt in receipts:
        for result in receipt["results"]:
            if result["outcome"] == "accepted" and result["key"] in on_day_20:
                current[(result["table"], result["key"])] = result["version"]
    buckets: dict[str, list[tuple[str, int]]] = {}
    for (table, key), version in current.items():
        buckets.setdefault(table, []).append((key, version))
    return buckets


def test_reconcile_gives_count_and_digest_per_table_matching_the_receipts(hub: HubFixture) -> None:
    buckets = reconcile_fixture(hub)
    summary = hub.client.reconcile(dt.date(2026, 10, 20))
    assert summary["day"] == "2026-10-20" and summary["algorithm"] == "SHA256"
    # (each table also has a content digest, tested with the node: tests/integration/node/test_reconcile.py)
    assert [{k: t[k] for k in ("table", "count", "digest")} for t in summary["tables"]] == [
        {"table": table, "count": len(pairs), "digest": bucket_digest(pairs)}
        for table, pairs in sorted(buckets.items())
    ]
    assert [t["count"] for t in summary["tables"]] == [1, 2]  # LEGAL_PERSON_BASE, PROJECT
    next_day = hub.client.reconcile(dt.date(2026, 10, 21))["tables"]
    assert [{k: t[k] for k in ("table", "count", "digest")} for t in next_day] == [
        {"table": "PROJECT", "count": 1, "digest": bucket_digest([(code_of(2), 1)])}
    ]


def test_reconcile_lists_keys_on_request_and_digests_with_sm3(hub: HubFixture) -> None:
    pairs = reconcile_fixture(hub)["PROJECT"]
    table = hub.client.reconcile(dt.date(2026, 10, 20), "PROJECT", keys=True)
    assert table["keys"] == [f"{key}:{version}" for key, version in sorted(pairs)]
    assert table["keys"] == [f"{code_of(1)}:1", f"{code_of(3)}:2"]
    assert (table["count"], table["digest"]) == (2, bucket_digest(pairs))
    assert "keys" not in hub.client.reconcile(dt.date(2026, 10, 20), "PROJECT")
    sm3 = get_signed(hub, "/api/v1/reconcile?day=2026-10-20&table=PROJECT&algorithm=SM3").json()
    assert sm3["algorithm"] == "SM3" and sm3["digest"] == bucket_digest(pairs, Digest.SM3)
    assert sm3["digest"] != table["digest"]
    assert_error(get_signed(hub, "/api/v1/reconcile?day=2026-10-20&keys=true"), 400, "E-REQ-PARAMETER")
    assert_error(get_signed(hub, "/api/v1/reconcile?day=2026-10-32"), 422, "E-REQ-PARAMETER")


def test_reconcile_shows_a_node_only_its_own_province(hub: HubFixture) -> None:
    reconcile_fixture(hub)
    _, beijing = hub.add_node("bj-01", "11")
    assert beijing.reconcile(dt.date(2026, 10, 20))["tables"] == []
    beijing.close()


def test_a_mismatch_report_is_stored_and_audited(hub: HubFixture) -> None:
    reconcile_fixture(hub)
    report = {
        "table": "PROJECT",
        "day": "2026-10-20",
        "local_count": 3,
        "missing_at_hub": [f"{code_of(7)}:1"],
        "unknown_locally": [],
        "note": "本地3条，国家平台2条",
    }
    answer = hub.client.report_mismatch(report)
    assert answer["ok"] is True
    (stored,) = rows(hub, mismatch_reports)
    assert stored["id"] == answer["report_id"]
    assert (stored["node_id"], stored["province"], stored["table_name"]) == ("fj-01", "35", "PROJECT")
    assert (stored["day"], stored["local_count"], stored["hub_count"]) == (dt.date(2026, 10, 20), 3, 2)
    assert stored["missing_at_hub"] == [f"{code_of(7)}:1"] and stored["note"] == report["note"]
    (entry,) = rows(hub, audit_log, audit_log.c.action == "reconcile.mismatch")
    assert entry["object"] == "node:fj-01/PROJECT/2026-10-20"
    for broken in ({**report, "local_count": -1}, {**report, "local_count": 10**30}, {**report, "day": "x"}):
        with pytest.raises(HubRefused) as refused:
            hub.client.report_mismatch(broken)
        assert (refused.value.status, refused.value.code) == (400, "E-REQ-SHAPE")
    assert len(rows(hub, mismatch_reports)) == 1


# --- bodies that are refused whole ---------------------------------------------------------------


def test_a_body_over_the_size_limit_is_refused(hub: HubFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    body = batch_body("big", [project(1)])
    monkeypatch.setattr(hub.state.settings, "max_body_bytes", len(body) - 1)
    assert_error(post_signed(hub, CHANNEL_2, body), 413, "E-REQ-TOO-LARGE")
    # without a Content-Length (chunked), the hub stops reading once the limit is passed
    headers = sign_request("fj-01", bytes.fromhex(hub.node.key), "POST", CHANNEL_2, body).as_dict()
    chunks = iter([body[:1000], body[1000:]])
    chunked = hub.http.post(
        CHANNEL_2, content=chunks, headers={**headers, "Content-Type": "application/json"}
    )
    assert_error(chunked, 413, "E-REQ-TOO-LARGE")
    monkeypatch.setattr(hub.state.settings, "max_body_bytes", len(body))
    assert post_signed(hub, CHANNEL_2, body).status_code == 200


def test_a_batch_of_too_many_records_is_refused(hub: HubFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub.state.settings, "max_batch_records", 2)
    three = batch_body("many", [project(1), project(2), project(3)])
    assert_error(post_signed(hub, CHANNEL_2, three), 413, "E-BATCH-TOO-MANY")
    assert post_signed(hub, CHANNEL_2, batch_body("two", [project(1), project(2)])).status_code == 200


def test_only_utf8_json_is_accepted(hub: HubFixture) -> None:
    body = batch_body("ct", [project(1)])
    assert_error(post_signed(hub, CHANNEL_2, body, content_type="text/plain"), 415, "E-REQ-CONTENT-TYPE")
    assert_error(post_signed(hub, CHANNEL_2, body, content_type=None), 415, "E-REQ-CONTENT-TYPE")
    gbk = post_signed(hub, CHANNEL_2, body, content_type="application/json; charset=GBK")
    assert "GBK" in assert_error(gbk, 415, "E-REQ-ENCODING")["error"]["message_zh"]
    utf8 = post_signed(hub, CHANNEL_2, body, content_type="application/json; charset=utf-8")
    assert utf8.status_code == 200


def test_gbk_bytes_declared_as_utf8_are_refused_with_the_byte_offset(hub: HubFixture) -> None:
    text = json.dumps({"batch_id": "gbk", "records": [project(1)]}, ensure_ascii=False)
    body = text.encode("gbk")
    with pytest.raises(UnicodeDecodeError) as decoding:
        body.decode("utf-8")
    offset = decoding.value.start
    assert offset > 0
    error = assert_error(post_signed(hub, CHANNEL_2, body), 400, "E-REQ-ENCODING")["error"]
    assert error["message_en"] == f"byte {offset} of the body is not valid UTF-8"
    assert f"第{offset}字节" in error["message_zh"]


def test_unreadable_json_is_refused_with_a_precise_message(hub: HubFixture) -> None:
    truncated = assert_error(
        post_signed(hub, CHANNEL_2, b'{"batch_id": "j",\n "records": ['), 400, "E-REQ-JSON"
    )
    assert "line 2 column" in truncated["error"]["message_en"]
    deep = b'{"batch_id": "j", "records": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    assert (
        "nested too deeply"
        in assert_error(post_signed(hub, CHANNEL_2, deep), 400, "E-REQ-JSON")["error"]["message_en"]
    )
    long_number = b'{"batch_id": "j", "records": [' + b"7" * 5000 + b"]}"
    assert_error(post_signed(hub, CHANNEL_2, long_number), 400, "E-REQ-JSON")
    assert row_counts(hub)["batches"] == 0


def test_a_number_beyond_64_bits_is_read_exactly(hub: HubFixture) -> None:
    # orjson would read it as the float 1.2345678901234568e+22: the fallback to the exact parser
    # keeps the value the finding quotes as sent
    body = batch_body("big", [project(1)]).replace(
        b'"PROJECT_NAME":', b'"PROJECT_NAME": 12345678901234567890123, "X":'
    )
    (result,) = post_signed(hub, CHANNEL_2, body).json()["results"]
    (finding,) = [f for f in result["findings"] if f["code"] == "E-STRUCT-VALUE-TYPE"]
    assert finding["value"] == "12345678901234567890123"


def test_text_that_cannot_be_stored_is_refused(hub: HubFixture) -> None:
    nul = project(1, name="含\u0000字符")
    response = post_signed(hub, CHANNEL_2, batch_body("nul", [nul]))
    message = assert_error(response, 400, "E-REQ-ENCODING")["error"]["message_en"]
    assert "NUL" in message and "records[0].data.PROJECT_NAME" in message
    lone = b'{"batch_id": "sur", "records": [{"table": "PROJECT", "data": {"PROJECT_NAME": "\\ud800"}}]}'
    assert (
        "surrogate"
        in assert_error(post_signed(hub, CHANNEL_2, lone), 400, "E-REQ-ENCODING")["error"]["message_en"]
    )
    # a surrogate pair is one ordinary character (here an emoji) and is welcome
    pair = batch_body("pair", [project(2, name="项目\U0001f600")]).replace(
        "\U0001f600".encode(), b"\\ud83d\\ude00"
    )
    assert post_signed(hub, CHANNEL_2, pair).json()["accepted"] == 1
    assert rows(hub, records)[0]["data"]["PROJECT_NAME"] == "项目\U0001f600"


def test_bodies_of_the_wrong_shape_are_refused(hub: HubFixture) -> None:
    shapes = [
        b"[]",
        b'"batch"',
        b'{"batch_id": "s"}',
        b'{"batch_id": "s", "records": []}',
        b'{"batch_id": "s", "records": {}}',
    ]
    for body in shapes:
        assert_error(post_signed(hub, CHANNEL_2, body), 400, "E-REQ-SHAPE")
    for batch_id in ("", "x" * 65, "有中文", "a b", 7, None):
        body = json.dumps({"batch_id": batch_id, "records": [project(1)]}).encode()
        assert_error(post_signed(hub, CHANNEL_2, body), 400, "E-REQ-BATCH-ID")
    assert row_counts(hub)["batches"] == 0


def test_wrongly_typed_records_are_rejected_one_by_one_not_crashed_on(hub: HubFixture) -> None:
    sent: list[Any] = [1, "PROJECT", None, {"table": "NOPE", "category": "history", "data": {}}, project(1)]
    receipt = post_signed(hub, CHANNEL_2, batch_body("typed", sent)).json()
    assert [r["index"] for r in receipt["results"]] == [0, 1, 2, 3, 4]
    assert [r["outcome"] for r in receipt["results"]] == ["rejected"] * 4 + ["accepted"]
    assert [errors(r) for r in receipt["results"][:4]] == [{"E-STRUCT-NOT-OBJECT"}] * 3 + [{"E-STRUCT-TABLE"}]


def test_an_envelope_field_of_the_wrong_json_type_is_a_finding(hub: HubFixture) -> None:
    receipt = hub.client.upload(2, "envelope", [project(1, op=["update"]), project(2, category={"a": 1})])
    assert [errors(r) for r in receipt["results"]] == [{"E-STRUCT-OP"}, {"E-STRUCT-CATEGORY"}]


def test_an_acquired_at_at_the_edge_of_the_calendar_is_a_finding(hub: HubFixture) -> None:
    (result,) = hub.client.upload(2, "edge", [project(1, acquired_at="0001-01-01T00:00:00+14:00")])["results"]
    assert errors(result) == {"E-EXCH-TIME"}


def test_unknown_channels_routes_and_parameters_get_the_error_shape(hub: HubFixture) -> None:
    body = batch_body("ch", [project(1)])
    for path in ("/api/v1/channels/3/batches", "/api/v1/channels/0/batches", "/api/v1/channels/x/batches"):
        assert_error(post_signed(hub, path, body), 422, "E-REQ-PARAMETER")
    assert_error(hub.http.get("/api/v1/nothing"), 404, "E-HTTP-NOT-FOUND")
    assert_error(hub.http.get(CHANNEL_2), 405, "E-HTTP-METHOD")
    assert_error(get_signed(hub, f"/api/v1/feedback?after={10**20}"), 422, "E-REQ-PARAMETER")
    assert_error(get_signed(hub, "/api/v1/feedback?limit=0"), 422, "E-REQ-PARAMETER")
    assert row_counts(hub)["batches"] == 0


def test_a_failure_of_the_hub_itself_keeps_the_error_shape(
    hub: HubFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> list[dict[str, Any]]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("ggzy.hub.api.exchange.read_feed", broken)
    lenient = TestClient(hub.app, raise_server_exceptions=False)
    response = get_signed(hub, "/api/v1/feedback", http=lenient)
    assert "disk on fire" not in assert_error(response, 500, "E-HUB-INTERNAL")["error"]["message_en"]


# --- documentation -------------------------------------------------------------------------------


def test_every_request_level_code_of_the_hub_is_documented() -> None:
    """docs/protocol.md lists every code the hub answers with (record-level codes live in rules.md)."""
    protocol = (Path(__file__).resolve().parents[3] / "docs" / "protocol.md").read_text(encoding="utf-8")
    hub_sources = Path(ggzy.hub.__file__).parent.rglob("*.py")
    used = {
        code for source in hub_sources for code in re.findall(r'"(E-[A-Z0-9-]+)"', source.read_text("utf-8"))
    }
    request_level = {code for code in used - set(RULES) if not code.startswith("E-NODE-")}  # CLI-only codes
    assert {"E-AUTH-REPLAY", "E-BATCH-CONFLICT", "E-REQ-ENCODING"} <= request_level
    assert sorted(code for code in request_level if f"`{code}`" not in protocol) == []


# --- health and metrics --------------------------------------------------------------------------


def test_healthz_and_readyz_answer_when_all_is_well(hub: HubFixture) -> None:
    assert hub.http.get("/healthz").json() == {"status": "ok"}
    ready = hub.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "ready": True,
        "checks": {"database": "ok", "migrations": "ok", "maintenance": "off"},
    }


def test_readyz_is_503_in_maintenance_mode(hub: HubFixture) -> None:
    settings = hub.state.settings.model_copy(update={"maintenance": True})
    app = create_app(settings, state=dataclasses.replace(hub.state, settings=settings))
    response = TestClient(app).get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["maintenance"] == "on"


def test_readyz_is_503_when_migrations_are_not_current(hub: HubFixture) -> None:
    with writing(hub.state.engine) as connection:
        connection.exec_driver_sql("DELETE FROM alembic_version")
    response = hub.http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "pending"


def test_readyz_is_503_when_the_database_is_unreachable(hub: HubFixture, tmp_path: Path) -> None:
    from ggzy.store import make_engine

    missing = make_engine(f"sqlite:///{tmp_path}/absent/hub.db")
    missing.dispose()
    (tmp_path / "absent").rmdir()  # the directory make_engine created is gone: no file can open
    app = create_app(hub.state.settings, state=dataclasses.replace(hub.state, engine=missing))
    response = TestClient(app).get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("unreachable")


def test_metrics_count_uploaded_records(hub: HubFixture) -> None:
    refused = project(2, op="update", name="不存在")
    hub.client.upload(2, "m1", [project(1), refused])
    text = hub.metrics()
    assert 'ggzy_hub_records_total{channel="2",outcome="accepted"} 1.0' in text
    assert 'ggzy_hub_records_total{channel="2",outcome="rejected"} 1.0' in text
    assert "ggzy_hub_batch_seconds_count" in text
