"""Publication times (Art. 9): where a record's local publication time comes from, and when it is refused.

The timely-reporting rate measures each record against its publication at the province: trade
information must reach the hub within ten minutes of it, subject, expert, credit and supervision
information on the same Beijing calendar day. Node and hub read the time the same way
(:func:`publication_time`) and refuse the same records (:func:`publication_findings`):

* a publication time more than the tolerance ahead of the receiving clock (``E-EXCH-PUBLISHED-FUTURE``):
  it would make a late record look early (the node portal once showed a delay of −9,216 s);
* a realtime trade record whose publication time cannot be determined at all
  (``E-EXCH-PUBLISHED-MISSING``): without it the ten-minute rule cannot be measured, and a record
  that escaped the measure would improve the province's rate by saying less.

Same-day classes without a publication time are not refused; the hub counts them as due and not on
time (``ggzy.hub.ingest``), so leaving the time out never helps.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from ggzy.spec import InfoClass, TableSpec
from ggzy.validation.findings import Finding, make_finding
from ggzy.validation.structure import Envelope

__all__ = ["SHANGHAI", "local_time", "publication_findings", "publication_time"]

SHANGHAI = ZoneInfo("Asia/Shanghai")
_LOCAL_TIME = re.compile(r"\d{14}|\d{8}")


def local_time(value: str | None) -> dt.datetime | None:
    """A specification time (``yyyyMMddHHmmss`` or ``yyyyMMdd``) as an aware Asia/Shanghai moment."""
    if not value or not _LOCAL_TIME.fullmatch(value):
        return None
    try:
        moment = dt.datetime.strptime(value, "%Y%m%d%H%M%S" if len(value) == 14 else "%Y%m%d")
    except ValueError:
        return None
    return moment.replace(tzinfo=SHANGHAI)


def publication_time(envelope: Envelope) -> dt.datetime | None:
    """``published_at`` from the source, else the table's publication-time field (Shanghai local time)."""
    if envelope.published_at is not None:
        return envelope.published_at
    name = envelope.table.publish_time
    return local_time(envelope.data.get(name)) if name else None


def publication_findings(
    table: TableSpec,
    op: str,
    realtime: bool,
    published: dt.datetime | None,
    now: dt.datetime,
    tolerance: dt.timedelta,
) -> list[Finding]:
    """What a receiver (the node's intake at ``now``, or the hub) refuses about a record's publication time."""
    if published is not None:
        if published - now > tolerance:
            field = "published_at" if table.publish_time is None else table.publish_time
            return [
                make_finding(
                    "E-EXCH-PUBLISHED-FUTURE",
                    field,
                    published.astimezone(SHANGHAI).isoformat(),
                    now=now.astimezone(SHANGHAI).isoformat(timespec="seconds"),
                    tolerance=int(tolerance.total_seconds()),
                )
            ]
        return []
    if realtime and op != "delete" and table.info_class is InfoClass.TRADE:
        where = f"或{table.publish_time}" if table.publish_time else ""
        return [make_finding("E-EXCH-PUBLISHED-MISSING", "published_at", None, table=table.name, where=where)]
    return []
