"""统一交易标识码 across records (Art. 7): one code names one transaction, and every record of a
transaction carries that transaction's code.

What each table says about codes is derived from the specification once (:func:`deal_code_plans`):

* A **registering** table records a transaction and the code it was given: a trade table with one
  (not ';'-listed) code field none of whose links leads to a table whose records already carry a
  transaction's code for certain. SECTION, PURCHASE_PROJECT, DEAL_BEHAVIOR_INFO, the mining
  announcements, LISTING_PUB_INFO, STOCK_LISTING_PUB_INFO, OTHER_TRADE_PUB_INFO, and TENDER_PROJECT,
  whose code is optional (a project without sections is one transaction). Its key is the transaction.
* A record **names its registration** when its fields give the whole key of a registering table
  whose code is required, through its links and same-named fields (a tender list names its SECTION;
  a procurement result its PURCHASE_PROJECT lot by project and lot code). Credit, supervision and
  expert records have no links; one with a single section code names that SECTION.
* A record names a **container** (a tender project, a purchase project) when it links to one that
  holds several transactions; credit and supervision records with a tender-project code and no
  section name that tender project. A registration belongs to a container when it is the container
  itself, or its key extends the container's code by three digits (标段编号 = 招标项目编号 + 3 digits,
  ``E-XF-CODE-HIERARCHY``) or by a further key field (a purchase lot ``P|S``).
* A ';'-separated list of codes (UNIFIED_DEAL_CODES) is checked item by item, and a list of lots
  (BID_SECTION_CODES, PURCHASE_SECTION_CODE) names the registration of each of its items.

Rules (both errors):

* ``E-XR-DEAL-CODE-REUSED``: a registering record whose code another current registration holds,
  unless one contains the other (a tender project and its one section may share the code);
* ``E-XR-DEAL-CODE-MISMATCH``: a record whose code differs from the code its registration was
  given; a code (or list item) that another container's registration holds while none of the
  container it names does; a listed lot whose registered code is missing from the record's list of
  codes. A code nobody has registered yet is not a finding: notices travel on channel 1 and may
  overtake their sections on channel 2.

A code with a structural problem (format, USCC, date) is the field rules' business and is not
looked up. Like every cross-record rule these are order-dependent: a record is checked against the
records accepted before it (docs/architecture.md, "Decisions").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from ggzy.identifiers import DealCodeProblem, deal_code_problems
from ggzy.spec import FieldSpec, InfoClass, Semantic, Spec, TableSpec
from ggzy.validation.findings import Finding, make_finding
from ggzy.validation.lookup import RecordLookup

__all__ = [
    "Container",
    "DealCodePlan",
    "DealCodeWants",
    "Names",
    "check_deal_codes",
    "deal_code_plans",
    "item_semantic",
    "list_items",
    "registered_code",
    "wants",
    "well_formed",
]

Data = Mapping[str, str]


def item_semantic(spec: FieldSpec) -> Semantic | None:
    """What one item of a ';'-separated list field is.

    Until the specification declares item types, a list of 统一交易标识码 is known by its semantic
    and a list of section codes by its name (BID_SECTION_CODES, and 504's multi BID_SECTION_CODE).
    """
    if not spec.multi:
        return None
    if spec.semantic is Semantic.DEAL_CODES:
        return Semantic.DEAL_CODE
    if spec.semantic is not None:
        return spec.semantic
    if spec.name in ("BID_SECTION_CODES", "BID_SECTION_CODE"):
        return Semantic.SECTION_CODE
    return None


def list_items(value: object) -> list[str]:
    """The non-empty items of a ';'-separated value, in order (nothing for a value that is no text)."""
    return [part for part in value.split(";") if part] if isinstance(value, str) else []


@lru_cache(maxsize=65536)
def well_formed(code: str) -> bool:
    """A code of the right structure (its check character may still disagree: a warning by default)."""
    return all(problem is DealCodeProblem.CHECK for problem in deal_code_problems(code))


@dataclass(frozen=True, slots=True)
class Names:
    """How a record's fields give the key of a registering table."""

    table: TableSpec
    fields: tuple[tuple[str | None, str], ...]  # (this record's field, or None for a list item; key field)

    def key(self, data: Data, item: str | None = None) -> str | None:
        values: dict[str, str] = {}
        for child, parent in self.fields:
            value = item if child is None else data.get(child)
            if not value or not isinstance(value, str):
                return None
            values[parent] = value
        return self.table.key_of(values)


@dataclass(frozen=True, slots=True)
class Container:
    """A table holding several transactions, named by one field of the record."""

    table: TableSpec
    field: str  # this record's field holding the container's code
    key_field: str  # the container table's field holding it

    @staticmethod
    def holds(container: str, holder_table: str, holder_key: str, container_table: str) -> bool:
        """Whether the registration ``(holder_table, holder_key)`` belongs to the container ``container``."""
        if holder_key == container or holder_key.startswith(container + "|"):
            return holder_table == container_table or holder_key != container
        suffix = holder_key[len(container) :]
        return holder_key.startswith(container) and len(suffix) == 3 and suffix.isdigit()


@dataclass(frozen=True, slots=True)
class DealCodePlan:
    """What the rules need to know about one table."""

    registers: bool = False
    code_field: str | None = None  # the single code field
    names: Names | None = None
    container: Container | None = None
    list_field: str | None = None  # the ';'-separated code field
    lot_lists: tuple[tuple[str, Names], ...] = ()  # (the ';'-separated lot field, how an item names its lot)

    @property
    def checks(self) -> bool:
        return bool(self.code_field or self.list_field)


@dataclass(slots=True)
class DealCodeWants:
    """What the rules will ask a lookup for one record: heads by key, links, holders by code."""

    keys: list[tuple[str, str]] = field(default_factory=list)
    links: list[tuple[str, str, str]] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)


