"""Express a table's field rules as JSON Schema, for provinces whose tools speak JSON Schema.

Only the per-field rules fit (type, length, number shape, date shape, code lists, required); the
identifier checks, cross-field and cross-record rules of :mod:`ggzy.validation` do not.
"""

from __future__ import annotations

from typing import Any

from ggzy.spec._model import Spec, TableSpec
from ggzy.spec._notation import Kind

__all__ = ["record_json_schema", "table_json_schema"]

_DATETIME = r"^(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])([01]\d|2[0-3])[0-5]\d[0-5]\d$"
_DATE = r"^(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$"


def _field_schema(spec: Spec, table: TableSpec, name: str) -> dict[str, Any]:
    field = table.field_map[name]
    ftype = field.field_type
    schema: dict[str, Any] = {"type": "string", "title": field.name_zh}
    if ftype.kind is Kind.DATETIME:
        schema["pattern"] = _DATETIME
    elif ftype.kind is Kind.DATE:
        schema["pattern"] = _DATE
    elif ftype.kind is Kind.NUMBER:
        assert ftype.length is not None
        if ftype.fixed:
            schema["pattern"] = rf"^\d{{{ftype.length}}}$"
        else:
            integer = max(ftype.length - ftype.decimals, 1)
            fraction = rf"(\.\d{{1,{ftype.decimals}}})?" if ftype.decimals else ""
            schema["pattern"] = rf"^-?\d{{1,{integer}}}{fraction}$"
    elif ftype.length is not None:
        schema["maxLength"] = ftype.length
        if ftype.fixed:
            schema["minLength"] = ftype.length
    if field.codelist and not field.multi:
        schema["enum"] = sorted(spec.codelists[field.codelist].values)
    return schema


def table_json_schema(spec: Spec, table: TableSpec) -> dict[str, Any]:
    """The ``data`` object of one table as JSON Schema (draft 2020-12)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{table.data_no} {table.name} {table.name_zh}",
        "type": "object",
        "properties": {f.name: _field_schema(spec, table, f.name) for f in table.fields},
        "required": [f.name for f in table.fields if f.required],
        "additionalProperties": {"type": "string"},
    }


def record_json_schema(spec: Spec, table: TableSpec) -> dict[str, Any]:
    """A whole interchange record of one table (envelope plus data)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "table": {"enum": [table.name, table.data_no]},
            "op": {"enum": ["insert", "update", "delete"]},
            "category": {"enum": ["realtime", "history", "test"]},
            "spec_version": {"enum": spec.accepted_versions},
            "published_at": {"type": "string"},
            "data": table_json_schema(spec, table),
        },
        "required": ["table", "data"],
    }
