"""Intake: per-record outcomes, times and categories, pre-validation, deal codes, one transaction."""

from __future__ import annotations

import copy
import datetime as dt
import gc
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from ggzy.cli import app
from ggzy.identifiers import deal_code_problems
from ggzy.interchange import SourceItem, write_jsonl
from ggzy.node.context import NodeContext, build_context
from ggzy.node.intake import Intake
from ggzy.node.models import audit_log, outbox
from ggzy.node.models import state as node_state
from ggzy.runtime import settle_after_start
from ggzy.settings import NodeSettings
from ggzy.simulate import simulate

NOW = dt.datetime(2026, 11, 27, 4, 0, tzinfo=dt.UTC)  # 12:00 in Shanghai
# Simulated trades published in the 30 days before NOW: a publication after the intake clock is refused.
START = dt.datetime(2026, 10, 27)
ASSIGNER = "12350100353978936M"  # a valid USCC (a trading system of the sample province)


@pytest.fixture
def ctx(node_db_url: str, tmp_path: Path) -> Iterator[NodeContext]:
    context = build_context(
        NodeSettings(db_url=node_db_url, key_file=tmp_path / "node.key"), key=b"\x07" * 32
    )
    yield context
    context.engine.dispose()


def intake_for(ctx: NodeContext, **settings: Any) -> Intake:
    configured = replace(ctx, settings=ctx.settings.model_copy(update=settings))
    return Intake(configured, pseudonym_key=b"\x11" * 32, clock=lambda: NOW)


@cache
def simulated(seed: int) -> tuple[dict[str, Any], ...]:
    return tuple(s.record for s in simulate("35", seed=seed, transactions=16, start=START))


def sample(table: str, n: int = 1, seed: int = 1) -> list[dict[str, Any]]:
    found = [record for record in simulated(seed) if record["table"] == table][:n]
    assert len(found) == n
    return copy.deepcopy(found)


def rows(ctx: NodeContext) -> list[Any]:
    with ctx.engine.connect() as connection:
        return list(connection.execute(select(outbox).order_by(outbox.c.id)))


def state(ctx: NodeContext, prefix: str) -> dict[str, str]:
    with ctx.engine.connect() as connection:
        found = connection.execute(select(node_state).where(node_state.c.name.like(prefix + "%")))
        return {row.name: row.value for row in found}


def test_each_record_gets_its_outcome_and_only_good_ones_are_stored(ctx: NodeContext) -> None:
    good = sample("PROJECT")[0]
    secret = {**sample("PROJECT", seed=2)[0], "secret": True}
    secret["data"]["PROJECT_NAME"] = "绝密工程-不得出省"
    no_key = sample("TENDER_PROJECT")[0]
    del no_key["data"]["TENDER_PROJECT_CODE"]
    items: list[Any] = [
        good,
        ["not", "an", "envelope"],
        {"table": "NO_SUCH_TABLE", "data": {}},
        secret,
        no_key,
        SourceItem(source="f.jsonl", line=7, error="Expecting value (column 1)"),
    ]
    results = intake_for(ctx).accept(items, "push", "test")
    assert [(r.index, r.outcome, r.code) for r in results] == [
        (0, "accepted", None),
        (1, "refused", "E-STRUCT-NOT-OBJECT"),
        (2, "refused", "E-STRUCT-TABLE"),
        (3, "refused", "E-PRIV-SECRET"),
        (4, "refused", "E-STRUCT-KEY"),
        (5, "refused", "E-STRUCT-JSON"),
    ]
    assert all(r.message_zh for r in results[1:])
    assert results[3].message_zh == "记录标记为涉密，不得上传"
    stored = rows(ctx)
    assert [(r.id, r.table_name, r.state, r.channel) for r in stored] == [
        (results[0].id, "PROJECT", "queued", 2)
    ]
    assert "绝密工程" not in json.dumps([r.record for r in stored], ensure_ascii=False)
    counters = state(ctx, "intake:")
    assert counters["intake:refused:E-PRIV-SECRET"] == "1"
    assert counters["intake:accepted"] == "1"


def test_a_full_disk_refuses_everything_and_stores_nothing(ctx: NodeContext) -> None:
    configured = replace(ctx, settings=ctx.settings.model_copy())
    intake = Intake(configured, disk_guard=lambda: False, pseudonym_key=b"\x11" * 32)
    results = intake.accept(sample("PROJECT", 2), "push", "test")
    assert {(r.outcome, r.code) for r in results} == {("refused", "E-NODE-DISK-FULL")}
    assert "磁盘" in (results[0].message_zh or "")
    assert rows(ctx) == []
    assert state(ctx, "intake:refused:") == {"intake:refused:E-NODE-DISK-FULL": "2"}


