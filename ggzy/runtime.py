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
* A young generation of 200,000 objects instead of 700: larger than what one call of work holds
  alive at once (a hub batch of 1,000 records; a node intake call of 5,000 records holds 40,000 to
  70,000 container objects until it commits). The collector counts allocations net of what
  reference counting frees, so a call that frees what it built never brings a collection on, and
  its records are never walked. With 50,000, the node's intake walked a call's objects about once
  a call: 20 collections of ~52 ms over 100,000 records, 51 → 45 µs a record without them
  (``bench/node_intake.py``). Cycles are still collected (an exception with its traceback is the
  common one), later; at worst 200,000 objects of garbage wait for it.
"""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "settle_after_start"]

GC_THRESHOLDS = (200_000, 20, 10)


def settle_after_start() -> None:
    """Freeze what start-up built and collect young objects in larger steps (see the module's note)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
