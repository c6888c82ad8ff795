"""What cross-record rules may ask about records received earlier.

The engine sees the world only through :class:`RecordLookup`: an in-memory implementation serves
``ggzy validate`` on files, the hub implements it over its database.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import orjson

__all__ = [
    "DIGEST_V2",
    "InMemoryLookup",
    "RecordLookup",
    "StoredRecord",
    "content_digest",
    "legacy_content_digest",
    "same_digest",
]


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """The current version of a key. A database keeps only its ``digest``; memory keeps op and data.

    ``deal_code`` is the 统一交易标识码 a registering record (a section, a lot …) gave its transaction.
    """

    table: str
    key: str
    digest: str | None
    data: Mapping[str, str]
    deleted: bool = False
    op: str | None = None
    deal_code: str | None = None

    def same_content(self, op: str, data: Mapping[str, str]) -> bool:
        if self.digest is not None:
            return same_digest(self.digest, op, data)
        return self.op == op and self.data == data


class RecordLookup(Protocol):
    def current(self, table: str, key: str) -> StoredRecord | None:
        """The newest accepted version of ``key`` in ``table`` (a tombstone when deleted)."""
        ...

    def find(self, table: str, field: str, value: str) -> Iterable[Mapping[str, str]]:
        """Data of the current, not deleted records of ``table`` whose ``field`` equals ``value``."""
        ...

    def deal_code_holders(self, code: str) -> Iterable[tuple[str, str]]:
        """(table, key) of the current, not deleted registrations whose 统一交易标识码 is ``code``."""
        ...


# Digests of the current form start with this tag: hex never does, so a stored digest says its form.
DIGEST_V2 = "v2"


def content_digest(op: str, data: Mapping[str, str]) -> str:
    """A stable digest of a record's content: equal digests mean a duplicate upload.

    The key-sorted compact JSON of ``[op, data]`` written by orjson (C, about a quarter of the cost
    of joining the pairs in Python), 120 bits of BLAKE2b, tagged ``v2`` to fit the same 32
    characters. Digests stored before have no tag: :func:`same_digest` compares those in their form.
    """
    try:
        canonical = orjson.dumps((op, data), option=orjson.OPT_SORT_KEYS)
    except TypeError:  # text that is not UTF-8 (a lone surrogate): the older form decides, as before
        return legacy_content_digest(op, data)
    return DIGEST_V2 + hashlib.blake2b(canonical, digest_size=15).hexdigest()


def legacy_content_digest(op: str, data: Mapping[str, str]) -> str:
    """The untagged form stored before ``v2``: pairs joined with separators, 128 bits of BLAKE2b."""
    canonical = "\x1f".join(f"{k}\x1e{data[k]}" for k in sorted(data))
    return hashlib.blake2b(f"{op}\x1d{canonical}".encode(), digest_size=16).hexdigest()


def same_digest(stored: str, op: str, data: Mapping[str, str]) -> bool:
    """Whether a stored digest, of either form, is that of this content."""
    if stored.startswith(DIGEST_V2):
        return stored == content_digest(op, data)
    return stored == legacy_content_digest(op, data)


class InMemoryLookup:
    """Records accepted so far in this run, indexed on demand by the fields that links use."""

    def __init__(self) -> None:
        self._current: dict[tuple[str, str], StoredRecord] = {}
        self._indexes: dict[tuple[str, str], dict[str, list[StoredRecord]]] = {}
        self._indexed_fields: dict[str, list[str]] = defaultdict(list)
        self._by_table: dict[str, list[StoredRecord]] = defaultdict(list)
        self._holders: dict[str, set[tuple[str, str]]] = defaultdict(set)

    def __len__(self) -> int:
        return len(self._current)

    def current(self, table: str, key: str) -> StoredRecord | None:
        return self._current.get((table, key))

    def find(self, table: str, field: str, value: str) -> list[Mapping[str, str]]:
        index = self._indexes.get((table, field))
        if index is None:
            index = defaultdict(list)
            for record in self._current.values():
                if record.table == table and not record.deleted and field in record.data:
                    index[record.data[field]].append(record)
            self._indexes[(table, field)] = index
            self._indexed_fields[table].append(field)
        return [r.data for r in index.get(value, ()) if self._current.get((r.table, r.key)) is r]

    def deal_code_holders(self, code: str) -> list[tuple[str, str]]:
        return sorted(self._holders.get(code, ()))

    def store(self, record: StoredRecord) -> None:
        previous = self._current.get((record.table, record.key))
        if previous is not None and previous.deal_code:
            self._holders[previous.deal_code].discard((record.table, record.key))
        self._current[(record.table, record.key)] = record
        if record.deleted:
            return
        if record.deal_code:
            self._holders[record.deal_code].add((record.table, record.key))
        for field in self._indexed_fields.get(record.table, ()):
            value = record.data.get(field)
            if value is not None:
                self._indexes[(record.table, field)][value].append(record)
