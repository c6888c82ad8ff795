"""统一交易标识码 at the hub (Art. 7): one code one transaction across batches and within one batch,
every record of a transaction under its registered code; the prefetch reads it and stays exact."""

from __future__ import annotations

import copy
import datetime as dt
from functools import cache
from typing import Any

from conftest import HubFixture, ingest
from sqlalchemy import select, update

from ggzy.hub.models import record_heads
from ggzy.hub.models import records as hub_records
from ggzy.hub.portal.projection import catch_up
from ggzy.hub.portal.scope import Scope
from ggzy.hub.portal.trade import find_trade
from ggzy.simulate import simulate
from ggzy.store.database import writing

NOW = dt.datetime(2026, 12, 1, 4, 0, tzinfo=dt.UTC)
PROJECT = "N3509002610010001001"  # the simulated tender project with three sections


@cache
def _trades() -> tuple[dict[str, Any], ...]:
    items = simulate("35", seed=1, transactions=30, start=dt.datetime(2026, 10, 1), category="history")
    return tuple(s.record for s in items)


def trade(code: str) -> list[dict[str, Any]]:
    """Every record of the tender project ``code`` (and its tender project's project), in order."""
    records = [r for r in _trades() if r["data"].get("TENDER_PROJECT_CODE") == code]
    project = next(
        r for r in _trades() if r["table"] == "PROJECT" and code.startswith(r["data"]["PROJECT_CODE"])
    )
    return copy.deepcopy([project, *records])


