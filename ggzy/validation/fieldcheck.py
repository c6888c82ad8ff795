"""Checks of one value against its field specification.

Two halves that must agree: the cheap yes/no tests (:func:`semantic_predicate`, the date and number
tests) that :mod:`ggzy.validation.compiler` strings together for the hot path (most values are
fine), and :func:`diagnose`, which explains a value that failed them with every finding it deserves. ``diagnose`` may find nothing for a value the fast test was unsure of (29
February of a leap year, say); it is the authority.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from ggzy.identifiers import (
    DealCodeProblem,
    deal_code_check_char,
    deal_code_problems,
    is_valid_id_number,
    is_valid_org_code,
    is_valid_uscc,
)
from ggzy.spec import CodeList, CodeListStatus, FieldSpec, Kind, Privacy, Regions, Semantic
from ggzy.validation.findings import Finding, make_finding
from ggzy.validation.options import DealCodeCheck, ValidationOptions

__all__ = [
    "DATETIME_EXACT",
    "DATE_EXACT",
    "FieldContext",
    "diagnose",
    "diagnose_element",
    "looks_unmasked",
    "number_pattern",
    "semantic_predicate",
]

Predicate = Callable[[str], bool]

_INDUSTRY = re.compile(r"[A-T]\d{2}")
_EMAIL = re.compile(r"[^@\s;]+@[^@\s;]+\.[^@\s;]+")
_URL = re.compile(r"(https?|ftp)://\S+", re.IGNORECASE)
_PHONE = re.compile(r"[0-9+\-() ,;/转]{5,40}")
_UNMASKED_ID = re.compile(r"(?<![0-9])\d{17}[0-9Xx](?![0-9])")
_UNMASKED_MOBILE = re.compile(r"(?<![0-9])1[3-9]\d{9}(?![0-9])")
_UNMASKED_ACCOUNT = re.compile(r"(?<![0-9])\d{12,19}(?![0-9])")


# Exact shapes for the hot path: years 1900-2099 and month-day pairs valid in every year; 29 February
# fails here and goes to the slow path, which knows leap years.
_MONTH_DAY = (
    r"(?:(?:0[13578]|1[02])(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)(?:0[1-9]|[12]\d|30)|02(?:0[1-9]|1\d|2[0-8]))"
)
DATE_EXACT = re.compile(rf"(?:19|20)\d\d{_MONTH_DAY}")
DATETIME_EXACT = re.compile(rf"(?:19|20)\d\d{_MONTH_DAY}(?:[01]\d|2[0-3])[0-5]\d[0-5]\d")


class FieldContext:
    """What the field checks need besides the value: code lists, regions and options."""

    def __init__(self, codelists: dict[str, CodeList], regions: Regions, options: ValidationOptions) -> None:
        self.codelists = codelists
        self.regions = regions
        self.options = options
        self.region_ok = lru_cache(maxsize=8192)(regions.is_valid)
        self.subject_ok = lru_cache(maxsize=8192)(_subject_code_ok)
        self.deal_ok = lru_cache(maxsize=8192)(self._deal_code_ok)

    def _deal_code_ok(self, code: str) -> bool:
        problems = deal_code_problems(code)
        if self.options.deal_code_check is DealCodeCheck.OFF:
            problems = [p for p in problems if p is not DealCodeProblem.CHECK]
        return not problems


def _subject_code_ok(code: str) -> bool:
    if len(code) == 18:
        return is_valid_uscc(code) or is_valid_id_number(code)
    if len(code) == 9:
        return is_valid_org_code(code)
    # Other identifiers (passports, foreign registrations) cannot be checked by structure.
    return not (len(code) in (10, 17, 18, 19) and code.isdigit())


def number_pattern(digits: int, decimals: int, fixed: bool) -> re.Pattern[str]:
    if fixed:
        return re.compile(rf"\d{{{digits}}}")
    integer = max(digits - decimals, 1)
    fraction = rf"(\.\d{{1,{decimals}}})?" if decimals else ""
    return re.compile(rf"-?\d{{1,{integer}}}{fraction}")


def looks_unmasked(value: str) -> str | None:
    """Which kind of unmasked personal datum ``value`` holds, if any."""
    if _UNMASKED_ID.search(value):
        return "身份证号码 ID number"
    if _UNMASKED_MOBILE.search(value):
        return "手机号码 mobile number"
    if _UNMASKED_ACCOUNT.search(value):
        return "银行账号 bank account"
    return None


def semantic_predicate(semantic: Semantic, ctx: FieldContext) -> Predicate:
    """True for a single value (one ';' part) that passes the checks of ``semantic``."""
    simple: dict[Semantic, Predicate] = {
        Semantic.USCC: is_valid_uscc,
        Semantic.ID_NUMBER: lambda v: "*" in v or is_valid_id_number(v),
        Semantic.SUBJECT_CODE: ctx.subject_ok,
        Semantic.REGION: ctx.region_ok,
        Semantic.DEAL_CODE: ctx.deal_ok,
        Semantic.DEAL_CODES: ctx.deal_ok,
        Semantic.INDUSTRY: lambda v: _INDUSTRY.fullmatch(v) is not None,
        Semantic.EMAIL: lambda v: _EMAIL.fullmatch(v) is not None,
        Semantic.URL: lambda v: _URL.fullmatch(v) is not None,
        Semantic.PHONE: lambda v: "*" in v or _PHONE.fullmatch(v) is not None,
    }
    # Codes, addresses and bank accounts have no structure of their own to check.
    return simple.get(semantic, lambda v: True)


# --- the slow path: say exactly what is wrong ---


def _diagnose_type(spec: FieldSpec, value: str) -> list[Finding]:
    ftype = spec.field_type
    name = spec.name
    common = {"name_zh": spec.name_zh, "notation": ftype.notation}
    if ftype.kind in (Kind.DATETIME, Kind.DATE):
        size = 14 if ftype.kind is Kind.DATETIME else 8
        if len(value) != size or not value.isdigit():
            return [make_finding("E-FIELD-DATETIME", name, value, **common)]
        try:
            moment = dt.datetime.strptime(value, "%Y%m%d%H%M%S" if size == 14 else "%Y%m%d")
        except ValueError:
            return [make_finding("E-FIELD-DATE-IMPOSSIBLE", name, value, **common)]
        if not 1900 <= moment.year <= 2099:
            return [make_finding("E-FIELD-DATE-IMPOSSIBLE", name, value, **common)]
        return []
    if ftype.kind is Kind.NUMBER:
        assert ftype.length is not None
        text = value[1:] if value.startswith("-") else value
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = None
        if number is None or not re.fullmatch(r"\d+(\.\d+)?", text):
            return [make_finding("E-FIELD-NUMBER", name, value, **common)]
        integer, _, fraction = text.partition(".")
        if ftype.fixed:
            ok = len(integer) == ftype.length and not fraction
        else:
            ok = len(fraction) <= ftype.decimals and len(integer.lstrip("0") or "0") <= max(
                ftype.length - ftype.decimals, 1
            )
        return [] if ok else [make_finding("E-FIELD-NUMBER-PRECISION", name, value, **common)]
    if ftype.length is not None:
        actual = len(value)
        if ftype.fixed and actual != ftype.length:
            return [
                make_finding("E-FIELD-LENGTH", name, value, expected=ftype.length, actual=actual, **common)
            ]
        if not ftype.fixed and actual > ftype.length:
            return [
                make_finding("E-FIELD-TOO-LONG", name, value, expected=ftype.length, actual=actual, **common)
            ]
    return []


def _diagnose_deal_code(spec: FieldSpec, value: str, ctx: FieldContext) -> list[Finding]:
    found: list[Finding] = []
    for problem in deal_code_problems(value):
        if problem is DealCodeProblem.FORMAT:
            found.append(make_finding("E-DEAL-CODE-FORMAT", spec.name, value, name_zh=spec.name_zh))
        elif problem is DealCodeProblem.USCC:
            found.append(make_finding("E-DEAL-CODE-USCC", spec.name, value, name_zh=spec.name_zh))
        elif problem is DealCodeProblem.DATE:
            found.append(make_finding("E-DEAL-CODE-DATE", spec.name, value, name_zh=spec.name_zh))
        elif ctx.options.deal_code_check is not DealCodeCheck.OFF:
            code = (
                "E-DEAL-CODE-CHECK"
                if ctx.options.deal_code_check is DealCodeCheck.STRICT
                else "W-DEAL-CODE-CHECK"
            )
            expected = deal_code_check_char(value[:-2])
            found.append(make_finding(code, spec.name, value, name_zh=spec.name_zh, expected=expected))
    return found


def diagnose_element(spec: FieldSpec, value: str, ctx: FieldContext) -> list[Finding]:
    name, zh = spec.name, spec.name_zh
    found: list[Finding] = []
    if spec.codelist:
        codelist = ctx.codelists[spec.codelist]
        if value not in codelist.values:
            code = (
                "E-FIELD-CODE" if codelist.status is CodeListStatus.OFFICIAL else "W-FIELD-CODE-PROVISIONAL"
            )
            found.append(make_finding(code, name, value, name_zh=zh, codelist=codelist.name))
    semantic = spec.semantic
    if semantic is Semantic.USCC and not is_valid_uscc(value):
        found.append(make_finding("E-FIELD-USCC", name, value, name_zh=zh))
    elif semantic is Semantic.ID_NUMBER and "*" not in value and not is_valid_id_number(value):
        found.append(make_finding("E-FIELD-ID-NUMBER", name, None, name_zh=zh))
    elif semantic is Semantic.SUBJECT_CODE and not ctx.subject_ok(value):
        found.append(make_finding("E-FIELD-SUBJECT-CODE", name, value, name_zh=zh))
    elif semantic is Semantic.REGION and not ctx.region_ok(value):
        found.append(make_finding("E-FIELD-REGION", name, value, name_zh=zh))
    elif semantic in (Semantic.DEAL_CODE, Semantic.DEAL_CODES):
        found.extend(_diagnose_deal_code(spec, value, ctx))
    elif semantic is Semantic.INDUSTRY and not _INDUSTRY.fullmatch(value):
        found.append(make_finding("E-FIELD-INDUSTRY", name, value, name_zh=zh))
    elif semantic is Semantic.EMAIL and not _EMAIL.fullmatch(value):
        found.append(
            make_finding("E-FIELD-FORMAT", name, value, name_zh=zh, detail="不是电子邮箱地址 not an e-mail")
        )
    elif semantic is Semantic.URL and not _URL.fullmatch(value):
        found.append(make_finding("E-FIELD-FORMAT", name, value, name_zh=zh, detail="不是网址 not a URL"))
    elif semantic is Semantic.PHONE and "*" not in value and not _PHONE.fullmatch(value):
        found.append(
            make_finding("E-FIELD-FORMAT", name, value, name_zh=zh, detail="不是电话号码 not a phone")
        )
    return found


def diagnose(spec: FieldSpec, value: str, ctx: FieldContext) -> list[Finding]:
    """Every finding for a present, non-empty ``value`` of field ``spec``."""
    found = _diagnose_type(spec, value)
    parts = [p for p in value.split(";") if p] if spec.multi else [value]
    for part in parts:
        found.extend(diagnose_element(spec, part, ctx))
    if spec.privacy is Privacy.PERSONAL and ctx.options.check_personal:
        kind = looks_unmasked(value)
        if kind:
            # The value itself is personal data: never echo it back.
            found.append(make_finding("E-PRIV-PERSONAL", spec.name, None, name_zh=spec.name_zh, detail=kind))
    return found
