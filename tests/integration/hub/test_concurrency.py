"""Eight nodes upload in parallel to one hub process: exact counts, no duplicate versions, whole feeds.

Each node (one province each) sends its batches one after another, all eight at once; the
simulated transactions update keys sent earlier, so new versions are assigned while other nodes write.
The hub runs as a real process: requests of different nodes really overlap in its thread pool and
in the database (per-node advisory locks on PostgreSQL, one writer at a time on SQLite).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from hubproc import (
    Acknowledged,
    RetryingUploader,
    StoreSnapshot,
    exactly_once_problems,
    node_records,
    register_node,
    running_hubs,
)

from ggzy.hub.registry import NodeRecord
from ggzy.protocol import HubClient

NODES = {"35": 51, "11": 52, "44": 53, "51": 54, "31": 55, "32": 56, "33": 57, "37": 58}  # province → seed
BATCH_SIZE = 40
BATCHES_PER_NODE = 4


def planned_batches(province: str, seed: int) -> list[tuple[str, list[dict[str, Any]]]]:
    records = node_records(province, seed, transactions=20, error_rate=0.03)[: BATCH_SIZE * BATCHES_PER_NODE]
    assert len(records) == BATCH_SIZE * BATCHES_PER_NODE, "the simulation gives enough records"
    return [
        (f"c{province}-{n}", records[n * BATCH_SIZE : (n + 1) * BATCH_SIZE]) for n in range(BATCHES_PER_NODE)
    ]


def upload_all(
    base_url: str, node: NodeRecord, planned: list[tuple[str, list[dict[str, Any]]]]
) -> list[Acknowledged]:
    with RetryingUploader([base_url], node) as uploader:
        return [uploader.upload(batch_id, batch) for batch_id, batch in planned]


def read_whole_feed(base_url: str, node: NodeRecord) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    with HubClient(base_url, node.node_id, bytes.fromhex(node.key)) as client:
        cursor = 0
        while True:
            page = client.feedback(after=cursor, limit=3)  # small pages: the cursor is exercised too
            items += page["items"]
            cursor = page["next"]
            if not page["more"]:
                return items


def test_eight_nodes_uploading_in_parallel_are_counted_exactly(hub_db_url: str, tmp_path: Path) -> None:
    planned = {province: planned_batches(province, seed) for province, seed in NODES.items()}
    with running_hubs(hub_db_url, tmp_path) as [hub]:
        nodes = {
            province: register_node(hub_db_url, f"node-{province}", province, seed)
            for province, seed in NODES.items()
        }
        with ThreadPoolExecutor(len(nodes)) as pool:
            futures = {
                province: pool.submit(upload_all, hub.base_url, nodes[province], planned[province])
                for province in nodes
            }
            acknowledged = {province: future.result() for province, future in futures.items()}
        feeds = {province: read_whole_feed(hub.base_url, node) for province, node in nodes.items()}

    everything = [ack for acks in acknowledged.values() for ack in acks]
    assert exactly_once_problems(StoreSnapshot.read(hub_db_url, tmp_path / "keys"), everything) == []
    assert all(ack.attempts == 1 for ack in everything)  # nothing failed: concurrency alone, no retries
    assert (
        sum(ack.receipt["accepted"] for ack in everything) > 0.9 * len(NODES) * BATCH_SIZE * BATCHES_PER_NODE
    )
    versions = [r["version"] for ack in everything for r in ack.receipt["results"] if r["version"]]
    assert max(versions) > 1  # updates took part
    for province, acks in acknowledged.items():
        feed = feeds[province]
        # Complete and in upload order: one receipt per batch, each the receipt the node got.
        assert [item["batch_id"] for item in feed] == [ack.batch_id for ack in acks]
        assert [item["body"] for item in feed] == [ack.receipt for ack in acks]
        cursors = [item["cursor"] for item in feed]
        assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
        assert {item["kind"] for item in feed} == {"receipt"}
