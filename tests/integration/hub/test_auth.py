"""Every way the hub refuses an exchange request before reading it, each with its code and audit entry.

Each test first shows the request is accepted when the guarded condition holds, so a refusal proves
the check and not a broken fixture; removing any check in ``ggzy/hub/auth.py`` fails a test here.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import httpx
from conftest import HubFixture, province_records
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ggzy.hub.models import audit_log, batches, feed
from ggzy.hub.registry import rotate_key, set_status
from ggzy.protocol import HubClient
from ggzy.security.signing import (
    HEADER_ALGORITHM,
    HEADER_NODE,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    SignatureAlgorithm,
    sign_request,
)
from ggzy.simulate import province_systems
from ggzy.store.database import writing

SPEC = "/api/v1/spec"
UPLOAD = "/api/v1/channels/2/batches"


def signed_get(
    http: TestClient, node_id: str, key: bytes, path: str = SPEC, **signing: Any
) -> httpx.Response:
    headers = sign_request(node_id, key, "GET", path, b"", **signing).as_dict()
    return http.get(path, headers=headers)


def key_of(hub: HubFixture) -> bytes:
    return bytes.fromhex(hub.node.key)


def signed_upload(hub: HubFixture, body: bytes) -> dict[str, str]:
    return {
        **sign_request("fj-01", key_of(hub), "POST", UPLOAD, body).as_dict(),
        "Content-Type": "application/json",
    }


def assert_refused(hub: HubFixture, response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The refusal has the one error shape, and this very request left a whole-chain audit entry."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"ok", "error", "request_id"}
    assert body["ok"] is False
    assert body["error"]["code"] == code
    assert body["error"]["message_zh"] and body["error"]["message_en"]
    with hub.state.engine.connect() as connection:
        entry = (
            connection.execute(
                select(audit_log)
                .where(audit_log.c.action == "exchange.refused")
                .order_by(audit_log.c.id.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        assert entry is not None, "no audit entry for the refusal"
        assert entry["detail"]["code"] == code
        assert entry["request_id"] == body["request_id"]
        assert entry["outcome"] == "refused"
        assert hub.state.audit.verify(connection) is None
    return dict(entry)


def count(hub: HubFixture, table: Any) -> int:
    with hub.state.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_correctly_signed_request_is_answered(hub: HubFixture) -> None:
    response = signed_get(hub.http, "fj-01", key_of(hub))
    assert response.status_code == 200, response.text
    assert "2.0" in response.json()["accepted_versions"]


def test_each_missing_signature_header_is_refused(hub: HubFixture) -> None:
    for header in (HEADER_NODE, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE):
        headers = sign_request("fj-01", key_of(hub), "GET", SPEC, b"").as_dict()
        del headers[header]
        assert_refused(hub, hub.http.get(SPEC, headers=headers), 401, "E-AUTH-MISSING")


def test_every_exchange_endpoint_demands_a_signature(hub: HubFixture) -> None:
    body = b'{"batch_id": "b", "records": [{}]}'
    calls = [
        ("GET", SPEC),
        ("GET", "/api/v1/feedback"),
        ("GET", "/api/v1/reconcile?day=2026-11-01"),
        ("POST", "/api/v1/reconcile/mismatches"),
        ("POST", UPLOAD),
        ("POST", "/api/v1/channels/1/batches"),
    ]
    for method, path in calls:
        content = body if method == "POST" else None
        response = hub.http.request(
            method, path, content=content, headers={"Content-Type": "application/json"}
        )
        assert_refused(hub, response, 401, "E-AUTH-MISSING")
    assert count(hub, batches) == 0


def test_a_wrong_signature_is_refused(hub: HubFixture) -> None:
    headers = sign_request("fj-01", key_of(hub), "GET", SPEC, b"").as_dict()
    assert_refused(
        hub, hub.http.get(SPEC, headers={**headers, HEADER_SIGNATURE: "0" * 64}), 401, "E-AUTH-SIGNATURE"
    )
    other_key = sign_request("fj-01", b"\x01" * 32, "GET", SPEC, b"").as_dict()
    assert_refused(hub, hub.http.get(SPEC, headers=other_key), 401, "E-AUTH-SIGNATURE")


def test_a_body_changed_after_signing_is_refused_and_nothing_is_stored(hub: HubFixture) -> None:
    records = province_records(transactions=1)[:2]
    signed_body = json.dumps({"batch_id": "b-1", "records": records}).encode()
    tampered = json.dumps({"batch_id": "b-1", "records": records[:1]}).encode()
    headers = {
        **sign_request("fj-01", key_of(hub), "POST", UPLOAD, signed_body).as_dict(),
        "Content-Type": "application/json",
    }
    assert_refused(hub, hub.http.post(UPLOAD, content=tampered, headers=headers), 401, "E-AUTH-SIGNATURE")
    assert count(hub, batches) == 0 and count(hub, feed) == 0
    # the same headers with the body that was signed pass: the body alone made the difference
    assert hub.http.post(UPLOAD, content=signed_body, headers=headers).status_code == 200


def test_a_query_changed_after_signing_is_refused(hub: HubFixture) -> None:
    headers = sign_request("fj-01", key_of(hub), "GET", "/api/v1/feedback?after=0", b"").as_dict()
    response = hub.http.get("/api/v1/feedback?after=5", headers=headers)
    assert_refused(hub, response, 401, "E-AUTH-SIGNATURE")


def test_timestamps_more_than_300_seconds_away_are_refused(hub: HubFixture) -> None:
    # whole seconds rounded away from the hub's clock, so the distance is at least 301 s on arrival
    for stamp in (math.floor(time.time()) - 301, math.ceil(time.time()) + 301, int(time.time()) - 86_400):
        response = signed_get(hub.http, "fj-01", key_of(hub), timestamp=stamp)
        assert_refused(hub, response, 401, "E-AUTH-TIMESTAMP")
    for offset in (-290, 290):  # inside the window (a few seconds kept for the test's own run time)
        stamp = int(time.time()) + offset
        assert signed_get(hub.http, "fj-01", key_of(hub), timestamp=stamp).status_code == 200


def test_malformed_timestamps_are_refused_not_crashed_on(hub: HubFixture) -> None:
    for stamp in ("abc", "-5", "1.7e9", "9" * 400, "²".encode("latin-1")):
        headers: dict[str, Any] = sign_request("fj-01", key_of(hub), "GET", SPEC, b"").as_dict()
        headers[HEADER_TIMESTAMP] = stamp
        assert_refused(hub, hub.http.get(SPEC, headers=headers), 401, "E-AUTH-TIMESTAMP")


def test_a_nonce_seen_before_is_a_replay(hub: HubFixture) -> None:
    nonce = "n" * 16 + "replay-test"
    assert signed_get(hub.http, "fj-01", key_of(hub), nonce=nonce).status_code == 200
    # a fresh timestamp and a valid signature do not make a used nonce acceptable again
    replay = signed_get(hub.http, "fj-01", key_of(hub), nonce=nonce, timestamp=int(time.time()) + 1)
    assert_refused(hub, replay, 401, "E-AUTH-REPLAY")
    # nonces are remembered per node: another node may happen to pick the same one
    other, _ = hub.add_node("fj-02", "35")
    assert signed_get(hub.http, "fj-02", bytes.fromhex(other.key), nonce=nonce).status_code == 200


def test_a_replayed_upload_is_refused_before_it_reaches_the_batch(hub: HubFixture) -> None:
    body = json.dumps({"batch_id": "b-1", "records": province_records(transactions=1)[:1]}).encode()
    headers = {
        **sign_request("fj-01", key_of(hub), "POST", UPLOAD, body).as_dict(),
        "Content-Type": "application/json",
    }
    assert hub.http.post(UPLOAD, content=body, headers=headers).status_code == 200
    audit_before = count(hub, audit_log)
    assert_refused(hub, hub.http.post(UPLOAD, content=body, headers=headers), 401, "E-AUTH-REPLAY")
    assert count(hub, audit_log) == audit_before + 1  # only the refusal: no second upload entry


def test_an_upload_refused_for_its_body_or_batch_id_still_uses_up_its_nonce(hub: HubFixture) -> None:
    # An upload's nonce is claimed in its batch transaction; an upload answered without one (a body
    # fault, a batch id conflict rolled back) remembers it on its own, so its replay is a replay.
    stored = json.dumps({"batch_id": "b-1", "records": province_records(transactions=1)[:1]}).encode()
    assert hub.http.post(UPLOAD, content=stored, headers=signed_upload(hub, stored)).status_code == 200
    conflict = json.dumps({"batch_id": "b-1", "records": province_records(transactions=1)[1:2]}).encode()
    cases = [
        (stored, {"Content-Type": "text/plain"}, 415, "E-REQ-CONTENT-TYPE"),
        (b'{"batch_id": "b-2", "records": [', {}, 400, "E-REQ-JSON"),
        (conflict, {}, 409, "E-BATCH-CONFLICT"),
    ]
    for body, extra, status, code in cases:
        headers = {**signed_upload(hub, body), **extra}
        refused = hub.http.post(UPLOAD, content=body, headers=headers)
        assert (refused.status_code, refused.json()["error"]["code"]) == (status, code)
        replay = hub.http.post(UPLOAD, content=body, headers=headers)
        assert_refused(hub, replay, 401, "E-AUTH-REPLAY")
    assert count(hub, batches) == 1


def test_malformed_nonces_are_refused(hub: HubFixture) -> None:
    for nonce in ("short", "x" * 65, "has spaces in it ok", "ünïcödé-nonce-1234"):
        headers: dict[str, Any] = sign_request("fj-01", key_of(hub), "GET", SPEC, b"").as_dict()
        headers[HEADER_NONCE] = nonce.encode("latin-1") if not nonce.isascii() else nonce
        assert_refused(hub, hub.http.get(SPEC, headers=headers), 400, "E-AUTH-NONCE-FORMAT")


def test_an_unknown_node_is_refused(hub: HubFixture) -> None:
    entry = assert_refused(hub, signed_get(hub.http, "ghost", key_of(hub)), 401, "E-AUTH-NODE-UNKNOWN")
    assert entry["account"] == "node:ghost"


def test_a_suspended_node_is_refused_and_works_again_when_reactivated(hub: HubFixture) -> None:
    with writing(hub.state.engine) as connection:
        set_status(connection, "fj-01", "suspended")
    assert_refused(hub, signed_get(hub.http, "fj-01", key_of(hub)), 403, "E-AUTH-SUSPENDED")
    with writing(hub.state.engine) as connection:
        set_status(connection, "fj-01", "active")
    assert signed_get(hub.http, "fj-01", key_of(hub)).status_code == 200


def test_rotating_the_key_invalidates_the_old_one(hub: HubFixture) -> None:
    old = key_of(hub)
    with writing(hub.state.engine) as connection:
        new = bytes.fromhex(rotate_key(connection, "fj-01").key)
    assert new != old
    assert_refused(hub, signed_get(hub.http, "fj-01", old), 401, "E-AUTH-SIGNATURE")
    assert signed_get(hub.http, "fj-01", new).status_code == 200


def test_requests_from_outside_the_registered_networks_are_refused(hub: HubFixture) -> None:
    node, _ = hub.add_node("fj-net", "35", networks=["127.0.0.0/8"])
    key = bytes.fromhex(node.key)
    inside = TestClient(hub.app, client=("127.0.0.9", 50000))
    outside = TestClient(hub.app, client=("10.1.2.3", 50000))
    assert signed_get(inside, "fj-net", key).status_code == 200
    entry = assert_refused(hub, signed_get(outside, "fj-net", key), 403, "E-AUTH-NETWORK")
    assert entry["source"] == "10.1.2.3"
    # the default test client's host is "testclient", not an address: never inside a network
    assert_refused(hub, signed_get(hub.http, "fj-net", key), 403, "E-AUTH-NETWORK")
    # a node registered without networks is not limited
    assert signed_get(outside, "fj-01", key_of(hub)).status_code == 200


def test_an_sm3_node_signs_with_sm3_and_a_mismatched_algorithm_is_refused(hub: HubFixture) -> None:
    codes = list(province_systems("35", 1).platform_codes)
    node, _ = hub.add_node("fj-sm3", "35", platform_codes=codes, algorithm=SignatureAlgorithm.HMAC_SM3)
    key = bytes.fromhex(node.key)
    client = HubClient(
        "http://testserver",
        "fj-sm3",
        key,
        algorithm=SignatureAlgorithm.HMAC_SM3,
        transport=hub.http._transport,
    )
    records = province_records(transactions=1)[:3]
    receipt = client.upload(2, "sm3-1", records)
    assert receipt["accepted"] == len(records)
    # the right key under the other algorithm verifies, but is not what the node registered
    response = signed_get(hub.http, "fj-sm3", key, algorithm=SignatureAlgorithm.HMAC_SHA256)
    assert_refused(hub, response, 401, "E-AUTH-ALGORITHM")
    response = signed_get(hub.http, "fj-01", key_of(hub), algorithm=SignatureAlgorithm.HMAC_SM3)
    assert_refused(hub, response, 401, "E-AUTH-ALGORITHM")
    headers = sign_request("fj-sm3", key, "GET", SPEC, b"").as_dict()
    response = hub.http.get(SPEC, headers={**headers, HEADER_ALGORITHM: "HMAC-MD5"})
    assert_refused(hub, response, 400, "E-AUTH-ALGORITHM")
    client.close()


def test_refusals_are_counted_in_the_metrics(hub: HubFixture) -> None:
    headers = sign_request("fj-01", key_of(hub), "GET", SPEC, b"").as_dict()
    for _ in range(2):
        hub.http.get(SPEC, headers={**headers, HEADER_SIGNATURE: "0" * 64})
    metrics = hub.metrics()
    assert 'ggzy_hub_refusals_total{code="E-AUTH-SIGNATURE"} 2.0' in metrics