def send(hub: HubFixture, batch_id: str, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = ingest(hub, 2, batch_id, batch, NOW)["results"]
    return results


def codes(result: dict[str, Any]) -> set[str]:
    return {f["code"] for f in result["findings"] if f["severity"] == "error"}


def test_a_code_reused_across_batches_and_within_a_batch(hub: HubFixture) -> None:
    records = trade(PROJECT)
    sections = [i for i, r in enumerate(records) if r["table"] == "SECTION"]
    first_code = records[sections[0]]["data"]["UNIFIED_DEAL_CODE"]
    before = records[: sections[1]]
    assert all(r["outcome"] == "accepted" for r in send(hub, "b1", before))

    second, third = copy.deepcopy(records[sections[1]]), copy.deepcopy(records[sections[2]])
    second["data"]["UNIFIED_DEAL_CODE"] = first_code  # another batch, the code of the first section
    third_code = third["data"]["UNIFIED_DEAL_CODE"]
    mine = copy.deepcopy(records[sections[2]])
    mine["data"]["BID_SECTION_CODE"] = PROJECT + "009"
    mine["data"]["UNIFIED_DEAL_CODE"] = third_code  # within the batch, after the third section took it
    results = send(hub, "b2", [second, third, mine])
    assert [(r["outcome"], codes(r)) for r in results] == [
        ("rejected", {"E-XR-DEAL-CODE-REUSED"}),
        ("accepted", set()),
        ("rejected", {"E-XR-DEAL-CODE-REUSED"}),
    ]
    assert records[sections[0]]["data"]["BID_SECTION_CODE"] in results[0]["findings"][0]["message_zh"]
    with hub.state.engine.connect() as connection:
        held = connection.execute(
            select(record_heads.c.table_name, record_heads.c.deal_code).where(
                record_heads.c.deal_code == first_code
            )
        ).all()
    # The tender project shares its first section's code (one transaction): both are registered with it.
    assert sorted(held) == [("SECTION", first_code), ("TENDER_PROJECT", first_code)]


def test_stage_records_under_another_sections_code_and_the_trade_page_shows_them(hub: HubFixture) -> None:
    records = trade(PROJECT)
    sections = {
        r["data"]["BID_SECTION_CODE"]: r["data"]["UNIFIED_DEAL_CODE"]
        for r in records
        if r["table"] == "SECTION"
    }
    one, two = sorted(sections)[:2]
    stages = [
        i
        for i, r in enumerate(records)
        if r["table"] in ("TENDER_LIST", "TENDER_INVITATION", "WIN_RESULT_ANNO")
        and r["data"].get("BID_SECTION_CODE") == two
    ]
    for i in stages:
        records[i]["data"]["UNIFIED_DEAL_CODE"] = sections[one]
    results = send(hub, "b1", records)
    mismatched = {i for i, r in enumerate(results) if "E-XR-DEAL-CODE-MISMATCH" in codes(r)}
    assert mismatched >= set(stages) and len(stages) >= 5
    messages = [
        f["message_zh"]
        for i in stages
        for f in results[i]["findings"]
        if f["code"] == "E-XR-DEAL-CODE-MISMATCH"
    ]
    assert len(messages) == len(stages) and all(sections[two] in m for m in messages)

    catch_up(hub.state.engine)  # the projection of rejections the trade page reads
    with hub.state.engine.connect() as connection:
        page = find_trade(connection, Scope(None), two)
    conflicts = [a for a in page["anomalies"] if a["kind"] == "deal_code"]
    assert conflicts and all("统一交易标识码" in a["message_zh"] for a in conflicts)


def test_the_registering_tables_of_migration_0010_are_the_specifications() -> None:
    from importlib.util import module_from_spec, spec_from_file_location

    from ggzy.hub.app import MIGRATIONS
    from ggzy.spec import load_spec
    from ggzy.validation.dealcodes import deal_code_plans

    found = spec_from_file_location(
        "migration_0010", MIGRATIONS / "versions" / "0010_figures_a_province_cannot_game.py"
    )
    assert found is not None and found.loader is not None
    migration = module_from_spec(found)
    found.loader.exec_module(migration)
    registering = {name for name, plan in deal_code_plans(load_spec()).items() if plan.registers}
    assert set(migration.REGISTERING) == registering


def test_conflicts_accepted_before_the_rules_show_as_stage_anomalies(hub: HubFixture) -> None:
    """Data a hub accepted before these rules (or through another door) is still flagged where people look."""
    records = trade(PROJECT)
    assert all(r["outcome"] == "accepted" for r in send(hub, "b1", records))
    sections = sorted(
        (r["data"]["BID_SECTION_CODE"], r["data"]["UNIFIED_DEAL_CODE"])
        for r in records
        if r["table"] == "SECTION"
    )
    (one, first_code), (two, _) = sections[0], sections[1]
    r = hub_records.c
    with writing(hub.state.engine) as connection:
        for row in connection.execute(
            select(r.id, r.table_name, r.data).where(
                r.table_name.in_(("SECTION", "TENDER_LIST")), r.key.startswith(two)
            )
        ).all():
            changed = {**row.data, "UNIFIED_DEAL_CODE": first_code}
            connection.execute(
                update(hub_records).where(r.id == row.id).values(data=changed, deal_code=first_code)
            )
        listed = connection.execute(
            select(r.id, r.data).where(r.table_name == "TENDER_LIST", r.key.startswith(one)).limit(1)
        ).one()
        connection.execute(
            update(hub_records)
            .where(r.id == listed.id)
            .values(data={**listed.data, "UNIFIED_DEAL_CODE": sections[2][1]}, deal_code=sections[2][1])
        )
    with hub.state.engine.connect() as connection:
        by_lot = find_trade(connection, Scope(None), one)
        by_code = find_trade(connection, Scope(None), first_code)
    assert any(a["kind"] == "deal_code" and "多个交易" in a["message_zh"] for a in by_code["anomalies"])
    assert one in next(a["message_zh"] for a in by_code["anomalies"] if "多个交易" in a["message_zh"])
    stage = [a["message_zh"] for a in by_lot["anomalies"] if a["kind"] == "deal_code"]
    assert any(sections[2][1] in m and first_code in m and "不一致" in m for m in stage), stage


def test_the_holders_of_a_code_are_one_index_search_each(tmp_path: Any) -> None:
    """A scan of the namespace per code made a batch cost grow with the hub's size (3× the CPU at 30k)."""
    from ggzy.hub.app import MIGRATIONS
    from ggzy.store import make_engine
    from ggzy.store.bulk import _statement
    from ggzy.store.migrate import upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        upgrade(engine, MIGRATIONS)
        h = record_heads.c
        statement = _statement(
            "sqlite", record_heads, ("deal_code",), ("namespace",), None, (h.table_name, h.key, h.deal_code),
            "deal_code IS NOT NULL",
        )  # fmt: skip
        sql = str(statement.compile(dialect=engine.dialect))
        with engine.connect() as connection:
            plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, ('[["x"]]', "prod")).all()
    finally:
        engine.dispose()
    assert any("ix_record_heads_deal_code (namespace=? AND deal_code=?)" in row[3] for row in plan), plan
