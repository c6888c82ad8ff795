"""No record can block a channel: a bounded record size at intake, and a batch the hub refuses as a
whole split until the record it refuses is alone, rejected locally, while every other record goes on."""

from __future__ import annotations

import copy
from dataclasses import replace
from functools import cache
from typing import Any

import pytest
from sqlalchemy import select

from ggzy.node.context import NodeContext
from ggzy.node.intake import Intake
from ggzy.node.models import outbox
from ggzy.node.models import state as node_state
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
