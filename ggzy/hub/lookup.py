"""The validation engine's view of the hub database for one batch.

Everything the batch's cross-record rules will ask is read in a few queries before validation
starts (the heads of the batch's keys, the records its links point to, the registrations holding the
统一交易标识码 it carries: one index search each, on ``ix_record_heads_deal_code``); records accepted earlier in
the same batch are kept in an overlay so that later ones see them. A question the prefetch did not
foresee falls back to a query, so answers are always complete.

What was read from the database (not the overlay) is kept apart, in ``read_heads``,
``read_refs`` and ``read_codes``: the batch is decided before its write transaction, and under the write lock the same
rows are read again and compared, so that a decision on rows another batch has changed since is
never stored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from ggzy.hub.models import record_heads, record_refs
from ggzy.spec import Spec
from ggzy.store.bulk import match_many
from ggzy.validation import StoredRecord

__all__ = ["BatchLookup", "Head", "link_targets"]


@dataclass(slots=True)
class Head:
    version: int
    digest: str
    node_id: str
    deleted: bool
    event_time: str | None
    deal_code: str | None = None  # the code a registering record gave its transaction


_H = record_heads.c
# The columns a head is read from (with the keys that name it), and the head a row gives.
_HEAD_COLUMNS = (
    _H.table_name,
    _H.key,
    _H.version,
    _H.digest,
    _H.node_id,
    _H.deleted,
    _H.event_time,
    _H.deal_code,
)


def _head(row: Any) -> Head:
    return Head(row.version, row.digest, row.node_id, row.deleted, row.event_time, row.deal_code)


def link_targets(spec: Spec) -> dict[str, set[str]]:
    """For each table, the fields that other tables' links point at (kept in ``record_refs``)."""
    targets: dict[str, set[str]] = defaultdict(set)
    for table in spec.tables.values():
        for link in table.parents + table.predecessors:
            targets[link.table].update(link.fields.values())
    return dict(targets)


