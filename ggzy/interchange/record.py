"""The record interchange format shared by node, hub, tools and tests.

One record is one JSON object::

    {"table": "SECTION" | "502", "op": "insert" | "update" | "delete",
     "category": "realtime" | "history" | "test", "spec_version": "2.0",
     "published_at": "2026-11-27T09:30:00+08:00", "data": {<national column>: <string>},
     "attachments": [...]}

Readers produce :class:`SourceItem` objects: the raw envelope (a ``dict``) with where it came
from, or the reason the item could not be read. The validation engine checks the envelope.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Category", "Op", "SourceItem"]


class Op(StrEnum):
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


class Category(StrEnum):
    """The data category label (Art. 10): channel 1 carries realtime only, channel 2 the others."""

    REALTIME = "realtime"
    HISTORY = "history"
    TEST = "test"

    @property
    def channel(self) -> int:
        return 1 if self is Category.REALTIME else 2

    @property
    def label_zh(self) -> str:
        return {"realtime": "实时数据", "history": "历史数据", "test": "测试数据"}[self.value]


@dataclass(slots=True)
class SourceItem:
    """One item read from an input: ``raw`` is the envelope, or ``error`` says why there is none.

    ``line`` is the 1-based line (JSON Lines), row (CSV/XLSX, counting the header as row 1) or
    element position (XML) in ``source``.
    """

    source: str
    line: int
    raw: dict[str, Any] | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
