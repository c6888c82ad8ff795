"""Regenerate the documentation pages that are derived from code and data (``make docs``)."""

from __future__ import annotations

from pathlib import Path

from ggzy.docs.generate import write_all

if __name__ == "__main__":
    for path in write_all(Path(__file__).resolve().parent.parent / "docs"):
        print(f"wrote {path}")
