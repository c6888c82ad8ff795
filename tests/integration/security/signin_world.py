"""What the sign-in tests share: a clock the test moves, the password of a finished first sign-in,
and well-formed ID numbers (sysadmin and auditor accounts need the person's ID number)."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from ggzy.identifiers.id_number import make_id_number

STRONG_PASSWORD = "Quiet-Lantern-58"  # what first_sign_in sets


@dataclass
class Clock:
    now: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def id_number(n: int) -> str:
    """A well-formed resident ID number (GB 11643) for test person ``n``."""
    return make_id_number(random.Random(n), "110105", dt.date(1980, 1, 1) + dt.timedelta(days=n))
