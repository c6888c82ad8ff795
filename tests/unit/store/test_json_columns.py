"""JSON columns: compact UTF-8 text, the same as the standard library's, and never a crash on odd text."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import JSON, Column, Integer, MetaData, Table, insert, select

from ggzy.store import make_engine
from ggzy.store.database import JsonText, compact_json, serialise_record

_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)  # any Unicode but surrogates
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)


@given(_JSON)
def test_compact_json_writes_what_the_standard_library_writes(value: Any) -> None:
    # orjson's fast path must not change a stored byte (integers beyond 64 bits take the slow path)
    assert compact_json(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False)))
def test_floats_read_back_as_the_same_numbers(value: list[float]) -> None:
    # only the spelling of an exponent may differ (1e-7 for 1e-07)
    assert json.loads(compact_json(value)) == value


def test_a_lone_surrogate_is_stored_escaped_instead_of_failing(db_url: str) -> None:
    # without the ensure_ascii fallback the driver fails to encode "\ud800" as UTF-8
    value = {"名称": "坏\ud800字", "ok": "中文"}
    text = compact_json(value)
    assert text.isascii() and json.loads(text) == value
    assert compact_json({"ok": "中文"}) == '{"ok":"中文"}'  # ordinary text stays unescaped
    table = Table("json_probe", MetaData(), Column("id", Integer, primary_key=True), Column("v", JSON))
    engine = make_engine(db_url)
    table.create(engine)
    with engine.begin() as connection:
        connection.execute(insert(table), {"id": 1, "v": value})
    with engine.connect() as connection:
        assert connection.execute(select(table.c.v)).scalar_one() == value
    engine.dispose()


def test_serialise_record_refuses_only_text_that_cannot_be_sent() -> None:
    assert serialise_record({"a": "x\ud800"}) is None
    assert serialise_record({"a": ["\x00"]}) is None
    assert serialise_record({"a\x00": 1}) is None
    kept = serialise_record({"a": "\\u0000 is six characters", "b": "项目\U0001f600"})
    assert isinstance(kept, JsonText)
    assert json.loads(kept.text) == {"a": "\\u0000 is six characters", "b": "项目\U0001f600"}
    assert compact_json(kept) == kept.text  # stored as it is, not serialised twice
