"""Checks of the values people file in the operations records: one stable code and a Chinese message each.

The register, the roster, training records, self-checks and notices are filed from the API, the
command line and the portal's forms; the checks live here, in the service layer, so all three
refuse the same values with the same codes. A check returns the cleaned value or adds a
:class:`Problem` to a :class:`Problems` collector; :meth:`Problems.raise_if_any` turns everything
found into one :class:`~ggzy.hub.ops.session.OpsError` whose ``problems`` list names every field,
so a form can mark each one.

Libraries do the parts with real rules: ``email-validator`` (syntax only, no DNS) for addresses,
``phonenumbers`` (libphonenumber's Chinese numbering plan) for telephone and mobile numbers, the
GB 32100 check of :mod:`ggzy.identifiers.uscc`, and the GB/T 2260 table of :mod:`ggzy.spec`.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import phonenumbers
from email_validator import EmailNotValidError, validate_email

from ggzy.hub.ops.periods import SHANGHAI
from ggzy.hub.ops.session import OpsError
from ggzy.identifiers.uscc import is_valid_uscc
from ggzy.spec import load_regions

__all__ = [
    "MAX_COUNT",
    "Problem",
    "Problems",
    "beijing_today",
    "check_province",
    "is_mobile",
]

MAX_COUNT = 10_000_000  # no register count (experts, systems) comes near this


def beijing_today(now: dt.datetime) -> dt.date:
    """The Beijing calendar day of ``now`` (an aware time): every date of the operations layer is one."""
    return now.astimezone(SHANGHAI).date()


def check_province(province: str) -> str:
    """``province`` as a GB/T 2260 province prefix (two digits), or ``E-OPS-PROVINCE``."""
    names = load_regions().provinces()
    if not isinstance(province, str) or province not in names:
        raise OpsError(
            "E-OPS-PROVINCE",
            f"省份代码“{province}”不是 GB/T 2260 的省级行政区划代码（两位，如 35 福建）",
            f"{province!r} is not a GB/T 2260 province code",
        )
    return province


def is_mobile(text: str) -> bool:
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number) and phonenumbers.number_type(number) in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def _is_phone(text: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(text, "CN"))
    except phonenumbers.NumberParseException:
        return False


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    code: str
    message_zh: str
    message_en: str

    def to_dict(self) -> dict[str, str]:
        return {
            "field": self.field,
            "code": self.code,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
        }


@dataclass
class Problems:
    """Collects what is wrong with a filing, field by field, and refuses it all at once."""

    found: list[Problem] = field(default_factory=list)

    def add(self, name: str, code: str, message_zh: str, message_en: str) -> None:
        self.found.append(Problem(name, code, message_zh, message_en))

    def raise_if_any(self) -> None:
        if not self.found:
            return
        first = self.found[0]
        raise OpsError(
            first.code,
            "；".join(p.message_zh for p in self.found),
            "; ".join(f"{p.field}: {p.message_en}" for p in self.found),
            problems=[p.to_dict() for p in self.found],
        )

    # --- the checks: each returns the cleaned value (None when refused or empty) ---

    def text(self, name: str, label: str, value: Any, *, max_length: int = 200) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.add(
                name,
                "E-OPS-FIELD-TYPE",
                f"{label}应为文字，收到的是{_kind(value)}",
                f"must be text, not {_kind(value)}",
            )
            return None
        cleaned = value.strip()
        if any(unicodedata.category(c) in ("Cc", "Cf") and c not in "\n\t" for c in cleaned):
            self.add(name, "E-OPS-FIELD-CONTROL", f"{label}含有控制字符", "contains control characters")
            return None
        if len(cleaned) > max_length:
            self.add(
                name,
                "E-OPS-FIELD-LENGTH",
                f"{label}不得超过 {max_length} 个字符（现 {len(cleaned)} 个）",
                f"longer than {max_length} characters",
            )
            return None
        return cleaned or None

    def uscc(self, name: str, label: str, value: Any) -> str | None:
        text = self.text(name, label, value, max_length=18)
        if text is None:
            return None
        code = text.upper()
        if not is_valid_uscc(code):
            self.add(
                name,
                "E-OPS-FIELD-USCC",
                f"{label}“{text}”不是有效的统一社会信用代码（18位，GB 32100，含校验位）",
                f"{text!r} is not a valid unified social credit code",
            )
            return None
        return code

    def url(self, name: str, label: str, value: Any) -> str | None:
        text = self.text(name, label, value, max_length=500)
        if text is None:
            return None
        try:
            parsed = httpx.URL(text)
        except (httpx.InvalidURL, ValueError):
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host or " " in text:
            self.add(
                name,
                "E-OPS-FIELD-URL",
                f"{label}“{text}”应为 http:// 或 https:// 开头的完整网址",
                f"{text!r} is not an http(s) URL",
            )
            return None
        return text

    def email(self, name: str, label: str, value: Any) -> str | None:
        text = self.text(name, label, value, max_length=200)
        if text is None:
            return None
        try:
            return str(validate_email(text, check_deliverability=False).normalized)
        except EmailNotValidError:
            self.add(
                name,
                "E-OPS-FIELD-EMAIL",
                f"{label}“{text}”不是有效的邮箱地址",
                f"{text!r} is not an email address",
            )
            return None

    def phone(self, name: str, label: str, value: Any, *, mobile: bool = False) -> str | None:
        text = self.text(name, label, value, max_length=40)
        if text is None:
            return None
        if not (is_mobile(text) if mobile else _is_phone(text)):
            kind = (
                "手机号码（11位）" if mobile else "电话号码（固定电话含区号，如 0591-87654321，或手机号码）"
            )
            self.add(
                name,
                "E-OPS-FIELD-MOBILE" if mobile else "E-OPS-FIELD-PHONE",
                f"{label}“{text}”不是有效的{kind}",
                f"{text!r} is not a valid {'mobile' if mobile else 'telephone'} number",
            )
            return None
        return text

    def count(self, name: str, label: str, value: Any, *, low: int = 0, high: int = MAX_COUNT) -> int | None:
        if value is None or value == "":
            return None
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            number = int(value.strip())
        if number is None or not low <= number <= high:
            shown = value if isinstance(value, str | int | float) else _kind(value)
            self.add(
                name,
                "E-OPS-FIELD-NUMBER",
                f"{label}应为 {low}–{high} 之间的整数，收到“{shown}”",
                f"must be a whole number in {low}..{high}",
            )
            return None
        return number

    def date(self, name: str, label: str, value: Any, *, not_after: dt.date | None = None) -> dt.date | None:
        if value is None or value == "":
            return None
        if isinstance(value, dt.datetime):
            value = value.date().isoformat()
        elif isinstance(value, dt.date):
            value = value.isoformat()
        day: dt.date | None = None
        if isinstance(value, str):
            try:
                day = dt.date.fromisoformat(value.strip())
            except ValueError:
                day = None
        if day is None:
            self.add(
                name, "E-OPS-FIELD-DATE", f"{label}应为日期 YYYY-MM-DD，收到“{value}”", "must be YYYY-MM-DD"
            )
            return None
        if not_after is not None and day > not_after:
            self.add(
                name,
                "E-OPS-FIELD-FUTURE",
                f"{label} {day} 晚于今天（北京时间 {not_after}）",
                f"{day} is after today ({not_after}, Beijing)",
            )
            return None
        return day

    def regions(self, name: str, label: str, value: Any, province: str) -> list[str] | None:
        items = self.items(name, label, value)
        if items is None:
            return None
        regions = load_regions()
        bad = [i for i in items if not regions.is_valid(i) or not i.startswith(province)]
        if bad:
            self.add(
                name,
                "E-OPS-FIELD-REGION",
                f"{label}中“{'、'.join(bad)}”不是本省（{province}）的 GB/T 2260 行政区划代码（6位）",
                f"{bad} are not GB/T 2260 codes inside province {province}",
            )
            return None
        return items

    def choices(
        self, name: str, label: str, value: Any, allowed: dict[str, str], *, many: bool = False
    ) -> list[str] | str | None:
        items = self.items(name, label, value) if many else None
        if not many:
            single = self.text(name, label, value, max_length=40)
            items = [single] if single is not None else None
        if items is None:
            return None
        by_label = {label_zh: code for code, label_zh in allowed.items()}
        items = [i if i in allowed else by_label.get(i, i) for i in items]  # a value or its label
        bad = [i for i in items if i not in allowed]
        if bad:
            listed = "、".join(f"{k} {v}" for k, v in list(allowed.items())[:12])
            self.add(
                name,
                "E-OPS-FIELD-CHOICE",
                f"{label}“{'、'.join(bad)}”不在可选值中（{listed}{' …' if len(allowed) > 12 else ''}）",
                f"{bad} not among {list(allowed)}",
            )
            return None
        return items if many else items[0]

    def items(self, name: str, label: str, value: Any, *, most: int = 200) -> list[str] | None:
        """A list of short codes: a JSON list, or one string separated by commas or 、."""
        if value is None or value == "" or value == []:
            return None
        raw: Sequence[Any]
        if isinstance(value, str):
            raw = [part for part in value.replace("、", ",").replace("，", ",").split(",")]
        elif isinstance(value, list):
            raw = value
        else:
            self.add(name, "E-OPS-FIELD-TYPE", f"{label}应为列表", "must be a list")
            return None
        if len(raw) > most or any(not isinstance(item, str) for item in raw):
            self.add(
                name,
                "E-OPS-FIELD-TYPE",
                f"{label}应为不超过 {most} 项的文字列表",
                f"must be a list of at most {most} strings",
            )
            return None
        cleaned = list(dict.fromkeys(item.strip() for item in raw if item.strip()))
        return cleaned or None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "是/否值"
    if isinstance(value, int | float):
        return "数字"
    if isinstance(value, dict):
        return "嵌套对象"
    if isinstance(value, list):
        return "列表"
    return type(value).__name__
