"""统一交易标识码 across records (Art. 7), on the real specification and whole simulated trades: what a
province that reuses one code for two transactions, or files stage records under another section's
code, would send — checked in one file, as ``ggzy validate`` does."""

from __future__ import annotations

import copy
import datetime as dt
from functools import cache
from typing import Any

from ggzy.identifiers import make_deal_code
from ggzy.simulate import simulate
from ggzy.validation import Validator

VALIDATOR = Validator()


@cache
def _trades() -> tuple[dict[str, Any], ...]:
    return tuple(s.record for s in simulate("35", seed=1, transactions=30, start=dt.datetime(2026, 10, 1)))


def trades() -> list[dict[str, Any]]:
    return copy.deepcopy(list(_trades()))


def first(records: list[dict[str, Any]], table: str, **data: str) -> int:
    return next(
        i
        for i, r in enumerate(records)
        if r["table"] == table and all(r["data"].get(k) == v for k, v in data.items())
    )


def findings(records: list[dict[str, Any]]) -> list[set[tuple[str, str | None]]]:
    return [{(f.code, f.field) for f in v.findings} for v in VALIDATOR.validate_records(records)]


def messages(records: list[dict[str, Any]], index: int, code: str) -> list[str]:
    verdict = list(VALIDATOR.validate_records(records))[index]
    return [f.message_zh for f in verdict.findings if f.code == code]


def sections(records: list[dict[str, Any]]) -> tuple[int, int, int]:
    """The tender project with three sections: its record and its first two sections."""
    project = first(records, "TENDER_PROJECT", TENDER_PROJECT_CODE="N3509002610010001001")
    return project, project + 1, project + 2


def test_the_simulated_trades_are_clean() -> None:
    assert all(found == set() for found in findings(trades()))


def test_two_sections_with_one_code_in_a_file() -> None:
    records = trades()
    _, one, two = sections(records)
    records[two]["data"]["UNIFIED_DEAL_CODE"] = records[one]["data"]["UNIFIED_DEAL_CODE"]
    result = findings(records)
    assert result[one] == set()
    assert ("E-XR-DEAL-CODE-REUSED", "UNIFIED_DEAL_CODE") in result[two]
    text = messages(records, two, "E-XR-DEAL-CODE-REUSED")[0]
    assert records[one]["data"]["BID_SECTION_CODE"] in text and "标段" in text


def test_one_code_across_domains_is_reused() -> None:
    records = trades()
    _, one, _ = sections(records)
    lot = first(records, "PURCHASE_PROJECT")
    assert lot > one
    records[lot]["data"]["UNIFIED_DEAL_CODE"] = records[one]["data"]["UNIFIED_DEAL_CODE"]
    assert ("E-XR-DEAL-CODE-REUSED", "UNIFIED_DEAL_CODE") in findings(records)[lot]


def test_a_tender_project_may_share_its_one_sections_code() -> None:
    records = trades()
    project, one, _ = sections(records)
    # The simulator gives the tender project its first section's code: same transaction, no finding.
    assert records[project]["data"]["UNIFIED_DEAL_CODE"] == records[one]["data"]["UNIFIED_DEAL_CODE"]
    assert findings(records)[one] == set()


def test_stage_records_filed_under_another_sections_code() -> None:
    records = trades()
    _, one, two = sections(records)
    section_two = records[two]["data"]["BID_SECTION_CODE"]
    stages = [
        i
        for i, r in enumerate(records)
        if r["table"] in ("TENDER_LIST", "TENDER_INVITATION", "TENDER_CANDIDATE", "WIN_RESULT_ANNO")
        and r["data"].get("BID_SECTION_CODE") == section_two
    ]
    assert len(stages) >= 5
    for index in stages:
        records[index]["data"]["UNIFIED_DEAL_CODE"] = records[one]["data"]["UNIFIED_DEAL_CODE"]
    result = findings(records)
    assert all(("E-XR-DEAL-CODE-MISMATCH", "UNIFIED_DEAL_CODE") in result[i] for i in stages)
    text = messages(records, stages[0], "E-XR-DEAL-CODE-MISMATCH")[0]
    assert section_two in text and records[two]["data"]["UNIFIED_DEAL_CODE"] in text