def test_times_and_the_category_rule(ctx: NodeContext) -> None:
    recent, old, undated, labelled_test = sample("PROJECT", 4)
    for record in (recent, old, undated, labelled_test):
        record.pop("category")
        record.pop("published_at")
    recent["published_at"] = "2026-11-27T10:30:00+08:00"  # 1.5 hours before NOW
    old["data"]["CREATE_TIME"] = "20261120080000"  # no published_at: the stage time stands in
    del undated["data"]["CREATE_TIME"]
    labelled_test["category"] = "test"
    announcement = sample("TENDER_ANN_QUA_INQUERY_ANN")[0]
    announcement.pop("category")
    announcement.pop("published_at")
    announcement["data"]["NOTICE_SEND_TIME"] = "20261127113000"  # its publication-time field, local time

    results = intake_for(ctx).accept([recent, old, undated, labelled_test, announcement], "push", "t")
    assert [(r.category, r.channel) for r in results] == [
        ("realtime", 1),
        ("history", 2),
        (None, None),  # nothing to date it: realtime, and a realtime trade record needs its publication
        ("test", 2),
        ("realtime", 1),
    ]
    assert (results[2].outcome, results[2].code) == ("refused", "E-EXCH-PUBLISHED-MISSING")
    stored = rows(ctx)
    assert stored[0].record["published_at"] == "2026-11-27T10:30:00+08:00"  # kept from the source
    assert stored[3].record["published_at"] == "2026-11-27T11:30:00+08:00"  # from NOTICE_SEND_TIME
    assert "published_at" not in stored[2].record  # a test record: not measured, not refused
    assert {r.record["acquired_at"] for r in stored} == {NOW.isoformat()}
    moment = stored[3].published_at
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    assert moment == dt.datetime(2026, 11, 27, 3, 30, tzinfo=dt.UTC)


def test_publication_times_the_hub_would_refuse_are_refused_at_intake(ctx: NodeContext) -> None:
    ahead, within, subject_ahead, silent_subject, silent_trade = (
        *sample("PROJECT", 2),
        *sample("LEGAL_PERSON_BASE", 2),
        sample("PROJECT", seed=2)[0],
    )
    ahead["published_at"] = (NOW + dt.timedelta(seconds=301)).isoformat()  # the portal once showed −9216 s
    within["published_at"] = (NOW + dt.timedelta(seconds=299)).isoformat()
    subject_ahead["published_at"] = (NOW + dt.timedelta(days=1)).isoformat()
    silent_subject.pop("published_at")  # not refused: the hub counts it as not on time
    silent_trade.pop("published_at")
    for record in (ahead, within, subject_ahead, silent_subject, silent_trade):
        record["category"] = "realtime"
    results = intake_for(ctx).accept(
        [ahead, within, subject_ahead, silent_subject, silent_trade], "push", "t"
    )
    assert [(r.outcome, r.code) for r in results] == [
        ("refused", "E-EXCH-PUBLISHED-FUTURE"),
        ("accepted", None),
        ("refused", "E-EXCH-PUBLISHED-FUTURE"),
        ("accepted", None),
        ("refused", "E-EXCH-PUBLISHED-MISSING"),
    ]
    assert "300秒" in (results[0].message_zh or "") and "2026-11-27T12:05:01+08:00" in (
        results[0].message_zh or ""
    )
    tight = intake_for(ctx, clock_tolerance_seconds=60).accept([within], "push", "t")[0]
    assert (tight.outcome, tight.code) == ("refused", "E-EXCH-PUBLISHED-FUTURE")
    assert state(ctx, "intake:refused:") == {
        "intake:refused:E-EXCH-PUBLISHED-FUTURE": "3",
        "intake:refused:E-EXCH-PUBLISHED-MISSING": "1",
    }


def test_a_tighter_window_makes_the_same_record_history(ctx: NodeContext) -> None:
    record = sample("PROJECT")[0]
    record.pop("category")
    record["published_at"] = "2026-11-27T10:30:00+08:00"
    assert intake_for(ctx, realtime_window_hours=1).accept([record], "push", "t")[0].category == "history"


