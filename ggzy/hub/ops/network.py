"""When the network between a node and the hub was down (Art. 18), kept as time spans as evidence arrives.

Two directions, each a set of merged spans per node in ``network_down``:

* ``node``: the node could not reach the hub — from a failed upload or heartbeat attempt to the next
  attempt that got through, as the node reports it with its next delivered heartbeat
  (``link.down``, clipped to the beat's own window: a node cannot rewrite earlier windows);
* ``hub``: the hub could not reach the node — a failed probe (``ggzy ops watch``) holds until the
  next probe of that node, at most ``probe_seconds``.

Time without any heartbeat is not reachable either; :mod:`ggzy.hub.ops.availability` takes it from
the heartbeat aggregates. Spans are written in the transaction that stores their evidence.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, delete, insert, select, update

from ggzy.hub.models import network_down
from ggzy.hub.ops.periods import Interval, clip, merge, utc

__all__ = ["HUB", "NODE", "down_by_node", "note_down", "note_reached"]

NODE, HUB = "node", "hub"
_N = network_down.c


def note_down(
    connection: Connection, node_id: str, province: str, direction: str, spans: Iterable[Interval]
) -> None:
    """Add ``spans`` to the node's down time in ``direction``, merged with what overlaps or touches them."""
    wanted = merge((utc(s), utc(e)) for s, e in spans)
    for start, end in wanted:
        touching = connection.execute(
            select(_N.id, _N.started_at, _N.ended_at).where(
                _N.node_id == node_id,
                _N.direction == direction,
                _N.ended_at >= start,
                _N.started_at <= end,
            )
        ).all()
        if len(touching) == 1 and utc(touching[0].started_at) <= start and end <= utc(touching[0].ended_at):
            continue  # already known
        merged = merge([(start, end), *((utc(r.started_at), utc(r.ended_at)) for r in touching)])
        if touching:
            connection.execute(delete(network_down).where(_N.id.in_([r.id for r in touching])))
        connection.execute(
            insert(network_down),
            [
                {
                    "node_id": node_id,
                    "province": province,
                    "direction": direction,
                    "started_at": s,
                    "ended_at": e,
                }
                for s, e in merged
            ],
        )


def note_reached(connection: Connection, node_id: str, direction: str, at: dt.datetime) -> None:
    """The link worked at ``at``: a span of that direction still running past it ends there."""
    at = utc(at)
    connection.execute(
        update(network_down)
        .where(_N.node_id == node_id, _N.direction == direction, _N.started_at <= at, _N.ended_at > at)
        .values(ended_at=at)
    )


def down_by_node(
    connection: Connection, province: str, window: Interval, directions: Sequence[str] = (NODE, HUB)
) -> dict[str, dict[str, list[Interval]]]:
    """node → direction → its down spans clipped to ``window``."""
    low, high = utc(window[0]), utc(window[1])
    rows = connection.execute(
        select(_N.node_id, _N.direction, _N.started_at, _N.ended_at).where(
            _N.province == province, _N.ended_at > low, _N.started_at < high, _N.direction.in_(directions)
        )
    )
    found: dict[str, dict[str, list[Interval]]] = defaultdict(lambda: defaultdict(list))
    for node_id, direction, started, ended in rows:
        found[node_id][direction].append((utc(started), utc(ended)))
    return {
        node_id: {direction: clip(spans, (low, high)) for direction, spans in by_direction.items()}
        for node_id, by_direction in found.items()
    }
