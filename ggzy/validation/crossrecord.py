"""Cross-record rules: a record against the records received before it. One function per rule."""

from __future__ import annotations

from collections.abc import Mapping

from ggzy.spec import Spec, TableSpec
from ggzy.validation.findings import Finding, make_finding
from ggzy.validation.lookup import RecordLookup, StoredRecord

__all__ = ["check_key", "check_parents", "check_stage_order"]

Data = Mapping[str, str]


def check_key(table: TableSpec, op: str, key: str, data: Data, lookup: RecordLookup) -> list[Finding]:
    """Insert of a new key, update/delete of a held key, and no identical re-upload (重复上传)."""
    current = lookup.current(table.name, key)
    held = current is not None and not current.deleted
    if held and current is not None and op != "delete" and current.same_content(op, data):
        return [make_finding("E-XR-DUPLICATE", None, key, table=table.name)]
    if op == "insert" and held:
        return [make_finding("E-XR-KEY-EXISTS", None, key, table=table.name)]
    if op in ("update", "delete") and not held:
        verb = "修改" if op == "update" else "删除"
        return [make_finding("E-XR-KEY-MISSING", None, key, table=table.name, op=verb)]
    return []


def _first_link_value(data: Data, fields: Mapping[str, str]) -> tuple[str, str, str] | None:
    for child_field, parent_field in fields.items():
        value = data.get(child_field)
        if value:
            return child_field, parent_field, value
    return None


def check_parents(table: TableSpec, data: Data, lookup: RecordLookup) -> list[Finding]:
    """A record's parent (project → tender project → section) must have been received."""
    found: list[Finding] = []
    for link in table.parents:
        for child_field, parent_field in link.fields.items():
            value = data.get(child_field)
            if value and not any(True for _ in lookup.find(link.table, parent_field, value)):
                found.append(
                    make_finding(
                        "E-XR-PARENT-MISSING",
                        child_field,
                        value,
                        parent_table=link.table,
                        parent_field=parent_field,
                    )
                )
    return found


def check_stage_order(spec: Spec, table: TableSpec, data: Data, lookup: RecordLookup) -> list[Finding]:
    """A later stage needs an earlier stage, dated no later (a result notice after its tender notice).

    The table's ``predecessors`` are alternatives: a result may follow a tender notice or, for an
    invitation tender, an invitation. The stage is missing only when none of them is found.
    """
    candidates: list[tuple[TableSpec, list[Mapping[str, str]]]] = []
    first_missing: tuple[str, str, str, str] | None = None
    for link in table.predecessors:
        linked = _first_link_value(data, link.fields)
        if linked is None:
            continue
        child_field, parent_field, value = linked
        records = list(lookup.find(link.table, parent_field, value))
        if records:
            candidates.append((spec.tables[link.table], records))
        elif first_missing is None:
            first_missing = (child_field, link.table, parent_field, value)
    if not candidates:
        if first_missing is None:
            return []
        child_field, parent_table, parent_field, value = first_missing
        return [
            make_finding(
                "E-XR-STAGE-MISSING",
                child_field,
                value,
                table=table.name,
                parent_table=parent_table,
                parent_field=parent_field,
            )
        ]
    own_time = data.get(table.event_time) if table.event_time else None
    if not own_time:
        return []
    times = [
        (earlier.name, r[earlier.event_time])
        for earlier, records in candidates
        if earlier.event_time
        for r in records
        if r.get(earlier.event_time)
    ]
    if times and all(t[: len(own_time)] > own_time for _, t in times):
        parent_table, earliest = min(times, key=lambda pair: pair[1])
        return [
            make_finding(
                "E-XR-STAGE-ORDER",
                table.event_time,
                own_time,
                table=table.name,
                parent_table=parent_table,
                earlier=earliest,
            )
        ]
    return []


def stored(table: TableSpec, key: str, op: str, data: Data, deal_code: str | None = None) -> StoredRecord:
    deleted = op == "delete"
    return StoredRecord(
        table=table.name, key=key, digest=None, data=data, deleted=deleted, op=op, deal_code=deal_code
    )
