"""Signed exchange requests between node and hub.

A node signs ``METHOD \\n PATH?QUERY \\n TIMESTAMP \\n NONCE \\n hex(DIGEST(body))`` with HMAC under its
key and sends the result with its id, the timestamp (Unix seconds), the nonce and the algorithm in
headers. The hub recomputes it; a timestamp outside the allowed skew or a nonce seen before is a
replay and is refused (see ``docs/protocol.md``).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

from ggzy.security.crypto import Digest, constant_time_equal

__all__ = [
    "HEADER_ALGORITHM",
    "HEADER_NODE",
    "HEADER_NONCE",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "SignatureAlgorithm",
    "SignedHeaders",
    "canonical_request",
    "sign_request",
    "verify_signature",
]

HEADER_NODE = "X-GGZY-Node"
HEADER_TIMESTAMP = "X-GGZY-Timestamp"
HEADER_NONCE = "X-GGZY-Nonce"
HEADER_SIGNATURE = "X-GGZY-Signature"
HEADER_ALGORITHM = "X-GGZY-Algorithm"


class SignatureAlgorithm(StrEnum):
    HMAC_SHA256 = "HMAC-SHA256"
    HMAC_SM3 = "HMAC-SM3"

    @property
    def digest(self) -> Digest:
        return Digest.SHA256 if self is SignatureAlgorithm.HMAC_SHA256 else Digest.SM3


@dataclass(frozen=True, slots=True)
class SignedHeaders:
    node_id: str
    timestamp: str
    nonce: str
    signature: str
    algorithm: SignatureAlgorithm

    def as_dict(self) -> dict[str, str]:
        return {
            HEADER_NODE: self.node_id,
            HEADER_TIMESTAMP: self.timestamp,
            HEADER_NONCE: self.nonce,
            HEADER_SIGNATURE: self.signature,
            HEADER_ALGORITHM: self.algorithm.value,
        }


def canonical_request(
    method: str, path: str, timestamp: str, nonce: str, body: bytes, algorithm: SignatureAlgorithm
) -> bytes:
    body_digest = algorithm.digest.hash_hex(body)
    return "\n".join((method.upper(), path, timestamp, nonce, body_digest)).encode()


def sign_request(
    node_id: str,
    key: bytes,
    method: str,
    path: str,
    body: bytes,
    *,
    algorithm: SignatureAlgorithm = SignatureAlgorithm.HMAC_SHA256,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> SignedHeaders:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    once = nonce or secrets.token_hex(16)
    message = canonical_request(method, path, stamp, once, body, algorithm)
    return SignedHeaders(node_id, stamp, once, algorithm.digest.mac_hex(key, message), algorithm)


def verify_signature(
    key: bytes,
    method: str,
    path: str,
    body: bytes,
    *,
    timestamp: str,
    nonce: str,
    signature: str,
    algorithm: SignatureAlgorithm,
) -> bool:
    message = canonical_request(method, path, timestamp, nonce, body, algorithm)
    return constant_time_equal(algorithm.digest.mac_hex(key, message), signature.lower())
