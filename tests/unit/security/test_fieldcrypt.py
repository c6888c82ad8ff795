"""Field encryption: unmasked personal values are sealed, masked ones kept, sealed values bound to their
field, and nothing is written in clear when no key is installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ggzy.security.cipher import CipherError
from ggzy.security.crypto import Aead
from ggzy.security.fieldcrypt import (
    PREFIX,
    FieldEncryptionUnavailable,
    FieldEncryptor,
    decrypt_sensitive,
    encrypt_sensitive,
    install_field_encryption,
    installed_field_encryption,
    sensitive_fields,
)

TABLE = "INDIVIDUAL_BASE"


@pytest.fixture
def encryptor(tmp_path: Path) -> Iterator[FieldEncryptor]:
    before = installed_field_encryption()
    made = FieldEncryptor.from_key_file(tmp_path / "field.key", Aead.SM4_GCM)
    install_field_encryption(made)
    yield made
    install_field_encryption(before)


def test_the_spec_decides_which_fields() -> None:
    assert {"ID_CARD", "CONTACT", "BANK_ACCOUNT", "ADDRESS"} <= set(sensitive_fields(TABLE))
    assert "PERSON_NAME" not in sensitive_fields(TABLE)
    assert sensitive_fields("NO_SUCH_TABLE") == ()


def test_unmasked_values_are_sealed_and_masked_ones_kept(encryptor: FieldEncryptor, tmp_path: Path) -> None:
    data = {
        "ID_CARD": "350102199001011234",
        "CONTACT": "151****4459",
        "BANK_ACCOUNT": "6222021234567890123",
        "PERSON_NAME": "张三",
    }
    stored = encrypt_sensitive(TABLE, data)
    assert stored["ID_CARD"].startswith(PREFIX) and "1990" not in stored["ID_CARD"]
    assert stored["BANK_ACCOUNT"].startswith(PREFIX)
    assert stored["CONTACT"] == "151****4459" and stored["PERSON_NAME"] == "张三"
    assert data["ID_CARD"] == "350102199001011234"  # the caller's record is not changed
    assert decrypt_sensitive(TABLE, stored) == data
    assert encrypt_sensitive(TABLE, stored) == stored  # already sealed: not sealed twice
    masked_only = {"ID_CARD": "350102********1234"}
    assert encrypt_sensitive(TABLE, masked_only) is masked_only
    # The key file is what opens it: another key does not.
    install_field_encryption(FieldEncryptor.from_key_file(tmp_path / "other.key", Aead.SM4_GCM))
    with pytest.raises(CipherError):
        decrypt_sensitive(TABLE, stored)


def test_a_sealed_value_does_not_open_in_another_field(encryptor: FieldEncryptor) -> None:
    stored = encrypt_sensitive(TABLE, {"ID_CARD": "350102199001011234"})
    with pytest.raises(CipherError):
        decrypt_sensitive(TABLE, {"BANK_ACCOUNT": stored["ID_CARD"]})


def test_no_key_means_no_clear_text_write() -> None:
    before = installed_field_encryption()
    install_field_encryption(None)
    try:
        with pytest.raises(FieldEncryptionUnavailable):
            encrypt_sensitive(TABLE, {"ID_CARD": "350102199001011234"})
        assert encrypt_sensitive(TABLE, {"ID_CARD": "350102********1234"}) == {
            "ID_CARD": "350102********1234"
        }
    finally:
        install_field_encryption(before)
