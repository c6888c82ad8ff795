"""Sensitive fields of stored records are encrypted at rest, with keys outside the database.

Which fields: those the specification classes as personal or secret (:class:`ggzy.spec.Privacy`):
ID numbers, phone numbers, bank accounts, addresses of natural persons and experts. Which values: a
*masked* value (``350102********1234``, ``138****5678``, a node's pseudonym) already hides the
person and is kept as it is, so the hub can still show and compare it; any other value is sealed
with the hub's field key (SM4-GCM by default, :mod:`ggzy.security.cipher`) and stored as
``"ENC:" + base64(sealed)``. The table and field name are the associated data, so a sealed value
moved to another field does not open.

The hub's storage path calls :func:`encrypt_sensitive` on each record's ``data`` just before it is
written; readers that need the clear value call :func:`decrypt_sensitive`. The encryptor in use is
installed once per process (``install_field_encryption``, done by the hub's ``build_state``). When
a value must be sealed and none is installed, the write is refused rather than made in clear text.

What this does not cover (see docs/architecture.md): a personal field that is part of a record's
business key also appears in the ``key`` columns, and link values in ``record_refs``; with the
default validation (``E-PRIV-PERSONAL``) such values reach the hub only masked or pseudonymised.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from ggzy.security.cipher import CipherError, Keyring, load_cipher
from ggzy.security.crypto import Aead
from ggzy.spec import Privacy, load_spec
from ggzy.validation.fieldcheck import looks_unmasked

__all__ = [
    "PREFIX",
    "FieldEncryptionUnavailable",
    "FieldEncryptor",
    "decrypt_sensitive",
    "encrypt_sensitive",
    "install_field_encryption",
    "installed_field_encryption",
    "is_masked",
    "sensitive_fields",
]

PREFIX = "ENC:"


class FieldEncryptionUnavailable(RuntimeError):
    """A sensitive value must be sealed but no field key is installed (``E-CRYPTO-FIELD-KEY``)."""

    code = "E-CRYPTO-FIELD-KEY"


def is_masked(value: str) -> bool:
    """A masked or pseudonymised value: hides the person, so it need not be sealed."""
    return "*" in value and looks_unmasked(value) is None


@cache
def sensitive_fields(table: str) -> tuple[str, ...]:
    spec = load_spec().table(table)
    if spec is None:
        return ()
    return tuple(f.name for f in spec.fields if f.privacy in (Privacy.PERSONAL, Privacy.SECRET))


def _aad(table: str, field: str) -> bytes:
    return f"ggzy-field\x1f{table}\x1f{field}".encode()


class FieldEncryptor:
    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    @classmethod
    def from_key_file(cls, path: Path, algorithm: Aead) -> FieldEncryptor:
        return cls(Keyring(load_cipher(path, algorithm)))

    def seal(self, table: str, field: str, value: str) -> str:
        sealed = self.keyring.seal(value.encode(), _aad(table, field))
        return PREFIX + base64.b64encode(sealed).decode("ascii")

    def open(self, table: str, field: str, value: str) -> str:
        try:
            sealed = base64.b64decode(value[len(PREFIX) :], validate=True)
        except ValueError as exc:
            raise CipherError(f"{table}.{field}: not a sealed value") from exc
        return self.keyring.open(sealed, _aad(table, field)).decode()


_installed: FieldEncryptor | None = None


def install_field_encryption(encryptor: FieldEncryptor | None) -> None:
    global _installed
    _installed = encryptor


def installed_field_encryption() -> FieldEncryptor | None:
    return _installed


def encrypt_sensitive(table: str, data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``data`` with every unmasked sensitive value sealed (the same object when there is none)."""
    names = sensitive_fields(table)
    if not names:
        return data
    clear = [
        n
        for n in names
        if isinstance(value := data.get(n), str)
        and value
        and not value.startswith(PREFIX)
        and not is_masked(value)
    ]
    if not clear:
        return data
    if _installed is None:
        raise FieldEncryptionUnavailable(f"{table}: sensitive fields {clear} need the field key")
    sealed = dict(data)
    for name in clear:
        sealed[name] = _installed.seal(table, name, data[name])
    return sealed


def decrypt_sensitive(table: str, data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``data`` with sealed values opened (for a reader entitled to them)."""
    names = [
        n for n in sensitive_fields(table) if isinstance(data.get(n), str) and data[n].startswith(PREFIX)
    ]
    if not names:
        return data
    if _installed is None:
        raise FieldEncryptionUnavailable(f"{table}: sealed fields {names} need the field key")
    opened = dict(data)
    for name in names:
        opened[name] = _installed.open(table, name, data[name])
    return opened
