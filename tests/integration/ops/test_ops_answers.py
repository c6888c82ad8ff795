"""A province answers a rectification order with evidence; the national side reads it and closes.

Attacks first: a file too large, a type that is not a document, a name with a path, another
province's order, an order already closed, another province's evidence by its id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from ggzy.hub.app import create_app
from ggzy.hub.models import audit_log
from ggzy.security.permissions import Principal, Role
from ggzy.settings import HubSettings, OpsSettings

NATIONAL = Principal("national", Role.OPERATOR)
FUJIAN = Principal("fj-op", Role.OPERATOR, province="35")
GUANGDONG = Principal("gd-op", Role.OPERATOR, province="44")
LIMIT = 64 * 1024


class Hub:
    def __init__(self, http: TestClient, who: list[Principal]) -> None:
        self.http, self.who = http, who

    def as_(self, principal: Principal) -> TestClient:
        self.who[0] = principal
        return self.http


@pytest.fixture
def hub(hub_db_url: str, tmp_path: Path) -> Iterator[Hub]:
    settings = HubSettings(
        db_url=hub_db_url, key_dir=tmp_path / "keys", ops=OpsSettings(evidence_max_bytes=LIMIT)
    )
    app = create_app(settings)
    who = [NATIONAL]
    app.state.authenticate = lambda request: who[0]
    # a script with its bearer token (no session cookie: CSRF concerns browsers, tests/…/test_web.py)
    with TestClient(app, headers={"Authorization": "Bearer script"}) as http:
        yield Hub(http, who)
    app.state.hub.engine.dispose()


def _order(hub: Hub, province: str = "35") -> int:
    answer = hub.as_(NATIONAL).post(
        "/api/v1/ops/rectifications", json={"province": province, "condition": 1, "basis": "未备案运行负责人"}
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def _answer(hub: Hub, who: Principal, order: int, name: str, content: bytes, text: str = "已备案") -> object:
    return hub.as_(who).post(
        f"/api/v1/ops/rectifications/{order}/answers",
        data={"text": text},
        files={"evidence": (name, content, "application/octet-stream")},
    )


def test_a_province_answers_with_evidence_and_the_nation_reads_it(hub: Hub) -> None:
    order = _order(hub)
    pdf = b"%PDF-1.4 roster filed\n" * 10
    answer = _answer(hub, FUJIAN, order, "人员备案表.pdf", pdf)
    assert answer.status_code == 201, answer.text  # type: ignore[attr-defined]
    body = answer.json()  # type: ignore[attr-defined]
    assert body["evidence"] == {
        "name": "人员备案表.pdf",
        "type": "application/pdf",
        "size": len(pdf),
        "sha256": hashlib.sha256(pdf).hexdigest(),
    }
    listed = hub.as_(NATIONAL).get(f"/api/v1/ops/rectifications/{order}/answers").json()
    assert [a["text"] for a in listed["data"]] == ["已备案"]
    download = hub.as_(NATIONAL).get(f"/api/v1/ops/evidence/{body['id']}")
    assert download.status_code == 200 and download.content == pdf
    assert download.headers["content-type"] == "application/pdf"
    closed = hub.as_(NATIONAL).post(f"/api/v1/ops/rectifications/{order}/close", json={"note": "已核实"})
    assert closed.status_code == 200
    late = _answer(hub, FUJIAN, order, "补充.pdf", pdf)
    assert late.status_code == 409 and late.json()["error"]["code"] == "E-OPS-WORKFLOW"  # type: ignore[attr-defined]


def test_evidence_too_large_or_not_a_document_is_refused_and_nothing_is_kept(hub: Hub) -> None:
    order = _order(hub)
    big = _answer(hub, FUJIAN, order, "scan.pdf", b"x" * (LIMIT + 1))
    assert big.status_code == 413 and big.json()["error"]["code"] == "E-OPS-EVIDENCE-SIZE"  # type: ignore[attr-defined]
    script = _answer(hub, FUJIAN, order, "fix.sh", b"rm -rf /")
    assert script.status_code == 415 and script.json()["error"]["code"] == "E-OPS-EVIDENCE-TYPE"  # type: ignore[attr-defined]
    listed = hub.as_(FUJIAN).get(f"/api/v1/ops/rectifications/{order}/answers").json()
    assert listed["count"] == 0


def test_a_path_in_the_file_name_is_dropped(hub: Hub) -> None:
    order = _order(hub)
    answer = _answer(hub, FUJIAN, order, "../../etc/说明.txt", "已整改".encode())
    assert answer.status_code == 201
    assert answer.json()["evidence"]["name"] == "说明.txt"  # type: ignore[attr-defined]


def test_another_province_can_neither_answer_nor_read(hub: Hub) -> None:
    order = _order(hub, "35")
    refused = _answer(hub, GUANGDONG, order, "x.pdf", b"%PDF")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "E-OPS-SCOPE"  # type: ignore[attr-defined]
    own = _answer(hub, FUJIAN, order, "x.pdf", b"%PDF").json()  # type: ignore[attr-defined]
    assert hub.as_(GUANGDONG).get(f"/api/v1/ops/evidence/{own['id']}").status_code == 404
    assert hub.as_(GUANGDONG).get(f"/api/v1/ops/rectifications/{order}/answers").status_code == 404


def test_an_answer_is_audited_with_its_evidence_digest(hub: Hub, hub_db_url: str) -> None:
    order = _order(hub)
    _answer(hub, FUJIAN, order, "a.png", b"\x89PNG....")
    from ggzy.store import make_engine

    engine = make_engine(hub_db_url)
    with engine.connect() as connection:
        entry = connection.execute(
            select(audit_log).where(audit_log.c.action == "ops.rectification.answer")
        ).one()
    engine.dispose()
    assert entry.account == "fj-op" and entry.detail["sha256"] == hashlib.sha256(b"\x89PNG....").hexdigest()


def test_migration_0013_upgrades_and_downgrades(db_url: str) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from ggzy.hub.app import MIGRATIONS
    from ggzy.store import make_engine
    from ggzy.store.migrate import _config, upgrade

    engine = make_engine(db_url)
    try:
        upgrade(engine, MIGRATIONS, "0013")
        assert "ops_rectification_answers" in inspect(engine).get_table_names()
        command.downgrade(_config(MIGRATIONS, engine), "0012")
        assert "ops_rectification_answers" not in inspect(engine).get_table_names()
        upgrade(engine, MIGRATIONS, "0013")
        assert "ops_rectification_answers" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
