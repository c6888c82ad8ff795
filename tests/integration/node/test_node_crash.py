"""kill -9 of the node process during upload, 20 times: every acknowledged record arrives exactly once.

The node is a child process uploading to a real hub process (SQLite): ``ggzy node run --config
node.toml`` for the first and the last run, and in between ``NodeService`` on the same config forked
from a process that has already loaded everything (a cold start takes seconds, twenty of them
would dominate the test). Before each run, "intake" (this test, writing to the node's outbox as intake does) adds a
slice of a simulated stream, the last records of each slice labelled realtime (so channel 1 runs too,
and often waits for a channel-2 parent). Once the node has formed its first batch of the run, it is
killed with SIGKILL after a seeded random pause, then started again. A final run drains the queue
and stops on SIGTERM.

Two slices also carry a record larger than the hub's body limit (a new project of ~9 MB, which
nothing depends on): the hub refuses its batch whole (413), the node splits that batch until the
record is alone and rejects it locally, kills landing before, during and after the splits.

Afterwards the hub holds every other enqueued record exactly once (one row per table, key and
version, as many rows as records), every batch the hub stored is a batch the node formed, stored
once under its id, and the node knows every record as accepted, the two oversize ones as rejected.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from nodeproc import (
    NodeProcess,
    NodeZygote,
    as_realtime,
    hub_record_keys,
    new_records,
    node_settings,
    outbox_states,
    register,
    running_hub,
    simulated,
    wait_for,
    write_config,
)
from sqlalchemy import func, select

from ggzy.hub.models import batches as hub_batches
from ggzy.node.context import build_context
from ggzy.node.models import batches, outbox
from ggzy.store import make_engine

SEED = 4
OVERSIZE_SLICES = (2, 9)  # slices carrying one record over the hub's 8 MiB body limit
KILLS = 20
SLICE = 260  # records added before each run
REALTIME_PER_SLICE = 12


def oversize_project(template: dict[str, Any], number: int) -> dict[str, Any]:
    """A new project (its own key: nothing depends on it) whose scale text makes it ~9 MB."""
    data = dict(template["data"])
    data["PROJECT_CODE"] = data["PROJECT_CODE"][:-4] + f"{9990 + number}"
    data["PROJECT_SCALE"] = "x" * (9 * 1024 * 1024)
    return {**template, "data": data}


def count_batches(ctx_engine: object) -> tuple[int, int]:
    """(batches formed, batches not yet acknowledged) in the node's outbox."""
    with ctx_engine.connect() as connection:  # type: ignore[attr-defined]
        formed = connection.execute(select(func.count()).select_from(batches)).scalar_one()
        open_ = connection.execute(
            select(func.count()).where(batches.c.acknowledged_at.is_(None))
        ).scalar_one()
    return int(formed), int(open_)


def test_kill_9_of_the_node_mid_upload_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    (tmp_path / "hub").mkdir()
    (tmp_path / "node").mkdir()
    stream = simulated(1, KILLS * SLICE // 30 + 10)
    assert len(stream) >= KILLS * SLICE
    with running_hub(tmp_path / "hub", start=False) as hub:
        hub.spawn()  # the hub and the zygote start up while the node side is prepared
        node = register(hub.db_url, "fj-01", [1])
        settings = node_settings(tmp_path / "node", hub.base_url, node, batch_size=40, channel2_rate=0)
        config = write_config(settings, tmp_path / "node" / "node.toml")
        zygote = NodeZygote(config, tmp_path / "node" / "zygote.log")
        intake = build_context(settings)  # this process plays intake; the node process uploads
        process = NodeProcess(config, tmp_path / "node" / "node.log")
        hub.wait_healthy(60)
        enqueued = 0
        caught_mid_batch = 0
        try:
            for kill in range(KILLS):
                part = stream[kill * SLICE : (kill + 1) * SLICE]
                history, realtime = part[:-REALTIME_PER_SLICE], as_realtime(part[-REALTIME_PER_SLICE:])
                if kill in OVERSIZE_SLICES:
                    template = next(e for e in history if e["table"] == "PROJECT")
                    history.insert(len(history) // 2, oversize_project(template, kill))
                intake.outbox.enqueue(new_records(history) + new_records(realtime, published_now=True))
                enqueued += len(history) + len(realtime)
                formed_before, _ = count_batches(intake.engine)
                # the first run is the real command; the others are forked from a warm process
                pid = process.start() if kill == 0 else zygote.start_node()
                try:
                    wait_for(
                        lambda before=formed_before: count_batches(intake.engine)[0] > before,  # type: ignore[misc]
                        60,
                        interval=0.005,
                        message=f"node uploading (run {kill + 1})",
                    )
                except TimeoutError:
                    raise AssertionError(process.log_tail() + zygote.log_tail()) from None
                time.sleep(rng.uniform(0.0, 0.3))
                if kill == 0:
                    process.kill()
                else:
                    zygote.kill_node(pid)
                caught_mid_batch += count_batches(intake.engine)[1] > 0
            process.start()
            wait_for(
                lambda: (
                    outbox_states(intake)
                    == {"accepted": enqueued - len(OVERSIZE_SLICES), "rejected": len(OVERSIZE_SLICES)}
                ),
                120,
                interval=0.1,
                message="all accepted",
            )
            assert process.terminate() == 0, process.log_tail()  # SIGTERM: a clean, graceful stop
            _, still_open = count_batches(intake.engine)
            with intake.engine.connect() as connection:
                accepted_in = set(
                    connection.execute(
                        select(outbox.c.batch_id).where(outbox.c.state == "accepted").distinct()
                    ).scalars()
                )
                refused = connection.execute(
                    select(outbox.c.findings, outbox.c.batch_id).where(outbox.c.state == "rejected")
                ).all()
        finally:
            process.kill()
            zygote.close()
            intake.engine.dispose()
        stored = hub_record_keys(hub.db_url)
        engine = make_engine(hub.db_url)
        try:
            with engine.connect() as connection:
                hub_batch_ids = connection.execute(select(hub_batches.c.batch_id)).scalars().all()
        finally:
            engine.dispose()
    assert process.exit_codes == [-9, 0]
    assert caught_mid_batch >= KILLS // 4, f"only {caught_mid_batch} kills landed while a batch was in flight"
    assert still_open == 0
    versions = Counter((table, key, version) for table, key, version, _ in stored)
    expected = enqueued - len(OVERSIZE_SLICES)
    assert len(stored) == expected, f"hub stored {len(stored)} records of {expected} sent"
    assert max(versions.values()) == 1, "a record stored twice"
    # each batch once, under its own id, and exactly the batches the node knows as answered
    assert len(hub_batch_ids) == len(set(hub_batch_ids))
    assert set(hub_batch_ids) == accepted_in
    assert {batch for _, _, _, batch in stored} <= set(hub_batch_ids)
    # the oversize records: refused by the hub even alone, each in a part of a split batch
    assert [finding[0]["code"] for finding, _ in refused] == ["E-REQ-TOO-LARGE"] * len(OVERSIZE_SLICES)
    assert all("." in batch_id for _, batch_id in refused)
    assert not any(table == "PROJECT" and key.endswith(("9992", "9999")) for table, key, _, _ in stored)
