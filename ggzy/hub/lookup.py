"""The validation engine's view of the hub database for one batch.

Everything the batch's cross-record rules will ask is read in a few queries before validation
starts (the heads of the batch's keys, the records its links point to); records accepted earlier in
the same batch are kept in an overlay so that later ones see them. A question the prefetch did not
foresee falls back to a query, so answers are always complete.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, and_, select

from ggzy.hub.models import record_heads, record_refs
from ggzy.spec import Spec
from ggzy.validation import StoredRecord

__all__ = ["BatchLookup", "Head", "link_targets"]

_CHUNK = 500


@dataclass(slots=True)
class Head:
    version: int
    digest: str
    node_id: str
    deleted: bool
    event_time: str | None


def link_targets(spec: Spec) -> dict[str, set[str]]:
    """For each table, the fields that other tables' links point at (kept in ``record_refs``)."""
    targets: dict[str, set[str]] = defaultdict(set)
    for table in spec.tables.values():
        for link in table.parents + table.predecessors:
            targets[link.table].update(link.fields.values())
    return dict(targets)


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


class BatchLookup:
    def __init__(self, connection: Connection, spec: Spec, namespace: str) -> None:
        self.connection = connection
        self.spec = spec
        self.namespace = namespace
        self.heads: dict[tuple[str, str], Head | None] = {}
        self.refs: dict[tuple[str, str, str], set[str]] = {}
        self.refs_of_key: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)

    # --- prefetch ---

    def prefetch(self, keys: Iterable[tuple[str, str]], links: Iterable[tuple[str, str, str]]) -> None:
        by_table: dict[str, list[str]] = defaultdict(list)
        for table, key in set(keys):
            if (table, key) not in self.heads:
                self.heads[(table, key)] = None
                by_table[table].append(key)
        for table, wanted in by_table.items():
            self._load_heads(table, wanted)
        by_field: dict[tuple[str, str], list[str]] = defaultdict(list)
        for table, field, value in set(links):
            if (table, field, value) not in self.refs:
                self.refs[(table, field, value)] = set()
                by_field[(table, field)].append(value)
        for (table, field), values in by_field.items():
            self._load_refs(table, field, values)

    def _load_heads(self, table: str, keys: list[str]) -> None:
        h = record_heads.c
        for chunk in _chunks(keys):
            rows = self.connection.execute(
                select(h.key, h.version, h.digest, h.node_id, h.deleted, h.event_time).where(
                    h.namespace == self.namespace, h.table_name == table, h.key.in_(chunk)
                )
            )
            for row in rows:
                self.heads[(table, row.key)] = Head(
                    row.version, row.digest, row.node_id, row.deleted, row.event_time
                )

    def _load_refs(self, table: str, field: str, values: list[str]) -> None:
        r, h = record_refs.c, record_heads.c
        joined = record_refs.join(
            record_heads,
            and_(h.namespace == r.namespace, h.table_name == r.table_name, h.key == r.key),
        )
        for chunk in _chunks(values):
            rows = self.connection.execute(
                select(r.value, r.key, h.version, h.digest, h.node_id, h.deleted, h.event_time)
                .select_from(joined)
                .where(
                    r.namespace == self.namespace, r.table_name == table, r.field == field, r.value.in_(chunk)
                )
            )
            for row in rows:
                self.refs[(table, field, row.value)].add(row.key)
                self.refs_of_key[(table, row.key)].add((field, row.value))
                self.heads.setdefault(
                    (table, row.key), Head(row.version, row.digest, row.node_id, row.deleted, row.event_time)
                )

    # --- RecordLookup ---

    def head(self, table: str, key: str) -> Head | None:
        if (table, key) not in self.heads:
            self.prefetch([(table, key)], [])
        return self.heads[(table, key)]

    def current(self, table: str, key: str) -> StoredRecord | None:
        head = self.head(table, key)
        if head is None:
            return None
        return StoredRecord(table=table, key=key, digest=head.digest, data={}, deleted=head.deleted)

    def find(self, table: str, field: str, value: str) -> list[Mapping[str, str]]:
        if (table, field, value) not in self.refs:
            self.prefetch([], [(table, field, value)])
        event_field = self.spec.tables[table].event_time if table in self.spec.tables else None
        found: list[Mapping[str, str]] = []
        for key in self.refs[(table, field, value)]:
            head = self.heads.get((table, key))
            if head is None or head.deleted:
                continue
            data = {field: value}
            if event_field and head.event_time:
                data[event_field] = head.event_time
            found.append(data)
        return found

    # --- the overlay: what this batch has accepted so far ---

    def accept(self, table: str, key: str, head: Head, ref_values: Mapping[str, str]) -> None:
        self.heads[(table, key)] = head
        new = set() if head.deleted else set(ref_values.items())
        held = self.refs_of_key[(table, key)]
        for field, value in held - new:
            self.refs.get((table, field, value), set()).discard(key)
        for field, value in new - held:
            self.refs.setdefault((table, field, value), set()).add(key)
        self.refs_of_key[(table, key)] = new
