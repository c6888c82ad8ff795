"""A hub on each backend, a registered node and a signed client talking to it in-process."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ggzy.hub.app import HubState, create_app
from ggzy.hub.ingest import NodeIdentity, ingest_batch
from ggzy.hub.registry import NodeRecord, add_node
from ggzy.protocol import HubClient
from ggzy.settings import HubSettings
from ggzy.simulate import province_systems, simulate
from ggzy.store.database import writing

SEED = 1
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@dataclass
class HubFixture:
    app: FastAPI
    state: HubState
    http: TestClient
    node: NodeRecord
    client: HubClient

    def metrics(self) -> str:
        """``/metrics`` as Prometheus reads it: from the management network (loopback by default)."""
        return TestClient(self.app, client=("127.0.0.1", 50000)).get("/metrics").text

    def add_node(self, node_id: str, province: str, **options: Any) -> tuple[NodeRecord, HubClient]:
        with writing(self.state.engine) as connection:
            node = add_node(connection, node_id, province, **options)
        client = HubClient(
            "http://testserver", node.node_id, bytes.fromhex(node.key), transport=self.http._transport
        )
        return node, client


@pytest.fixture
def hub(hub_db_url: str, tmp_path: Path) -> Iterator[HubFixture]:
    settings = HubSettings(db_url=hub_db_url, key_dir=tmp_path / "keys")
    app = create_app(settings)
    state: HubState = app.state.hub
    with TestClient(app) as http:
        with writing(state.engine) as connection:
            node = add_node(
                connection, "fj-01", "35", platform_codes=list(province_systems("35", SEED).platform_codes)
            )
        client = HubClient(
            "http://testserver", node.node_id, bytes.fromhex(node.key), transport=http._transport
        )
        yield HubFixture(app, state, http, node, client)
        client.close()
    state.engine.dispose()


def province_records(
    province: str = "35",
    *,
    transactions: int = 3,
    category: str = "history",
    error_rate: float = 0.0,
    seed: int = SEED,
) -> list[dict[str, Any]]:
    """Simulated records of one province whose systems are registered to the fixture's node."""
    start = dt.datetime.now(SHANGHAI).replace(tzinfo=None) - dt.timedelta(days=40)
    return [
        item.record
        for item in simulate(
            province,
            seed=seed,
            transactions=transactions,
            start=start,
            days=30,
            category=category,
            error_rate=error_rate,
        )
    ]


def ingest(
    hub: HubFixture, channel: int, batch_id: str, records: list[Any], now: dt.datetime
) -> dict[str, Any]:
    """A batch of the fixture's node received at a controlled moment (the API would use the real clock)."""
    node = NodeIdentity(hub.node.node_id, hub.node.province, frozenset(hub.node.platform_codes))
    result = ingest_batch(
        hub.state.engine,
        hub.state.validator,
        hub.state.audit,
        node,
        channel,
        batch_id,
        records,
        f"digest-{batch_id}",
        # In UTC, as the API passes it: on SQLite ingest stores a non-UTC moment without its offset
        # and reads it back as UTC (repair times would come out eight hours short).
        now=now.astimezone(dt.UTC),
    )
    receipt: dict[str, Any] = result.receipt
    return receipt
