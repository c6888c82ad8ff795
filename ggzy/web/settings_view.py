"""The settings a 系统管理员 sees (系统管理 pages of hub and node): every value, no secret.

One function for every settings view, so a new setting is redacted wherever it is shown:

- a setting whose name says it is a secret or where one lives (``password``, ``secret``, ``token``,
  ``key``: ``smtp_password``, ``metrics_token``, ``key_dir``, ``tls_key``) is left out;
- a URL keeps its scheme, host, port and short path segments; the password of its user part, every
  query value and every long path segment (webhook tokens live there) are replaced by ``***``;
- nested sections are flattened (``hub.ops.webhook_url``), mappings shown key by key, lists of
  sections (the node's pull sources, whose URLs hold database passwords) by their names only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel

__all__ = ["redact_url", "settings_rows"]

_HIDDEN = "（已隐藏）"
_SECRET_WORDS = ("password", "secret", "token", "key")
_MASK = "***"
_LONG_SEGMENT = 16  # a path segment this long is a token more likely than a name


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def redact_url(text: str) -> str:
    """``text`` with the secrets a URL can carry masked; anything that is not a URL unchanged."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    if not parts.scheme or not (parts.netloc or parts.path.startswith("//")):
        return text
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        name, has_password, _password = user.partition(":")
        if has_password:
            user = f"{name}:{_MASK}"
        elif len(user) >= _LONG_SEGMENT:  # a token given as the user name
            user = _MASK
        netloc = f"{user}@{host}"
    path = "/".join(_MASK if len(segment) >= _LONG_SEGMENT else segment for segment in parts.path.split("/"))
    query = urlencode([(key, _MASK) for key, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urlunsplit(SplitResult(parts.scheme, netloc, path, query, ""))


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return redact_url(value) if "://" in value else value
    if isinstance(value, list):
        return "、".join(_shown(item) for item in value) if value else "（未配置）"
    return str(value)


def settings_rows(settings: BaseModel, prefix: str) -> list[tuple[str, str]]:
    """``(dotted name, shown value)`` of every setting in ``settings``, secrets redacted."""
    rows: list[tuple[str, str]] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        dotted = f"{prefix}.{name}"
        if _is_secret(name):
            continue
        if isinstance(value, BaseModel):
            rows.extend(settings_rows(value, dotted))
        elif isinstance(value, list) and value and all(isinstance(item, BaseModel) for item in value):
            names = [str(getattr(item, "name", type(item).__name__)) for item in value]
            rows.append((dotted, "、".join(names)))
        elif isinstance(value, Mapping):
            shown = {str(k): _HIDDEN if _is_secret(str(k)) else _shown(v) for k, v in value.items()}
            rows.append((dotted, "；".join(f"{k}: {v}" for k, v in shown.items()) or "（未配置）"))
        else:
            rows.append((dotted, _shown(value) if value is not None else "（未配置）"))
    return rows
