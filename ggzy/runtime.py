"""Process-wide tuning of a long-running service (hub worker, node service), applied once it has started.

Python's cyclic garbage collector runs whenever 700 more container objects have been allocated than
freed, and every so often walks every object the process holds. A service that takes batches of
thousands of records allocates hundreds of thousands of dicts and lists per second that plain
reference counting frees; each collection still walks every live one, and the full ones walk the
whole application besides (the compiled specification, SQLAlchemy's tables, FastAPI's routes). Measured
on the hub over HTTP (60,000 records, ``bench/hub_ingest.py``): 4.7 s of 23 s of CPU were spent in the
collector, 0.6 s with the tuning below. Over 700,000 records the hub's resident memory followed the
same curve with it as without it (``--memory``, two runs side by side).

* ``gc.freeze()`` once start-up is over: what start-up built lives as long as the process, and the
  collector no longer walks it.
* A young generation of 50,000 objects instead of 700: a batch's records are mostly freed by
  reference counting before a collection comes, so far fewer of them are ever walked. Cycles are
  still collected (an exception with its traceback is the common one), later.
"""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "settle_after_start"]

GC_THRESHOLDS = (50_000, 20, 10)


def settle_after_start() -> None:
    """Freeze what start-up built and collect young objects in larger steps (see the module's note)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
