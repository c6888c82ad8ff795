"""The backup file: compressed, encrypted in authenticated chunks, checksummed as a whole.

Layout::

    b"GGZYBAK1" ‖ header length (4, big-endian) ‖ header (JSON)
    then chunks: length (4) ‖ AEAD(chunk of the zlib stream)

Each chunk is sealed with nonce ``prefix (7 random bytes) ‖ counter (4) ‖ last (1)`` and the SM3
of the header as associated data (the STREAM construction): chunks cannot be reordered, dropped,
swapped between backups, or cut off after a chunk boundary, and the header (which names the
database, schema revision and row counts) cannot be changed. Memory stays at one chunk whatever the
database size. The whole file's SM3 is the checksum kept beside it and in the backup register.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from ggzy.security.cipher import Cipher
from ggzy.security.crypto import TAG_SIZE, Digest, InvalidTag

__all__ = ["CHUNK", "BackupDamaged", "file_checksum", "private_file", "read_container", "write_container"]

MAGIC = b"GGZYBAK1"
CHUNK = 1 << 20
_PREFIX = 7
_LENGTH = struct.Struct(">I")


class BackupDamaged(Exception):
    """The file is not a complete, authentic backup made with this key (``E-BACKUP-DAMAGED``)."""

    code = "E-BACKUP-DAMAGED"


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def _sm3() -> Any:
    from cryptography.hazmat.primitives import hashes

    return hashes.Hash(hashes.SM3())


def private_file(path: Path) -> BinaryIO:
    """``path`` opened for writing, readable and writable by its owner only (0600), whatever the
    umask: a backup, its manifest and their off-host copies hold the whole database."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # a file left by an earlier, interrupted run keeps its old mode
    return os.fdopen(descriptor, "wb")


def write_container(path: Path, header: dict[str, Any], payload: Iterable[bytes], cipher: Cipher) -> str:
    """Write ``payload`` (raw bytes, any chunking) to ``path`` durably; returns the file's SM3."""
    prefix = os.urandom(_PREFIX)
    header = header | {
        "cipher": cipher.algorithm.value,
        "key_id": cipher.key_id.hex(),
        "nonce_prefix": prefix.hex(),
        "compression": "zlib",
    }
    header_bytes = json.dumps(header, ensure_ascii=False, sort_keys=True).encode()
    aad = bytes.fromhex(Digest.SM3.hash_hex(header_bytes))
    checksum = _sm3()
    temporary = path.with_name(path.name + ".part")
    with private_file(temporary) as handle:

        def emit(data: bytes) -> None:
            handle.write(data)
            checksum.update(data)

        emit(MAGIC + _LENGTH.pack(len(header_bytes)) + header_bytes)
        compressor = zlib.compressobj(6)
        pending = b""
        counter = 0
        for piece in payload:
            pending += compressor.compress(piece)
            while len(pending) >= CHUNK:
                sealed = cipher.encrypt(_nonce(prefix, counter, False), pending[:CHUNK], aad)
                emit(_LENGTH.pack(len(sealed)) + sealed)
                pending, counter = pending[CHUNK:], counter + 1
        pending += compressor.flush()
        while len(pending) > CHUNK:
            sealed = cipher.encrypt(_nonce(prefix, counter, False), pending[:CHUNK], aad)
            emit(_LENGTH.pack(len(sealed)) + sealed)
            pending, counter = pending[CHUNK:], counter + 1
        sealed = cipher.encrypt(_nonce(prefix, counter, True), pending, aad)
        emit(_LENGTH.pack(len(sealed)) + sealed)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
    _fsync_dir(path.parent)
    return str(checksum.finalize().hex())


def _fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _read_exact(handle: BinaryIO, size: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise BackupDamaged("the file ends early (truncated)")
    return data


def read_header(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            raise BackupDamaged("not a ggzy backup file")
        (length,) = _LENGTH.unpack(_read_exact(handle, 4))
        header: dict[str, Any] = json.loads(_read_exact(handle, length))
        return header


def read_container(path: Path, cipher: Cipher) -> tuple[dict[str, Any], Iterator[bytes]]:
    """The header, and the payload as an iterator that raises :class:`BackupDamaged` on any change."""
    header = read_header(path)
    if header.get("key_id") != cipher.key_id.hex() or header.get("cipher") != cipher.algorithm.value:
        raise BackupDamaged(
            f"made with key {header.get('key_id')} ({header.get('cipher')}), "
            f"the configured key is {cipher.key_id.hex()} ({cipher.algorithm.value})"
        )

    def payload() -> Iterator[bytes]:
        with path.open("rb") as handle:
            handle.read(len(MAGIC))
            (length,) = _LENGTH.unpack(handle.read(4))
            header_bytes = handle.read(length)
            aad = bytes.fromhex(Digest.SM3.hash_hex(header_bytes))
            prefix = bytes.fromhex(header["nonce_prefix"])
            decompressor = zlib.decompressobj()
            counter = 0
            while True:
                size_bytes = handle.read(4)
                if len(size_bytes) < 4:
                    raise BackupDamaged("the file ends before its last chunk (truncated)")
                (size,) = _LENGTH.unpack(size_bytes)
                if size < TAG_SIZE or size > CHUNK + TAG_SIZE:
                    raise BackupDamaged("a chunk has an impossible length")
                sealed = _read_exact(handle, size)
                last = False
                try:
                    plain = cipher.decrypt(_nonce(prefix, counter, False), sealed, aad)
                except InvalidTag:
                    try:
                        plain = cipher.decrypt(_nonce(prefix, counter, True), sealed, aad)
                    except InvalidTag as exc:
                        raise BackupDamaged(f"chunk {counter} failed authentication (altered)") from exc
                    last = True
                yield decompressor.decompress(plain)
                counter += 1
                if last:
                    if handle.read(1):
                        raise BackupDamaged("data after the last chunk")
                    yield decompressor.flush()
                    return

    return header, payload()


def file_checksum(path: Path) -> str:
    checksum = _sm3()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            checksum.update(block)
    return str(checksum.finalize().hex())
