"""Defect injectors: each breaks one thing in a copy of a record and says which finding to expect.

A defect is only injected where it cannot cause any other error in the same record or in the rest
of the stream: key, link, time-order and amount fields are left alone by the field-level defects,
and a record that later records depend on (a parent, a predecessor, master data, a record that is
updated later) only receives warnings or an extra duplicate copy, because the hub does not keep a
record with an error and its dependants would then fail too.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ggzy.identifiers import make_deal_code, make_id_number, make_uscc
from ggzy.simulate.transactions import Draft, SpecPlans
from ggzy.simulate.values import TablePlan, format_number, random_mobile
from ggzy.spec import CodeListStatus, FieldSpec, Kind, Privacy, Semantic, TableSpec
from ggzy.validation.dealcodes import deal_code_plans, item_semantic

__all__ = ["CONSEQUENCES", "DEFECT_KINDS", "DefectInjector", "ExpectedFinding", "Outcome"]

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CHECK_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_UNKNOWN_COLUMN = "FOO_BAR"
_HIERARCHY = (
    (Semantic.PROJECT_CODE, Semantic.TENDER_PROJECT_CODE),
    (Semantic.TENDER_PROJECT_CODE, Semantic.SECTION_CODE),
)
# Child codes of each level: a record holding one of these cannot have its parent code changed alone.
_CHILD_LEVELS = {
    Semantic.PROJECT_CODE: (Semantic.TENDER_PROJECT_CODE, Semantic.SECTION_CODE),
    Semantic.TENDER_PROJECT_CODE: (Semantic.SECTION_CODE,),
}


@dataclass(frozen=True, slots=True)
class ExpectedFinding:
    """A finding the validator should report for a simulated record."""

    code: str
    field: str | None


@dataclass(slots=True)
class Outcome:
    data: dict[str, str]
    expected: list[ExpectedFinding]
    duplicate: bool = False  # emit the record unchanged, then an identical copy that carries ``expected``


Mutation = Callable[[random.Random, dict[str, str], str], list[ExpectedFinding]]


@dataclass(frozen=True, slots=True)
class DefectKind:
    code: str
    warning: bool  # warnings may be given to records others depend on
    mutate: Mutation


# --- the traits of a table that decide where each defect may go ---


class TableTraits:
    """Per table, once: the fields each defect kind may touch."""

    def __init__(self, plan: TablePlan, plans: SpecPlans) -> None:
        table = plan.table
        self.table = table
        parent_fields = {f for link in table.parents for f in link.fields}
        predecessor_fields = {f for link in table.predecessors for f in link.fields}
        time_fields = {f for order in table.time_order for f in (order.earlier, order.later)}
        anchors = {f for f in (table.event_time, table.publish_time) if f}
        conditional = {f for rule in table.conditional_required for f in (rule.when, *rule.then)}
        self.pinned = (
            set(table.business_key) | parent_fields | predecessor_fields | plans.referenced[table.name]
        )
        protected = self.pinned | time_fields | anchors | plan.amount_fields | conditional
        free = [f for f in table.fields if f.name not in protected]
        self.candidates: dict[str, tuple[str, ...]] = {
            "E-FIELD-REQUIRED": _names(f for f in free if f.required),
            "E-FIELD-TOO-LONG": _names(
                f for f in free if _plain_text(f) and not f.field_type.fixed and f.field_type.length
            ),
            "E-FIELD-LENGTH": _names(f for f in free if _plain_text(f) and f.field_type.fixed),
            "E-FIELD-NUMBER": _names(f for f in free if f.field_type.kind is Kind.NUMBER and not f.codelist),
            "E-FIELD-NUMBER-PRECISION": _names(
                f
                for f in free
                if f.field_type.kind is Kind.NUMBER and not f.codelist and not f.field_type.fixed
            ),
            "E-FIELD-DATETIME": _names(f for f in free if f.field_type.kind in (Kind.DATE, Kind.DATETIME)),
            "E-FIELD-DATE-IMPOSSIBLE": _names(
                f for f in free if f.field_type.kind in (Kind.DATE, Kind.DATETIME)
            ),
            "E-FIELD-CODE": _names(f for f in free if _coded(f, plans, CodeListStatus.OFFICIAL)),
            "W-FIELD-CODE-PROVISIONAL": _names(
                f for f in free if _coded(f, plans, CodeListStatus.PROVISIONAL)
            ),
            "E-FIELD-USCC": _names(f for f in free if f.semantic is Semantic.USCC and not f.multi),
            "E-FIELD-REGION": _names(f for f in free if f.semantic is Semantic.REGION and not f.multi),
            "E-DEAL-CODE-FORMAT": _names(
                f for f in free if f.semantic in (Semantic.DEAL_CODE, Semantic.DEAL_CODES)
            ),
            "W-DEAL-CODE-CHECK": _names(
                f for f in free if f.semantic in (Semantic.DEAL_CODE, Semantic.DEAL_CODES)
            ),
            "E-XF-AMOUNT-NEGATIVE": tuple(
                g.amount for g in table.amounts if not table.field_map[g.amount].field_type.fixed
            ),
            "W-XF-AMOUNT-UNIT-SUSPECT": tuple(
                g.amount for g in table.amounts if _unit_can_mislead(table, g.amount, g.unit)
            ),
            "E-PRIV-PERSONAL": _names(f for f in free if _privacy_target(f)),
        }
        self.hierarchy = self._hierarchy()
        self.orphans = self._orphans(parent_fields, predecessor_fields, plans)
        self.units = {g.amount: g.unit for g in table.amounts if g.unit}
        movable = {f.name for f in table.fields} - self.pinned - anchors
        self.movable_times = frozenset(movable)

    def _hierarchy(self) -> dict[str, str]:
        """Parent-level code → the child-level code that must start with it, where the parent may change."""
        by_semantic = {f.semantic: f.name for f in self.table.fields if f.semantic and not f.multi}
        pairs: dict[str, str] = {}
        for parent_semantic, child_semantic in _HIERARCHY:
            parent, child = by_semantic.get(parent_semantic), by_semantic.get(child_semantic)
            if parent and child and parent not in self.pinned:
                pairs[parent] = child
        return pairs

    def _orphans(
        self, parent_fields: set[str], predecessor_fields: set[str], plans: SpecPlans
    ) -> tuple[str, ...]:
        """Link fields that can point at a missing parent while staying well-formed and leaving the rest valid."""
        table = self.table
        semantics = {f.semantic for f in table.fields if f.semantic}
        semantics |= {semantic for f in table.fields if (semantic := item_semantic(f)) is not None}
        found = []
        for name in sorted(parent_fields - predecessor_fields - plans.referenced[table.name]):
            spec = table.field_map[name]
            if spec.multi or spec.codelist or spec.field_type.kind is not Kind.TEXT:
                continue
            if spec.semantic in _CHILD_LEVELS and semantics & set(_CHILD_LEVELS[spec.semantic]):
                continue  # changing it would break the code hierarchy of this record too
            found.append(name)
        return tuple(found)


def _names(fields: Iterable[FieldSpec]) -> tuple[str, ...]:
    return tuple(f.name for f in fields)


def _plain_text(spec: FieldSpec) -> bool:
    return (
        spec.field_type.kind is Kind.TEXT
        and spec.semantic is None
        and spec.codelist is None
        and spec.privacy is Privacy.NONE
    )


def _coded(spec: FieldSpec, plans: SpecPlans, status: CodeListStatus) -> bool:
    if not spec.codelist or spec.multi:
        return False
    return plans.spec.codelists[spec.codelist].status is status


def _unit_can_mislead(table: TableSpec, amount: str, unit: str | None) -> bool:
    """Room for a 7-digit figure and a unit whose code list knows 万元 ("1")."""
    if unit is None:
        return False
    ftype = table.field_map[amount].field_type
    return not ftype.fixed and (ftype.length or 0) - ftype.decimals >= 7


def _privacy_target(spec: FieldSpec) -> bool:
    if spec.privacy is not Privacy.PERSONAL or spec.semantic is Semantic.ADDRESS:
        return False
    length = spec.field_type.length
    return length is None or length >= 11


# --- the mutations ---


def _blank(rng: random.Random, data: dict[str, str], name: str) -> list[ExpectedFinding]:
    data[name] = ""
    return [ExpectedFinding("E-FIELD-REQUIRED", name)]


def _outside_code(values: set[str], fixed_length: int | None, max_length: int | None, numeric: bool) -> str:
    sizes = [fixed_length] if fixed_length else sorted({len(v) for v in values} or {1})
    for size in sizes:
        if max_length is not None and size > max_length:
            continue
        for char in "987654321" if numeric else "987654321ZYX":
            candidate = char * size
            if candidate not in values:
                return candidate
    return "8"


class _Mutations:
    """Mutations that need the specification (lengths, code lists); one instance per run."""

    def __init__(self, plans: SpecPlans, traits: Callable[[str], TableTraits]) -> None:
        self.plans = plans
        self.traits = traits
        self.table: TableSpec | None = None

    def field(self, name: str) -> FieldSpec:
        assert self.table is not None
        return self.table.field_map[name]

    def too_long(self, rng: random.Random, data: dict[str, str], name: str) -> list[ExpectedFinding]:
        length = self.field(name).field_type.length or 0
        data[name] = (data[name] + "超长内容" * (length // 4 + 2))[: length + 1]
        return [ExpectedFinding("E-FIELD-TOO-LONG", name)]

    def wrong_length(self, rng: random.Random, data: dict[str, str], name: str) -> list[ExpectedFinding]:
        value = data[name]
        data[name] = value[:-1] if len(value) > 1 else value + "0"
        return [ExpectedFinding("E-FIELD-LENGTH", name)]

    def not_a_number(self, rng: random.Random, data: dict[str, str], name: str) -> list[ExpectedFinding]:
        data[name] = "12a.5"
        return [ExpectedFinding("E-FIELD-NUMBER", name)]

    def too_precise(self, rng: random.Random, data: dict[str, str], name: str) -> list[ExpectedFinding]:
        decimals = self.field(name).field_type.decimals
        data[name] = "1." + "5" * (decimals + 1)
        return [ExpectedFinding("E-FIELD-NUMBER-PRECISION", name)]

    def bad_datetime(self, rng: random.Random, data: dict[str, str], name: str) -> list[ExpectedFinding]:
        value = data[name]
        text = f"{value[:4]}-{value[4:6]}-{value[6:8]}"
        data[name] = text if len(value) == 8 else f"{text} {value[8:10]}:{value[10:12]}"
        return [ExpectedFinding("E-FIELD-DATETIME", name)]

    def impossible_date(self, rng: random.Random, data: dict[str, str], name: str) -> list[ExpectedFinding]:
        value = data[name]
        data[name] = f"{value[:4]}0230" + ("120000" if len(value) == 14 else "")
        return [ExpectedFinding("E-FIELD-DATE-IMPOSSIBLE", name)]

    def outside_code(self, rng: random.Random, data: dict[str, str], name: str) -> list[ExpectedFinding]:
        spec = self.field(name)
        listed = self.plans.spec.codelists[spec.codelist or ""]
        ftype = spec.field_type
        numeric = ftype.kind is Kind.NUMBER or all(v.isdigit() for v in listed.values)
        data[name] = _outside_code(
            set(listed.values), ftype.length if ftype.fixed else None, ftype.length, numeric
        )
        code = "E-FIELD-CODE" if listed.status is CodeListStatus.OFFICIAL else "W-FIELD-CODE-PROVISIONAL"
        return [ExpectedFinding(code, name)]

    def bad_uscc(self, rng: random.Random, data: dict[str, str], name: str) -> list[ExpectedFinding]:
        value = data[name]
        data[name] = value[:17] + rng.choice([c for c in _USCC_ALPHABET if c != value[17]])
        return [ExpectedFinding("E-FIELD-USCC", name)]

    def bad_region(self, rng: random.Random, data: dict[str, str], name: str) -> list[ExpectedFinding]:
        data[name] = "999900"
        return [ExpectedFinding("E-FIELD-REGION", name)]

    def broken_deal_code(self, rng: random.Random, data: dict[str, str], name: str) -> list[ExpectedFinding]:
        first, sep, rest = data[name].partition(";")
        data[name] = first[:3] + str(rng.randrange(10)) + first[4:] + sep + rest
        return [ExpectedFinding("E-DEAL-CODE-FORMAT", name)]

    def wrong_check(self, rng: random.Random, data: dict[str, str], name: str) -> list[ExpectedFinding]:
        first, sep, rest = data[name].partition(";")
        check = rng.choice([c for c in _CHECK_ALPHABET if c != first[-1]])
        data[name] = first[:-1] + check + sep + rest
        expected = [ExpectedFinding("W-DEAL-CODE-CHECK", name)]
        assert self.table is not None
        plan = deal_code_plans(self.plans.spec)[self.table.name]
        # Another check character is another code: not the one the transaction was registered with.
        named = name == plan.code_field and not plan.registers and (plan.names or plan.container)
        if named or (name == plan.list_field and plan.container is not None):
            expected.append(ExpectedFinding("E-XR-DEAL-CODE-MISMATCH", name))
        return expected

    def negative(self, rng: random.Random, data: dict[str, str], name: str) -> list[ExpectedFinding]:
        data[name] = "-" + data[name]
        return [ExpectedFinding("E-XF-AMOUNT-NEGATIVE", name)]

    def unit_confusion(self, rng: random.Random, data: dict[str, str], name: str) -> list[ExpectedFinding]:
        """A 元 figure labelled 万元: the amount is then ten thousand times too large."""
        assert self.table is not None
        units = self.traits(self.table.name).units
        unit = units[name]
        if data.get(unit) != "1":  # the other amounts sharing this unit column move to 万元 with it
            for other, other_unit in units.items():
                if other != name and other_unit == unit and data.get(other):
                    ftype = self.field(other).field_type
                    wan = float(data[other]) / 10_000
                    data[other] = format_number(wan, ftype.length or 20, ftype.decimals, ftype.fixed, rng)
        data[unit] = "1"
        data[name] = str(rng.randint(1_000_000, 9_999_999))
        return [ExpectedFinding("W-XF-AMOUNT-UNIT-SUSPECT", name)]

    def raw_personal(self, rng: random.Random, data: dict[str, str], name: str) -> list[ExpectedFinding]:
        spec = self.field(name)
        length = spec.field_type.length or 99
        if (
            spec.semantic is Semantic.ID_NUMBER or "证件" in spec.name_zh or "身份证" in spec.name_zh
        ) and length >= 18:
            birth = dt.date(rng.randint(1960, 1995), rng.randint(1, 12), rng.randint(1, 28))
            data[name] = make_id_number(rng, data[name][:6] if data[name][:6].isdigit() else "110101", birth)
        elif spec.semantic is Semantic.BANK_ACCOUNT and length >= 19:
            data[name] = f"6222{rng.randrange(10**15):015d}"
        else:
            data[name] = random_mobile(rng)
        return [ExpectedFinding("E-PRIV-PERSONAL", name)]

    def unknown_column(self, rng: random.Random, data: dict[str, str], name: str) -> list[ExpectedFinding]:
        data[_UNKNOWN_COLUMN] = "x"
        return [ExpectedFinding("W-FIELD-UNKNOWN", _UNKNOWN_COLUMN)]

    def hierarchy(self, rng: random.Random, data: dict[str, str], name: str) -> list[ExpectedFinding]:
        """Change the parent-level code so the child-level code no longer starts with it."""
        assert self.table is not None
        child = self.traits(self.table.name).hierarchy[name]
        value = data[name]
        data[name] = value[:-3] + f"9{rng.randrange(100):02d}"
        return [ExpectedFinding("E-XF-CODE-HIERARCHY", child)]

    def orphan(self, rng: random.Random, data: dict[str, str], name: str) -> list[ExpectedFinding]:
        """Point a parent link at a record that does not exist, keeping the value well-formed."""
        data[name] = _unknown_reference(rng, self.field(name), data[name])
        return [ExpectedFinding("E-XR-PARENT-MISSING", name)]

    def time_order(self, rng: random.Random, data: dict[str, str], name: str) -> list[ExpectedFinding]:
        """Move one time of a ``time_order`` pair across the other; report every pair now out of order."""
        assert self.table is not None
        earlier, _, later = name.partition(">")
        movable = self.traits(self.table.name).movable_times
        if earlier in movable:
            data[earlier] = _shift(data[later], len(data[earlier]), days=1)
        else:
            data[later] = _shift(data[earlier], len(data[later]), days=-1)
        return [ExpectedFinding("E-XF-TIME-ORDER", f) for f in _disordered(self.table, data)]


def _unknown_reference(rng: random.Random, spec: FieldSpec, value: str) -> str:
    semantic = spec.semantic
    if semantic is Semantic.SECTION_CODE or semantic is Semantic.TENDER_PROJECT_CODE:
        return value[:-3] + f"9{rng.randrange(100):02d}"
    if semantic is Semantic.PROJECT_CODE:
        return value[:-4] + f"9{rng.randrange(1000):03d}"
    if semantic is Semantic.DEAL_CODE:
        day = dt.date(int(value[23:27]), int(value[27:29]), int(value[29:31]))
        return make_deal_code(value[:3], value[4:22], day, 900_000 + rng.randrange(100_000))
    if semantic in (Semantic.USCC, Semantic.SUBJECT_CODE) and len(value) == 18:
        return make_uscc(rng, value[2:8] if value[2:8].isdigit() else "110101")
    if semantic is Semantic.ID_NUMBER:
        if "*" in value:
            return value[:-4] + f"{rng.randrange(10000):04d}"
        birth = dt.date(rng.randint(1960, 1995), rng.randint(1, 12), rng.randint(1, 28))
        return make_id_number(rng, value[:6], birth)
    length = spec.field_type.length
    if length is not None and len(value) + 2 > length:
        return value[:-2] + "ZZ"
    return value + "ZZ"


def _shift(text: str, width: int, days: int) -> str:
    moment = dt.datetime.strptime(text[:8], "%Y%m%d") + dt.timedelta(days=days)
    clock = text[8:14] if len(text) == 14 else "120000"
    return f"{moment:%Y%m%d}" + (clock if width == 14 else "")


def _disordered(table: TableSpec, data: dict[str, str]) -> list[str]:
    """The ``earlier`` field of every pair out of order, compared as the validator compares them."""
    found: list[str] = []
    for order in table.time_order:
        earlier, later = data.get(order.earlier), data.get(order.later)
        if not earlier or not later or not earlier.isdigit() or not later.isdigit():
            continue
        width = min(len(earlier), len(later))
        if earlier[:width] > later[:width] and order.earlier not in found:
            found.append(order.earlier)
    return found


# --- choosing and applying ---


DEFECT_KINDS = (
    "E-FIELD-REQUIRED",
    "E-FIELD-TOO-LONG",
    "E-FIELD-LENGTH",
    "E-FIELD-NUMBER",
    "E-FIELD-NUMBER-PRECISION",
    "E-FIELD-DATETIME",
    "E-FIELD-DATE-IMPOSSIBLE",
    "E-FIELD-CODE",
    "W-FIELD-CODE-PROVISIONAL",
    "E-FIELD-USCC",
    "E-FIELD-REGION",
    "E-DEAL-CODE-FORMAT",
    "W-DEAL-CODE-CHECK",
    "E-XF-CODE-HIERARCHY",
    "E-XF-AMOUNT-NEGATIVE",
    "W-XF-AMOUNT-UNIT-SUSPECT",
    "E-XF-TIME-ORDER",
    "E-XR-DUPLICATE",
    "E-XR-PARENT-MISSING",
    "E-PRIV-PERSONAL",
    "W-FIELD-UNKNOWN",
)


# Findings a defect brings along besides its own: a wrong check character makes another code, which
# the transaction's other records do not carry.
CONSEQUENCES = {"W-DEAL-CODE-CHECK": frozenset({"E-XR-DEAL-CODE-MISMATCH"})}


class DefectInjector:
    """Gives a record one defect of a kind chosen uniformly among those that fit it."""

    def __init__(self, plans: SpecPlans, raw_personal: bool) -> None:
        self.plans = plans
        self.raw_personal = raw_personal
        self._traits: dict[str, TableTraits] = {}
        self.mutations = _Mutations(plans, self.traits)
        m = self.mutations
        self.kinds: dict[str, DefectKind] = {
            "E-FIELD-REQUIRED": DefectKind("E-FIELD-REQUIRED", False, _blank),
            "E-FIELD-TOO-LONG": DefectKind("E-FIELD-TOO-LONG", False, m.too_long),
            "E-FIELD-LENGTH": DefectKind("E-FIELD-LENGTH", False, m.wrong_length),
            "E-FIELD-NUMBER": DefectKind("E-FIELD-NUMBER", False, m.not_a_number),
            "E-FIELD-NUMBER-PRECISION": DefectKind("E-FIELD-NUMBER-PRECISION", False, m.too_precise),
            "E-FIELD-DATETIME": DefectKind("E-FIELD-DATETIME", False, m.bad_datetime),
            "E-FIELD-DATE-IMPOSSIBLE": DefectKind("E-FIELD-DATE-IMPOSSIBLE", False, m.impossible_date),
            "E-FIELD-CODE": DefectKind("E-FIELD-CODE", False, m.outside_code),
            "W-FIELD-CODE-PROVISIONAL": DefectKind("W-FIELD-CODE-PROVISIONAL", True, m.outside_code),
            "E-FIELD-USCC": DefectKind("E-FIELD-USCC", False, m.bad_uscc),
            "E-FIELD-REGION": DefectKind("E-FIELD-REGION", False, m.bad_region),
            "E-DEAL-CODE-FORMAT": DefectKind("E-DEAL-CODE-FORMAT", False, m.broken_deal_code),
            # A wrong check character makes another code: every record of the transaction carries the
            # registered one (E-XR-DEAL-CODE-MISMATCH), so this warning goes only where nothing follows.
            "W-DEAL-CODE-CHECK": DefectKind("W-DEAL-CODE-CHECK", False, m.wrong_check),
            "E-XF-CODE-HIERARCHY": DefectKind("E-XF-CODE-HIERARCHY", False, m.hierarchy),
            "E-XF-AMOUNT-NEGATIVE": DefectKind("E-XF-AMOUNT-NEGATIVE", False, m.negative),
            "W-XF-AMOUNT-UNIT-SUSPECT": DefectKind("W-XF-AMOUNT-UNIT-SUSPECT", True, m.unit_confusion),
            "E-XF-TIME-ORDER": DefectKind("E-XF-TIME-ORDER", False, m.time_order),
            "E-XR-PARENT-MISSING": DefectKind("E-XR-PARENT-MISSING", False, m.orphan),
            "E-PRIV-PERSONAL": DefectKind("E-PRIV-PERSONAL", False, m.raw_personal),
            "W-FIELD-UNKNOWN": DefectKind("W-FIELD-UNKNOWN", True, m.unknown_column),
        }

    def traits(self, table: str) -> TableTraits:
        found = self._traits.get(table)
        if found is None:
            found = self._traits[table] = TableTraits(self.plans.plans[table], self.plans)
        return found

    def options(self, draft: Draft) -> dict[str, tuple[str, ...]]:
        """Every defect kind that fits this record, with the fields it may touch."""
        traits = self.traits(draft.plan.name)
        data = draft.data
        sturdy = not (draft.depended or draft.shared)  # nothing later needs it: errors are allowed
        found: dict[str, tuple[str, ...]] = {}
        for code, names in traits.candidates.items():
            kind = self.kinds[code]
            if (sturdy or kind.warning) and names:
                present = tuple(n for n in names if data.get(n))
                if present:
                    found[code] = present
        if self.raw_personal:
            found.pop("E-PRIV-PERSONAL", None)  # raw values are everywhere already
        if sturdy:
            hierarchy = tuple(n for n, child in traits.hierarchy.items() if data.get(n) and data.get(child))
            if hierarchy:
                found["E-XF-CODE-HIERARCHY"] = hierarchy
            pairs = self._time_pairs(traits, data)
            if pairs:
                found["E-XF-TIME-ORDER"] = pairs
            if draft.op == "insert":
                orphans = tuple(n for n in traits.orphans if data.get(n))
                if orphans:
                    found["E-XR-PARENT-MISSING"] = orphans
        if draft.op == "insert":
            found["E-XR-DUPLICATE"] = ("",)
        found["W-FIELD-UNKNOWN"] = ("",)
        return found

    @staticmethod
    def _time_pairs(traits: TableTraits, data: dict[str, str]) -> tuple[str, ...]:
        pairs = []
        for order in traits.table.time_order:
            earlier, later = data.get(order.earlier), data.get(order.later)
            if not earlier or not later or not earlier.isdigit() or not later.isdigit():
                continue
            if order.earlier in traits.movable_times or order.later in traits.movable_times:
                pairs.append(f"{order.earlier}>{order.later}")
        return tuple(pairs)

    def inject(self, rng: random.Random, draft: Draft) -> Outcome | None:
        """A defective copy of ``draft``'s data and what to expect; None when no defect fits."""
        options = self.options(draft)
        if not options:
            return None
        code = rng.choice(sorted(options))
        data = dict(draft.data)
        if code == "E-XR-DUPLICATE":
            return Outcome(data, [ExpectedFinding("E-XR-DUPLICATE", None)], duplicate=True)
        field_name = rng.choice(options[code])
        self.mutations.table = draft.plan.table
        expected = self.kinds[code].mutate(rng, data, field_name)
        return Outcome(data, expected)
