"""The encryption interface: a key-holding :class:`Cipher`, and sealed values that name their key.

A :class:`Cipher` encrypts and decrypts with one key it never hands out. :class:`SoftwareCipher`
keeps the key in memory (read from a key file outside the database); a certified hardware module
(密码机) implements the same two methods with a key handle, and nothing above this module changes.

Sealed data is self-describing, so keys can be rotated (old data stays readable through the
:class:`Keyring`) and the algorithm can change without a flag day::

    b"GZ" ‖ version (1) ‖ algorithm code (1) ‖ key id (8) ‖ nonce (12) ‖ ciphertext ‖ tag (16)

The header is authenticated together with the caller's associated data, so neither the algorithm
nor the key id can be swapped. Nonces are 96 random bits from the operating system's CSPRNG: the
collision bound of random GCM nonces (2^32 messages per key) is far above what one key seals here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from ggzy.security.crypto import NONCE_SIZE, TAG_SIZE, Aead, Digest, InvalidTag
from ggzy.security.keys import load_or_create_key

__all__ = [
    "HEADER_SIZE",
    "Cipher",
    "CipherError",
    "Keyring",
    "SoftwareCipher",
    "key_id_of",
    "load_cipher",
    "open_sealed",
    "seal",
]

_MAGIC = b"GZ"
_VERSION = 1
KEY_ID_SIZE = 8
HEADER_SIZE = len(_MAGIC) + 2 + KEY_ID_SIZE + NONCE_SIZE


class CipherError(Exception):
    """Sealed data that cannot be opened: unknown key, damaged or altered (``E-CRYPTO-OPEN``)."""

    code = "E-CRYPTO-OPEN"


@runtime_checkable
class Cipher(Protocol):
    """One key of one AEAD algorithm; the key itself stays inside the implementation."""

    @property
    def algorithm(self) -> Aead: ...

    @property
    def key_id(self) -> bytes: ...

    def encrypt(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """``ciphertext ‖ tag``."""
        ...

    def decrypt(self, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
        """The plaintext; raises :class:`InvalidTag` when the data or ``aad`` was changed."""
        ...


def key_id_of(key: bytes) -> bytes:
    """A short public name for a key: not the key, and useless for finding it."""
    return bytes.fromhex(Digest.SM3.hash_hex(b"ggzy-key-id\x00" + key))[:KEY_ID_SIZE]


@dataclass(frozen=True, slots=True)
class SoftwareCipher:
    """The software implementation (OpenSSL through ``cryptography``)."""

    algorithm: Aead
    key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id_of(self.key)

    def encrypt(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return self.algorithm.encrypt(self.key, nonce, plaintext, aad)

    def decrypt(self, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
        return self.algorithm.decrypt(self.key, nonce, sealed, aad)

    def __repr__(self) -> str:  # never print the key
        return f"SoftwareCipher({self.algorithm.value}, key_id={self.key_id.hex()})"


def load_cipher(path: Path, algorithm: Aead) -> SoftwareCipher:
    """The cipher whose key is in ``path`` (hex, mode 0600); a new key is made the first time."""
    key = load_or_create_key(path, size=algorithm.key_size)
    if len(key) != algorithm.key_size:
        raise ValueError(f"{path}: {algorithm.value} needs a {algorithm.key_size}-byte key, found {len(key)}")
    return SoftwareCipher(algorithm, key)


def _header(cipher: Cipher, nonce: bytes) -> bytes:
    return _MAGIC + bytes([_VERSION, cipher.algorithm.code]) + cipher.key_id + nonce


def seal(cipher: Cipher, plaintext: bytes, aad: bytes = b"") -> bytes:
    nonce = os.urandom(NONCE_SIZE)
    header = _header(cipher, nonce)
    return header + cipher.encrypt(nonce, plaintext, header + aad)


def _parse(sealed: bytes) -> tuple[Aead, bytes, bytes, bytes]:
    if len(sealed) < HEADER_SIZE + TAG_SIZE or sealed[:2] != _MAGIC or sealed[2] != _VERSION:
        raise CipherError("not sealed data of a known version")
    try:
        algorithm = Aead.from_code(sealed[3])
    except ValueError as exc:
        raise CipherError(str(exc)) from exc
    key_id = sealed[4 : 4 + KEY_ID_SIZE]
    nonce = sealed[4 + KEY_ID_SIZE : HEADER_SIZE]
    return algorithm, key_id, nonce, sealed[:HEADER_SIZE]


def open_sealed(cipher: Cipher, sealed: bytes, aad: bytes = b"") -> bytes:
    algorithm, key_id, nonce, header = _parse(sealed)
    if key_id != cipher.key_id or algorithm is not cipher.algorithm:
        raise CipherError(f"sealed with key {key_id.hex()} ({algorithm.value}), not this one")
    try:
        return cipher.decrypt(nonce, sealed[HEADER_SIZE:], header + aad)
    except InvalidTag as exc:
        raise CipherError("authentication failed: the data or its context was altered") from exc


class Keyring:
    """The current key (seals) and retired ones (still open what they sealed)."""

    def __init__(self, current: Cipher, retired: Iterable[Cipher] = ()) -> None:
        self.current = current
        self._by_id = {c.key_id: c for c in (*retired, current)}

    def seal(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        return seal(self.current, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes = b"") -> bytes:
        _algorithm, key_id, _nonce, _header = _parse(sealed)
        cipher = self._by_id.get(key_id)
        if cipher is None:
            raise CipherError(f"no key {key_id.hex()} in the keyring")
        return open_sealed(cipher, sealed, aad)