def test_credit_and_supervision_records_name_their_section() -> None:
    records = trades()
    _, one, _ = sections(records)  # the first tender project's first section
    performance = next(
        i
        for i, r in enumerate(records)
        if r["table"] == "PERFORMANCE_INFO"
        and r["data"]["TENDER_PROJECT_CODE"] != records[one]["data"]["TENDER_PROJECT_CODE"]
    )
    other = records[one]["data"]["UNIFIED_DEAL_CODE"]  # registered earlier, for another tender project
    records[performance]["data"]["UNIFIED_DEAL_CODE"] = other
    assert ("E-XR-DEAL-CODE-MISMATCH", "UNIFIED_DEAL_CODE") in findings(records)[performance]

    # Without a section (required here, optional elsewhere), the code must belong to the tender project.
    records = trades()
    del records[performance]["data"]["BID_SECTION_CODE"]
    assert findings(records)[performance] == {("E-FIELD-REQUIRED", "BID_SECTION_CODE")}
    records[performance]["data"]["UNIFIED_DEAL_CODE"] = other
    assert ("E-XR-DEAL-CODE-MISMATCH", "UNIFIED_DEAL_CODE") in findings(records)[performance]


def test_lists_of_codes_are_checked_item_by_item() -> None:
    records = trades()
    _, foreign, _ = sections(records)  # the first tender project's first section, registered earlier
    project = first(records, "TENDER_PROJECT", TENDER_PROJECT_CODE="N3505102610150001001")
    one, two = project + 1, project + 2
    notice = first(
        records,
        "TENDER_ANN_QUA_INQUERY_ANN",
        TENDER_PROJECT_CODE=records[project]["data"]["TENDER_PROJECT_CODE"],
    )
    data = records[notice]["data"]
    codes = data["UNIFIED_DEAL_CODES"].split(";")
    unregistered = make_deal_code("A01", codes[0][4:22], dt.date(2026, 10, 1), 999_999)

    cases = {
        "another tender project's code": ";".join([*codes, records[foreign]["data"]["UNIFIED_DEAL_CODE"]]),
        "a listed section's code left out": ";".join(
            c for c in codes if c != records[two]["data"]["UNIFIED_DEAL_CODE"]
        ),
    }
    for case, value in cases.items():
        changed = trades()
        changed[notice]["data"]["UNIFIED_DEAL_CODES"] = value
        assert ("E-XR-DEAL-CODE-MISMATCH", "UNIFIED_DEAL_CODES") in findings(changed)[notice], case
    assert one < notice
    # A code nobody registered yet may be a section still on its way (channel 2 behind channel 1).
    changed = trades()
    changed[notice]["data"]["UNIFIED_DEAL_CODES"] = ";".join([*codes, unregistered])
    assert findings(changed)[notice] == set()


def test_list_items_have_their_structure() -> None:
    records = trades()
    project, _, _ = sections(records)
    notice = first(
        records,
        "TENDER_ANN_QUA_INQUERY_ANN",
        TENDER_PROJECT_CODE=records[project]["data"]["TENDER_PROJECT_CODE"],
    )
    lots = records[notice]["data"]["BID_SECTION_CODES"].split(";")
    codes = records[notice]["data"]["UNIFIED_DEAL_CODES"].split(";")
    cases = {
        "BID_SECTION_CODES": [
            ";".join([*lots, ""]),  # a stray separator
            ";".join([lots[0], lots[0]]),  # repeated
            ";".join([*lots, lots[0] + "1"]),  # 24 characters
            ";".join([*lots, "N3505102610150001001001"]),  # a section of another tender project
        ],
        "UNIFIED_DEAL_CODES": [";".join([codes[0], "", codes[1]]), ";".join([codes[0], codes[0]])],
    }
    for name, values in cases.items():
        for value in values:
            changed = trades()
            changed[notice]["data"][name] = value
            assert ("E-XF-LIST-ITEM", name) in findings(changed)[notice], value
