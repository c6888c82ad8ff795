"""The ranges people's routes accept for ids, counts, durations, days and moments.

Without them a value at the end of its type reached the database or the calendar and came back as a
500: an id past 64 bits (SQLite: "Python int too large"), ``9999-12-31`` plus a day, a Beijing
midnight of ``0001-01-01`` in UTC, an infinite duration that JSON cannot carry. With them FastAPI
answers 422 ``E-REQ-PARAMETER`` naming the field. Used by the hub's and the node's routes alike.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, Field

__all__ = ["FIRST_DAY", "LAST_DAY", "MAX_ID", "Count", "Day", "IdPath", "Moment", "RowId", "Seconds"]

MAX_ID = 2**62
FIRST_DAY, LAST_DAY = dt.date(1900, 1, 1), dt.date(2999, 12, 31)

RowId = Annotated[int, Field(ge=1, le=MAX_ID)]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
Count = Annotated[int, Field(ge=0, le=MAX_ID)]
Seconds = Annotated[float, Field(ge=0, le=10**10, allow_inf_nan=False)]
Day = Annotated[dt.date, Field(ge=FIRST_DAY, le=LAST_DAY)]


def _on_the_calendar(moment: dt.datetime) -> dt.datetime:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    try:
        day = aware.astimezone(dt.UTC).date()
    except OverflowError:
        day = dt.date.min
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(
            f"时间应在 {FIRST_DAY} 至 {LAST_DAY} 之间 (a time between {FIRST_DAY} and {LAST_DAY})"
        )
    return moment


Moment = Annotated[dt.datetime, AfterValidator(_on_the_calendar)]
