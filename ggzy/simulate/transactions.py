"""Whole transactions through their stages, and the subject, expert, credit and supervision records around them.

A transaction's tables come from the specification: the trading tables of a domain that are joined
by ``parents``/``predecessors`` links form one kind of transaction (工程建设: 项目 → 招标项目 → 标段 …;
矿业权: 出让公告 → 出让结果 …), taken in ``stage`` order. Every link of a record is satisfied by copying
the values of an earlier record of the same transaction, or of a subject or expert record made for
the same party, so the output passes the cross-record checks.

One :class:`Batch` is one transaction with everything it brings along: the 法人 and 专家 records of
subjects and experts seen for the first time, a few credit and supervision records about its
parties, attachments, and now and then a corrective update.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field

from ggzy.identifiers import make_deal_code
from ggzy.simulate import names
from ggzy.simulate.values import (
    FillerFactory,
    Lot,
    Party,
    Person,
    ProvinceSystems,
    RecordContext,
    Scene,
    TablePlan,
    industry_code,
    make_party,
    make_person,
)
from ggzy.spec import Domain, InfoClass, Kind, Link, Privacy, Regions, Semantic, Spec
from ggzy.validation.dealcodes import item_semantic

__all__ = ["TRADING_DOMAINS", "Batch", "BatchBuilder", "Draft", "SpecPlans", "World"]

TRADING_DOMAINS = (
    Domain.CONSTRUCTION,
    Domain.PROCUREMENT,
    Domain.LAND,
    Domain.MINING,
    Domain.PROPERTY,
    Domain.OTHER,
)
# Tables every transaction of their kind goes through; the others happen now and then.
_CORE_TABLES = frozenset(
    {
        "PROJECT", "TENDER_PROJECT", "SECTION", "TENDER_ANN_QUA_INQUERY_ANN", "BID_OPENING_RECORD", "TENDER_LIST",
        "BID_EVALUATION_EXPERT", "EVALUATION_REPORT", "TENDER_CANDIDATE", "TENDER_CANDIDATE_ANNOUNCE",
        "WIN_RESULT_ANNO", "CONTRACT_PERFORMANCE", "PURCHASE_PROJECT", "PURCHASE_QUALI_INQUERY_ANN",
        "PURCHASE_BIDDING_RECORD", "PURCHASE_TENDER_LIST", "BID_DEAL_ANNOUNCE", "PURCHASE_CONTRACT",
        "DEAL_BEHAVIOR_INFO", "DEAL_LAND_INFO", "LISTING_PUB_INFO", "TRADE_RESULT_INFO", "STOCK_LISTING_PUB_INFO",
        "TRANSFER_ENTE_INFO", "TRANSFER_ENTE_HAREHOLDER", "STOCK_TRADE_RESULT_INFO", "OTHER_TRADE_PUB_INFO",
        "OTHER_TRADE_RESULT_INFO", "EXPLOR_BID_AUC_TRANS_RES_ANN", "MINING_BID_AUC_TRANS_RES_ANN",
    }
)  # fmt: skip
_OPTIONAL_RATES = {"TENDER_FILE_CLARI_MODI": 0.3, "CORRECTION_ITEM": 0.25, "TENDER_ABNORMITY_REPORT": 0.04}
_DEFAULT_OPTIONAL_RATE = 0.12
# Tables with one record per participant rather than one per lot or transaction.
_PARTICIPANTS = {
    "TENDER_LIST": "bidders",
    "PURCHASE_TENDER_LIST": "bidders",
    "TENDER_INVITATION": "bidders",
    "QUALI_INQUERY_APP_FILE": "bidders",
    "LETTER_OF_GUARANTEE": "bidders",
    "BID_DOC_CHARACT_CODE": "bidders",
    "TENDER_EVALUATION": "bidders",
    "TENDER_CANDIDATE": "candidates",
    "BID_EVALUATION_EXPERT": "experts",
    "TRANSFER_ENTE_HAREHOLDER": "shareholders",
}
# The column that names a lot (子包) in domains whose lots have no section_code semantic.
_LOT_FIELDS = {Domain.PROCUREMENT: "PURCHASE_SECTION_CODE"}
_LOT_COUNTS = {Domain.CONSTRUCTION: (1, 3), Domain.PROCUREMENT: (1, 2)}
_BIDDER_COUNTS = {Domain.CONSTRUCTION: (3, 7), Domain.PROCUREMENT: (3, 5)}
_AMOUNT_RANGES = {  # log10 of a lot's amount in 元
    Domain.CONSTRUCTION: (5.3, 8.5),
    Domain.PROCUREMENT: (4.7, 7.3),
    Domain.LAND: (6.5, 9.3),
    Domain.MINING: (6.0, 8.7),
    Domain.PROPERTY: (5.5, 8.5),
    Domain.OTHER: (4.5, 7.0),
}
_BIDDER_KINDS = {
    Domain.CONSTRUCTION: names.CompanyKind.CONSTRUCTION,
    Domain.PROCUREMENT: names.CompanyKind.SUPPLIER,
    Domain.LAND: names.CompanyKind.INVESTOR,
    Domain.MINING: names.CompanyKind.MINING,
    Domain.PROPERTY: names.CompanyKind.INVESTOR,
    Domain.OTHER: names.CompanyKind.SUPPLIER,
}
_CLASS_PREFIXES = {
    Domain.CONSTRUCTION: ("A0",),
    Domain.PROCUREMENT: ("D",),
    Domain.LAND: ("B",),
    Domain.MINING: ("C",),
    Domain.PROPERTY: ("E",),
    Domain.OTHER: ("A99",),
}
_CODE_PREFIXES = {
    Domain.PROCUREMENT: "ZC",
    Domain.LAND: "TD",
    Domain.MINING: "KY",
    Domain.PROPERTY: "CQ",
    Domain.OTHER: "QT",
}
# Master data: one record per subject or person, made the first time it appears.
_COMPANY_MASTER = "LEGAL_PERSON_BASE"
_EXPERT_MASTERS = {Domain.CONSTRUCTION: "EXPERT_BID_EVALUATION", Domain.PROCUREMENT: "EXPERT_EVALUATION"}
_EXTENSIONS = {
    (Domain.CONSTRUCTION, "owner"): "TENDER_EX_INFO",
    (Domain.CONSTRUCTION, "agency"): "TENDER_AGENT_EX_INFO",
    (Domain.CONSTRUCTION, "bidder"): "TENDERER_EX_INFO",
    (Domain.PROCUREMENT, "owner"): "PURCHASE_EX_INFO",
    (Domain.PROCUREMENT, "agency"): "PURCHASE_AGENT_EX_INFO",
    (Domain.PROCUREMENT, "bidder"): "SUPPLIER_EX_INFO",
    (Domain.LAND, "owner"): "TRANSFEROR_EX_INFO",
    (Domain.LAND, "bidder"): "ASSIGNEE_EX_INFO",
    (Domain.MINING, "owner"): "TRANSFEROR_EX_INFO",
    (Domain.MINING, "bidder"): "BIDER_EX_INFO",
    (Domain.PROPERTY, "owner"): "TRANSFEROR_EX_INFO",
    (Domain.PROPERTY, "bidder"): "ASSIGNEE_EX_INFO",
}
_HIERARCHY_SEMANTICS = frozenset({Semantic.PROJECT_CODE, Semantic.TENDER_PROJECT_CODE, Semantic.SECTION_CODE})
_UPDATE_RATE = 0.03
_ATTACHMENT_RATE = 0.04


@dataclass(slots=True)
class Draft:
    """A record before it is put in its envelope (and perhaps given a defect)."""

    plan: TablePlan
    data: dict[str, str]
    moment: dt.datetime  # when it happened
    published: dt.datetime  # its local publication time (the envelope's published_at)
    op: str = "insert"
    shared: bool = False  # master data that later transactions may refer to
    depended: bool = False  # a later record refers to it: it must stay acceptable


@dataclass(frozen=True, slots=True)
class Step:
    plan: TablePlan
    per_lot: bool
    participants: str | None
    rate: float


@dataclass(frozen=True, slots=True)
class Flow:
    """One kind of transaction of a domain: its steps in stage order."""

    domain: Domain
    steps: tuple[Step, ...]


class SpecPlans:
    """What the simulator derives from a specification once: table plans, flows, side tables."""

    def __init__(self, spec: Spec) -> None:
        factory = FillerFactory(spec)
        self.spec = spec
        self.plans = {name: TablePlan(table, factory) for name, table in spec.tables.items()}
        referenced: dict[str, set[str]] = defaultdict(set)
        for table in spec.tables.values():
            for link in table.parents + table.predecessors:
                referenced[link.table].update(link.fields.values())
        self.referenced = {name: frozenset(referenced.get(name, ())) for name in spec.tables}
        self.trading = frozenset(n for n, t in spec.tables.items() if t.info_class is InfoClass.TRADE)
        self.shared = frozenset(n for n in spec.tables if n not in self.trading and self.referenced[n])
        self.attachments = {t.domain.value: n for n, t in spec.tables.items() if t.attachments}
        self.flows = self._flows()
        special = {_COMPANY_MASTER, *_EXPERT_MASTERS.values(), *_EXTENSIONS.values()}
        self.side_tables = tuple(
            n
            for n, t in sorted(spec.tables.items(), key=lambda item: int(item[1].data_no))
            if n not in self.trading and n not in special and not t.attachments
        )
        self.editable = {n: self._editable(n) for n in spec.tables}

    def _flows(self) -> dict[Domain, list[tuple[Flow, int]]]:
        flows: dict[Domain, list[tuple[Flow, int]]] = {}
        for domain in TRADING_DOMAINS:
            members = [
                n
                for n, t in self.spec.tables.items()
                if t.domain is domain and n in self.trading and not t.attachments
            ]
            flows[domain] = [(self._flow(domain, group), len(group)) for group in self._components(members)]
        return flows

    def _components(self, members: list[str]) -> list[list[str]]:
        """Tables joined by links: each group is one kind of transaction."""
        group_of = {name: {name} for name in members}
        for name in members:
            table = self.spec.tables[name]
            for link in table.parents + table.predecessors:
                if link.table in group_of and group_of[link.table] is not group_of[name]:
                    merged = group_of[name] | group_of[link.table]
                    for member in merged:
                        group_of[member] = merged
        unique = {id(g): g for g in group_of.values()}
        return [sorted(g) for g in unique.values()]

    def _flow(self, domain: Domain, group: list[str]) -> Flow:
        tables = self.spec.tables

        def rank(name: str) -> tuple[int, int]:
            stage = tables[name].stage
            return (stage if stage is not None else 1000, int(tables[name].data_no))

        ordered: list[str] = []
        pending = sorted(group, key=rank)
        while pending:  # stage order, but never a table before the tables it links to
            for name in pending:
                needs = {link.table for link in tables[name].parents + tables[name].predecessors}
                if not (needs & set(pending)) or needs <= {name}:
                    ordered.append(name)
                    pending.remove(name)
                    break
            else:
                ordered.extend(pending)
                break
        needed = {ordered[0], *(n for n in ordered if n in _CORE_TABLES)}
        grown = True
        while grown:  # a table a core table links to is core as well, or the core table could not be made
            linked = {link.table for n in needed for link in tables[n].parents + tables[n].predecessors}
            grown = bool((linked & set(ordered)) - needed)
            needed |= linked & set(ordered)
        steps = []
        for name in ordered:
            rate = 1.0 if name in needed else _OPTIONAL_RATES.get(name, _DEFAULT_OPTIONAL_RATE)
            steps.append(Step(self.plans[name], self._per_lot(domain, name), _PARTICIPANTS.get(name), rate))
        return Flow(domain, tuple(steps))

    def _per_lot(self, domain: Domain, name: str) -> bool:
        lot_field = _LOT_FIELDS.get(domain)
        for spec in self.spec.tables[name].fields:
            if spec.multi:
                continue
            if spec.semantic is Semantic.SECTION_CODE or spec.name == lot_field:
                return True
        return False

    def _editable(self, name: str) -> tuple[str, ...]:
        """Free-text fields an update may change without touching keys, links or checks."""
        table = self.spec.tables[name]
        linked = {f for link in table.parents + table.predecessors for f in link.fields}
        fixed = set(table.business_key) | linked | self.referenced[name] | self.plans[name].amount_fields
        fixed |= {f for rule in table.conditional_required for f in (rule.when, *rule.then)}
        return tuple(
            f.name
            for f in table.fields
            if f.field_type.kind is Kind.TEXT
            and not f.field_type.fixed
            and (f.field_type.length is None or f.field_type.length >= 30)
            and f.semantic is None
            and item_semantic(f) is None  # a list of sections is codes, not free text
            and f.codelist is None
            and f.privacy is Privacy.NONE
            and f.name not in fixed
        )


class World:
    """What outlives one transaction: subjects and experts, keys in use, serial numbers."""

    def __init__(
        self, plans: SpecPlans, rng: random.Random, systems: ProvinceSystems, regions: Regions
    ) -> None:
        self.plans = plans
        self.rng = rng
        self.systems = systems
        self.province = systems.province
        self.province_name = regions.provinces().get(self.province, self.province)
        prefectures = sorted(regions.prefectures(self.province).items())
        self.prefectures = prefectures or [(self.province + "0000", self.province_name)]
        self.keys: dict[str, set[str]] = defaultdict(set)
        self.masters: dict[tuple[str, str, str], Draft] = {}
        self.registered: set[tuple[str, str]] = set()
        self.serials: Iterator[int] = itertools.count(1)
        self.day_serials: dict[tuple[str, dt.date], int] = defaultdict(int)
        self.pools: dict[str, list[Party]] = defaultdict(list)
        self.experts: list[Person] = []
        self.people: list[Person] = []

    def place(self) -> tuple[str, str, str]:
        """A county-level (or prefecture) code, its prefecture code and the prefecture's name."""
        prefecture, name = self.rng.choice(self.prefectures)
        if prefecture.endswith("0000") or self.rng.random() < 0.3:
            return prefecture, prefecture, name
        return f"{prefecture[:4]}{self.rng.randint(1, 20):02d}", prefecture, name

    def company(self, kind: str, new_rate: float = 0.35) -> Party:
        pool = self.pools[kind]
        if pool and self.rng.random() > new_rate:
            return self.rng.choice(pool)
        region, _, prefecture_name = self.place()
        place = names.short_place(prefecture_name if self.rng.random() < 0.6 else self.province_name)
        party = make_party(
            self.rng,
            names.company_name(self.rng, place, kind),
            region,
            self.province_name,
            prefecture_name,
            False,
        )
        pool.append(party)
        return party

    def public_body(
        self, pool_name: str, name: str, prefecture: str, prefecture_name: str, size: int
    ) -> Party:
        """Public bodies (bureaus, trading centres) are few: a small pool per prefecture."""
        pool = self.pools[f"{pool_name}:{prefecture}"]
        if len(pool) >= size:
            return self.rng.choice(pool)
        party = make_party(self.rng, name, prefecture, self.province_name, prefecture_name, True)
        pool.append(party)
        return party

    def person(self, pool: list[Person], region: str, prefecture_name: str, reuse: float) -> Person:
        if len(pool) >= 20 and self.rng.random() < reuse:
            return self.rng.choice(pool)
        person = make_person(self.rng, region, self.province_name, prefecture_name)
        pool.append(person)
        return person

    def deal_code(self, trade_class: str, platform: str, day: dt.date) -> str:
        self.day_serials[(platform, day)] += 1
        return make_deal_code(trade_class, platform, day, self.day_serials[(platform, day)])

    def project_serial(self, region: str, day: dt.date) -> int:
        self.day_serials[(region, day)] += 1
        return self.day_serials[(region, day)]