def test_invalid_records_are_held_or_sent_anyway(ctx: NodeContext) -> None:
    record = sample("PROJECT")[0]
    record["data"]["CREATE_TIME"] = "2026-11-01"  # not yyyyMMddHHmmss
    held = intake_for(ctx).accept([record], "push", "t")[0]
    assert (held.outcome, held.code) == ("held", "E-FIELD-DATETIME")
    queued = intake_for(ctx, hold_invalid=False).accept([record], "push", "t")[0]
    assert (queued.outcome, queued.code) == ("accepted", None)
    assert [f["code"] for f in queued.findings] == ["E-FIELD-DATETIME"]  # kept for the operator
    assert [(r.state, r.findings[0]["code"]) for r in rows(ctx)] == [
        ("superseded", "E-FIELD-DATETIME"),  # the newer version of the key took the held one's place
        ("queued", "E-FIELD-DATETIME"),
    ]


def _without_codes(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for record in records:
        record["data"].pop("UNIFIED_DEAL_CODE", None)
    return records


def test_deal_codes_are_assigned_inherited_and_the_serial_survives_a_restart(
    ctx: NodeContext, tmp_path: Path
) -> None:
    settings = {"assign_deal_code": True, "assigner_uscc": ASSIGNER}
    sections = _without_codes(sample("SECTION", 2))
    win = _without_codes(
        [
            r
            for r in sample("WIN_RESULT_ANNO", 3)
            if r["data"]["BID_SECTION_CODE"] == sections[0]["data"]["BID_SECTION_CODE"]
        ][:1]
    )
    assert win, "the sample has a result notice of the first section"
    results = intake_for(ctx, **settings).accept([*sections, *win], "push", "t")
    assert {r.outcome for r in results} == {"accepted"}
    first, second, notice = (r.record["data"]["UNIFIED_DEAL_CODE"] for r in rows(ctx))
    day = NOW.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y%m%d")
    assert first.startswith(f"A01-{ASSIGNER}-{day}-000001-") and deal_code_problems(first) == []
    assert second.startswith(f"A01-{ASSIGNER}-{day}-000002-") and deal_code_problems(second) == []
    assert notice == first  # the result notice belongs to the first section's transaction
    assert "UNIFIED_DEAL_CODE" not in sections[0]["data"]  # the caller's records are not written into

    # A restart: a new process on the same store continues the day's serial.
    restarted = build_context(ctx.settings, key=b"\x07" * 32)
    try:
        third = _without_codes(sample("SECTION", 3))[2]
        update = {**_without_codes(sample("SECTION"))[0], "op": "update"}  # the source still has no code
        assert update["data"]["BID_SECTION_CODE"] == sections[0]["data"]["BID_SECTION_CODE"]
        results = intake_for(restarted, **settings).accept([third, update], "push", "t")
        assert {r.outcome for r in results} == {"accepted"}
        codes = [r.record["data"]["UNIFIED_DEAL_CODE"] for r in rows(restarted)][3:]
        assert codes[0].startswith(f"A01-{ASSIGNER}-{day}-000003-")
        assert codes[1] == first  # an update keeps the code its record was given
        assert state(restarted, "deal_serial:") == {f"deal_serial:{day}": "3"}
    finally:
        restarted.engine.dispose()


def test_deal_codes_are_left_alone_when_not_configured(ctx: NodeContext) -> None:
    sections = _without_codes(sample("SECTION"))
    result = intake_for(ctx).accept(sections, "push", "t")[0]
    assert (result.outcome, result.code) == ("held", "E-FIELD-REQUIRED")


def test_a_call_is_one_transaction(ctx: NodeContext, monkeypatch: pytest.MonkeyPatch) -> None:
    intake = intake_for(ctx)

    def crash(*_: Any) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(intake.ctx.audit, "append", crash)  # the last write of the transaction fails
    with pytest.raises(RuntimeError):
        intake.accept(sample("PROJECT", 3), "push", "t", state_updates={"cursor:x": "42"})
    assert rows(ctx) == []  # nothing half-acknowledged
    assert state(ctx, "") == {}


def test_every_call_leaves_one_audit_entry_with_counts(ctx: NodeContext) -> None:
    records = [s.record for s in simulate("35", seed=2, transactions=2, personal="raw", start=START)]
    intake = intake_for(ctx)
    results = intake.accept(records, "file", "a.jsonl")
    intake.accept([{"table": "PROJECT", "secret": True, "data": {"PROJECT_CODE": "X"}}], "push", "b")
    with ctx.engine.connect() as connection:
        entries = list(connection.execute(select(audit_log).order_by(audit_log.c.id)))
        assert ctx.audit.verify(connection) is None
    assert [(e.action, e.object) for e in entries] == [
        ("intake.redact", "file:a.jsonl"),
        ("intake.redact", "push:b"),
    ]
    detail = entries[0].detail
    assert detail["stored"] == len(results)
    assert sum(detail["redacted"].values()) == sum(len(r.redacted) for r in results) > 0
    assert any(name.endswith("ID_CARD:pseudonym") for name in detail["redacted"])
    assert entries[1].detail["secret_refused"] == 1


def test_cli_imports_files_once(
    ctx: NodeContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_session: Callable[..., str]
) -> None:
    records = [s.record for s in simulate("35", seed=3, transactions=2, personal="raw", start=START)]
    for record in records:
        record.pop("category")
    data = tmp_path / "batch.jsonl"
    write_jsonl(records, data)
    config = tmp_path / "node.toml"
    config.write_text(
        f'[node]\ndb_url = "{ctx.settings.db_url}"\nkey_file = "{tmp_path / "node.key"}"\n', encoding="utf-8"
    )
    monkeypatch.setenv("GGZY_CONFIG", str(config))  # restored after the test (the command sets it)
    cli_session("operator", config=config)
    runner = CliRunner()
    first = runner.invoke(
        app, ["node", "intake", str(data), "--config", str(config), "--category", "history"]
    )
    assert first.exit_code == 0, first.output
    assert f"接收 {len(records)} 条" in first.output
    assert "脱敏字段" in first.output
    with ctx.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(outbox)).scalar() == len(records)
        categories = set(connection.execute(select(outbox.c.category)).scalars())
    assert categories == {"history"}
    again = runner.invoke(app, ["node", "intake", str(data), "--config", str(config)])
    assert again.exit_code == 0 and "已导入过" in again.output
    assert len(rows(ctx)) == len(records)


