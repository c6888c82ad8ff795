"""Hashes and keyed hashes behind one small interface.

Everything that hashes or signs goes through :class:`Digest`, and everything that encrypts through
:class:`Aead` (and, above it, the key-holding :class:`ggzy.security.cipher.Cipher` interface), so a
certified hardware module can replace the software implementation (``cryptography``'s OpenSSL) in
one place. SM3 and SM4 are the defaults where the national cryptography rules (密评) apply; SHA-256
and AES-256 are selectable.
"""

from __future__ import annotations

import hmac as std_hmac
from enum import StrEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["NONCE_SIZE", "TAG_SIZE", "Aead", "Digest", "InvalidTag", "aead_available", "constant_time_equal"]


class Digest(StrEnum):
    SHA256 = "SHA256"
    SM3 = "SM3"

    def _algorithm(self) -> hashes.HashAlgorithm:
        return hashes.SHA256() if self is Digest.SHA256 else hashes.SM3()

    def hash_hex(self, data: bytes) -> str:
        if self is Digest.SHA256:
            import hashlib

            return hashlib.sha256(data).hexdigest()
        digest = hashes.Hash(self._algorithm())
        digest.update(data)
        return digest.finalize().hex()

    def mac_hex(self, key: bytes, data: bytes) -> str:
        if self is Digest.SHA256:
            return std_hmac.new(key, data, "sha256").hexdigest()
        mac = crypto_hmac.HMAC(key, self._algorithm())
        mac.update(data)
        return mac.finalize().hex()


def constant_time_equal(a: str, b: str) -> bool:
    return std_hmac.compare_digest(a.encode(), b.encode())


class Aead(StrEnum):
    """Authenticated encryption: SM4-GCM (national default) or AES-256-GCM.

    SM4-GCM (RFC 8998) comes from ``cryptography``'s bundled OpenSSL through the generic ``Cipher``
    API (the one-shot AEAD classes offer AES only); :func:`aead_available` says whether the OpenSSL
    build at hand supports it, and the known-answer tests prove the result on every run.
    """

    SM4_GCM = "SM4-GCM"
    AES256_GCM = "AES-256-GCM"

    @property
    def key_size(self) -> int:
        return 16 if self is Aead.SM4_GCM else 32

    @property
    def code(self) -> int:
        """The one-byte algorithm number written into sealed data."""
        return 1 if self is Aead.SM4_GCM else 2

    @classmethod
    def from_code(cls, code: int) -> Aead:
        for algorithm in cls:
            if algorithm.code == code:
                return algorithm
        raise ValueError(f"unknown AEAD algorithm code {code}")

    def _algorithm(self, key: bytes) -> algorithms.SM4 | algorithms.AES:
        if len(key) != self.key_size:
            raise ValueError(f"{self.value} needs a {self.key_size}-byte key, got {len(key)}")
        return algorithms.SM4(key) if self is Aead.SM4_GCM else algorithms.AES(key)

    def encrypt(self, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
        """``ciphertext ‖ tag`` (16-byte tag); ``nonce`` must never repeat under one key."""
        encryptor = Cipher(self._algorithm(key), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(aad)
        body = encryptor.update(plaintext) + encryptor.finalize()
        return body + encryptor.tag

    def decrypt(self, key: bytes, nonce: bytes, sealed: bytes, aad: bytes = b"") -> bytes:
        """The plaintext, or :class:`cryptography.exceptions.InvalidTag` when anything was changed."""
        if len(sealed) < TAG_SIZE:
            raise InvalidTag()
        decryptor = Cipher(self._algorithm(key), modes.GCM(nonce, sealed[-TAG_SIZE:])).decryptor()
        decryptor.authenticate_additional_data(aad)
        return decryptor.update(sealed[:-TAG_SIZE]) + decryptor.finalize()


TAG_SIZE = 16
NONCE_SIZE = 12


def aead_available(algorithm: Aead) -> bool:
    """Whether this OpenSSL build offers ``algorithm`` in GCM mode."""
    from cryptography.hazmat.backends.openssl import backend

    probe = algorithm._algorithm(b"\0" * algorithm.key_size)
    return bool(backend.cipher_supported(probe, modes.GCM(b"\0" * NONCE_SIZE)))
