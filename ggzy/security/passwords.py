"""Password policy and hashing (等保三级 8.1.4.1 a: complexity, periodic change).

Hashes are argon2id (argon2-cffi) with OWASP's baseline cost (19 MiB, 2 passes, 1 lane; raise it
with ``security.argon2_*``); a password is never kept or logged in clear. A stored hash records its
own parameters, so raising the cost later still verifies old hashes. The policy refuses short passwords, fewer than the configured character classes,
the account name (or its reverse) inside the password, and the shipped list of common passwords —
also when disguised with the usual substitutions (``P@ssw0rd2024!`` is ``password``).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = [
    "PasswordPolicy",
    "PasswordProblem",
    "common_passwords",
    "configure_hasher",
    "dummy_hash",
    "hash_password",
    "needs_rehash",
    "verify_password",
]

_HASHER = [PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)]


def configure_hasher(time_cost: int, memory_kib: int, parallelism: int) -> None:
    """Set the cost of new hashes (from ``SecuritySettings``)."""
    _HASHER[0] = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)


_LEET = str.maketrans(
    {"@": "a", "4": "a", "0": "o", "1": "i", "!": "i", "3": "e", "$": "s", "5": "s", "7": "t"}
)
_EDGES = re.compile(r"^[\d\W_]+|[\d\W_]+$")


@dataclass(frozen=True, slots=True)
class PasswordProblem:
    code: str
    message_zh: str
    message_en: str


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("ggzy.security").joinpath("data/common-passwords.txt").read_text(encoding="utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def _classes(password: str) -> int:
    return sum(
        (
            any(c.isupper() for c in password),
            any(c.islower() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )


def _is_common(password: str) -> bool:
    common = common_passwords()
    lowered = password.lower()
    if lowered in common:
        return True
    stripped = _EDGES.sub("", lowered)  # "Admin@2024" → "admin"
    disguised = _EDGES.sub("", lowered.translate(_LEET))  # "P@ssw0rd!" → "password"
    return any(len(word) >= 4 and word in common for word in (stripped, disguised))


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    min_length: int = 8
    min_classes: int = 3
    max_age_days: int = 90
    history: int = 5

    def problems(self, password: str, account: str) -> list[PasswordProblem]:
        """Every rule ``password`` breaks for ``account`` (empty: acceptable)."""
        found: list[PasswordProblem] = []
        if len(password) < self.min_length:
            found.append(
                PasswordProblem(
                    "E-AUTH-PASSWORD-SHORT",
                    f"口令至少{self.min_length}个字符",
                    f"at least {self.min_length} characters",
                )
            )
        if _classes(password) < self.min_classes:
            found.append(
                PasswordProblem(
                    "E-AUTH-PASSWORD-CLASSES",
                    f"口令须包含大写字母、小写字母、数字、符号中的至少{self.min_classes}类",
                    f"at least {self.min_classes} of upper case, lower case, digits, symbols",
                )
            )
        name = account.lower()
        if len(name) >= 3 and (name in password.lower() or name[::-1] in password.lower()):
            found.append(
                PasswordProblem(
                    "E-AUTH-PASSWORD-NAME",
                    "口令不得包含账号名",
                    "the password must not contain the account name",
                )
            )
        if _is_common(password):
            found.append(
                PasswordProblem(
                    "E-AUTH-PASSWORD-COMMON",
                    "口令过于常见，容易被猜到",
                    "the password is too common",
                )
            )
        return found


def hash_password(password: str) -> str:
    return _HASHER[0].hash(password)


_DUMMY: dict[int, str] = {}


def dummy_hash() -> str:
    """A hash at the current cost that nothing is meant to match: a sign-in with an unknown name
    verifies against it, so it costs exactly what a known name costs."""
    hasher = _HASHER[0]
    if id(hasher) not in _DUMMY:
        _DUMMY.clear()
        _DUMMY[id(hasher)] = hasher.hash(secrets.token_urlsafe(24))
    return _DUMMY[id(hasher)]


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER[0].verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _HASHER[0].check_needs_rehash(stored_hash)
