"""The information register (Art. 12) refuses what is not a value of its field, naming each one."""

from __future__ import annotations

from typing import Any

import pytest
from opsdb import OpsDb, shanghai

from ggzy.hub.ops.register import register_history, register_system
from ggzy.hub.ops.session import Actor, OpsError

FUJIAN = Actor("fj-op", "operator", "35")
NATIONAL = Actor("national-op", "operator")
TRADING = {
    "name": "福建省公共资源电子交易系统",
    "operator": "福建省信息中心",
    "trade_areas": ["A", "D01"],
}


def _valid_uscc() -> str:
    from ggzy.identifiers.uscc import uscc_check_char

    body = "12350000MB0K7C8P5"
    return body + uscc_check_char(body)


# (kind, data changed from a valid one, the code expected first, a word of the Chinese message)
ATTACKS: list[tuple[str, dict[str, Any], str, str]] = [
    ("trading", {"uscc": "abc"}, "E-OPS-FIELD-USCC", "统一社会信用代码"),
    ("trading", {"uscc": "12350000MB0K7C8P50"}, "E-OPS-FIELD-USCC", "校验位"),  # one character off
    ("expert", {"experts": "lots"}, "E-OPS-FIELD-NUMBER", "专家人数"),
    ("expert", {"experts": -3}, "E-OPS-FIELD-NUMBER", "整数"),
    ("expert", {"experts": True}, "E-OPS-FIELD-NUMBER", "整数"),
    ("expert", {"experts": 12.5}, "E-OPS-FIELD-NUMBER", "整数"),
    ("service", {"url": "javascript:alert(1)"}, "E-OPS-FIELD-URL", "https://"),
    ("service", {"url": "ggzy.fj.example"}, "E-OPS-FIELD-URL", "访问地址"),
    ("trading", {"trade_areas": ["Z9"]}, "E-OPS-FIELD-CHOICE", "交易领域"),
    ("trading", {"regions": ["440100"]}, "E-OPS-FIELD-REGION", "本省"),  # Guangzhou is not Fujian
    ("trading", {"regions": "359999"}, "E-OPS-FIELD-REGION", "行政区划"),
    ("trading", {"launched_on": "2026-13-01"}, "E-OPS-FIELD-DATE", "上线日期"),
    ("trading", {"launched_on": "2027-01-01"}, "E-OPS-FIELD-FUTURE", "晚于今天"),
    ("trading", {"contact_email": "nobody"}, "E-OPS-FIELD-EMAIL", "邮箱"),
    ("trading", {"contact_mobile": "138"}, "E-OPS-FIELD-MOBILE", "手机"),
    ("trading", {"contact_phone": "0591-1"}, "E-OPS-FIELD-PHONE", "电话"),
    ("trading", {"name": {"nested": {"deep": 1}}}, "E-OPS-FIELD-TYPE", "嵌套"),
    ("trading", {"name": "x" * 201}, "E-OPS-FIELD-LENGTH", "200"),
    ("trading", {"name": "交易\x00系统"}, "E-OPS-FIELD-CONTROL", "控制字符"),
    ("trading", {"experts": 5}, "E-OPS-REGISTER-UNKNOWN", "没有这些字段"),  # data in the wrong field
    ("trading", {"security_level": "9"}, "E-OPS-FIELD-CHOICE", "等级保护"),
]


def _valid(kind: str) -> dict[str, Any]:
    return {
        "trading": {**TRADING, "uscc": _valid_uscc()},
        "service": {"name": "电子服务系统", "operator": "省中心", "url": "https://ggzy.fj.example/"},
        "expert": {"name": "综合评标专家库", "operator": "省中心", "experts": 5210},
    }[kind]


def test_every_field_of_the_register_is_checked_with_a_stable_code(ops_db: OpsDb) -> None:
    ops_db.clock.now = shanghai(2026, 12, 8, 9)
    for kind, change, code, word in ATTACKS:
        with pytest.raises(OpsError) as refused:
            ops_db.run(
                lambda s, k=kind, c=change: register_system(s, "35", k, "SYS-1", {**_valid(k), **c}), FUJIAN
            )
        assert refused.value.code == code, (kind, change, refused.value.code)
        assert word in refused.value.message_zh, (change, refused.value.message_zh)
        assert refused.value.problems and refused.value.problems[0]["code"] == code
    with ops_db.engine.connect() as connection:
        assert register_history(connection, "35") == []  # nothing refused was kept


def test_every_problem_of_a_filing_is_named_at_once(ops_db: OpsDb) -> None:
    bad = {"name": "交易系统", "operator": "省中心", "uscc": "abc", "trade_areas": "Q", "regions": "990000"}
    with pytest.raises(OpsError) as refused:
        ops_db.run(lambda s: register_system(s, "35", "trading", "SYS-1", bad), FUJIAN)
    fields = [p["field"] for p in refused.value.problems]
    assert fields == ["uscc", "trade_areas", "regions"]


def test_the_province_must_be_a_gbt2260_province(ops_db: OpsDb) -> None:
    with pytest.raises(OpsError) as refused:
        ops_db.run(lambda s: register_system(s, "99", "expert", "EXP", _valid("expert")), NATIONAL)
    assert refused.value.code == "E-OPS-PROVINCE" and "GB/T 2260" in refused.value.message_zh


def test_values_are_stored_cleaned_and_strings_from_the_command_line_are_read(ops_db: OpsDb) -> None:
    ops_db.clock.now = shanghai(2026, 12, 8, 0, 30)  # 2026-12-07 16:30 UTC
    text_form = {
        "name": " 综合评标专家库 ",
        "operator": "省中心",
        "experts": "5210",
        "updated_on": "2026-12-08",  # today in Beijing, though the UTC date is still the 7th
        "regions": "350100、350200",
        "shared": "yes",
    }
    entry = ops_db.run(lambda s: register_system(s, "35", "expert", "FJ-EXP", text_form), FUJIAN)
    assert entry["data"] == {
        "name": "综合评标专家库",
        "operator": "省中心",
        "experts": 5210,
        "updated_on": "2026-12-08",
        "regions": ["350100", "350200"],
        "shared": "yes",
    }
    trading = ops_db.run(lambda s: register_system(s, "35", "trading", "FJ-TRD", _valid("trading")), FUJIAN)
    assert trading["data"]["trade_areas"] == ["A", "D01"] and trading["version"] == 1
