"""A service process, once started, freezes what start-up built and collects young objects in larger steps."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from ggzy.runtime import GC_THRESHOLDS, settle_after_start


@pytest.fixture
def collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector")
def test_start_up_objects_leave_the_collectors_walks_and_cycles_are_still_collected() -> None:
    built_at_start = [{"n": n} for n in range(1_000)]
    settle_after_start()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() >= len(built_at_start)
    assert not any(item is built_at_start for item in gc.get_objects())  # no longer walked

    class Node:
        other: object = None

    first, second = Node(), Node()
    first.other, second.other = second, first  # a cycle: reference counting alone never frees it
    watch = weakref.ref(first)
    del first, second
    assert watch() is not None
    gc.collect()
    assert watch() is None