class BatchLookup:
    def __init__(self, connection: Connection, spec: Spec, namespace: str) -> None:
        self.connection = connection
        self.spec = spec
        self.namespace = namespace
        self.heads: dict[tuple[str, str], Head | None] = {}
        self.refs: dict[tuple[str, str, str], set[str]] = {}
        self.refs_of_key: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
        # What the database answered, before the overlay: a key's head (None: no such key) and, for a
        # link, the (key, head fields) of the records holding its value.
        self.read_heads: dict[tuple[str, str], Head | None] = {}
        self.read_refs: dict[tuple[str, str, str], frozenset[tuple[object, ...]]] = {}
        self.read_codes: dict[str, frozenset[tuple[object, ...]]] = {}
        # Registrations by code: as read (filtered by the current head when asked), and accepted here.
        self.code_holders: dict[str, set[tuple[str, str]]] = {}
        self.accepted_codes: dict[str, set[tuple[str, str]]] = defaultdict(set)

    # --- prefetch ---

    def prefetch(
        self,
        keys: Iterable[tuple[str, str]],
        links: Iterable[tuple[str, str, str]],
        codes: Iterable[str] = (),
    ) -> None:
        """Read the heads of ``keys``, the records ``links`` (table, field, value) point to and the
        registrations holding ``codes``."""
        new_keys = [item for item in dict.fromkeys(keys) if item not in self.heads]
        for item in new_keys:
            self.heads[item] = self.read_heads[item] = None
        if new_keys:
            self._load_heads(new_keys)
        new_links = [link for link in dict.fromkeys(links) if link not in self.refs]
        for link in new_links:
            self.refs[link] = set()
        if new_links:
            self._load_refs(new_links)
        new_codes = [code for code in dict.fromkeys(codes) if code not in self.code_holders]
        for code in new_codes:
            self.code_holders[code] = set()
        if new_codes:
            self._load_codes(new_codes)

    def _load_codes(self, wanted: list[str]) -> None:
        # Only what the index holds (namespace, code and the key), so that the partial index is
        # searched (SQLite prefers the primary key's namespace range to a non-covering index); the
        # heads of the holders are then read by their keys.
        h = record_heads.c
        rows = match_many(
            self.connection,
            record_heads,
            ("deal_code",),
            [(code,) for code in wanted],
            where={"namespace": self.namespace},
            columns=(h.table_name, h.key, h.deal_code),
            partial="deal_code IS NOT NULL",  # ix_record_heads_deal_code
        )
        found: dict[str, set[tuple[object, ...]]] = {code: set() for code in wanted}
        for row in rows:
            found[row.deal_code].add(tuple(row))
            self.code_holders[row.deal_code].add((row.table_name, row.key))
        for code, held in found.items():
            self.read_codes[code] = frozenset(held)
        holders = [(str(t), str(k)) for held in found.values() for t, k, _ in held]
        if holders:
            self.prefetch(holders, [])

    def _load_heads(self, wanted: list[tuple[str, str]]) -> None:
        rows = match_many(
            self.connection,
            record_heads,
            ("table_name", "key"),
            wanted,
            where={"namespace": self.namespace},
            columns=_HEAD_COLUMNS,
        )
        for row in rows:
            self.heads[(row.table_name, row.key)] = self.read_heads[(row.table_name, row.key)] = _head(row)

    def _load_refs(self, wanted: list[tuple[str, str, str]]) -> None:
        r, h = record_refs.c, record_heads.c
        rows = match_many(
            self.connection,
            record_refs,
            ("table_name", "field", "value"),
            wanted,
            where={"namespace": self.namespace},
            join=(record_heads, ("namespace", "table_name", "key")),
            columns=(
                r.table_name,
                r.field,
                r.value,
                r.key,
                h.version,
                h.digest,
                h.node_id,
                h.deleted,
                h.event_time,
                h.deal_code,
            ),
        )
        found: dict[tuple[str, str, str], set[tuple[object, ...]]] = {link: set() for link in wanted}
        for row in rows:
            table = row.table_name
            found[(table, row.field, row.value)].add(tuple(row))
            self.refs[(table, row.field, row.value)].add(row.key)
            self.refs_of_key[(table, row.key)].add((row.field, row.value))
            self.heads.setdefault((table, row.key), _head(row))
        for link, held in found.items():
            self.read_refs[link] = frozenset(held)

    # --- RecordLookup ---

    def head(self, table: str, key: str) -> Head | None:
        if (table, key) not in self.heads:
            self.prefetch([(table, key)], [])
        return self.heads[(table, key)]

    def current(self, table: str, key: str) -> StoredRecord | None:
        head = self.head(table, key)
        if head is None:
            return None
        return StoredRecord(
            table=table, key=key, digest=head.digest, data={}, deleted=head.deleted, deal_code=head.deal_code
        )

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

    def deal_code_holders(self, code: str) -> list[tuple[str, str]]:
        if code not in self.code_holders:
            self.prefetch([], [], [code])
        candidates = self.code_holders[code] | self.accepted_codes.get(code, set())
        # A holder read from the database may have been given another code (or deleted) in this batch.
        return sorted(
            item
            for item in candidates
            if (head := self.heads.get(item)) is not None and head.deal_code == code and not head.deleted
        )

    # --- the overlay: what this batch has accepted so far ---

    def accept(self, table: str, key: str, head: Head, ref_values: Mapping[str, str]) -> None:
        self.heads[(table, key)] = head
        if head.deal_code and not head.deleted:
            self.accepted_codes[head.deal_code].add((table, key))
        new = set() if head.deleted else set(ref_values.items())
        held = self.refs_of_key[(table, key)]
        for field, value in held - new:
            self.refs.get((table, field, value), set()).discard(key)
        for field, value in new - held:
            self.refs.setdefault((table, field, value), set()).add(key)
        self.refs_of_key[(table, key)] = new
