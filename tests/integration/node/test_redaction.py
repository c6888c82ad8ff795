"""Redaction before anything is stored for sending (Art. 5): masks, pseudonyms, and the proof that
no unmasked ID or mobile number of a simulated expert reaches the outbox, nor the hub's store."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from ggzy.hub.app import create_app
from ggzy.hub.models import metadata as hub_metadata
from ggzy.hub.registry import add_node
from ggzy.identifiers import is_valid_id_number
from ggzy.node import redaction
from ggzy.node.context import NodeContext, build_context
from ggzy.node.intake import Intake
from ggzy.node.models import outbox
from ggzy.node.models import state as node_state
from ggzy.node.redaction import (
    RedactionError,
    RedactionMode,
    Redactor,
    is_secret,
    mask_address,
    mask_bank_account,
    mask_id_number,
    mask_phone,
    pseudonym,
)
from ggzy.protocol import HubClient
from ggzy.settings import HubSettings, NodeSettings
from ggzy.simulate import province_systems, simulate
from ggzy.spec import Domain, Privacy, Semantic, load_spec
from ggzy.store.database import writing
from ggzy.validation import ValidationOptions, Validator
from ggzy.validation.fieldcheck import _UNMASKED_ID, _UNMASKED_MOBILE, looks_unmasked

SPEC = load_spec()
KEY = b"\x11" * 32
ID_A = "350102199001011238"
ID_B = "350102198502041238"  # same region and last four digits as ID_A: the plain mask would merge them


def test_mask_formats() -> None:
    assert mask_id_number(ID_A) == "350102********1238"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("13812345678;0591-87654321") == "138****5678;059******4321"
    assert mask_bank_account("6222021234567890123") == "622202*********0123"
    assert mask_address("福建省福州市鼓楼区五四路88号") == "福建省福州市****"
    assert mask_address("北京市朝阳区建国路88号") == "北京市****"
    assert mask_address("延边朝鲜族自治州延吉市") == "延边朝鲜族自治州****"
    # No province or city in front: nothing of the street survives (a 市 deep inside is not a city).
    assert mask_address("鼓楼区五四路农贸市场旁") == "****"
    assert mask_phone("8765432") == "*******"  # too short to keep both ends with four hidden


def test_pseudonyms_are_stable_distinct_and_look_masked() -> None:
    first, again, other = pseudonym(ID_A, KEY), pseudonym(ID_A.lower(), KEY), pseudonym(ID_B, KEY)
    assert first == again
    assert first != other  # the plain mask would give both "350102********1238"
    assert mask_id_number(ID_A) == mask_id_number(ID_B)
    assert len(first) == len(ID_A) and "*" in first
    assert first.startswith("350102") and first.endswith("1238")
    assert looks_unmasked(first) is None
    assert pseudonym(ID_A, b"\x22" * 32) != first  # keyed: without the node's key nobody can recompute it
    checks = Validator(SPEC, ValidationOptions(cross_record=False))
    table = SPEC.tables["QUALI_PERSON_QUALI"]
    key = {"ID_CARD": first, "CERT_NO": "C-1"}
    assert checks.check_fields(table, key, "delete") == []  # the hub's field checks read it as masked
    unmasked = checks.check_fields(table, {**key, "ID_CARD": ID_A}, "delete")
    assert [f.code for f in unmasked] == ["E-PRIV-PERSONAL"]  # while the raw number is refused


def _expert(id_card: str, phone: str = "13812345678") -> dict[str, str]:
    return {
        "ID_CARD": id_card,
        "PHONE_NUMBER": phone,
        "POST_ADDRESS": "福建省福州市鼓楼区五四路88号",
        "NAME": "张三",
    }


def test_expert_record_is_masked_and_keyed_by_pseudonym() -> None:
    redactor = Redactor(SPEC, KEY, RedactionMode.MASK)
    table = SPEC.tables["EXPERT_EVALUATION"]
    a = redactor.redact(table, _expert(ID_A))
    b = redactor.redact(table, _expert(ID_B))
    assert a.data["PHONE_NUMBER"] == "138****5678"
    assert a.data["POST_ADDRESS"] == "福建省福州市****"
    assert a.data["ID_CARD"] == pseudonym(ID_A, KEY)
    assert table.key_of(a.data) != table.key_of(b.data)  # two experts stay two records
    assert a.actions == {"ID_CARD": "pseudonym", "POST_ADDRESS": "masked", "PHONE_NUMBER": "masked"}
    assert a.data["NAME"] == "张三"  # not a personal field of the spec: untouched


def test_remove_mode_drops_optional_and_blanks_required_fields() -> None:
    redactor = Redactor(SPEC, KEY, RedactionMode.REMOVE)
    result = redactor.redact(SPEC.tables["EXPERT_EVALUATION"], _expert(ID_A))
    assert "POST_ADDRESS" not in result.data  # optional: gone
    assert set(result.data["PHONE_NUMBER"]) == {"*"}  # required: nothing of it left, record still valid
    assert result.data["ID_CARD"] == pseudonym(ID_A, KEY)  # part of the key: a pseudonym in every mode
    assert set(result.removed) == {"POST_ADDRESS", "PHONE_NUMBER"}


def test_values_masked_by_the_source_are_left_alone() -> None:
    redactor = Redactor(SPEC, KEY)
    data = _expert("350102********1238", "138****5678")
    result = redactor.redact(SPEC.tables["EXPERT_EVALUATION"], data)
    assert result.data["ID_CARD"] == "350102********1238"
    assert result.data["PHONE_NUMBER"] == "138****5678"
    assert "ID_CARD" not in result.actions


def test_a_mask_defeated_by_an_odd_layout_hides_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(redaction._MASKS, Semantic.PHONE, lambda value: value)  # a broken mask
    result = Redactor(SPEC, KEY).redact(SPEC.tables["EXPERT_EVALUATION"], _expert(ID_A))
    assert result.data["PHONE_NUMBER"] == "*" * 11


def test_redaction_refuses_to_return_unmasked_data(monkeypatch: pytest.MonkeyPatch) -> None:
    redactor = Redactor(SPEC, KEY)
    monkeypatch.setattr(redactor, "_apply", lambda plan, value, result: None)  # redaction that does nothing
    with pytest.raises(RedactionError):
        redactor.redact(SPEC.tables["EXPERT_EVALUATION"], _expert(ID_A))


def test_attachment_points_at_the_pseudonymised_record() -> None:
    redactor = Redactor(SPEC, KEY)
    section = "E3501012611070001001001"
    expert = redactor.redact(
        SPEC.tables["BID_EVALUATION_EXPERT"], {"BID_SECTION_CODE": section, "ID_CARD": ID_A}
    )
    attachment = redactor.redact(
        SPEC.tables["PROJECT_ATTACHMENTS"],
        {"ATTACHMENT_CODE": "F1", "RELATE_DATA_NO": "508", "RELATE_KEY": f"{section}|{ID_A}"},
    )
    assert attachment.data["RELATE_KEY"] == SPEC.tables["BID_EVALUATION_EXPERT"].key_of(expert.data)
    assert ID_A not in json.dumps(attachment.data)


def test_secret_markers() -> None:
    assert is_secret({"secret": True})
    assert is_secret({"data": {"secret": "是"}})  # a CSV/XLSX column
    assert is_secret({}, {"title": {"SECRET": "1"}})  # an XML TITLE element
    assert not is_secret({"secret": False, "data": {"secret": "false"}})


# --- end to end: a province that hands over raw personal data ---


@pytest.fixture
def ctx(node_db_url: str, tmp_path: Path) -> Iterator[NodeContext]:
    context = build_context(
        NodeSettings(db_url=node_db_url, key_file=tmp_path / "node.key"), key=b"\x07" * 32
    )
    yield context
    context.engine.dispose()


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _person_tables() -> set[str]:
    """Tables whose records are about a person: expert tables, and those keyed by a personal field."""
    return {
        t.name
        for t in SPEC.tables.values()
        if t.domain is Domain.EXPERT
        or any(t.field_map[name].privacy is Privacy.PERSONAL for name in t.business_key)
    }


def _expert_table(name: str) -> bool:
    return SPEC.tables[name].domain is Domain.EXPERT or "EXPERT" in name


def test_no_unmasked_id_or_mobile_of_a_simulated_person_reaches_the_outbox(ctx: NodeContext) -> None:
    records = [item.record for item in simulate("35", seed=5, transactions=12, personal="raw")]
    expert_values: set[str] = set()
    expected: Counter[str] = Counter()
    for record in records:
        table = SPEC.table(record["table"])
        assert table is not None
        for spec_field in table.fields:
            value = record["data"].get(spec_field.name)
            if spec_field.privacy is Privacy.PERSONAL and value:
                expected[f"redacted:{table.name}:{spec_field.name}"] += 1
                if _expert_table(table.name) and spec_field.semantic in (Semantic.ID_NUMBER, Semantic.PHONE):
                    expert_values.add(value)
    assert any(_UNMASKED_ID.fullmatch(v) for v in expert_values)  # the input really is raw
    assert any(_UNMASKED_MOBILE.fullmatch(v) for v in expert_values)

    results = Intake(ctx, pseudonym_key=KEY).accept(records, "push", "raw-province")
    assert {r.outcome for r in results} == {"accepted"}

    with ctx.engine.connect() as connection:
        rows = connection.execute(
            select(outbox.c.table_name, outbox.c.key, outbox.c.record, outbox.c.findings)
        ).all()
        counters = {
            row.name: int(row.value)
            for row in connection.execute(select(node_state).where(node_state.c.name.like("redacted:%")))
        }
    # No expert's ID or phone number anywhere in what would be sent, in any table.
    everything = "\n".join(json.dumps([r.key, r.record, r.findings], ensure_ascii=False) for r in rows)
    assert [v for v in expert_values if v in everything] == []
    # Every string of every record about a person, scanned with the hub's own patterns: ID-shaped
    # numbers may only be organisation codes (platform codes share the shape), mobiles none at all.
    persons = _person_tables()
    scanned = 0
    for row in rows:
        if row.table_name not in persons:
            continue
        scanned += 1
        for value in _strings([row.key, row.record, row.findings]):
            assert not [m for m in _UNMASKED_ID.findall(value) if is_valid_id_number(m)], (
                row.table_name,
                value,
            )
            assert not _UNMASKED_MOBILE.findall(value), (row.table_name, value)
    assert scanned > 20
    # What was redacted is counted per table and field; attachments also had the ID in RELATE_KEY.
    relate = {name: n for name, n in counters.items() if name.endswith(":RELATE_KEY")}
    assert relate and {name: n for name, n in counters.items() if name not in relate} == dict(expected)
    per_result = Counter(f"redacted:{r.table}:{name}" for r in results for name in r.redacted)
    assert per_result == Counter(counters)  # and each record says which of its fields


def test_no_expert_id_or_phone_reaches_the_hub_database(ctx: NodeContext, tmp_path: Path) -> None:
    """Through intake, the outbox and a signed upload into a real hub: then search the hub's whole store."""
    start = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=40)
    records = [
        item.record
        for item in simulate(
            "35", seed=1, transactions=6, start=start, days=30, category="history", personal="raw"
        )
    ]
    expert_values: set[str] = set()
    for record in records:
        if _expert_table(record["table"]):
            for spec_field in SPEC.tables[record["table"]].fields:
                value = record["data"].get(spec_field.name)
                if value and spec_field.semantic in (Semantic.ID_NUMBER, Semantic.PHONE):
                    expert_values.add(value)
    assert len(expert_values) > 10
    Intake(ctx, pseudonym_key=KEY).accept(records, "push", "raw-province")

    app = create_app(HubSettings(db_url=f"sqlite:///{tmp_path / 'hub.db'}", key_dir=tmp_path / "hub-keys"))
    engine = app.state.hub.engine
    with TestClient(app) as http:
        with writing(engine) as connection:
            node = add_node(
                connection, "fj-01", "35", platform_codes=list(province_systems("35", 1).platform_codes)
            )
        with HubClient(
            "http://testserver", "fj-01", bytes.fromhex(node.key), transport=http._transport
        ) as client:
            accepted = 0
            while (batch := ctx.outbox.form_batch(2, 500)) is not None:
                accepted += ctx.outbox.apply_receipt(batch, client.upload(2, batch.batch_id, batch.records))[
                    0
                ]
    assert accepted == len(records)  # pseudonymised keys still join: every record was accepted
    with engine.connect() as connection:
        dump = "\n".join(
            json.dumps(
                [list(row) for row in connection.execute(text(f'SELECT * FROM "{table}"'))], default=str
            )
            for table in hub_metadata.tables
        )
    engine.dispose()
    assert "EXPERT" in dump  # the expert records are there …
    assert [v for v in expert_values if v in dump] == []  # … without a single expert ID or phone number
