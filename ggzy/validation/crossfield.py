"""Cross-field rules: several values of one record checked together. One small function per rule."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation

from ggzy.spec import Semantic, TableSpec
from ggzy.validation.dealcodes import item_semantic
from ggzy.validation.findings import Finding, make_finding
from ggzy.validation.options import ValidationOptions

__all__ = [
    "CROSS_FIELD_RULES",
    "CrossFieldRule",
    "amounts",
    "code_hierarchy",
    "conditional_required",
    "list_structure",
    "rules_for",
    "time_order",
]

Data = Mapping[str, str]
_TIME = re.compile(r"\d{8}(\d{6})?")
_WAN = Decimal(10_000)


def _zh(table: TableSpec, field: str) -> str:
    spec = table.field_map.get(field)
    return spec.name_zh if spec else field


def conditional_required(table: TableSpec, data: Data, options: ValidationOptions) -> list[Finding]:
    """A field becomes required by the value of another (RELATE_CODE = 1 → INVEST_PROJECT_CODE)."""
    found: list[Finding] = []
    for rule in table.conditional_required:
        value = data.get(rule.when)
        if value in rule.equals:
            for field in rule.then:
                if not data.get(field):
                    found.append(
                        make_finding(
                            "E-XF-CONDITIONAL-REQUIRED",
                            field,
                            value,
                            name_zh=_zh(table, field),
                            when=rule.when,
                        )
                    )
    return found


_HIERARCHY = (
    (Semantic.PROJECT_CODE, Semantic.TENDER_PROJECT_CODE),
    (Semantic.TENDER_PROJECT_CODE, Semantic.SECTION_CODE),
)


_PAIRS: dict[int, tuple[tuple[str, str], ...]] = {}


def _hierarchy_pairs(table: TableSpec) -> tuple[tuple[str, str], ...]:
    pairs = _PAIRS.get(id(table))
    if pairs is None:
        by_semantic = {f.semantic: f.name for f in table.fields if f.semantic and not f.multi}
        pairs = _PAIRS[id(table)] = tuple(
            (by_semantic[parent], by_semantic[child])
            for parent, child in _HIERARCHY
            if parent in by_semantic and child in by_semantic
        )
    return pairs


def code_hierarchy(table: TableSpec, data: Data, options: ValidationOptions) -> list[Finding]:
    """项目编号 → 招标项目编号 → 标段编号: each code is its parent's code plus three digits."""
    found: list[Finding] = []
    for parent_field, child_field in _hierarchy_pairs(table):
        parent, child = data.get(parent_field), data.get(child_field)
        if not parent or not child:
            continue
        suffix = child[len(parent) :]
        if not (child.startswith(parent) and len(suffix) == 3 and suffix.isdigit()):
            found.append(
                make_finding(
                    "E-XF-CODE-HIERARCHY", child_field, child, parent_field=parent_field, parent=parent
                )
            )
    return found


def _decimal(text: str | None) -> Decimal | None:
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def amounts(table: TableSpec, data: Data, options: ValidationOptions) -> list[Finding]:
    """Amounts are not negative, carry their currency and unit, and fit the unit they claim."""
    found: list[Finding] = []
    for group in table.amounts:
        value = _decimal(data.get(group.amount))
        if value is None:
            continue
        raw = data[group.amount]
        zh = _zh(table, group.amount)
        if value < 0:
            found.append(make_finding("E-XF-AMOUNT-NEGATIVE", group.amount, raw, name_zh=zh))
        if group.currency and not data.get(group.currency):
            found.append(
                make_finding("E-XF-AMOUNT-CURRENCY", group.amount, raw, name_zh=zh, other=group.currency)
            )
        if not group.unit:
            continue
        unit = data.get(group.unit)
        if not unit:
            found.append(make_finding("E-XF-AMOUNT-UNIT", group.amount, raw, name_zh=zh, other=group.unit))
        elif value > 0 and (
            (unit == "0" and value < options.unit_suspect_min_yuan)
            or (unit == "1" and value >= options.unit_suspect_max_wan)
        ):
            yuan = value * _WAN if unit == "1" else value
            found.append(
                make_finding(
                    "W-XF-AMOUNT-UNIT-SUSPECT",
                    group.amount,
                    raw,
                    name_zh=zh,
                    unit="万元" if unit == "1" else "元",
                    yuan=f"{yuan:,.2f}",
                )
            )
    return found


