"""The hub's side of network availability (Art. 18): can the hub reach each node?

For every node with an address in ``hub.ops.node_probe_urls`` (e.g. the node's local
``/healthz``, reachable over the government extranet), ``probe_nodes`` sends one GET and stores the
outcome in ``ops_probes``. A failed probe makes the network down in the hub → node direction until
the next probe of that node, at most ``probe_seconds`` (``ggzy.hub.ops.network``); a probe that gets
through ends that span. ``ggzy ops watch`` probes every ``probe_seconds``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, insert, select

from ggzy.hub.models import nodes, ops_tables
from ggzy.hub.ops.network import HUB, note_down, note_reached
from ggzy.settings import OpsSettings
from ggzy.store.database import writing

__all__ = ["probe_nodes", "record_probe"]


def record_probe(connection: Connection, row: Mapping[str, Any], holds: dt.timedelta) -> None:
    """Store one probe outcome (``ops_probes`` columns) and its network span, in ``connection``'s
    transaction: a failure holds for ``holds`` unless a later probe gets through."""
    connection.execute(insert(ops_tables.probes), dict(row))
    node_id, province, at = str(row["node_id"]), str(row["province"]), row["at"]
    if row["ok"]:
        note_reached(connection, node_id, HUB, at)
    else:
        note_down(connection, node_id, province, HUB, [(at, at + holds)])


def probe_nodes(
    engine: Engine,
    settings: OpsSettings,
    *,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    http: httpx.Client | None = None,
) -> list[dict[str, object]]:
    with engine.connect() as connection:
        provinces = dict(connection.execute(select(nodes.c.node_id, nodes.c.province)).all())
    rows: list[dict[str, object]] = []
    client = http or httpx.Client(timeout=settings.notify_timeout_seconds)
    try:
        for node_id, url in sorted(settings.node_probe_urls.items()):
            if node_id not in provinces:
                continue
            started = time.perf_counter()
            error: str | None = None
            try:
                response = client.get(url)
                ok = response.status_code < 400
                if not ok:
                    error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                ok, error = False, f"{type(exc).__name__}: {exc}"[:500]
            rows.append(
                {
                    "node_id": node_id,
                    "province": provinces[node_id],
                    "at": now(),
                    "ok": ok,
                    "latency_ms": (time.perf_counter() - started) * 1000,
                    "error": error,
                }
            )
    finally:
        if http is None:
            client.close()
    if rows:
        holds = dt.timedelta(seconds=settings.probe_seconds)
        with writing(engine) as connection:
            for row in rows:
                record_probe(connection, row, holds)
    return rows
