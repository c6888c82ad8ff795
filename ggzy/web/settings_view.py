"""The 系统管理员's read-only view of the settings a running site really uses, secrets redacted.

Each row is one setting: its dotted name, the value in force, where it came from (the default, or
configured: TOML file, environment variable or the command line), and its Chinese description from
``ggzy/settings.py``. Passwords, keys and tokens are never shown, nor where key files live; database
URLs lose their password, web addresses everything after the host.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

__all__ = ["HIDDEN", "SettingRow", "settings_rows"]

HIDDEN = "（已隐藏）"
# A secret, or where one lives: smtp_password, key_dir, key_file, tls_key, api_tls_key … (not
# password_min_length, keep_days: a setting *about* passwords is shown).
_SECRET = re.compile(r"(^|_)(password|secret|token)$|(^|_)key(_dir|_file)?$")
_ENGLISH_GLOSS = re.compile(r"\s*\([^()]*\)\.?\s*$")  # "监听端口 (listen port)."


@dataclass(frozen=True, slots=True)
class SettingRow:
    name: str
    value: str
    configured: bool  # set by the file, the environment or the command line, not the default
    description: str


def _secret(name: str) -> bool:
    return bool(_SECRET.search(name.lower()))


def _address(name: str, value: str) -> str:
    if name == "db_url" or name.endswith("_db_url") or "+" in value.split(":", 1)[0]:
        from ggzy.store import redact_url

        return redact_url(value)
    parts = urlsplit(value)
    if parts.scheme and parts.netloc:
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        rest = "/…" if parts.path.strip("/") or parts.query else ""
        return f"{parts.scheme}://{host}{port}{rest}"
    return value


def _text(name: str, value: Any) -> str:
    if value is None:
        return "（未设置）"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        # an address wherever it sits: a setting named *url, or a value in a mapping or list
        # (``ops.node_probe_urls`` maps node ids to URLs whose paths may carry tokens)
        return (
            _address(name, value)
            if value and (name.endswith("url") or "://" in value)
            else (value or "（空）")
        )
    if isinstance(value, Mapping):
        return (
            "，".join(f"{k} = {HIDDEN if _secret(str(k)) else _text(str(k), v)}" for k, v in value.items())
            or "（空）"
        )
    if isinstance(value, Iterable):
        items = [_text(name, v) for v in value]
        return "、".join(items) or "（空）"
    return str(value)


def settings_rows(prefix: str, model: BaseModel, *, skip: Iterable[str] = ()) -> list[SettingRow]:
    """The rows of ``model`` (and its nested sections) under ``prefix``, secrets hidden."""
    rows: list[SettingRow] = []
    skipped = set(skip)
    fields = type(model).model_fields
    for name, info in fields.items():
        if name in skipped:
            continue
        value = getattr(model, name)
        dotted = f"{prefix}.{name}"
        configured = name in model.model_fields_set
        # the Chinese half of the description ("监听端口 (listen port)."): pages speak Chinese
        description = _ENGLISH_GLOSS.sub("", (info.description or "").strip())
        if isinstance(value, BaseModel):
            rows.extend(settings_rows(dotted, value))
            continue
        if isinstance(value, list) and value and isinstance(value[0], BaseModel):
            names = "、".join(str(getattr(item, "name", "")) for item in value)
            rows.append(SettingRow(dotted, names, configured, description))
            continue
        shown = HIDDEN if _secret(name) and value not in (None, "") else _text(name, value)
        rows.append(SettingRow(dotted, shown, configured, description))
    return rows