def _single_code_field(table: TableSpec) -> FieldSpec | None:
    spec = table.field_map.get(table.deal_code or "")
    return spec if spec is not None and not spec.multi else None


def _list_code_field(table: TableSpec) -> FieldSpec | None:
    return next((f for f in table.fields if item_semantic(f) is Semantic.DEAL_CODE), None)


def _code_required(table: TableSpec) -> bool:
    spec = _single_code_field(table)
    return spec is not None and spec.required


def _registers(spec: Spec, table: TableSpec) -> bool:
    if table.info_class is not InfoClass.TRADE or _single_code_field(table) is None:
        return False
    return not any(_code_required(spec.tables[link.table]) for link in table.parents + table.predecessors)


def _names_of(spec: Spec, table: TableSpec, registering: Mapping[str, bool]) -> Names | None:
    own = table.deal_code
    for link in [*table.parents, *table.predecessors]:
        target = spec.tables[link.table]
        if not registering[target.name] or not _code_required(target) or own in link.fields:
            continue
        by_parent = {parent: child for child, parent in link.fields.items()}
        pairs: list[tuple[str | None, str]] = []
        for key_field in target.business_key:
            child = by_parent.get(key_field) or (key_field if key_field in table.field_map else None)
            if child is None or table.field_map[child].multi:
                break
            pairs.append((child, key_field))
        else:
            return Names(target, tuple(pairs))
    if table.parents or table.predecessors:
        return None
    # No links (credit, supervision, expert records): a single section code names its SECTION.
    found = _keyed_by(spec, table, registering, Semantic.SECTION_CODE)
    return Names(found[1], ((found[0], found[2]),)) if found is not None else None


def _keyed_by(
    spec: Spec, table: TableSpec, registering: Mapping[str, bool], semantic: Semantic
) -> tuple[str, TableSpec, str] | None:
    """(this table's single field of ``semantic``, the registering table keyed by such a code, its key)."""
    for name, spec_field in table.field_map.items():
        if spec_field.semantic is not semantic or spec_field.multi:
            continue
        for target in spec.tables.values():
            key = target.business_key
            if registering[target.name] and len(key) == 1 and target.field_map[key[0]].semantic is semantic:
                return name, target, key[0]
    return None


def _container_of(spec: Spec, table: TableSpec, registering: Mapping[str, bool]) -> Container | None:
    for link in table.parents:
        target = spec.tables[link.table]
        if not registering[target.name] or len(link.fields) != 1:
            continue
        ((child, parent),) = link.fields.items()
        partial = target.business_key != [parent]
        if not _code_required(target) or partial:
            return Container(target, child, parent)
    if table.parents or table.predecessors:
        return None
    found = _keyed_by(spec, table, registering, Semantic.TENDER_PROJECT_CODE)
    return Container(found[1], found[0], found[2]) if found is not None else None