def time_order(table: TableSpec, data: Data, options: ValidationOptions) -> list[Finding]:
    """Times of one record in their natural order (document period start ≤ end ≤ bid opening)."""
    found: list[Finding] = []
    for order in table.time_order:
        earlier, later = data.get(order.earlier), data.get(order.later)
        if not earlier or not later or not _TIME.fullmatch(earlier) or not _TIME.fullmatch(later):
            continue
        width = min(len(earlier), len(later))  # a date compares with the date part of a time
        if earlier[:width] > later[:width]:
            found.append(
                make_finding(
                    "E-XF-TIME-ORDER",
                    order.earlier,
                    earlier,
                    name_zh=_zh(table, order.earlier),
                    later=order.later,
                    later_value=later,
                )
            )
    return found


SECTION_CODE_LENGTH = 23  # 标段（包）编号 C23: 招标项目编号 C20 and three digits
_LISTED: dict[int, tuple[tuple[str, Semantic], ...]] = {}


def _code_lists(table: TableSpec) -> tuple[tuple[str, Semantic], ...]:
    """The ';'-separated fields that list transactions: section codes and 统一交易标识码."""
    found = _LISTED.get(id(table))
    if found is None:
        found = _LISTED[id(table)] = tuple(
            (f.name, semantic)
            for f in table.fields
            if (semantic := item_semantic(f)) in (Semantic.SECTION_CODE, Semantic.DEAL_CODE)
        )
    return found


def list_structure(table: TableSpec, data: Data, options: ValidationOptions) -> list[Finding]:
    """A list of sections or 统一交易标识码 item by item: no empty or repeated item; a section code is
    23 characters and extends the record's 招标项目编号 by three digits. (The structure of each code
    of a list is the field rules' ``E-DEAL-CODE-*``.)"""
    found: list[Finding] = []
    tender_project = next(
        (
            data.get(f.name)
            for f in table.fields
            if f.semantic is Semantic.TENDER_PROJECT_CODE and not f.multi
        ),
        None,
    )
    for name, semantic in _code_lists(table):
        value = data.get(name)
        if not value:
            continue
        seen: set[str] = set()
        for position, item in enumerate(value.split(";"), 1):
            problem: tuple[str, str] | None = None
            if not item:
                problem = ("为空（多余的分号）", "is empty (a stray ';')")
            elif item in seen:
                problem = ("重复", "is repeated")
            elif semantic is Semantic.SECTION_CODE and len(item) != SECTION_CODE_LENGTH:
                problem = (
                    f"长度应为{SECTION_CODE_LENGTH}位，实为{len(item)}位",
                    f"has {len(item)} characters, not {SECTION_CODE_LENGTH}",
                )
            elif semantic is Semantic.SECTION_CODE and tender_project:
                suffix = item[len(tender_project) :]
                if not (item.startswith(tender_project) and len(suffix) == 3 and suffix.isdigit()):
                    problem = (
                        f"应为本记录招标项目编号“{tender_project}”加3位数字，不属于该招标项目",
                        f"is not tender project {tender_project!r} followed by three digits",
                    )
            seen.add(item)
            if problem is not None:
                found.append(
                    make_finding(
                        "E-XF-LIST-ITEM",
                        name,
                        item,
                        name_zh=_zh(table, name),
                        position=position,
                        problem=problem[0],
                        problem_en=problem[1],
                    )
                )
    return found


CrossFieldRule = Callable[[TableSpec, Data, ValidationOptions], list[Finding]]

CROSS_FIELD_RULES: tuple[CrossFieldRule, ...] = (
    conditional_required,
    code_hierarchy,
    amounts,
    time_order,
    list_structure,
)


def rules_for(table: TableSpec) -> tuple[CrossFieldRule, ...]:
    """Only the rules that the table's specification gives something to check."""
    applies: dict[CrossFieldRule, bool] = {
        conditional_required: bool(table.conditional_required),
        code_hierarchy: bool(_hierarchy_pairs(table)),
        amounts: bool(table.amounts),
        time_order: bool(table.time_order),
        list_structure: bool(_code_lists(table)),
    }
    return tuple(rule for rule in CROSS_FIELD_RULES if applies[rule])
