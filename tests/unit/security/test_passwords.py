"""Password policy (8.1.4.1 a) and argon2id hashing: each rule refuses what it must."""

from __future__ import annotations

from pathlib import Path

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


def test_production_cost_is_owasps_baseline_and_a_service_hashes_at_its_configured_cost(
    tmp_path: Path,
) -> None:
    """The suite hashes at a lower cost (tests/conftest.py); the shipped defaults stay 19 MiB × 2."""
    from ggzy.hub.models import account_tables, audit_log
    from ggzy.security.accounts import account_service
    from ggzy.security.audit import AuditLog
    from ggzy.settings import SecuritySettings, get_settings
    from ggzy.store import make_engine

    shipped = SecuritySettings()
    assert (shipped.argon2_time_cost, shipped.argon2_memory_kib, shipped.argon2_parallelism) == (
        2,
        19 * 1024,
        1,
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        for security in (shipped, get_settings().security):
            account_service(
                engine,
                account_tables,
                AuditLog(audit_log, b"k" * 32),
                security,
                tmp_path / "a.key",
                national=True,
            )
            cost = f"m={security.argon2_memory_kib},t={security.argon2_time_cost},p={security.argon2_parallelism}"
            assert hash_password("Quiet-Lantern-58").startswith(f"$argon2id$v=19${cost}$")
    finally:
        engine.dispose()
