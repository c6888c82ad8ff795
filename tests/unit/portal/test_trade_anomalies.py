"""Stage anomalies of a trade, judged from the specification's links and the stages' dates."""

from __future__ import annotations

from typing import Any

from ggzy.hub.portal.trade import _anomalies


def stage(table: str, number: int, first_event: str | None, accepted: bool = True) -> dict[str, Any]:
    return {
        "table": table,
        "stage": number,
        "first_event": first_event,
        "accepted": accepted,
        "name_zh": table,
    }


def test_a_complete_ordered_chain_has_no_anomaly() -> None:
    stages = [stage("PROJECT", 1, "20261001000000"), stage("TENDER_PROJECT", 2, "20261002000000")]
    assert _anomalies(stages, {"PROJECT", "TENDER_PROJECT"}) == []


def test_a_missing_parent_stage_is_named() -> None:
    # TENDER_PROJECT's parent in the specification is PROJECT.
    found = _anomalies([stage("TENDER_PROJECT", 2, "20261002000000")], {"TENDER_PROJECT"})
    assert [(a["kind"], a["needs"]) for a in found] == [("missing", "PROJECT")]


def test_missing_predecessors_are_one_anomaly_listing_the_alternatives() -> None:
    # WIN_RESULT_ANNO needs a tender announcement or an invitation (predecessors are alternatives).
    present = {"TENDER_PROJECT", "SECTION", "WIN_RESULT_ANNO"}
    found = [a for a in _anomalies([stage("WIN_RESULT_ANNO", 14, None)], present) if a["kind"] == "missing"]
    assert [a["needs"] for a in found] == ["TENDER_ANN_QUA_INQUERY_ANN / TENDER_INVITATION"]
    present.add("TENDER_INVITATION")
    assert [
        a for a in _anomalies([stage("WIN_RESULT_ANNO", 14, None)], present) if a["kind"] == "missing"
    ] == []


def test_a_stage_dated_before_its_earlier_stage_is_out_of_order() -> None:
    stages = [stage("PROJECT", 1, "20261005000000"), stage("TENDER_PROJECT", 2, "20261002000000")]
    found = _anomalies(stages, {"PROJECT", "TENDER_PROJECT"})
    assert [(a["kind"], a["table"], a["after"]) for a in found] == [
        ("out_of_order", "TENDER_PROJECT", "PROJECT")
    ]


def test_a_stage_with_only_rejected_records_is_flagged() -> None:
    found = _anomalies([stage("PROJECT", 1, None, accepted=False)], set())
    assert [a["kind"] for a in found] == ["rejected"]
