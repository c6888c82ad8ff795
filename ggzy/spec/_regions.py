"""GB/T 2260 administrative division codes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Regions"]


@dataclass(frozen=True)
class Regions:
    """Provinces (``350000``) and prefecture-level divisions (``350100``) with their names.

    County-level codes are not listed; a six-digit code is accepted when its prefecture is known,
    because counties are merged and renamed far more often than prefectures.
    """

    names: Mapping[str, str]

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> Regions:
        return cls({str(code): str(name) for code, name in data.items()})

    def provinces(self) -> dict[str, str]:
        """Two-digit province prefix -> province name."""
        return {code[:2]: name for code, name in self.names.items() if code.endswith("0000")}

    def prefectures(self, province: str) -> dict[str, str]:
        prefix = province[:2]
        return {
            code: name
            for code, name in self.names.items()
            if code.startswith(prefix) and not code.endswith("0000") and code.endswith("00")
        }

    def is_valid(self, code: str) -> bool:
        if len(code) != 6 or not code.isdigit():
            return False
        if code in self.names:
            return True
        return code[4:] != "00" and code[:4] + "00" in self.names

    def name(self, code: str) -> str | None:
        if code in self.names:
            return self.names[code]
        prefecture = self.names.get(code[:4] + "00")
        return f"{prefecture}（下辖区县 {code}）" if prefecture else None
