"""The local push API: JSON, JSON array, NDJSON and GBK XML in; per-record results out."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ggzy.interchange import write_xml
from ggzy.node.context import NodeContext, build_context
from ggzy.node.intake import Intake
from ggzy.node.intake.push_api import create_intake_app
from ggzy.node.models import api_tokens, outbox
from ggzy.security.api_tokens import create_token
from ggzy.settings import NodeSettings
from ggzy.simulate import simulate
from ggzy.store.database import writing


@pytest.fixture
def ctx(node_db_url: str, tmp_path: Path) -> Iterator[NodeContext]:
    settings = NodeSettings(db_url=node_db_url, key_file=tmp_path / "node.key", api_max_body_bytes=200_000)
    context = build_context(settings, key=b"\x07" * 32)
    yield context
    context.engine.dispose()


def intake_token(ctx: NodeContext, name: str = "platform-a") -> str:
    """A real intake token, created as the sysadmin's ``ggzy admin token add`` does."""
    with writing(ctx.engine) as connection:
        return create_token(connection, api_tokens, name, "test-sysadmin", dt.datetime.now(dt.UTC))


@pytest.fixture
def http(ctx: NodeContext) -> Iterator[TestClient]:
    token = intake_token(ctx)
    with TestClient(
        create_intake_app(ctx, Intake(ctx, pseudonym_key=b"\x11" * 32)),
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client


def records(n: int, seed: int = 1, personal: Literal["masked", "raw"] = "masked") -> list[dict[str, Any]]:
    return [s.record for s in simulate("35", seed=seed, transactions=2, personal=personal)][:n]


def stored(ctx: NodeContext) -> int:
    with ctx.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(outbox)).scalar_one())


def test_one_json_record(http: TestClient, ctx: NodeContext) -> None:
    response = http.post("/api/v1/records", json=records(1)[0])
    assert response.status_code == 200
    body = response.json()
    assert (body["ok"], body["accepted"], body["held"], body["refused"]) == (True, 1, 0, 0)
    (result,) = body["results"]
    assert {"index", "outcome", "id", "key", "channel", "code", "message_zh", "findings"} <= set(result)
    assert result["outcome"] == "accepted" and result["id"] and result["key"] and result["channel"] == 2
    assert response.headers["X-Request-ID"] == body["request_id"]
    assert stored(ctx) == 1


def test_a_json_array_answers_per_record(http: TestClient, ctx: NodeContext) -> None:
    batch: list[Any] = [*records(3), 42, {"table": "PROJECT", "secret": True, "data": {"PROJECT_CODE": "S"}}]
    body = http.post("/api/v1/records", json=batch).json()
    assert [(r["index"], r["outcome"]) for r in body["results"]] == [
        (0, "accepted"),
        (1, "accepted"),
        (2, "accepted"),
        (3, "refused"),
        (4, "refused"),
    ]
    assert body["results"][3]["code"] == "E-STRUCT-JSON"
    assert body["results"][4]["code"] == "E-PRIV-SECRET"
    assert stored(ctx) == 3


def test_ndjson_with_a_category_for_unlabelled_records(http: TestClient, ctx: NodeContext) -> None:
    batch = records(4, seed=2)
    for record in batch:
        record.pop("category")
    lines = "\n".join(json.dumps(r, ensure_ascii=False) for r in batch) + "\n{broken\n"
    response = http.post(
        "/api/v1/records?category=test",
        content=lines.encode("utf-8"),
        headers={"Content-Type": "application/x-ndjson"},
    )
    body = response.json()
    assert (body["accepted"], body["refused"]) == (4, 1)
    assert body["results"][4]["line"] == 5 and body["results"][4]["code"] == "E-STRUCT-JSON"
    with ctx.engine.connect() as connection:
        assert set(connection.execute(select(outbox.c.category, outbox.c.channel)).all()) == {("test", 2)}


