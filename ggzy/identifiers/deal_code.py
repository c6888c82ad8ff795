"""统一交易标识码: ``A01-<USCC 18>-<yyyyMMdd>-<serial 6>-<check>``, exactly 40 characters.

The check character is ISO 7064 MOD 37-2 over the 35 content characters without hyphens. Real codes
in circulation disagree with every published algorithm, so callers decide how strict to be.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum

from ggzy.identifiers.uscc import is_valid_uscc

__all__ = [
    "DEAL_CODE_LENGTH",
    "DealCodeProblem",
    "deal_code_check_char",
    "deal_code_problems",
    "make_deal_code",
]

DEAL_CODE_LENGTH = 40
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
_SHAPE = re.compile(r"^([A-Z][0-9]{2})-([0-9A-Z]{18})-((?:19|20)[0-9]{6})-([0-9]{6})-([0-9A-Z*])$")


class DealCodeProblem(StrEnum):
    FORMAT = "format"  # not the 40-character segment structure
    USCC = "uscc"  # the assigning system's USCC has a wrong check character
    DATE = "date"  # the date segment is not a real calendar date
    CHECK = "check"  # the final check character disagrees with MOD 37-2


def deal_code_check_char(content: str) -> str:
    """MOD 37-2 check character of the 35 content characters (hyphens are ignored)."""
    product = 0
    for char in content.replace("-", ""):
        product = ((product + _ALPHABET.index(char)) * 2) % 37
    return _ALPHABET[(38 - product) % 37]


def _real_date(text: str) -> bool:
    try:
        dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return False
    return True


def deal_code_problems(code: str) -> list[DealCodeProblem]:
    """Every problem of ``code``; an empty list means the code is entirely correct."""
    match = _SHAPE.match(code)
    if match is None:
        return [DealCodeProblem.FORMAT]
    trade_class, uscc, date, serial, check = match.groups()
    problems: list[DealCodeProblem] = []
    if not is_valid_uscc(uscc):
        problems.append(DealCodeProblem.USCC)
    if not _real_date(date):
        problems.append(DealCodeProblem.DATE)
    if check != deal_code_check_char(trade_class + uscc + date + serial):
        problems.append(DealCodeProblem.CHECK)
    return problems


def make_deal_code(trade_class: str, uscc: str, day: dt.date, serial: int) -> str:
    """Assign a code for a transaction that lacks one (the province's USCC and its daily serial)."""
    if not re.fullmatch(r"[A-Z][0-9]{2}", trade_class):
        raise ValueError(f"trade class must be a letter and two digits, not {trade_class!r}")
    if not 0 <= serial <= 999_999:
        raise ValueError("the daily serial has six digits")
    content = f"{trade_class}{uscc}{day:%Y%m%d}{serial:06d}"
    return f"{trade_class}-{uscc}-{day:%Y%m%d}-{serial:06d}-{deal_code_check_char(content)}"
