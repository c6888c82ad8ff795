"""Password policy (8.1.4.1 a) and argon2id hashing: each rule refuses what it must."""

from __future__ import annotations

import pytest

from ggzy.security.passwords import PasswordPolicy, hash_password, needs_rehash, verify_password

POLICY = PasswordPolicy()


def codes(password: str, account: str = "zhangsan") -> set[str]:
    return {problem.code for problem in POLICY.problems(password, account)}


def test_a_strong_password_passes() -> None:
    assert codes("Quiet-Lantern-58") == set()


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("Ab1-xyz", "E-AUTH-PASSWORD-SHORT"),  # 7 characters
        ("lanternquietly", "E-AUTH-PASSWORD-CLASSES"),  # one class
        ("lantern58quiet", "E-AUTH-PASSWORD-CLASSES"),  # two classes
        ("Zhangsan-2026x", "E-AUTH-PASSWORD-NAME"),  # the account name
        ("Nasgnahz-2026x", "E-AUTH-PASSWORD-NAME"),  # reversed
        ("P@ssw0rd", "E-AUTH-PASSWORD-COMMON"),  # on the list
        ("P@ssw0rd2026!", "E-AUTH-PASSWORD-COMMON"),  # disguised and padded
        ("Admin@123", "E-AUTH-PASSWORD-COMMON"),
        ("Woaini1314!", "E-AUTH-PASSWORD-COMMON"),
    ],
)
def test_each_rule_refuses(password: str, code: str) -> None:
    assert code in codes(password)


def test_configured_values_are_used() -> None:
    strict = PasswordPolicy(min_length=12, min_classes=4)
    assert {p.code for p in strict.problems("Quiet-Lamp", "x")} == {
        "E-AUTH-PASSWORD-SHORT",
        "E-AUTH-PASSWORD-CLASSES",
    }


def test_hashes_are_argon2id_salted_and_verify() -> None:
    first, second = hash_password("Quiet-Lantern-58"), hash_password("Quiet-Lantern-58")
    assert first.startswith("$argon2id$") and first != second  # a fresh salt each time
    assert "Quiet-Lantern-58" not in first
    assert verify_password(first, "Quiet-Lantern-58") and not verify_password(first, "Quiet-Lantern-59")
    assert not verify_password("not a hash", "x") and not needs_rehash(first)
