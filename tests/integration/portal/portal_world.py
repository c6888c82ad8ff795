"""A simulated month at a hub, two provinces, read through the portal with a test authenticator.

Building the month costs a second or two, so each backend builds it once per test module: a test
module imports ``world_fixture`` (the fixture named ``world``); tests read the world and must not
change it. (No conftest.py here: the hub tests import their helpers with ``from conftest import``,
which a second conftest module would shadow.)
"""

from __future__ import annotations

import datetime as dt
import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ggzy.hub.app import HubState, create_app
from ggzy.hub.heartbeat import HeartbeatReport, record_heartbeat
from ggzy.hub.ingest import NodeIdentity, ingest_batch
from ggzy.hub.portal.projection import catch_up
from ggzy.hub.registry import add_node
from ggzy.security.permissions import Principal, Role
from ggzy.settings import HubSettings
from ggzy.simulate import province_systems, simulate
from ggzy.spec import load_spec
from ggzy.store.database import writing

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 10, 30, 20, 0, tzinfo=SHANGHAI)  # the portal's clock in these tests
MONTH_START = dt.datetime(2026, 10, 1)  # local time, as the simulator takes it
POSTGRES_URL = os.environ.get("GGZY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# (node, province, seed, transactions, error rate)
PROVINCES = (("fj-01", "35", 11, 36, 0.06), ("gd-01", "44", 12, 10, 0.06))


@dataclass
class World:
    app: FastAPI
    state: HubState
    http: TestClient
    receipts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # node → receipts

    def get(self, path: str, role: Role = Role.OPERATOR, province: str | None = None, **params: Any) -> Any:
        headers = {"X-Test-Role": role.value}
        if province is not None:
            headers["X-Test-Province"] = province
        return self.http.get(path, headers=headers, params=params or None)


def header_authenticator(request: Request) -> Principal | None:
    """Tests sign in by header; the real sign-in layer replaces this (never installed outside tests)."""
    role = request.headers.get("X-Test-Role")
    if role is None:
        return None
    province = request.headers.get("X-Test-Province")
    return Principal(account=f"test-{role}-{province or 'cn'}", role=Role(role), province=province)


def _ingest_month(
    state: HubState, node_id: str, province: str, seed: int, count: int, error_rate: float
) -> list[dict[str, Any]]:
    systems = province_systems(province, seed)
    with writing(state.engine) as connection:
        node = add_node(connection, node_id, province, platform_codes=list(systems.platform_codes))
    identity = NodeIdentity(node.node_id, province, frozenset(node.platform_codes))
    rng = random.Random(seed)
    common = {"seed": seed, "transactions": count, "start": MONTH_START, "days": 30, "category": "realtime"}
    # In the simulator's order (a whole trade at a time), so every record finds what it links to.
    items = [item.record for item in simulate(province, error_rate=error_rate, **common)]
    spec = load_spec()
    clean = {
        (item.record["table"], spec.tables[item.record["table"]].key_of(item.record["data"])): item.record
        for item in simulate(province, error_rate=0.0, **common)
    }
    receipts: list[dict[str, Any]] = []
    received = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    batch_no = 0

    def send(batch: list[dict[str, Any]], moment: dt.datetime) -> dict[str, Any]:
        nonlocal batch_no
        batch_no += 1
        result = ingest_batch(
            state.engine, state.validator, state.audit, identity, 1, f"{node_id}-b{batch_no:04d}", batch,
            f"digest-{node_id}-{batch_no}", now=moment.astimezone(dt.UTC),
        )  # fmt: skip
        receipts.append(result.receipt)
        return result.receipt

    repairs: list[tuple[dt.datetime, dict[str, Any]]] = []
    for start in range(0, len(items), 30):
        batch = items[start : start + 30]
        published = max(dt.datetime.fromisoformat(r["published_at"]) for r in batch)
        # Most batches within the ten minutes, some late: the timeliness chart has both sides.
        moment = max(published + dt.timedelta(minutes=rng.choice([1, 2, 4, 7, 9, 25])), received)
        if moment > NOW:
            break
        received = moment
        receipt = send(batch, moment)
        for result in receipt["results"]:
            fixed = clean.get((result["table"], result["key"]))
            if result["outcome"] == "rejected" and fixed is not None and rng.random() < 0.6:
                repairs.append((moment + dt.timedelta(hours=20), fixed))
    for moment, record in sorted(repairs, key=lambda pair: pair[0]):
        if moment <= NOW:
            send([record], max(moment, received))
    return receipts


def _heartbeats(state: HubState, node_id: str, province: str) -> None:
    beat = dt.datetime.combine(MONTH_START.date(), dt.time(), SHANGHAI)
    rng = random.Random(node_id)
    with writing(state.engine) as connection:
        while beat <= NOW:
            failed = 1 if rng.random() < 0.05 else 0
            report = HeartbeatReport.model_validate(
                {
                    "version": "0.1.0",
                    "queues": {"1": {"queued": rng.randint(0, 5)}, "2": {}},
                    "disk": {"used_ratio": 0.30 + (beat.day / 100)},
                    "link": {"failed": failed, "total": 120},
                }
            )
            record_heartbeat(connection, node_id, province, report, beat.astimezone(dt.UTC))
            beat += dt.timedelta(hours=1)
        last = HeartbeatReport.model_validate(
            {
                "version": "0.1.0",
                "queues": {},
                "disk": {"used_ratio": 0.61},
                "link": {"failed": 0, "total": 3},
            }
        )
        record_heartbeat(
            connection, node_id, province, last, (NOW - dt.timedelta(seconds=20)).astimezone(dt.UTC)
        )


def build_world(db_url: str, key_dir: Path, *, header_sign_in: bool = True) -> Iterator[World]:
    """The month at a hub; ``header_sign_in=False`` keeps the real sign-in (browser tests)."""
    app = create_app(HubSettings(db_url=db_url, key_dir=key_dir, portal_refresh_seconds=3600))
    if header_sign_in:
        app.state.authenticate = header_authenticator
    app.state.portal_clock = lambda: NOW
    state: HubState = app.state.hub
    receipts = {}
    for node_id, province, seed, count, error_rate in PROVINCES:
        receipts[node_id] = _ingest_month(state, node_id, province, seed, count, error_rate)
        _heartbeats(state, node_id, province)
    catch_up(state.engine)
    with TestClient(app) as http:
        yield World(app, state, http, receipts)
    state.engine.dispose()


def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database (skipped, or failed in CI, when the server is not reachable)."""
    try:
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        message = f"PostgreSQL is not reachable ({type(exc).__name__})"
        if os.environ.get("GGZY_REQUIRE_POSTGRES") == "1":
            pytest.fail(message + "; GGZY_REQUIRE_POSTGRES=1 demands it", pytrace=False)
        pytest.skip(message + "; PostgreSQL tests skipped")
    name = f"ggzy_p_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(
    name="world", scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def world_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("portal")
    if request.param == "sqlite":
        yield from build_world(f"sqlite:///{folder / 'hub.db'}", folder / "keys")
        return
    for url in postgres_database():
        yield from build_world(url, folder / "keys")
