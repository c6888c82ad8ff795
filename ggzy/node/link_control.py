"""A switch on the node's link to the hub, for emergency drills (Art. 28).

``ggzy drill hub-outage`` cuts the link of a running node for a while: it writes an end time to the
``node_state`` row ``link.cut_until`` of the node's own store, and every signed client the node
builds (:meth:`ggzy.node.context.NodeContext.hub_client`) sends through :class:`GatedTransport`,
which fails each request as a refused connection while that time lies ahead. To the uploaders, the
heartbeat and the feedback poller this is exactly a network outage: they back off, record failed
link attempts and keep everything in the outbox. The cut ends by itself at its end time even if the
drill command dies, and ``restore_link`` ends it at once.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import httpx
from sqlalchemy import Engine, delete, select

from ggzy.node.models import state
from ggzy.store.database import writing
from ggzy.store.upsert import upsert

__all__ = ["LINK_CUT_UNTIL", "GatedTransport", "cut_link", "link_cut_until", "restore_link"]

LINK_CUT_UNTIL = "link.cut_until"
_RECHECK_SECONDS = 0.2  # how stale the gate's view of the switch may be


def cut_link(engine: Engine, until: dt.datetime) -> None:
    with writing(engine) as connection:
        upsert(
            connection,
            state,
            [{"name": LINK_CUT_UNTIL, "value": until.isoformat()}],
            ["name"],
            replace=["value"],
        )


def restore_link(engine: Engine) -> None:
    with writing(engine) as connection:
        connection.execute(delete(state).where(state.c.name == LINK_CUT_UNTIL))


def link_cut_until(engine: Engine, now: dt.datetime | None = None) -> dt.datetime | None:
    """The end of the cut in force at ``now``, or None when the link is up."""
    with engine.connect() as connection:
        text = connection.execute(select(state.c.value).where(state.c.name == LINK_CUT_UNTIL)).scalar()
    if not text:
        return None
    try:
        until = dt.datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return until if until > (now or dt.datetime.now(dt.UTC)) else None


class GatedTransport(httpx.BaseTransport):
    """Passes requests to ``inner`` unless a drill has cut the link (then: ``httpx.ConnectError``)."""

    def __init__(self, inner: httpx.BaseTransport, engine: Engine) -> None:
        self.inner = inner
        self.engine = engine
        self._lock = threading.Lock()
        self._checked = 0.0
        self._cut = False

    def _is_cut(self) -> bool:
        with self._lock:
            if time.monotonic() - self._checked >= _RECHECK_SECONDS:
                self._cut = link_cut_until(self.engine) is not None
                self._checked = time.monotonic()
            return self._cut

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._is_cut():
            raise httpx.ConnectError(
                "link to the hub cut by an emergency drill (ggzy drill)", request=request
            )
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()