def test_plugged_into_the_node_service(
    ctx: NodeContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ggzy.node.intake import plug
    from ggzy.node.service import NodeService
    from ggzy.settings import PullSource

    source = PullSource(
        name="p", url=f"sqlite:///{tmp_path / 'p.db'}", table="PROJECT", query="SELECT 1 AS UPDATE_TIME"
    )
    settings = ctx.settings.model_copy(update={"drop_dir": tmp_path / "inbox", "pull": [source]})
    service = NodeService(replace(ctx, settings=settings), feedback=False, latency_watch=False)
    service.components["disk_guard"] = lambda: True
    woken: list[int] = []
    monkeypatch.setattr(service, "notify", woken.append)
    plug(service)
    assert {"intake-drop", "intake-pull-p"} <= set(service.tasks)
    intake = service.components["intake"]
    realtime = sample("PROJECT")[0]
    realtime["category"] = "realtime"
    intake.accept([realtime, sample("PROJECT", 2)[1]], "push", "t")
    assert woken == [1, 2]  # the uploader of each channel that got records looks at once
    service.stop(timeout=5)


def test_text_that_cannot_be_stored_or_sent_refuses_that_record_alone(ctx: NodeContext) -> None:
    # a lone surrogate used to fail the whole call's transaction (UnicodeEncodeError in the driver);
    # NUL would be stored on SQLite and then make the hub refuse every batch carrying it
    good, surrogate, nul = sample("PROJECT", 3)
    surrogate["data"]["PROJECT_NAME"] = "坏\ud800名"
    nul["data"]["PROJECT_NAME"] = "含\x00字符"
    results = intake_for(ctx).accept([good, surrogate, nul], "push", "test")
    assert [(r.outcome, r.code) for r in results] == [
        ("accepted", None),
        ("refused", "E-NODE-TEXT"),
        ("refused", "E-NODE-TEXT"),
    ]
    assert results[1].message_zh and "代理项" in results[1].message_zh
    assert [r.id for r in rows(ctx)] == [results[0].id]
    assert state(ctx, "intake:")["intake:refused:E-NODE-TEXT"] == "2"


def test_an_intake_call_of_5000_records_brings_no_collection_under_the_service_tuning(
    ctx: NodeContext,
) -> None:
    """The young generation ``ggzy node run`` sets is larger than what one intake call holds alive:
    the collector never walks a call's records (with 50,000 it walked them about once a call)."""
    records = [
        item.record
        for item in simulate("35", seed=5, transactions=600, error_rate=0.05, personal="raw", start=START)
    ][:5000]
    assert len(records) == 5000
    intake = intake_for(ctx)
    intake.accept(records[:10], "bench", "warm-up")  # first connection, compiled checks, first audit row
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    thresholds = gc.get_threshold()
    settle_after_start()
    gc.callbacks.append(count)
    try:
        results = intake.accept(records[10:], "bench", "call")
    finally:
        gc.callbacks.remove(count)
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    assert len(results) == 4990 and sum(r.id is not None for r in results) > 4500  # stored
    assert collections == []
