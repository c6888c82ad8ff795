"""No record can block a channel: a bounded record size at intake, and a batch the hub refuses as a
whole split until the record it refuses is alone, rejected locally, while every other record goes on."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from functools import cache
from typing import Any

import pytest
from nodeproc import identity, new_records, outbox_states, simulated
from sqlalchemy import select

from ggzy.node.breaker import TokenBucket
from ggzy.node.context import NodeContext
from ggzy.node.corrections import RejectFilter, list_rejects
from ggzy.node.intake import Intake
from ggzy.node.models import batches, outbox
from ggzy.node.models import state as node_state
from ggzy.node.uploader import ChannelUploader
from ggzy.protocol import HubRefused
from ggzy.settings import NodeSettings
from ggzy.simulate import simulate


@pytest.fixture
def ctx(node_ctx: NodeContext) -> NodeContext:
    return node_ctx


@cache
def _simulated() -> tuple[dict[str, Any], ...]:
    return tuple(s.record for s in simulate("35", seed=3, transactions=24))


def projects(n: int) -> list[dict[str, Any]]:
    found = [copy.deepcopy(r) for r in _simulated() if r["table"] == "PROJECT"][:n]
    assert len(found) == n
    return found


def test_a_record_over_max_record_bytes_is_refused_at_intake_and_never_queued(ctx: NodeContext) -> None:
    good, huge, just_fits = projects(3)
    huge["data"]["PROJECT_SCALE"] = "规模" * (11 * 1024 * 1024 // 6 + 1)  # ~11 MB of text, ~21 MB escaped
    intake = Intake(
        replace(ctx, settings=ctx.settings.model_copy(update={"max_record_bytes": 64 * 1024})),
        pseudonym_key=b"\x11" * 32,
    )
    just_fits["data"]["PROJECT_SCALE"] = "x" * (60 * 1024)
    results = intake.accept([good, huge, just_fits], "push", "t")
    # the others are stored (a long field may be held for correction: stored all the same)
    assert [(r.outcome == "refused", r.code == "E-INPUT-TOO-LARGE") for r in results] == [
        (False, False),
        (True, True),
        (False, False),
    ]
    assert results[1].message_zh is not None and "65536" in results[1].message_zh
    with ctx.engine.connect() as connection:
        stored = connection.execute(select(outbox.c.id)).scalars().all()
        counter = connection.execute(
            select(node_state.c.value).where(node_state.c.name == "intake:refused:E-INPUT-TOO-LARGE")
        ).scalar()
    assert sorted(stored) == sorted([results[0].id, results[2].id])
    assert counter == "1"


def test_the_default_record_limit_is_one_mebibyte() -> None:
    assert NodeSettings().max_record_bytes == 1024 * 1024


# --- a batch the hub refuses as a whole ---


class ContentRefusingHub:
    """A hub that refuses, as a whole, every batch carrying one of ``refused`` (by table and key):
    413 like the hub's body limit, or 400 naming the record's place like the hub's body checks."""

    def __init__(self, refused: set[tuple[str, str]], status: int = 413) -> None:
        self.refused = refused
        self.status = status
        self.calls: list[tuple[str, int]] = []
        self.stored: list[tuple[tuple[str, str], str]] = []  # (record, batch id), in storage order
        self.answered: dict[str, list[tuple[str, str]]] = {}  # batch id -> its records, as first stored

    def upload(self, channel: int, batch_id: str, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append((batch_id, len(records)))
        found = [i for i, record in enumerate(records) if identity(record) in self.refused]
        if found and self.status == 413:
            raise HubRefused(
                413, "E-REQ-TOO-LARGE", "请求体超过8388608字节上限", "request body exceeds 8388608 bytes"
            )
        if found:
            place = f"$.records[{found[0]}].data.PROJECT_NAME"
            raise HubRefused(
                400, "E-REQ-ENCODING", f"请求体{place}处含有空字符", f"a NUL character at {place}"
            )
        mine = [identity(record) for record in records]
        if batch_id in self.answered:  # a replay: the stored receipt, nothing stored again
            assert self.answered[batch_id] == mine, "a batch id resent with other records"
        else:
            self.answered[batch_id] = mine
            self.stored += [(record, batch_id) for record in mine]
        return {"results": [{"outcome": "accepted", "version": 1, "findings": []} for _ in records]}


def history(n: int) -> list[dict[str, Any]]:
    found = simulated(1, 6, "history")[:n]
    assert len(found) == n
    return found


def drain(sender: ChannelUploader, steps: int = 200) -> list[str]:
    kinds = []
    for _ in range(steps):
        outcome = sender.step()
        kinds.append(outcome.kind)
        if outcome.kind == "idle":
            return kinds
    raise AssertionError(f"still sending after {steps} steps: {kinds[-10:]}")


def channel_2(ctx: NodeContext, hub: ContentRefusingHub) -> ChannelUploader:
    return ChannelUploader(ctx, 2, hub, bucket=TokenBucket(0), batch_size=40, poll_seconds=0.01)


@pytest.mark.parametrize("status", [413, 400])
def test_a_batch_refused_whole_is_split_until_the_refused_record_is_alone(
    ctx: NodeContext, status: int
) -> None:
    envelopes = history(40)
    refused = {identity(envelopes[7]), identity(envelopes[30])}
    ids = ctx.outbox.enqueue(new_records(envelopes))
    hub = ContentRefusingHub(refused, status)
    drain(channel_2(ctx, hub))
    states = {row.id: row for row in ctx.outbox.rows(limit=100)}
    assert {states[i].state for i in ids} == {"accepted", "rejected"}
    rejected = [i for i in ids if states[i].state == "rejected"]
    assert rejected == [ids[7], ids[30]]
    code = "E-REQ-TOO-LARGE" if status == 413 else "E-REQ-ENCODING"
    assert all(states[i].findings[0]["code"] == code for i in rejected)
    # everything else stored exactly once, in the order it was queued (nothing overtook anything)
    others = [identity(e) for n, e in enumerate(envelopes) if n not in (7, 30)]
    assert [record for record, _ in hub.stored] == others
    # the rejected records are among the rejects an operator lists and corrects
    listed, total = list_rejects(ctx.engine, RejectFilter())
    assert total == 2 and {row.id for row in listed} == set(rejected)
    assert all(code in row.codes for row in listed)
    if status == 400:  # the record named is cut out at once: first batch, its three parts, then the rest
        assert len(hub.calls) <= 7, hub.calls


def test_a_crash_around_a_split_neither_loses_nor_duplicates(
    ctx: NodeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    envelopes = history(40)
    refused = {identity(envelopes[12])}
    ctx.outbox.enqueue(new_records(envelopes))
    hub = ContentRefusingHub(refused)
    first = channel_2(ctx, hub)
    real_split = ctx.outbox.split_batch
    cuts = {"n": 0}

    def split_then_die(*args: Any, **kwargs: Any) -> Any:
        cuts["n"] += 1
        if cuts["n"] == 1:
            raise SystemExit("killed before the split committed")
        real_split(*args, **kwargs)
        raise SystemExit("killed right after the split committed")

    monkeypatch.setattr(ctx.outbox, "split_batch", split_then_die)
    for _ in range(2):
        with pytest.raises(SystemExit):
            drain(channel_2(ctx, hub))
    monkeypatch.setattr(ctx.outbox, "split_batch", real_split)
    assert first is not None
    drain(channel_2(ctx, hub))  # a fresh start: the parts waiting in the outbox go first, in order
    assert [record for record, _ in hub.stored] == [identity(e) for n, e in enumerate(envelopes) if n != 12]
    assert outbox_states(ctx) == {"accepted": 39, "rejected": 1}
    with ctx.engine.connect() as connection:
        open_batches = connection.execute(select(batches).where(batches.c.acknowledged_at.is_(None))).all()
    assert open_batches == []
