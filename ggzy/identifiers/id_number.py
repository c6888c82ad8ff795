"""居民身份证号码 (GB 11643-1999).

python-stdnum's ``stdnum.cn.ric`` computes the check character and parses the birth date, but its
birth-place check looks the first six digits up in a county table that lags behind real
re-organisations of counties, so genuine numbers are refused. This wrapper keeps stdnum's check
character and birth date and checks only the province part of the birth place.
"""

from __future__ import annotations

import datetime as dt
import random
from functools import lru_cache

from stdnum.cn import ric as _stdnum_ric

__all__ = ["PROVINCE_PREFIXES", "id_number_check_char", "is_valid_id_number", "make_id_number"]

# GB/T 2260 province prefixes (including 71 Taiwan, 81 Hong Kong and 82 Macao as used by GB 11643).
PROVINCE_PREFIXES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    ]
)
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number_check_char(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


@lru_cache(maxsize=8192)
def is_valid_id_number(code: str, today: dt.date | None = None) -> bool:
    if len(code) != 18 or not code[:17].isdigit() or code[:2] not in PROVINCE_PREFIXES:
        return False
    if code[17] != _stdnum_ric.calc_check_digit(code):
        return False
    # 17 digits and a matching check character: stdnum's get_birth_date would read the same fields
    # after a clean-up that changes nothing here.
    try:
        birth = dt.date(int(code[6:10]), int(code[10:12]), int(code[12:14]))
    except ValueError:
        return False
    return dt.date(1900, 1, 1) <= birth <= (today or dt.date.today())


def make_id_number(rng: random.Random, region: str, birth: dt.date) -> str:
    first17 = f"{region}{birth:%Y%m%d}{rng.randrange(1000):03d}"
    return first17 + id_number_check_char(first17)