@dataclass(slots=True)
class Batch:
    domain: Domain
    drafts: list[Draft] = field(default_factory=list)


class BatchBuilder:
    """Makes one transaction and what comes with it, as a list of drafts in time order."""

    def __init__(
        self, world: World, allowed: Collection[str], raw_personal: bool, layout_step: dt.timedelta
    ) -> None:
        self.world = world
        self.plans = world.plans
        self.rng = world.rng
        self.allowed = frozenset(allowed)
        self.raw_personal = raw_personal
        self.layout_step = layout_step
        self.trade_classes = self._trade_classes()
        self.begin = dt.datetime(2000, 1, 1)
        self._reset()

    def _reset(self) -> None:
        self.drafts: list[Draft] = []
        self.index: dict[tuple[str, str, str], list[Draft]] = defaultdict(list)
        self.latest: dict[tuple[str, int], Draft] = {}
        self.latest_any: dict[str, Draft] = {}

    def _trade_classes(self) -> dict[Domain, tuple[str, ...]]:
        listed = self.plans.spec.codelists.get("TRADE_CLASS")
        values = tuple(listed.values) if listed else ()
        classes: dict[Domain, tuple[str, ...]] = {}
        for domain, prefixes in _CLASS_PREFIXES.items():
            chosen = tuple(v for v in values if (v.startswith(prefixes) and v != "A99") or v in prefixes)
            classes[domain] = chosen or (prefixes[0].ljust(3, "1")[:3],)
        return classes

    # --- the scene ---

    def new_scene(self, domain: Domain, day: dt.date) -> Scene:
        world, rng = self.world, self.rng
        region, prefecture, prefecture_name = world.place()
        place = names.short_place(prefecture_name)
        project_name, section = names.project_name(rng, domain.value, place)
        industry = industry_code(rng, section)
        platform = rng.choice(world.systems.platform_codes)
        trade_class = rng.choice(self.trade_classes[domain])
        if domain is Domain.CONSTRUCTION:
            project_code = f"{section}{region}{day:%y%m%d}{world.project_serial(region, day):04d}"
            tender_project_code = project_code + "001"
        else:
            serial = world.project_serial(f"{_CODE_PREFIXES[domain]}{region}", day.replace(month=1, day=1))
            project_code = f"{_CODE_PREFIXES[domain]}{region}{day.year}{serial:05d}"
            tender_project_code = ""
        owner = self._owner(domain, prefecture, prefecture_name, place)
        agency = world.company(names.CompanyKind.AGENCY, 0.2)
        center_name = f"{prefecture_name}公共资源交易中心"
        center = world.public_body("center", center_name, prefecture, prefecture_name, 1)
        dept = world.public_body("dept", names.government_name(rng, place), prefecture, prefecture_name, 4)
        low_lots, high_lots = _LOT_COUNTS.get(domain, (1, 1))
        lots = []
        for index in range(rng.randint(low_lots, high_lots)):
            lots.append(
                self._lot(
                    domain, index, project_name, project_code, tender_project_code, trade_class, platform, day
                )
            )
        target = world.company(names.CompanyKind.INVESTOR) if domain is Domain.PROPERTY else owner
        scene = Scene(
            domain=domain.value,
            trade_class=trade_class,
            platform_code=platform,
            trade_plat=rng.choice(world.systems.trade_plats),
            province=world.province,
            province_name=world.province_name,
            region=region,
            prefecture=prefecture,
            prefecture_name=prefecture_name,
            project_name=project_name,
            industry=industry,
            project_code=project_code,
            tender_project_code=tender_project_code,
            owner=owner,
            agency=agency,
            center=center,
            dept=dept,
            target=target,
            lots=lots,
            year=day.year,
        )
        if domain is Domain.PROPERTY:
            holders = _unique(world.company(names.CompanyKind.INVESTOR) for _ in range(rng.randint(2, 4)))
            scene.shareholders = [p for p in holders if p.code != target.code]
        return scene

    def _owner(self, domain: Domain, prefecture: str, prefecture_name: str, place: str) -> Party:
        world, rng = self.world, self.rng
        if domain in (Domain.LAND, Domain.MINING):
            return world.public_body("land", f"{place}自然资源和规划局", prefecture, prefecture_name, 1)
        if domain is Domain.PROPERTY:
            return world.company(names.CompanyKind.INVESTOR)
        return world.public_body("owner", names.government_name(rng, place), prefecture, prefecture_name, 12)

    def _lot(
        self,
        domain: Domain,
        index: int,
        project_name: str,
        project_code: str,
        tender_project_code: str,
        trade_class: str,
        platform: str,
        day: dt.date,
    ) -> Lot:
        world, rng = self.world, self.rng
        if domain is Domain.CONSTRUCTION:
            code, name = f"{tender_project_code}{index + 1:03d}", f"{project_name}第{index + 1}标段"
        elif domain is Domain.PROCUREMENT:
            code, name = f"{project_code}-{index + 1:02d}", f"{project_name}第{index + 1}包"
        else:
            code, name = project_code, project_name
        low, high = _BIDDER_COUNTS.get(domain, (1, 3))
        kind = _BIDDER_KINDS[domain]
        bidders: dict[str, Party] = {}
        for _ in range(rng.randint(low, high) * 2):  # distinct companies: a subject bids once per lot
            party = world.company(kind)
            bidders.setdefault(party.code, party)
            if len(bidders) >= high:
                break
        experts: list[Person] = []
        if domain is Domain.CONSTRUCTION:
            seen: set[str] = set()
            while len(experts) < 5:
                region, _, prefecture_name = world.place()
                expert = world.person(world.experts, region, prefecture_name, 0.8)
                if expert.id_number not in seen:
                    seen.add(expert.id_number)
                    experts.append(expert)
        low_amount, high_amount = _AMOUNT_RANGES[domain]
        return Lot(
            index=index,
            code=code,
            name=name,
            deal_code=world.deal_code(trade_class, platform, day),
            amount_yuan=round(10 ** rng.uniform(low_amount, high_amount), 2),
            bidders=list(bidders.values()),
            experts=experts,
        )

    # --- the batch ---

    def build(self, flow: Flow, begin: dt.datetime, end: dt.datetime) -> Batch:
        """One transaction of ``flow`` placed in the time window [begin, end)."""
        self._reset()
        rng = self.rng
        steps = [s for s in flow.steps if s.rate >= 1.0 or rng.random() < s.rate]
        window = end - begin
        # Days between stages; the side records and corrections follow within a few hours.
        gaps = [dt.timedelta(hours=rng.uniform(2, 72)) for _ in range(max(len(steps) - 1, 0))]
        tail = dt.timedelta(hours=rng.uniform(1, 8))
        total = sum(gaps, tail)
        limit = window * 0.6
        if total > limit:
            gaps = [gap * (limit / total) for gap in gaps]
            tail = tail * (limit / total)
            total = limit
        margin = min(dt.timedelta(hours=2), window * 0.05)
        room = max(window - total - 2 * margin, dt.timedelta())
        start = begin + margin + room * rng.random()
        scene = self.new_scene(flow.domain, start.date())
        ctx = RecordContext(rng, self.world.systems, self.world.serials, scene, self.raw_personal)
        trading_allowed = flow.domain.value in self.allowed
        self.begin = begin
        if trading_allowed:
            self._register_subjects(ctx, flow.domain, start)
        moment = start
        for position, step in enumerate(steps):
            gap = gaps[position] if position < len(gaps) else tail
            if trading_allowed:
                self._run_step(ctx, step, moment, gap)
            if position < len(gaps):
                moment += gap
        self._side_records(ctx, moment + tail * 0.3, tail * 0.4)
        self._updates(ctx, moment + tail * 0.9)
        self._mark_dependents()
        return Batch(flow.domain, self.drafts)

    def _register_subjects(self, ctx: RecordContext, domain: Domain, moment: dt.datetime) -> None:
        """法人 records for subjects seen for the first time, 专家 records for new experts."""
        scene = ctx.scene
        roles: list[tuple[Party, str]] = [(scene.owner, "owner"), (scene.agency, "agency")]
        roles += [(p, "bidder") for lot in scene.lots for p in lot.bidders]
        if domain is Domain.PROPERTY:
            roles += [(scene.target, "target")] + [(p, "shareholder") for p in scene.shareholders]
        subjects = Domain.SUBJECT.value in self.allowed
        for party, role in roles:
            ctx.focus(scene.lots[0], party=party)
            ctx.role = role
            if subjects:
                self._master(_COMPANY_MASTER, party.code, ctx, moment)
            extension = _EXTENSIONS.get((domain, role))
            if subjects and extension in self.plans.plans and self.rng.random() < 0.5:
                self._master(extension, party.code, ctx, moment)
        expert_master = _EXPERT_MASTERS.get(domain)
        if Domain.EXPERT.value in self.allowed and expert_master in self.plans.plans:
            for lot in scene.lots:
                for expert in lot.experts:
                    ctx.focus(lot, person=expert)
                    self._master(expert_master, expert.id_number, ctx, moment)

    def _master(self, table: str | None, identity: str, ctx: RecordContext, moment: dt.datetime) -> None:
        if table is None or table not in self.plans.plans or (table, identity) in self.world.registered:
            return
        self.world.registered.add((table, identity))
        earlier = max(self.begin, moment - dt.timedelta(minutes=self.rng.randint(1, 60)))
        self.make(self.plans.plans[table], ctx, earlier)

    def _run_step(self, ctx: RecordContext, step: Step, moment: dt.datetime, gap: dt.timedelta) -> None:
        instances = list(self._instances(ctx.scene, step))
        spacing = min(gap * 0.3 / max(len(instances), 1), dt.timedelta(minutes=10))
        for position, (lot, party, person, ordinal) in enumerate(instances):
            ctx.focus(lot, party, person, ordinal)
            self.make(step.plan, ctx, moment + spacing * position)

    def _instances(self, scene: Scene, step: Step) -> Iterator[tuple[Lot, Party | None, Person | None, int]]:
        lots = scene.lots if step.per_lot else scene.lots[:1]
        for lot in lots:
            if step.participants == "bidders":
                pool = (
                    lot.bidders if step.per_lot else _unique(p for each in scene.lots for p in each.bidders)
                )
                for rank, party in enumerate(pool, 1):
                    yield lot, party, None, rank
            elif step.participants == "candidates":
                for rank, party in enumerate(lot.bidders[:3], 1):
                    yield lot, party, None, rank
            elif step.participants == "experts":
                for rank, expert in enumerate(lot.experts, 1):
                    yield lot, None, expert, rank
            elif step.participants == "shareholders":
                for rank, party in enumerate(scene.shareholders, 1):
                    yield lot, party, None, rank
            else:
                yield lot, None, None, 1

    def _side_records(self, ctx: RecordContext, moment: dt.datetime, gap: dt.timedelta) -> None:
        """A few subject, expert, credit or supervision records about the transaction's parties.

        Records about this very transaction (its sections, by 招标项目编号/标段编号) are the more
        likely ones: supervisors and credit systems report on the projects they follow.
        """
        rng = self.rng
        scene = ctx.scene
        candidates = [n for n in self.plans.side_tables if self._fits(n, scene)]
        if not candidates:
            return
        weights = [3 if self._names_codes(n) else 1 for n in candidates]
        count = sum(1 for chance in (0.7, 0.35, 0.15) if rng.random() < chance)
        if scene.domain not in self.allowed:
            count = max(count, 1)  # only side records are wanted: every batch has at least one
        for position in range(count):
            name = rng.choices(candidates, weights)[0]
            lot = rng.choice(scene.lots)
            party = rng.choice(lot.bidders)
            person = self._person_for(name, scene, lot)
            ctx.focus(lot, party, person)
            self.make(self.plans.plans[name], ctx, moment + gap * (0.5 * position))

    def _names_codes(self, name: str) -> bool:
        """Whether a table names construction codes (招标项目编号, 标段编号)."""
        return any(
            f.semantic in _HIERARCHY_SEMANTICS and not f.multi for f in self.plans.spec.tables[name].fields
        )

    def _fits(self, name: str, scene: Scene) -> bool:
        table = self.plans.spec.tables[name]
        if table.domain.value not in self.allowed:
            return False
        return bool(scene.tender_project_code) or not self._names_codes(name)

    def _person_for(self, name: str, scene: Scene, lot: Lot) -> Person | None:
        table = self.plans.spec.tables[name]
        if not any(f.semantic is Semantic.ID_NUMBER for f in table.fields):
            return None
        if table.domain is Domain.EXPERT:
            if lot.experts:
                return self.rng.choice(lot.experts)
            return self.world.person(self.world.experts, scene.region, scene.prefecture_name, 0.8)
        return self.world.person(self.world.people, scene.region, scene.prefecture_name, 0.5)

    def _updates(self, ctx: RecordContext, moment: dt.datetime) -> None:
        """Now and then a record is corrected later: same key, changed free text."""
        for draft in list(self.drafts):
            editable = self.plans.editable[draft.plan.name]
            if draft.op != "insert" or not editable or self.rng.random() >= _UPDATE_RATE:
                continue
            name = self.rng.choice(editable)
            data = dict(draft.data)
            spec = draft.plan.table.field_map[name]
            limit = spec.field_type.length
            changed = "（更正）" + data.get(name, "")
            data[name] = changed[:limit] if limit else changed
            if "DATA_TIMESTAMP" in data and "DATA_TIMESTAMP" not in self._pinned(draft.plan):
                data["DATA_TIMESTAMP"] = f"{moment:%Y%m%d%H%M%S}"
            self.drafts.append(Draft(draft.plan, data, moment, moment, op="update"))

    @staticmethod
    def _pinned(plan: TablePlan) -> set[str]:
        table = plan.table
        pinned = {f for order in table.time_order for f in (order.earlier, order.later)}
        pinned.update(table.business_key)
        return pinned

    # --- one record ---

    def make(self, plan: TablePlan, ctx: RecordContext, moment: dt.datetime, depth: int = 0) -> Draft | None:
        """A record of ``plan`` whose links all point at records made before it; None when impossible."""
        bound: dict[str, str] = {}
        for link in plan.links:
            parent = self._resolve(link, plan, ctx, moment, depth)
            if parent is None:
                return None
            for child_field, parent_field in link.fields.items():
                if plan.table.field_map[child_field].multi:
                    continue
                value = parent.data.get(parent_field)
                if not value:
                    return None
                bound[child_field] = value
        ctx.times = plan.assign_times(ctx.rng, moment, self.layout_step, ctx.person)
        keys = self.world.keys[plan.name]
        table = plan.table
        for _ in range(3):
            data = plan.fill(ctx, bound)
            key = table.key_of(data)
            if key not in keys:
                break
        else:
            return None
        keys.add(key)
        anchor = table.publish_time or table.event_time
        published = ctx.times.get(anchor, moment) if anchor else moment
        draft = Draft(plan, data, moment, published, shared=plan.name in self.plans.shared)
        self._add(draft, ctx.lot.index)
        if self.rng.random() < _ATTACHMENT_RATE:
            self._attach(draft, ctx)
        return draft

    def _resolve(
        self, link: Link, plan: TablePlan, ctx: RecordContext, moment: dt.datetime, depth: int
    ) -> Draft | None:
        """The earlier record a link of ``plan`` points at; made on the spot for subject and expert data."""
        probes = {
            child: (parent, plan.filler_map[child](ctx))
            for child, parent in link.fields.items()
            if not plan.table.field_map[child].multi
            and plan.table.field_map[child].field_type.kind is Kind.TEXT
        }
        if link.table in self.plans.trading:
            candidates = [
                draft
                for parent_field, value in probes.values()
                for draft in self.index.get((link.table, parent_field, value), ())
            ]
            for draft in reversed(candidates):  # the latest that agrees on every probed field
                if all(draft.data.get(parent_field) == value for parent_field, value in probes.values()):
                    return draft
            return self.latest.get((link.table, ctx.lot.index)) or self.latest_any.get(link.table)
        for parent_field, value in probes.values():
            found = self.index.get((link.table, parent_field, value)) or ()
            if found:
                return found[-1]
            master = self.world.masters.get((link.table, parent_field, value))
            if master is not None:
                return master
            break  # the first field names the subject; the others follow from it
        if depth >= 3:
            return None
        earlier = max(self.begin, moment - dt.timedelta(minutes=self.rng.randint(5, 60)))
        return self.make(self.plans.plans[link.table], ctx, earlier, depth + 1)

    def _add(self, draft: Draft, lot_index: int) -> None:
        name = draft.plan.name
        self.drafts.append(draft)
        for field_name in self.plans.referenced[name]:
            value = draft.data.get(field_name)
            if value:
                self.index[(name, field_name, value)].append(draft)
                if draft.shared:
                    self.world.masters[(name, field_name, value)] = draft
        self.latest[(name, lot_index)] = draft
        self.latest_any[name] = draft

    def _attach(self, draft: Draft, ctx: RecordContext) -> None:
        """An 附件集 record describing a file attached to ``draft``."""
        name = self.plans.attachments.get(draft.plan.table.domain.value)
        if name is None or name == draft.plan.name or draft.plan.table.domain.value not in self.allowed:
            return
        plan = self.plans.plans[name]
        table = plan.table
        bound = {}
        if "RELATE_DATA_NO" in table.field_map:
            bound["RELATE_DATA_NO"] = draft.plan.table.data_no
        if "RELATE_KEY" in table.field_map:
            limit = table.field_map["RELATE_KEY"].field_type.length
            bound["RELATE_KEY"] = draft.plan.table.key_of(draft.data)[: limit or None]
        moment = draft.moment + dt.timedelta(minutes=self.rng.randint(1, 30))
        ctx.times = plan.assign_times(ctx.rng, moment, self.layout_step, ctx.person)
        data = plan.fill(ctx, bound)
        key = table.key_of(data)
        if key in self.world.keys[name]:
            return
        self.world.keys[name].add(key)
        self._add(Draft(plan, data, moment, moment), ctx.lot.index)

    def _mark_dependents(self) -> None:
        """Flag every record a later record of the batch refers to (by link or by update)."""
        seen: dict[tuple[str, str, str], list[Draft]] = defaultdict(list)
        keys: dict[tuple[str, str], Draft] = {}
        for draft in self.drafts:
            table = draft.plan.table
            data = draft.data
            for link in draft.plan.links:
                for child_field, parent_field in link.fields.items():
                    for parent in seen.get((link.table, parent_field, data.get(child_field, "")), ()):
                        parent.depended = True
            if draft.op == "update":
                original = keys.get((table.name, table.key_of(data)))
                if original is not None:
                    original.depended = True
            else:
                keys[(table.name, table.key_of(data))] = draft
            for field_name in self.plans.referenced[table.name]:
                value = data.get(field_name)
                if value:
                    seen[(table.name, field_name, value)].append(draft)


def _unique(parties: Iterable[Party]) -> list[Party]:
    found: dict[str, Party] = {}
    for party in parties:
        found.setdefault(party.code, party)
    return list(found.values())