def _lot_lists(
    spec: Spec, table: TableSpec, registering: Mapping[str, bool]
) -> tuple[tuple[str, Names], ...]:
    found: list[tuple[str, Names]] = []
    for spec_field in table.fields:
        if not spec_field.multi or item_semantic(spec_field) is Semantic.DEAL_CODE:
            continue
        for target in spec.tables.values():
            if not registering[target.name] or not _code_required(target):
                continue
            pairs: list[tuple[str | None, str]] = []
            listed = False
            for key_field in target.business_key:
                key_spec = target.field_map[key_field]
                is_item = key_field == spec_field.name or (
                    item_semantic(spec_field) is not None and key_spec.semantic is item_semantic(spec_field)
                )
                if is_item and not listed:
                    pairs.append((None, key_field))
                    listed = True
                elif key_field in table.field_map and not table.field_map[key_field].multi:
                    pairs.append((key_field, key_field))
                else:
                    break
            else:
                if listed:
                    found.append((spec_field.name, Names(target, tuple(pairs))))
                    break
    return tuple(found)


_PLANS: dict[int, tuple[Spec, dict[str, DealCodePlan]]] = {}


def deal_code_plans(spec: Spec) -> dict[str, DealCodePlan]:
    """The plan of every table of ``spec``, built once per specification."""
    cached = _PLANS.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    registering = {name: _registers(spec, table) for name, table in spec.tables.items()}
    plans: dict[str, DealCodePlan] = {}
    for name, table in spec.tables.items():
        single, listed = _single_code_field(table), _list_code_field(table)
        if single is None and listed is None:
            plans[name] = DealCodePlan()
            continue
        plans[name] = DealCodePlan(
            registers=registering[name],
            code_field=single.name if single is not None else None,
            names=None if registering[name] else _names_of(spec, table, registering),
            container=_container_of(spec, table, registering),
            list_field=listed.name if listed is not None else None,
            lot_lists=_lot_lists(spec, table, registering) if listed is not None else (),
        )
    _PLANS[id(spec)] = (spec, plans)
    return plans


def registered_code(plan: DealCodePlan, op: str, data: Data) -> str | None:
    """The code a registering record gives its transaction (None for other records and deletions)."""
    if not plan.registers or op == "delete" or plan.code_field is None:
        return None
    return data.get(plan.code_field) or None


def _text(data: Mapping[str, object], name: str | None) -> str | None:
    value = data.get(name) if name else None
    return value if isinstance(value, str) and value else None


def wants(plan: DealCodePlan, data: Mapping[str, object]) -> DealCodeWants:
    """What :func:`check_deal_codes` will ask about a record, for a lookup to read in advance.

    ``data`` is as received: a value that is no text is left to the structure rules.
    """
    wanted = DealCodeWants()
    code = _text(data, plan.code_field)
    if code and well_formed(code):
        wanted.codes.append(code)
        if plan.names is not None and not plan.registers:
            key = plan.names.key(data)  # type: ignore[arg-type]  # non-text values give no key
            if key is not None:
                wanted.keys.append((plan.names.table.name, key))
    container = plan.container
    value = _text(data, container.field) if container is not None else None
    if container is not None and value:
        wanted.links.append((container.table.name, container.key_field, value))
    if plan.list_field:
        wanted.codes.extend(c for c in list_items(data.get(plan.list_field)) if well_formed(c))
        for name, names in plan.lot_lists:
            for item in list_items(data.get(name)):
                key = names.key(data, item)  # type: ignore[arg-type]
                if key is not None:
                    wanted.keys.append((names.table.name, key))
    return wanted


def _zh(table: TableSpec, name: str) -> str:
    spec = table.field_map.get(name)
    return spec.name_zh if spec is not None else name


def _mismatch(table: TableSpec, name: str, value: str, detail: str) -> Finding:
    return make_finding("E-XR-DEAL-CODE-MISMATCH", name, value, name_zh=_zh(table, name), detail=detail)


def _holders(lookup: RecordLookup, code: str) -> list[tuple[str, str]]:
    return sorted(lookup.deal_code_holders(code))


