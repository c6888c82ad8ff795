"""Secret keys kept outside the database, in files readable only by the service account."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["load_or_create_key"]


def load_or_create_key(path: Path, *, size: int = 32) -> bytes:
    """The key in ``path`` (hex); a new random key is written with mode 0600 the first time."""
    if path.exists():
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(size)
    # Written in full under a private name, then published with link(), which fails if the name
    # exists: several processes starting at once (hub workers) agree on one key and never read a
    # half-written file.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(key.hex())
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return bytes.fromhex(path.read_text(encoding="ascii").strip())
    finally:
        temporary.unlink(missing_ok=True)
    return key
