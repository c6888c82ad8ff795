"""Identifier checks and generators shared by node, hub and tools.

- 统一社会信用代码 (GB 32100-2015) and its inner organisation code (GB 11714-1997)
- 居民身份证号码 (GB 11643-1999)
- 统一交易标识码 (the transaction identifier of the national data specification)
"""

from ggzy.identifiers.deal_code import (
    DEAL_CODE_LENGTH,
    DealCodeProblem,
    deal_code_check_char,
    deal_code_problems,
    make_deal_code,
)
from ggzy.identifiers.id_number import (
    PROVINCE_PREFIXES,
    id_number_check_char,
    is_valid_id_number,
    make_id_number,
)
from ggzy.identifiers.uscc import (
    is_valid_org_code,
    is_valid_uscc,
    make_uscc,
    org_code_check_char,
    uscc_check_char,
)

__all__ = [
    "DEAL_CODE_LENGTH",
    "PROVINCE_PREFIXES",
    "DealCodeProblem",
    "deal_code_check_char",
    "deal_code_problems",
    "id_number_check_char",
    "is_valid_id_number",
    "is_valid_org_code",
    "is_valid_uscc",
    "make_deal_code",
    "make_id_number",
    "make_uscc",
    "org_code_check_char",
    "uscc_check_char",
]