def test_provincial_xml_in_gbk_with_personal_data_redacted(
    http: TestClient, ctx: NodeContext, tmp_path: Path
) -> None:
    experts = [r for r in records(400, seed=3, personal="raw") if r["table"] == "EXPERT_BID_EVALUATION"][:3]
    assert experts
    path = tmp_path / "experts.xml"
    write_xml(experts, path, encoding="GBK")
    payload = path.read_bytes()
    assert b'encoding="GBK"' in payload
    response = http.post("/api/v1/records", content=payload, headers={"Content-Type": "application/xml"})
    body = response.json()
    assert body["accepted"] == len(experts), body
    assert all("ID_CARD" in r["redacted"] for r in body["results"])
    with ctx.engine.connect() as connection:
        names = [row.record["data"]["EXPERT_NAME"] for row in connection.execute(select(outbox.c.record))]
        cards = [row.record["data"]["ID_CARD"] for row in connection.execute(select(outbox.c.record))]
    assert names == [e["data"]["EXPERT_NAME"] for e in experts]  # Chinese text survived GBK
    assert all("*" in card for card in cards) and not {e["data"]["ID_CARD"] for e in experts} & set(cards)


def test_unreadable_requests_are_refused_whole_in_the_hub_error_shape(
    http: TestClient, ctx: NodeContext
) -> None:
    too_large = http.post("/api/v1/records", content=b"[" + b" " * 300_000 + b"]")
    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "E-REQ-TOO-LARGE"
    assert too_large.json()["ok"] is False and too_large.json()["error"]["message_zh"]
    media = http.post("/api/v1/records", content=b"a,b", headers={"Content-Type": "text/csv"})
    assert (media.status_code, media.json()["error"]["code"]) == (415, "E-REQ-CONTENT-TYPE")
    xml = http.post("/api/v1/records", content=b"<DATAS><DATA>", headers={"Content-Type": "application/xml"})
    assert (xml.status_code, xml.json()["error"]["code"]) == (400, "E-INPUT-FORMAT")
    category = http.post("/api/v1/records?category=fast", json=records(1)[0])
    assert (category.status_code, category.json()["error"]["code"]) == (400, "E-REQ-CATEGORY")
    assert stored(ctx) == 0


def test_a_full_disk_is_a_503_with_retry_after(ctx: NodeContext) -> None:
    app = create_intake_app(ctx, Intake(ctx, disk_guard=lambda: False, pseudonym_key=b"\x11" * 32))
    with TestClient(app, headers={"Authorization": f"Bearer {intake_token(ctx)}"}) as client:
        response = client.post("/api/v1/records", json=records(2))
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.json()["error"]["code"] == "E-NODE-DISK-FULL"
    assert stored(ctx) == 0


def test_health_and_the_caller_seam(ctx: NodeContext) -> None:
    seen: list[str] = []

    def caller() -> str:
        seen.append("checked")
        return "platform-a"

    app = create_intake_app(ctx, Intake(ctx, pseudonym_key=b"\x11" * 32), caller=caller)
    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"ok": True, "node_id": ctx.settings.node_id}
        client.post("/api/v1/records", json=records(1)[0])
    assert seen == ["checked"]
    with ctx.engine.connect() as connection:
        assert (
            connection.execute(select(outbox.c.source, outbox.c.source_ref))
            .one()[1]
            .startswith("platform-a ")
        )


@pytest.mark.parametrize("node_db_url", ["sqlite"], indirect=True)  # storage of tokens: both, above
def test_a_token_pushes_only_from_its_registered_networks(ctx: NodeContext) -> None:
    """Art. 15: a stolen token used from another address is refused (and audited), like a hub node's
    networks; before, any address with the token was taken."""
    from ggzy.node.models import audit_log

    with writing(ctx.engine) as connection:
        token = create_token(
            connection,
            api_tokens,
            "fj-trading",
            "test-sysadmin",
            dt.datetime.now(dt.UTC),
            networks=["10.35.8.0/24"],
        )
    app = create_intake_app(ctx, Intake(ctx, pseudonym_key=b"\x11" * 32))
    auth = {"Authorization": f"Bearer {token}"}
    inside = TestClient(app, client=("10.35.8.20", 40000), headers=auth)
    assert inside.post("/api/v1/records", json=records(1)[0]).status_code == 200
    for client in (("10.36.0.1", 40000), ("testclient", 50000)):
        outside = TestClient(app, client=client, headers=auth)
        refused = outside.post("/api/v1/records", json=records(1)[0])
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "E-AUTH-NETWORK"
        forged = outside.post(
            "/api/v1/records", json=records(1)[0], headers={"X-Forwarded-For": "10.35.8.20"}
        )  # no trusted proxy configured: the header changes nothing
        assert forged.status_code == 403
    assert stored(ctx) == 1
    with ctx.engine.connect() as connection:
        refusals = (
            connection.execute(select(audit_log.c.source).where(audit_log.c.action == "intake.refused"))
            .scalars()
            .all()
        )
    assert "10.36.0.1" in refusals
