"""Anchors of the audit chain off the host (Art. 24; 等保 8.1.4.3 c).

A chain and its checkpoints are signed with keys that live on the same host: whoever holds the host
can delete the tail (or everything), or rewrite an entry and sign again, and the chain still checks.
An **anchor** is a copy of a checkpoint — its sequence number, the id and hash of the entry it
seals, and its time — kept where that person cannot reach:

- each node sends its newest checkpoint to the hub in every heartbeat (``audit_checkpoint``); the hub
  keeps them per node (``ggzy.hub.anchors``) and hands them back to ``ggzy audit verify --side node``;
- the hub appends its own checkpoints to an append-only file in ``backup.offsite_dir``
  (``audit-anchors-hub.jsonl``, a mounted off-host share) and, when ``audit.anchor_syslog`` is set,
  sends them to syslog.

Verification (:meth:`ggzy.security.audit.AuditLog.report` with ``anchors``) then finds a log shorter
than an anchor (tail deleted, or the whole log and its checkpoints emptied) and an anchored entry whose
hash differs (rewritten and re-signed): because each hash covers everything before it, one anchor
vouches for the whole chain up to its entry. The services seal the tail often enough
(``audit.checkpoint_minutes``, one minute by default, and every heartbeat) that at most that much of
the tail is unanchored.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import logging.handlers
import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection

from ggzy.security.audit import AuditLog

__all__ = [
    "ANCHOR_FILE",
    "Anchor",
    "AnchorFile",
    "AnchorSet",
    "AnchorSinks",
    "anchor_dicts",
    "anchors_of",
    "newest_anchor",
    "seal_tail",
    "syslog_handler",
]

ANCHOR_FILE = "audit-anchors-{site}.jsonl"
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Anchor:
    """A checkpoint as kept off the host: ``sequence`` is the checkpoint's number."""

    sequence: int
    entry_id: int
    entry_hash: str
    at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "entry": self.entry_id,
            "hash": self.entry_hash,
            "at": self.at.isoformat(),
        }

    @classmethod
    def of(cls, value: dict[str, Any]) -> Anchor:
        at = dt.datetime.fromisoformat(str(value["at"]))
        return cls(
            int(value["sequence"]),
            int(value["entry"]),
            str(value["hash"]),
            at if at.tzinfo else at.replace(tzinfo=dt.UTC),
        )


@dataclass(frozen=True, slots=True)
class AnchorSet:
    """The anchors found for one chain, where they came from, and the sources that could not be read
    (a verification that could not compare says so instead of passing silently)."""

    anchors: list[Anchor] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)

    def merged(self, other: AnchorSet) -> AnchorSet:
        return AnchorSet(
            self.anchors + other.anchors, self.sources + other.sources, self.unavailable + other.unavailable
        )


def seal_tail(engine: Any, chain: AuditLog) -> Anchor | None:
    """Seal the unsealed tail of ``chain`` (the write lock only when there is one) and return its
    newest checkpoint as an anchor."""
    from ggzy.store.database import writing

    with engine.connect() as connection:
        unsealed = chain.unsealed(connection)
    if unsealed:
        with writing(engine) as connection:
            chain.seal_tail(connection)
    with engine.connect() as connection:
        return newest_anchor(connection, chain)


def newest_anchor(connection: Connection, chain: AuditLog) -> Anchor | None:
    """The newest checkpoint of ``chain`` as an anchor (None before the first)."""
    if chain.tables is None:
        return None
    table = chain.tables.checkpoints
    from sqlalchemy import select

    row = connection.execute(select(table).order_by(table.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=dt.UTC)
    return Anchor(int(row.id), int(row.last_entry_id), str(row.last_entry_hash), at)


class AnchorFile:
    """An append-only JSON-lines file of anchors (opened ``O_APPEND``; mark it ``chattr +a`` on the
    share). Writers of several processes take an exclusive lock and skip an anchor already there."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, anchor: Anchor, site: str) -> bool:
        """Add ``anchor`` unless the file already holds it or a newer one; whether it was added."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            newest = self._newest_sequence(descriptor)
            if newest is not None and newest >= anchor.sequence:
                return False
            line = json.dumps({"site": site, **anchor.to_dict()}, ensure_ascii=False) + "\n"
            os.write(descriptor, line.encode())
            os.fsync(descriptor)
            return True
        finally:
            os.close(descriptor)  # closing releases the lock

    @staticmethod
    def _newest_sequence(descriptor: int) -> int | None:
        size = os.fstat(descriptor).st_size
        if size == 0:
            return None
        tail = os.pread(descriptor, min(size, 4096), max(0, size - 4096)).decode("utf-8", "replace")
        for line in reversed(tail.splitlines()):
            try:
                return int(json.loads(line)["sequence"])
            except (ValueError, KeyError, TypeError):
                continue
        return None

    def read(self) -> list[Anchor]:
        """Every anchor in the file (a damaged line is skipped: the others still vouch)."""
        anchors = []
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    anchors.append(Anchor.of(json.loads(line)))
                except (ValueError, KeyError, TypeError):
                    continue
        return anchors


def syslog_handler(address: str) -> logging.Handler:
    """A syslog handler for ``udp://host:port``, ``tcp://host:port`` or a socket path (``/dev/log``)."""
    if address.startswith("/"):
        return logging.handlers.SysLogHandler(address=address)
    parts = urlsplit(address)
    kind = socket.SOCK_STREAM if parts.scheme == "tcp" else socket.SOCK_DGRAM
    return logging.handlers.SysLogHandler(
        address=(parts.hostname or "localhost", parts.port or 514), socktype=kind
    )


class AnchorSinks:
    """Where one site's anchors go off the host: an anchor file and (optionally) syslog."""

    def __init__(self, site: str, file: AnchorFile | None = None, syslog: str | None = None) -> None:
        self.site = site
        self.file = file
        self.syslog = syslog
        self._sent: int | None = None

    @property
    def configured(self) -> bool:
        return self.file is not None or self.syslog is not None

    def export(self, anchor: Anchor) -> None:
        if self.file is not None:
            self.file.append(anchor, self.site)
        if self.syslog is not None and (self._sent is None or anchor.sequence > self._sent):
            handler = syslog_handler(self.syslog)
            try:
                handler.emit(
                    logging.LogRecord(
                        "ggzy.audit.anchor",
                        logging.WARNING,
                        __file__,
                        0,
                        "ggzy-audit-anchor %s",
                        (json.dumps({"site": self.site, **anchor.to_dict()}, ensure_ascii=False),),
                        None,
                    )
                )
            finally:
                handler.close()
            self._sent = anchor.sequence

    def seal_and_export(self, engine: Any, chain: AuditLog) -> Anchor | None:
        """Seal the unsealed tail of ``chain`` and send its newest checkpoint to every sink."""
        anchor = seal_tail(engine, chain)
        if anchor is not None and self.configured:
            self.export(anchor)
        return anchor

    def anchors(self) -> AnchorSet:
        """The anchors this site's own sinks hold (the file; syslog is write-only from here)."""
        if self.file is None:
            return AnchorSet()
        label = f"异地锚点文件 {self.file.path}"
        if not self.file.path.exists():
            return AnchorSet(sources=[label])
        try:
            return AnchorSet(self.file.read(), [label])
        except OSError as exc:
            return AnchorSet(unavailable=[f"{label}：{exc}"])


def anchor_dicts(anchors: Iterable[Anchor]) -> list[dict[str, Any]]:
    return [a.to_dict() for a in anchors]


def anchors_of(values: Sequence[dict[str, Any]]) -> list[Anchor]:
    return [Anchor.of(v) for v in values]
