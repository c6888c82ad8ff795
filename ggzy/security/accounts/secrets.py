"""Secrets of the accounts kept apart from the database that holds the accounts.

One key file (``accounts.key``, mode 0600, beside the audit key) yields two sub-keys: one encrypts
TOTP secrets (AES-256-GCM; the database alone cannot produce codes), one makes the keyed hash that
identifies a person by ID number without storing the number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ggzy.security.accounts.errors import AuthError

__all__ = ["AccountSecrets"]


class AccountSecrets:
    def __init__(self, key: bytes) -> None:
        self._box = AESGCM(hmac.new(key, b"ggzy/totp-secret", hashlib.sha256).digest())
        self._person = hmac.new(key, b"ggzy/person", hashlib.sha256).digest()
        self._csrf = hmac.new(key, b"ggzy/csrf", hashlib.sha256).digest()

    def seal(self, plain: str, account: str) -> str:
        nonce = os.urandom(12)
        sealed = self._box.encrypt(nonce, plain.encode(), account.encode())
        return base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, account: str) -> str:
        raw = base64.b64decode(sealed)
        try:
            return self._box.decrypt(raw[:12], raw[12:], account.encode()).decode()
        except InvalidTag:
            # Sealed with another site's accounts.key: a command run with other settings than the
            # service (another key_dir). Say so, instead of failing as an internal error.
            raise AuthError(
                500,
                "E-AUTH-KEY-MISMATCH",
                "账号密钥与数据库不属于同一站点：请用与服务相同的配置运行（--config，或 hub.key_dir / node.key_file）",
                "the accounts key does not belong to this database: use the service's own settings (--config)",
            ) from None

    def person_key(self, staff_number: str | None = None, id_number: str | None = None) -> str:
        """``staff:<number>`` or ``id:<keyed hash>``: the person an account belongs to."""
        if id_number:
            normalised = id_number.strip().upper()
            return "id:" + hmac.new(self._person, normalised.encode(), hashlib.sha256).hexdigest()
        if staff_number and staff_number.strip():
            return "staff:" + staff_number.strip()[:80]
        raise ValueError("a person needs a staff number or an ID number")

    def csrf_token(self, binding: str) -> str:
        """The CSRF token bound to a session (by its token hash) or to a pre-session cookie."""
        return hmac.new(self._csrf, binding.encode(), hashlib.sha256).hexdigest()
