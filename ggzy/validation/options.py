"""Knobs of the validation engine; the settings object fills them from configuration."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

__all__ = ["DealCodeCheck", "ValidationOptions"]


class DealCodeCheck(StrEnum):
    """How to treat a 统一交易标识码 whose check character disagrees with MOD 37-2.

    Codes in circulation disagree with every published algorithm, so the default only warns.
    """

    STRICT = "strict"
    WARN = "warn"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class ValidationOptions:
    deal_code_check: DealCodeCheck = DealCodeCheck.WARN
    # An amount in 元 below this many yuan, or in 万元 at or above this many 万元, is suspicious.
    unit_suspect_min_yuan: Decimal = Decimal(50)
    unit_suspect_max_wan: Decimal = Decimal(1_000_000)
    check_personal: bool = True  # report unmasked personal data (the hub must never store it)
    cross_record: bool = True  # parents, stage order, keys and duplicates against the lookup
    today: dt.date | None = None  # for birth dates in ID numbers; None = the real today
