"""The validation engine: structure → field → cross-field → cross-record → privacy, every finding reported.

One :class:`Validator` is built per specification and options (it compiles every table once) and
is then safe to reuse for any number of records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ggzy.interchange import SourceItem
from ggzy.spec import Regions, Spec, TableSpec, load_regions, load_spec
from ggzy.validation.compiler import CompiledTable, compile_table
from ggzy.validation.crossfield import CrossFieldRule, rules_for
from ggzy.validation.crossrecord import check_key, check_parents, check_stage_order, stored
from ggzy.validation.dealcodes import DealCodePlan, check_deal_codes, deal_code_plans, registered_code
from ggzy.validation.fieldcheck import FieldContext, diagnose
from ggzy.validation.findings import Finding, RecordVerdict, make_finding
from ggzy.validation.lookup import InMemoryLookup, RecordLookup, content_digest
from ggzy.validation.options import ValidationOptions
from ggzy.validation.structure import Envelope, read_envelope

__all__ = ["CheckedRecord", "Validator"]


class CheckedRecord:
    """A record after validation: its envelope (when readable), key and verdict."""

    __slots__ = ("_digest", "envelope", "key", "verdict")

    def __init__(self, verdict: RecordVerdict, envelope: Envelope | None, key: str | None) -> None:
        self.verdict = verdict
        self.envelope = envelope
        self.key = key
        self._digest: str | None = None

    @property
    def digest(self) -> str | None:
        """The content digest, computed on first use (checking a file never needs it)."""
        if self._digest is None and self.envelope is not None and self.key is not None:
            self._digest = content_digest(self.envelope.op, self.envelope.data)
        return self._digest


class Validator:
    def __init__(
        self,
        spec: Spec | None = None,
        options: ValidationOptions | None = None,
        regions: Regions | None = None,
    ) -> None:
        self.spec = spec or load_spec()
        self.options = options or ValidationOptions()
        self.context = FieldContext(dict(self.spec.codelists), regions or load_regions(), self.options)
        self._compiled: dict[str, CompiledTable] = {
            name: compile_table(table, self.context) for name, table in self.spec.tables.items()
        }
        self._cross_field: dict[str, tuple[CrossFieldRule, ...]] = {
            name: rules_for(table) for name, table in self.spec.tables.items()
        }
        self.deal_codes: dict[str, DealCodePlan] = deal_code_plans(self.spec)

    def compiled_checks(self) -> dict[str, Callable[[dict[str, str]], object]]:
        """The generated field-layer function of each table (for benchmarks and inspection)."""
        return {name: compiled.check for name, compiled in self._compiled.items()}

    # --- one record ---

    def check_fields(self, table: TableSpec, data: dict[str, str], op: str) -> list[Finding]:
        """Field and cross-field findings of one record's data."""
        compiled = self._compiled[table.name]
        missing, suspect, unknown = compiled.check(data)
        found: list[Finding] = []
        key_fields = table.business_key
        if op == "delete":
            # A deletion carries the key; its other columns are not checked.
            missing = [i for i in missing if compiled.fields[i].name in key_fields]
        for index in missing:
            spec = compiled.fields[index]
            found.append(make_finding("E-FIELD-REQUIRED", spec.name, None, name_zh=spec.name_zh))
        for index in suspect:
            spec = compiled.fields[index]
            found.extend(diagnose(spec, data[spec.name], self.context))
        if unknown:
            for name in data:
                if name not in table.field_map:
                    found.append(make_finding("W-FIELD-UNKNOWN", name, data[name]))
        if op != "delete":
            for rule in self._cross_field[table.name]:
                found.extend(rule(table, data, self.options))
        return found

    def check(
        self, raw: Any, lookup: RecordLookup | None, *, source: str = "", line: int = 0
    ) -> CheckedRecord:
        """Validate one raw envelope against ``lookup``; the caller decides whether to store it."""
        verdict = RecordVerdict(source=source, line=line)
        findings = verdict.findings
        envelope = read_envelope(raw, self.spec, findings)
        if envelope is None:
            if isinstance(raw, dict):
                verdict.table = str(raw.get("table")) if raw.get("table") is not None else None
            return CheckedRecord(verdict, None, None)
        table, data = envelope.table, envelope.data
        verdict.table, verdict.op, verdict.category = table.name, envelope.op, envelope.category
        if envelope.secret:
            findings.append(make_finding("E-PRIV-SECRET"))
        findings.extend(self.check_fields(table, data, envelope.op))
        absent = [name for name in table.business_key if not data.get(name)]
        if absent:
            findings.append(make_finding("E-STRUCT-KEY", None, None, missing="、".join(absent)))
            return CheckedRecord(verdict, envelope, None)
        key = table.key_of(data)
        verdict.key = key
        checked = CheckedRecord(verdict, envelope, key)
        if lookup is not None:
            self.check_against(checked, lookup)
        return checked

    def check_against(self, checked: CheckedRecord, lookup: RecordLookup) -> None:
        """The cross-record rules, for a record checked without a lookup (``check(raw, None)``).

        ``check(raw, lookup)`` is ``check(raw, None)`` followed by this: the hub runs the rules that
        need no database before it takes the write lock, and only these under it.
        """
        envelope, key = checked.envelope, checked.key
        if envelope is None or key is None or not self.options.cross_record:
            return
        table, data, findings = envelope.table, envelope.data, checked.verdict.findings
        findings.extend(check_key(table, envelope.op, key, data, lookup))
        if envelope.op != "delete":
            findings.extend(check_parents(table, data, lookup))
            findings.extend(check_stage_order(self.spec, table, data, lookup))
            plan = self.deal_codes[table.name]
            if plan.checks:
                findings.extend(check_deal_codes(self.spec, table, plan, key, data, lookup))

    def registered_code(self, table: TableSpec, op: str, data: dict[str, str]) -> str | None:
        """The 统一交易标识码 an accepted record of ``table`` registers for its transaction, if any."""
        return registered_code(self.deal_codes[table.name], op, data)

    # --- a stream of records (a file, a batch) ---

    def validate_items(
        self, items: Iterable[SourceItem], lookup: InMemoryLookup | None = None
    ) -> Iterator[RecordVerdict]:
        """Validate items in order; each accepted record becomes visible to the ones after it."""
        memory = lookup if lookup is not None else InMemoryLookup()
        for item in items:
            if item.raw is None:
                verdict = RecordVerdict(source=item.source, line=item.line)
                verdict.findings.append(
                    make_finding("E-STRUCT-JSON", None, None, line=item.line, detail=item.error)
                )
                yield verdict
                continue
            checked = self.check(item.raw, memory, source=item.source, line=item.line)
            if checked.verdict.ok and checked.envelope is not None and checked.key:
                envelope = checked.envelope
                code = self.registered_code(envelope.table, envelope.op, envelope.data)
                memory.store(stored(envelope.table, checked.key, envelope.op, envelope.data, code))
            yield checked.verdict

    def validate_records(self, records: Iterable[Any]) -> Iterator[RecordVerdict]:
        """Convenience for raw envelopes already in memory (numbered from 1)."""
        return self.validate_items(SourceItem(source="", line=n, raw=r) for n, r in enumerate(records, 1))
