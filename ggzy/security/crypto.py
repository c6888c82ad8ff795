"""Hashes and keyed hashes behind one small interface.

Everything that hashes or signs goes through :class:`Digest`, so a certified hardware module can
replace the software implementation (``cryptography``'s OpenSSL) in one place. SM3 is the default
where the national cryptography rules (密评) apply; SHA-256 is selectable.
"""

from __future__ import annotations

import hmac as std_hmac
from enum import StrEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

__all__ = ["Digest", "constant_time_equal"]


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
