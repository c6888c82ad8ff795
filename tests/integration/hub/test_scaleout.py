"""Scale-out: two hub processes on one PostgreSQL database count exactly what one would.

The hub keeps nothing that matters in the process (nonces, batches, statistics, the audit chain
live in the database), so several processes can serve one database behind a load balancer. Four
nodes of four provinces upload in parallel, alternating between the two processes batch by batch;
one batch is sent to both processes at the same instant, another is resent to the other process.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from hubproc import (
    Acknowledged,
    HubProcess,
    RetryingUploader,
    StoreSnapshot,
    exactly_once_problems,
    node_records,
    register_node,
    running_hubs,
)
from sqlalchemy import func, select

from ggzy.hub.models import stats_daily
from ggzy.hub.registry import NodeRecord
from ggzy.protocol import HubClient
from ggzy.store import make_engine

NODES = {"35": 41, "11": 42, "44": 43, "51": 44}  # province → simulation seed
BATCH_SIZE = 40
BATCHES_PER_NODE = 5


def batches_of(province: str, seed: int) -> list[tuple[str, list[dict[str, Any]]]]:
    records = node_records(province, seed, transactions=20, error_rate=0.03)
    assert len(records) >= BATCH_SIZE * (BATCHES_PER_NODE + 2)
    return [
        (f"p{province}-{n:02d}", records[n * BATCH_SIZE : (n + 1) * BATCH_SIZE])
        for n in range(BATCHES_PER_NODE + 2)
    ]


def upload_alternately(
    hubs: Sequence[HubProcess], node: NodeRecord, planned: list[tuple[str, list[dict[str, Any]]]], offset: int
) -> list[Acknowledged]:
    with RetryingUploader([hub.base_url for hub in hubs], node) as uploader:
        return [
            uploader.upload(batch_id, batch, via=(n + offset) % len(hubs))
            for n, (batch_id, batch) in enumerate(planned)
        ]


def signed_post(
    hub: HubProcess, node: NodeRecord, batch_id: str, batch: list[dict[str, Any]]
) -> httpx.Response:
    """An upload whose raw response is kept (the X-GGZY-Replayed header says who did the work)."""
    body = json.dumps({"batch_id": batch_id, "records": batch}, ensure_ascii=False).encode()
    with HubClient(hub.base_url, node.node_id, bytes.fromhex(node.key)) as client:
        return client.http.post(
            "/api/v1/channels/2/batches", content=body, headers={"Content-Type": "application/json"}
        )


def send_to_both_at_once(
    hubs: Sequence[HubProcess], node: NodeRecord, batch_id: str, batch: list[dict[str, Any]]
) -> list[httpx.Response]:
    start = threading.Barrier(len(hubs))

    def send(hub: HubProcess) -> httpx.Response:
        start.wait()
        return signed_post(hub, node, batch_id, batch)

    with ThreadPoolExecutor(len(hubs)) as pool:
        return list(pool.map(send, hubs))


def accepted_counter(hub: HubProcess) -> int:
    """Records this process accepted, from its own /metrics (each process counts its own)."""
    text = httpx.get(f"{hub.base_url}/metrics").text
    found = re.search(r'^ggzy_hub_records_total\{channel="2",outcome="accepted"\} (\S+)$', text, re.M)
    return int(float(found.group(1))) if found else 0


def test_two_hub_processes_on_one_postgresql_database_count_exactly(
    postgres_database: str, tmp_path: Path
) -> None:
    url = postgres_database
    planned = {province: batches_of(province, seed) for province, seed in NODES.items()}
    with running_hubs(url, tmp_path, count=2) as hubs:
        nodes = {
            province: register_node(url, f"node-{province}", province, seed)
            for province, seed in NODES.items()
        }
        with ThreadPoolExecutor(len(nodes)) as pool:
            futures = [
                pool.submit(
                    upload_alternately, hubs, nodes[province], planned[province][:BATCHES_PER_NODE], offset
                )
                for offset, province in enumerate(nodes)
            ]
            acknowledged = [ack for future in futures for ack in future.result()]

        twin_id, twin = planned["35"][BATCHES_PER_NODE]
        both = send_to_both_at_once(hubs, nodes["35"], twin_id, twin)
        again_id, again = planned["11"][BATCHES_PER_NODE + 1]
        first = signed_post(hubs[0], nodes["11"], again_id, again)
        resent = signed_post(hubs[1], nodes["11"], again_id, again)
        served = [accepted_counter(hub) for hub in hubs]

    assert [r.status_code for r in both] == [200, 200]
    assert both[0].json() == both[1].json()  # one process did the work, the other replayed it
    assert sorted(r.headers["X-GGZY-Replayed"] for r in both) == ["false", "true"]
    assert (first.status_code, resent.status_code) == (200, 200)
    assert resent.json() == first.json()
    assert (first.headers["X-GGZY-Replayed"], resent.headers["X-GGZY-Replayed"]) == ("false", "true")
    acknowledged.append(Acknowledged(twin_id, twin, both[0].json(), 1))
    acknowledged.append(Acknowledged(again_id, again, first.json(), 1))

    snapshot = StoreSnapshot.read(url, tmp_path / "keys")
    assert exactly_once_problems(snapshot, acknowledged) == []
    total_accepted = sum(ack.receipt["accepted"] for ack in acknowledged)
    assert sum(served) == total_accepted and all(served), served  # both processes did real work
    engine = make_engine(url)
    with engine.connect() as connection:
        by_province = dict(
            connection.execute(
                select(stats_daily.c.province, func.sum(stats_daily.c.accepted)).group_by(
                    stats_daily.c.province
                )
            ).all()
        )
    engine.dispose()
    expected: dict[str, int] = {}
    for ack in acknowledged:
        province = ack.receipt["node_id"].removeprefix("node-")
        expected[province] = expected.get(province, 0) + ack.receipt["accepted"]
    assert {p: int(n) for p, n in by_province.items()} == expected
