"""Compile a table's field rules into one Python function.

Why generated code: the hub validates tens of thousands of records a second on two cores, and a
record has 20–60 fields. A loop over per-field closures spends most of its time in call overhead;
one straight-line function per table, built from the spec data when the validator starts, tests a
good value with a handful of bytecodes (the same technique as ``fastjsonschema``). The generated
function only answers "which fields need a closer look"; :func:`ggzy.validation.fieldcheck.diagnose`
then says exactly what is wrong, so the messages live in ordinary, tested code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import CodeType
from typing import Any

from ggzy.spec import FieldSpec, Kind, Privacy, TableSpec
from ggzy.validation.fieldcheck import (
    DATE_EXACT,
    DATETIME_EXACT,
    FieldContext,
    looks_unmasked,
    number_pattern,
    semantic_predicate,
)

__all__ = ["CompiledTable", "compile_table"]

# The compiled function returns (missing required field indexes, suspicious field indexes, whether
# the data has columns the table does not define).
TableCheck = Callable[[Mapping[str, str]], tuple[list[int], list[int], bool]]


@dataclass(frozen=True, slots=True)
class CompiledTable:
    table: TableSpec
    fields: tuple[FieldSpec, ...]
    check: TableCheck
    source: str  # the generated code, kept for inspection and debugging


def _element_expression(spec: FieldSpec, ctx: FieldContext, names: dict[str, Any], var: str) -> list[str]:
    parts: list[str] = []
    if spec.codelist:
        key = f"_codes_{spec.codelist}"
        names[key] = frozenset(ctx.codelists[spec.codelist].values)
        parts.append(f"{var} in {key}")
    if spec.semantic is not None:
        helper_name = f"_{spec.semantic.value}_ok"
        names[helper_name] = semantic_predicate(spec.semantic, ctx)
        parts.append(f"{helper_name}({var})")
    return parts


def _value_expression(index: int, spec: FieldSpec, ctx: FieldContext, names: dict[str, Any]) -> str | None:
    ftype = spec.field_type
    parts: list[str] = []
    if ftype.kind is Kind.DATETIME:
        names["_datetime"] = DATETIME_EXACT.fullmatch
        parts.append("_datetime(v) is not None")
    elif ftype.kind is Kind.DATE:
        names["_date"] = DATE_EXACT.fullmatch
        parts.append("_date(v) is not None")
    elif ftype.kind is Kind.NUMBER:
        assert ftype.length is not None
        key = f"_number_{index}"
        names[key] = number_pattern(ftype.length, ftype.decimals, ftype.fixed).fullmatch
        parts.append(f"{key}(v) is not None")
    elif ftype.length is not None:
        parts.append(f"len(v) {'==' if ftype.fixed else '<='} {ftype.length}")
    if spec.multi:
        element = _element_expression(spec, ctx, names, "x")
        if element:
            parts.append(f"all({' and '.join(element)} for x in v.split(';') if x)")
    else:
        parts.extend(_element_expression(spec, ctx, names, "v"))
    if spec.privacy is Privacy.PERSONAL and ctx.options.check_personal:
        names["_unmasked"] = looks_unmasked
        parts.append("_unmasked(v) is None")
    return " and ".join(parts) or None


@lru_cache(maxsize=1024)
def _compiled(source: str, filename: str) -> CodeType:
    # Compiling is most of the cost of a Validator; a process that builds several (an app per test,
    # a CLI command beside a service) compiles each table's check once. Code objects are immutable,
    # and each exec gets its own namespace.
    return compile(source, filename, "exec")


def compile_table(table: TableSpec, ctx: FieldContext) -> CompiledTable:
    names: dict[str, Any] = {}
    names["_known"] = frozenset(f.name for f in table.fields)
    lines = ["def check(data):", "    missing = []", "    suspect = []", "    get = data.get"]
    for index, spec in enumerate(table.fields):
        expression = _value_expression(index, spec, ctx, names)
        if not expression and not spec.required:
            continue
        lines.append(f"    v = get({spec.name!r})")
        if expression:
            lines.append("    if v:")
            lines.append(f"        if not ({expression}):")
            lines.append(f"            suspect.append({index})")
            if spec.required:
                lines.append("    else:")
                lines.append(f"        missing.append({index})")
        else:
            lines.append("    if not v:")
            lines.append(f"        missing.append({index})")
    lines.append("    return missing, suspect, not data.keys() <= _known")
    source = "\n".join(lines)
    namespace: dict[str, Any] = dict(names)
    exec(_compiled(source, f"<ggzy check {table.name}>"), namespace)
    return CompiledTable(table, tuple(table.fields), namespace["check"], source)