def _container_known(lookup: RecordLookup, container: Container, value: str) -> bool:
    return any(True for _ in lookup.find(container.table.name, container.key_field, value))


def _reused(
    spec: Spec, table: TableSpec, plan: DealCodePlan, key: str, code: str, data: Data, lookup: RecordLookup
) -> list[Finding]:
    container = plan.container
    mine = data.get(container.field) if container is not None else None
    for holder_table, holder_key in _holders(lookup, code):
        if (holder_table, holder_key) == (table.name, key):
            continue
        # The record's own container holds it (a tender project sharing its one section's code) …
        if container is not None and mine and holder_table == container.table.name and holder_key == mine:
            continue
        # … or the record is the container of the holder.
        if Container.holds(key, holder_table, holder_key, table.name) and holder_table != table.name:
            continue
        holder = spec.tables.get(holder_table)
        assert plan.code_field is not None
        return [
            make_finding(
                "E-XR-DEAL-CODE-REUSED",
                plan.code_field,
                code,
                name_zh=_zh(table, plan.code_field),
                holder_zh=holder.name_zh if holder is not None else holder_table,
                holder=holder_key,
            )
        ]
    return []


def _foreign_holder(lookup: RecordLookup, container: Container, value: str, code: str) -> str | None:
    """The registration of another container holding ``code``, when none of this container holds it.

    A code nobody holds yet is not a finding: its section may still be on its way (a notice may
    travel on channel 1 before its sections on channel 2).
    """
    holders = _holders(lookup, code)
    if not holders or any(Container.holds(value, t, k, container.table.name) for t, k in holders):
        return None
    return holders[0][1]


def _container_detail(container: Container, value: str, other: str) -> str:
    return f"不属于{container.table.name_zh}“{value}”，已是另一交易“{other}”的统一交易标识码"


def check_deal_codes(
    spec: Spec, table: TableSpec, plan: DealCodePlan, key: str, data: Data, lookup: RecordLookup
) -> list[Finding]:
    """``E-XR-DEAL-CODE-REUSED`` and ``E-XR-DEAL-CODE-MISMATCH`` for one record (not a deletion)."""
    found: list[Finding] = []
    code = data.get(plan.code_field) if plan.code_field else None
    container = plan.container
    value = data.get(container.field) if container is not None else None
    if code and well_formed(code):
        assert plan.code_field is not None
        if plan.registers:
            found.extend(_reused(spec, table, plan, key, code, data, lookup))
        elif plan.names is not None and (named := plan.names.key(data)) is not None:
            held = lookup.current(plan.names.table.name, named)
            if held is not None and not held.deleted and held.deal_code and held.deal_code != code:
                detail = f"与{plan.names.table.name_zh}“{named}”登记的统一交易标识码“{held.deal_code}”不一致"
                found.append(_mismatch(table, plan.code_field, code, detail))
        elif container is not None and value and _container_known(lookup, container, value):
            other = _foreign_holder(lookup, container, value, code)
            if other is not None:
                found.append(
                    _mismatch(table, plan.code_field, code, _container_detail(container, value, other))
                )
    if plan.list_field and container is not None and value and _container_known(lookup, container, value):
        items = list_items(data.get(plan.list_field))
        for item in dict.fromkeys(items):
            if not well_formed(item):
                continue
            other = _foreign_holder(lookup, container, value, item)
            if other is not None:
                found.append(
                    _mismatch(table, plan.list_field, item, _container_detail(container, value, other))
                )
        listed = set(items)
        # A list with a malformed code is the field rules' business (which lot it meant is unknown), and
        # an empty list is the required rule's business.
        lots = plan.lot_lists if items and all(well_formed(item) for item in items) else ()
        for name, names in lots:
            for lot in dict.fromkeys(list_items(data.get(name))):
                lot_key = names.key(data, lot)
                held = lookup.current(names.table.name, lot_key) if lot_key is not None else None
                if held is None or held.deleted or not held.deal_code or held.deal_code in listed:
                    continue
                detail = (
                    f"未列出{names.table.name_zh}“{lot}”登记的统一交易标识码“{held.deal_code}”"
                    f"（{name}列出了该{names.table.name_zh}）"
                )
                found.append(_mismatch(table, plan.list_field, data.get(plan.list_field, ""), detail))
    return found
