"""Documentation derived from code and data must match it (datasette-style doc tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ggzy.docs.generate import GENERATED
from ggzy.validation import RULES

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_page_is_current(name: str) -> None:
    on_disk = (DOCS / name).read_text(encoding="utf-8")
    assert on_disk == GENERATED[name](), f"docs/{name} is stale: run `make docs`"


def test_every_rule_code_is_documented() -> None:
    text = (DOCS / "rules.md").read_text(encoding="utf-8")
    for code in RULES:
        assert f"`{code}`" in text


def test_rule_codes_are_stable_shapes() -> None:
    for code, rule in RULES.items():
        assert code.split("-")[0] in {"E", "W"}
        assert (rule.severity.value == "warning") == code.startswith("W-")
        assert rule.title_zh and rule.message_zh and rule.message_en and rule.description


def test_architecture_names_only_existing_tests() -> None:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    root = DOCS.parent
    for token in text.split("`"):
        if token.startswith("tests/") and token.endswith(".py"):
            assert (root / token).exists(), token
