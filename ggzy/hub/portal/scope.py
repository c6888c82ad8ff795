"""Whose data a caller may see: the whole country, or one province (Art. 8: provinces see their own).

Every query service takes a :class:`Scope` and applies it in SQL, so a province's staff never
receive another province's rows, whatever page or parameter they try.
"""

from __future__ import annotations

from dataclasses import dataclass

from ggzy.security.permissions import Principal
from ggzy.spec import load_regions

__all__ = ["OutOfScope", "Scope", "province_name", "scope_of"]


class OutOfScope(Exception):
    """The caller asked for a province outside its scope: HTTP 403, ``E-AUTH-SCOPE``."""

    code = "E-AUTH-SCOPE"

    def __init__(self, province: str) -> None:
        super().__init__(f"province {province} is outside the caller's scope")
        self.province = province


@dataclass(frozen=True, slots=True)
class Scope:
    province: str | None  # None: national

    @property
    def national(self) -> bool:
        return self.province is None

    def allows(self, province: str) -> bool:
        return self.province is None or self.province == province

    def check(self, province: str) -> None:
        if not self.allows(province):
            raise OutOfScope(province)

    def provinces(self) -> list[str]:
        """The province codes this scope covers, in code order."""
        every = sorted(load_regions().provinces())
        return every if self.province is None else [self.province]


def scope_of(principal: Principal) -> Scope:
    return Scope(principal.province)


def province_name(code: str) -> str:
    return load_regions().provinces().get(code, code)
