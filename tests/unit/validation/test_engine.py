"""The engine on a small specification built in the test, so each layer is seen in isolation."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from ggzy.identifiers import make_deal_code, make_uscc
from ggzy.spec import Regions, Spec, TableSpec
from ggzy.validation import DealCodeCheck, ValidationOptions, Validator

REGIONS = Regions({"350000": "福建省", "350100": "福州市", "350200": "厦门市"})
USCC = make_uscc(random.Random(7), "350100")
DEAL = make_deal_code("A01", USCC, dt.date(2026, 11, 2), 17)

PARENT = TableSpec.model_validate(
    {
        "data_no": "900",
        "name": "PARENT_T",
        "name_zh": "上级",
        "domain": "construction",
        "info_class": "trade",
        "business_key": ["P_CODE"],
        "stage": 1,
        "event_time": "P_TIME",
        "fields": [
            {"name": "P_CODE", "name_zh": "编号", "type": "C17", "semantic": "project_code"},
            {"name": "P_TIME", "name_zh": "时间", "type": "yyyyMMddHHmmss"},
            {"name": "PLATFORM_CODE", "name_zh": "交易系统标识码", "type": "C18", "semantic": "uscc"},
        ],
    }
)
CHILD = TableSpec.model_validate(
    {
        "data_no": "901",
        "name": "CHILD_T",
        "name_zh": "下级",
        "domain": "construction",
        "info_class": "trade",
        "business_key": ["C_CODE"],
        "parents": [{"table": "PARENT_T", "fields": {"P_CODE": "P_CODE"}}],
        "predecessors": [{"table": "PARENT_T", "fields": {"P_CODE": "P_CODE"}}],
        "stage": 2,
        "event_time": "C_TIME",
        "time_order": [{"earlier": "C_START", "later": "C_END"}],
        "amounts": [{"amount": "AMOUNT", "currency": "CURRENCY", "unit": "UNIT"}],
        "conditional_required": [{"when": "KIND", "equals": ["1"], "then": ["EXTRA"]}],
        "fields": [
            {"name": "P_CODE", "name_zh": "项目编号", "type": "C17", "semantic": "project_code"},
            {"name": "C_CODE", "name_zh": "招标项目编号", "type": "C20", "semantic": "tender_project_code"},
            {"name": "C_TIME", "name_zh": "时间", "type": "yyyyMMddHHmmss"},
            {"name": "C_START", "name_zh": "开始", "type": "yyyyMMdd", "required": False},
            {"name": "C_END", "name_zh": "结束", "type": "yyyyMMdd", "required": False},
            {"name": "AMOUNT", "name_zh": "金额", "type": "N..20,6", "required": False},
            {"name": "CURRENCY", "name_zh": "币种", "type": "C3", "codelist": "CURRENCY", "required": False},
            {"name": "UNIT", "name_zh": "单位", "type": "C1", "codelist": "PRICE_UNIT", "required": False},
            {"name": "KIND", "name_zh": "类别", "type": "C1", "codelist": "KIND", "required": False},
            {"name": "EXTRA", "name_zh": "补充", "type": "C..10", "required": False},
            {"name": "REGION_CODE", "name_zh": "区划", "type": "C6", "semantic": "region", "required": False},
            {
                "name": "DEAL",
                "name_zh": "统一交易标识码",
                "type": "C40",
                "semantic": "deal_code",
                "required": False,
            },
            {"name": "PHONE", "name_zh": "手机", "type": "C..20", "privacy": "personal", "required": False},
            {
                "name": "OWNER_USCC",
                "name_zh": "业主代码",
                "type": "C18",
                "semantic": "uscc",
                "required": False,
            },
            {
                "name": "ID_CARD",
                "name_zh": "身份证",
                "type": "C18",
                "semantic": "id_number",
                "required": False,
            },
            {
                "name": "BIDDER_CODE",
                "name_zh": "投标人代码",
                "type": "C..18",
                "semantic": "subject_code",
                "required": False,
            },
            {"name": "INDUSTRY", "name_zh": "行业", "type": "C3", "semantic": "industry", "required": False},
            {"name": "EMAIL", "name_zh": "邮箱", "type": "C..100", "semantic": "email", "required": False},
        ],
    }
)
SPEC = Spec(
    version="2.0",
    accepted_versions=["2.0"],
    tables={"PARENT_T": PARENT, "CHILD_T": CHILD},
    codelists={
        "CURRENCY": {
            "name": "CURRENCY",
            "name_zh": "币种",
            "status": "official",
            "values": {"156": "人民币"},
        },
        "PRICE_UNIT": {
            "name": "PRICE_UNIT",
            "name_zh": "单位",
            "status": "official",
            "values": {"0": "元", "1": "万元"},
        },
        "KIND": {
            "name": "KIND",
            "name_zh": "类别",
            "status": "provisional",
            "values": {"0": "甲", "1": "乙"},
        },
    },
)


def parent(**data: str) -> dict[str, object]:
    base = {"P_CODE": "A350100261101" + "0001", "P_TIME": "20261101090000", "PLATFORM_CODE": USCC}
    return {"table": "PARENT_T", "op": "insert", "data": {**base, **data}}


def child(op: str = "insert", **data: str) -> dict[str, object]:
    base = {"P_CODE": "A3501002611010001", "C_CODE": "A3501002611010001001", "C_TIME": "20261102090000"}
    return {"table": "CHILD_T", "op": op, "data": {**base, **data}}


def codes(records: list[dict[str, object]], **options: object) -> list[set[tuple[str, str | None]]]:
    validator = Validator(SPEC, ValidationOptions(**options), regions=REGIONS)  # type: ignore[arg-type]
    return [{(f.code, f.field) for f in v.findings} for v in validator.validate_records(records)]


def test_valid_parent_and_child_pass() -> None:
    assert codes([parent(), child(AMOUNT="1250000.5", CURRENCY="156", UNIT="0", DEAL=DEAL)]) == [set(), set()]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"C_TIME": ""}, ("E-FIELD-REQUIRED", "C_TIME")),
        ({"EXTRA": "x" * 11}, ("E-FIELD-TOO-LONG", "EXTRA")),
        ({"C_CODE": "A350100261101000100"}, ("E-FIELD-LENGTH", "C_CODE")),
        ({"AMOUNT": "12a.5", "CURRENCY": "156", "UNIT": "0"}, ("E-FIELD-NUMBER", "AMOUNT")),
        ({"AMOUNT": "1.1234567", "CURRENCY": "156", "UNIT": "0"}, ("E-FIELD-NUMBER-PRECISION", "AMOUNT")),
        ({"C_TIME": "2026-11-02 09:00"}, ("E-FIELD-DATETIME", "C_TIME")),
        ({"C_TIME": "20260230090000"}, ("E-FIELD-DATE-IMPOSSIBLE", "C_TIME")),
        ({"C_TIME": "20261102250000"}, ("E-FIELD-DATE-IMPOSSIBLE", "C_TIME")),
        ({"CURRENCY": "999", "AMOUNT": "5000", "UNIT": "0"}, ("E-FIELD-CODE", "CURRENCY")),
        ({"KIND": "7"}, ("W-FIELD-CODE-PROVISIONAL", "KIND")),
        ({"REGION_CODE": "999900"}, ("E-FIELD-REGION", "REGION_CODE")),
        ({"DEAL": DEAL[:3] + "9" + DEAL[4:]}, ("E-DEAL-CODE-FORMAT", "DEAL")),
        ({"DEAL": DEAL[:-1] + ("0" if DEAL[-1] != "0" else "1")}, ("W-DEAL-CODE-CHECK", "DEAL")),
        ({"FOO_BAR": "1"}, ("W-FIELD-UNKNOWN", "FOO_BAR")),
        ({"KIND": "1"}, ("E-XF-CONDITIONAL-REQUIRED", "EXTRA")),
        ({"C_CODE": "A3501002611010002001"}, ("E-XF-CODE-HIERARCHY", "C_CODE")),
        ({"AMOUNT": "-5", "CURRENCY": "156", "UNIT": "0"}, ("E-XF-AMOUNT-NEGATIVE", "AMOUNT")),
        ({"AMOUNT": "5000", "UNIT": "0"}, ("E-XF-AMOUNT-CURRENCY", "AMOUNT")),
        ({"AMOUNT": "5000", "CURRENCY": "156"}, ("E-XF-AMOUNT-UNIT", "AMOUNT")),
        ({"AMOUNT": "3000000", "CURRENCY": "156", "UNIT": "1"}, ("W-XF-AMOUNT-UNIT-SUSPECT", "AMOUNT")),
        ({"AMOUNT": "12.5", "CURRENCY": "156", "UNIT": "0"}, ("W-XF-AMOUNT-UNIT-SUSPECT", "AMOUNT")),
        ({"C_START": "20261110", "C_END": "20261101"}, ("E-XF-TIME-ORDER", "C_START")),
        ({"C_TIME": "20261031090000"}, ("E-XR-STAGE-ORDER", "C_TIME")),
        ({"PHONE": "13812345678"}, ("E-PRIV-PERSONAL", "PHONE")),
        ({"OWNER_USCC": USCC[:-1] + ("0" if USCC[-1] != "0" else "1")}, ("E-FIELD-USCC", "OWNER_USCC")),
        ({"ID_CARD": "11010519491231002Y"}, ("E-FIELD-ID-NUMBER", "ID_CARD")),
        ({"BIDDER_CODE": "91350100ABCDEFGHJ0"}, ("E-FIELD-SUBJECT-CODE", "BIDDER_CODE")),
        ({"INDUSTRY": "Z99"}, ("E-FIELD-INDUSTRY", "INDUSTRY")),
        ({"EMAIL": "not-an-email"}, ("E-FIELD-FORMAT", "EMAIL")),
        (
            {"DEAL": DEAL[:4] + USCC[:-1] + ("0" if USCC[-1] != "0" else "1") + DEAL[22:]},
            ("E-DEAL-CODE-USCC", "DEAL"),
        ),
        ({"DEAL": DEAL[:23] + "20261131" + DEAL[31:]}, ("E-DEAL-CODE-DATE", "DEAL")),
    ],
)
def test_each_rule_fails_its_example_and_only_there(
    changes: dict[str, str], expected: tuple[str, str]
) -> None:
    passing, failing = codes([parent(), child()])[1], codes([parent(), child(**changes)])[1]
    assert expected not in passing
    assert expected in failing


def test_masked_id_and_valid_subject_codes_pass() -> None:
    ok = {"ID_CARD": "110105********002X", "BIDDER_CODE": USCC, "INDUSTRY": "E48", "EMAIL": "a@b.cn"}
    assert codes([parent(), child(**ok)])[1] == set()
    assert codes([parent(), child(BIDDER_CODE="11010519491231002X")])[1] == set()  # a natural person


def test_every_finding_of_a_record_is_reported_not_only_the_first() -> None:
    found = codes([parent(), child(C_TIME="", EXTRA="x" * 11, REGION_CODE="999900", FOO="1")])[1]
    assert {c for c, _ in found} >= {
        "E-FIELD-REQUIRED",
        "E-FIELD-TOO-LONG",
        "E-FIELD-REGION",
        "W-FIELD-UNKNOWN",
    }


def test_leap_day_is_a_real_date() -> None:
    assert codes([parent(P_TIME="20240229120000")]) == [set()]


def test_strict_and_off_deal_code_check() -> None:
    wrong = DEAL[:-1] + ("0" if DEAL[-1] != "0" else "1")
    assert ("E-DEAL-CODE-CHECK", "DEAL") in codes(
        [parent(), child(DEAL=wrong)], deal_code_check=DealCodeCheck.STRICT
    )[1]
    assert codes([parent(), child(DEAL=wrong)], deal_code_check=DealCodeCheck.OFF)[1] == set()


def test_masked_personal_value_passes() -> None:
    assert codes([parent(), child(PHONE="138****5678")])[1] == set()


def test_personal_value_is_never_echoed_back() -> None:
    validator = Validator(SPEC, regions=REGIONS)
    verdict = list(validator.validate_records([parent(), child(PHONE="13812345678")]))[1]
    assert all("13812345678" not in (f.value or "") + f.message_zh + f.message_en for f in verdict.findings)


def test_missing_parent_and_stage() -> None:
    found = codes([child()])[0]
    assert ("E-XR-PARENT-MISSING", "P_CODE") in found
    assert ("E-XR-STAGE-MISSING", "P_CODE") in found


def test_keys_duplicates_and_versions() -> None:
    changed = child("update", C_TIME="20261103090000")
    results = codes(
        [parent(), child(), child(), changed, changed, child("update", C_CODE="A3501002611010001009")]
    )
    assert results[1] == set()
    assert ("E-XR-DUPLICATE", None) in results[2]
    assert results[3] == set()  # a changed update is a new version, not a duplicate
    assert ("E-XR-DUPLICATE", None) in results[4]
    assert ("E-XR-KEY-MISSING", None) in results[5]


def test_insert_of_existing_key_with_other_content() -> None:
    assert ("E-XR-KEY-EXISTS", None) in codes([parent(), child(), child(C_TIME="20261104090000")])[2]


def test_delete_needs_only_the_key_and_a_held_record() -> None:
    deletion = {"table": "CHILD_T", "op": "delete", "data": {"C_CODE": "A3501002611010001001"}}
    results = codes([parent(), child(), deletion, deletion])
    assert results[2] == set()
    assert ("E-XR-KEY-MISSING", None) in results[3]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ([1, 2], "E-STRUCT-NOT-OBJECT"),
        ({"table": "NOPE", "data": {}}, "E-STRUCT-TABLE"),
        ({"table": "CHILD_T", "op": "upsert", "data": {}}, "E-STRUCT-OP"),
        ({"table": "CHILD_T", "category": "live", "data": {}}, "E-STRUCT-CATEGORY"),
        ({"table": "CHILD_T", "spec_version": "9.9", "data": {}}, "E-STRUCT-VERSION"),
        ({"table": "CHILD_T"}, "E-STRUCT-DATA"),
        ({"table": "CHILD_T", "data": {"C_TIME": 20261102090000}}, "E-STRUCT-VALUE-TYPE"),
        ({"table": "CHILD_T", "published_at": "2026-11-02 09:00", "data": {}}, "E-STRUCT-PUBLISHED-AT"),
        ({"table": "CHILD_T", "data": {}}, "E-STRUCT-KEY"),
        ({"table": "CHILD_T", "secret": True, "data": {}}, "E-PRIV-SECRET"),
    ],
)
def test_structure_rules(raw: object, code: str) -> None:
    assert code in {c for c, _ in codes([raw])[0]}  # type: ignore[list-item]


def test_table_may_be_named_by_data_no() -> None:
    record = parent()
    record["table"] = "900"
    assert codes([record]) == [set()]


def test_rejected_record_is_not_visible_to_later_records() -> None:
    bad_parent = parent(P_TIME="not a time")
    assert ("E-XR-PARENT-MISSING", "P_CODE") in codes([bad_parent, child()])[1]


def test_every_data_rule_has_an_example_in_this_module() -> None:
    """Each rule of the data layers is exercised here or in the identifier/reader tests."""
    from pathlib import Path

    from ggzy.validation import RULES, Layer

    text = Path(__file__).read_text(encoding="utf-8")
    elsewhere = {
        "E-STRUCT-JSON",  # produced from reader error items: tests/unit/cli/test_validate_cli.py
        # on the real specification's transactions: tests/unit/validation/test_deal_codes_in_files.py
        "E-XR-DEAL-CODE-REUSED",
        "E-XR-DEAL-CODE-MISMATCH",
        "E-XF-LIST-ITEM",
    }
    for code, rule in RULES.items():
        if rule.layer is not Layer.EXCHANGE and code not in elsewhere:
            assert f'"{code}"' in text, f"{code} has no failing example"


def test_broken_line_becomes_a_structure_finding() -> None:
    from ggzy.interchange import SourceItem

    validator = Validator(SPEC, regions=REGIONS)
    verdicts = list(validator.validate_items([SourceItem("f.jsonl", 3, None, "Expecting value")]))
    assert [(f.code, verdicts[0].line) for f in verdicts[0].findings] == [("E-STRUCT-JSON", 3)]
