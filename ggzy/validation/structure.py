"""The structure layer: is this a record envelope at all, and of which table, op and version."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ggzy.interchange import Category, Op
from ggzy.spec import Spec, TableSpec
from ggzy.validation.findings import Finding, make_finding

__all__ = ["Envelope", "read_envelope"]

_OPS = {o.value for o in Op}
_CATEGORIES = {c.value for c in Category}


@dataclass(slots=True)
class Envelope:
    table: TableSpec
    op: str
    category: str | None
    spec_version: str
    published_at: dt.datetime | None
    data: dict[str, str]
    secret: bool
    source_key: str | None  # a key given by the source (XML DATA_KEY), kept for tracing


def _clean_data(raw: dict[str, Any], table: TableSpec, findings: list[Finding]) -> dict[str, str]:
    """The column values as strings: nulls mean absent, anything else that is not a string is refused.

    Values are taken exactly as sent (no trimming): what is validated is what is stored.
    """
    if {*map(type, raw.values())} <= {str}:
        return raw
    data: dict[str, str] = {}
    for name, value in raw.items():
        if value is None:
            continue
        if type(value) is str:
            data[name] = value
        else:
            spec = table.field_map.get(name)
            findings.append(
                make_finding("E-STRUCT-VALUE-TYPE", name, repr(value), name_zh=spec.name_zh if spec else name)
            )
    return data


def _published_at(raw: Any, findings: list[Finding]) -> dt.datetime | None:
    if raw is None or raw == "":
        return None
    try:
        moment = dt.datetime.fromisoformat(str(raw))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        findings.append(make_finding("E-STRUCT-PUBLISHED-AT", None, raw))
        return None
    return moment


def read_envelope(raw: Any, spec: Spec, findings: list[Finding]) -> Envelope | None:
    """Check the envelope; append findings; return None when the record cannot be checked further."""
    if not isinstance(raw, dict):
        findings.append(make_finding("E-STRUCT-NOT-OBJECT"))
        return None
    table_name = raw.get("table")
    table = spec.table(str(table_name)) if isinstance(table_name, str | int) else None
    if table is None:
        findings.append(make_finding("E-STRUCT-TABLE", "table", table_name))
    op = raw.get("op", "insert")
    if not isinstance(op, str) or op not in _OPS:
        findings.append(make_finding("E-STRUCT-OP", "op", op))
    category = raw.get("category")
    if category is not None and (not isinstance(category, str) or category not in _CATEGORIES):
        findings.append(make_finding("E-STRUCT-CATEGORY", "category", category))
    version = str(raw.get("spec_version") or spec.version)
    if version not in spec.accepted_versions:
        accepted = "、".join(spec.accepted_versions)
        findings.append(make_finding("E-STRUCT-VERSION", "spec_version", version, accepted=accepted))
    published_at = _published_at(raw.get("published_at"), findings)
    data_raw = raw.get("data")
    if not isinstance(data_raw, dict):
        findings.append(make_finding("E-STRUCT-DATA", "data"))
        return None
    if table is None or not isinstance(op, str) or op not in _OPS:
        return None
    data = _clean_data(data_raw, table, findings)
    key = raw.get("key")
    return Envelope(
        table=table,
        op=op,
        category=category if isinstance(category, str) and category in _CATEGORIES else None,
        spec_version=version,
        published_at=published_at,
        data=data,
        secret=raw.get("secret") is True,
        source_key=str(key) if key is not None else None,
    )
