"""The result shapes of validation: one :class:`Finding` per problem, one :class:`RecordVerdict` per record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ggzy.validation.catalogue import RULES, Severity

__all__ = ["VALUE_PREVIEW", "Finding", "RecordVerdict", "make_finding"]

VALUE_PREVIEW = 64  # characters of an offending value kept in a finding


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    field: str | None
    value: str | None
    message_zh: str
    message_en: str

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "field": self.field,
            "value": self.value,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
        }


class _Defaulting(dict[str, Any]):
    """Lets a message template name a parameter that a particular call does not supply."""

    def __missing__(self, key: str) -> str:
        return ""


def _preview(value: object) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= VALUE_PREVIEW else text[: VALUE_PREVIEW - 1] + "…"


def make_finding(code: str, field: str | None = None, value: object = None, **params: Any) -> Finding:
    rule = RULES[code]
    shown = _preview(value)
    values = _Defaulting(field=field or "", value=shown if shown is not None else "", **params)
    values.setdefault("name_zh", field or "")
    return Finding(
        code=code,
        severity=rule.severity,
        field=field,
        value=shown,
        message_zh=rule.message_zh.format_map(values),
        message_en=rule.message_en.format_map(values),
    )


@dataclass(slots=True)
class RecordVerdict:
    """Everything validation found about one input record."""

    source: str
    line: int
    table: str | None = None
    key: str | None = None
    op: str | None = None
    category: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.is_error for f in self.findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.is_error]

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "table": self.table,
            "key": self.key,
            "ok": self.ok,
            "findings": [f.to_dict() for f in self.findings],
        }
