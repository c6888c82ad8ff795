"""kill -9 the hub mid-upload, again and again: every acknowledged record is stored exactly once.

One node uploads batches of simulated records (5% with defects) to a real hub process and resends
each batch (same id, same records) until it holds a receipt. Meanwhile the hub is killed with
SIGKILL at seeded moments and restarted:

- "timer" kills land at a random point of a request (reading, authenticating, validating,
  writing, committing, answering);
- "commit" kills wait until the batch is committed (its row is visible in the database) and kill
  the hub before the node has its receipt (the node abandons that send, as when the answer dies
  with the hub): the node resends and must get the stored receipt back, not a second copy of its
  records.

Afterwards the store must agree exactly with the receipts the node holds.

The first start is ``uvicorn ggzy.hub.server:app``; the restarts are forked from a process that has
imported everything already (``HubZygote``), so twelve restarts cost seconds, not minutes. Each
restarted hub still builds its app, engine and connections from scratch.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
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
from sqlalchemy import Engine, select

from ggzy.hub.models import batches
from ggzy.hub.registry import NodeRecord
from ggzy.protocol import HubClient, HubUnavailable
from ggzy.store import make_engine

SEED = 20
PROVINCE = "35"
KILLS = 12
BATCH_SIZE = 30
BATCHES = 18
WARM_UP = 2


@dataclass
class Kill:
    batch_id: str
    mode: str  # "timer" | "commit"
    delay: float
    at: dt.datetime | None = None


@dataclass
class Killer:
    """Kills the hub at the planned moment of a batch's first attempt, then restarts it."""

    hub: HubProcess
    watch: Engine
    done: list[Kill] = field(default_factory=list)
    thread: threading.Thread | None = None
    error: BaseException | None = None

    def arm(self, kill: Kill) -> None:
        self.wait()  # one kill at a time: the previous restart has finished
        self.thread = threading.Thread(target=self._run, args=(kill,), daemon=True)
        self.thread.start()

    def wait(self) -> None:
        if self.thread is not None:
            self.thread.join(timeout=60)
            assert not self.thread.is_alive(), "kill/restart did not finish"
            self.thread = None
        if self.error is not None:
            raise self.error

    def _run(self, kill: Kill) -> None:
        try:
            if kill.mode == "commit":
                self._wait_for_commit(kill.batch_id)
            else:
                time.sleep(kill.delay)
            self.hub.kill()
            kill.at = dt.datetime.now(dt.UTC)
            self.done.append(kill)
            self.hub.start()
        except BaseException as exc:  # surfaced in the test thread by wait()
            self.error = exc

    def _wait_for_commit(self, batch_id: str) -> None:
        deadline = time.monotonic() + 20
        with self.watch.connect() as connection:
            while time.monotonic() < deadline:
                found = connection.execute(
                    select(batches.c.batch_id).where(batches.c.batch_id == batch_id)
                ).first()
                connection.rollback()  # a fresh snapshot for the next look
                if found is not None:
                    return
                time.sleep(0.002)


def plan_kills(rng: random.Random, batch_ids: list[str], typical: float) -> dict[str, Kill]:
    """KILLS distinct batches, mixed modes; a timer kill lands within a typical request's time."""
    chosen = rng.sample(batch_ids, KILLS)
    return {
        batch_id: Kill(batch_id, rng.choice(("timer", "commit")), rng.uniform(0.0, 0.9 * typical))
        for batch_id in chosen
    }


def abandoned_send(hub: HubProcess, node: NodeRecord, batch_id: str, batch: list[dict[str, Any]]) -> None:
    """A send whose answer never reaches the node (it died with the hub, or was lost on the way)."""

    def send() -> None:
        with (
            HubClient(hub.base_url, node.node_id, bytes.fromhex(node.key)) as client,
            suppress(HubUnavailable),
        ):
            client.upload(2, batch_id, batch)

    threading.Thread(target=send, daemon=True).start()


@pytest.mark.slow
def test_kill_9_mid_upload_never_loses_or_duplicates_an_acknowledged_record(
    hub_db_url: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    records = node_records(PROVINCE, SEED, transactions=22, error_rate=0.05)[: BATCH_SIZE * BATCHES]
    assert len(records) == BATCH_SIZE * BATCHES, "the simulation gives enough records"
    planned = [(f"crash-{n:03d}", records[n * BATCH_SIZE : (n + 1) * BATCH_SIZE]) for n in range(BATCHES)]
    watch = make_engine(hub_db_url)  # the killer's view of the database, to see a batch committed
    with running_hubs(hub_db_url, tmp_path, warm_restarts=True) as [hub]:
        node = register_node(hub_db_url, "fj-01", PROVINCE, SEED)
        killer = Killer(hub, watch)
        acknowledged: list[Acknowledged] = []
        with RetryingUploader([hub.base_url], node, seed=SEED) as uploader:
            timings = []
            for batch_id, batch in planned[:WARM_UP]:  # undisturbed: how long a request takes
                started = time.perf_counter()
                acknowledged.append(uploader.upload(batch_id, batch))
                timings.append(time.perf_counter() - started)
            kills = plan_kills(rng, [batch_id for batch_id, _ in planned[WARM_UP:]], min(timings))
            try:
                for batch_id, batch in planned[WARM_UP:]:
                    kill = kills.get(batch_id)
                    if kill is not None:
                        killer.arm(kill)
                        if kill.mode == "commit":
                            abandoned_send(hub, node, batch_id, batch)
                            killer.wait()  # committed, killed, restarted: only now does the node resend
                    acknowledged.append(uploader.upload(batch_id, batch))
            finally:
                killer.wait()  # no restart may outlive the test's hub
                watch.dispose()

    assert len(killer.done) == KILLS
    timer_kills = [k for k in killer.done if k.mode == "timer"]
    commit_kills = [k for k in killer.done if k.mode == "commit"]
    assert timer_kills and commit_kills
    retried = {ack.batch_id for ack in acknowledged if ack.attempts > 1}
    # A timer kill lands while the request is in flight (a few may land just after the answer).
    assert len(retried & {k.batch_id for k in timer_kills}) >= len(timer_kills) // 2, timer_kills
    # Every batch committed just before a kill was answered on resend with the receipt stored
    # before the kill: the replay path answered it, the records were not taken a second time.
    receipts = {ack.batch_id: ack.receipt for ack in acknowledged}
    for kill in commit_kills:
        assert kill.at is not None
        assert dt.datetime.fromisoformat(receipts[kill.batch_id]["received_at"]) < kill.at, kill
    snapshot = StoreSnapshot.read(hub_db_url, tmp_path / "keys")
    assert exactly_once_problems(snapshot, acknowledged) == []
    assert snapshot.stats["accepted"] > 0 and snapshot.stats["rejected"] > 0  # both paths exercised
