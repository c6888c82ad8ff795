"""The simulator's entry point: a reproducible stream of records a province would upload.

>>> import datetime as dt
>>> from ggzy.simulate import simulate
>>> first = next(simulate("35", seed=1, transactions=1, start=dt.datetime(2026, 11, 1)))
>>> first.record["spec_version"], first.expected
('2.0', [])
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from ggzy.identifiers import make_uscc
from ggzy.interchange import Category
from ggzy.simulate.defects import DefectInjector, ExpectedFinding
from ggzy.simulate.transactions import TRADING_DOMAINS, BatchBuilder, Draft, Flow, SpecPlans, World
from ggzy.simulate.values import ProvinceSystems
from ggzy.spec import Domain, Spec, load_regions, load_spec

__all__ = ["ExpectedFinding", "SimulatedRecord", "plans_for", "province_systems", "simulate"]

Personal = Literal["masked", "raw"]
_BEIJING = dt.timezone(dt.timedelta(hours=8))
_DOMAIN_WEIGHTS = {
    Domain.CONSTRUCTION: 38,
    Domain.PROCUREMENT: 30,
    Domain.LAND: 8,
    Domain.MINING: 6,
    Domain.PROPERTY: 10,
    Domain.OTHER: 8,
}


@dataclass(slots=True)
class SimulatedRecord:
    """One record envelope and the findings a validator should report for it (none when clean)."""

    record: dict[str, Any]
    expected: list[ExpectedFinding] = field(default_factory=list)


def province_systems(province: str, seed: int = 0) -> ProvinceSystems:
    """The province's trading systems: three 交易系统 USCCs, the 公共服务 USCC and their C11 codes.

    They depend only on ``province`` and ``seed``, so every run with the same seed names the same
    systems (the node's configuration can list them).
    """
    regions = load_regions()
    if province not in regions.provinces():
        raise ValueError(f"未知的省级行政区划代码“{province}”（unknown province code {province!r}）")
    rng = random.Random(f"ggzy-systems-{province}-{seed}")
    capital = next(iter(sorted(regions.prefectures(province))), province + "0000")
    return ProvinceSystems(
        province=province,
        platform_codes=tuple(make_uscc(rng, capital, authority="1", kind="2") for _ in range(3)),
        service_code=make_uscc(rng, province + "0000", authority="1", kind="2"),
        trade_plats=tuple(f"J{province}{rng.randrange(10**8):08d}" for _ in range(3)),
        pub_service_plat=f"G{province}{rng.randrange(10**8):08d}",
    )


_PLANS: dict[int, tuple[Spec, SpecPlans]] = {}


def plans_for(spec: Spec) -> SpecPlans:
    """Table plans and transaction flows of ``spec``, built once per specification."""
    cached = _PLANS.get(id(spec))
    if cached is None or cached[0] is not spec:
        cached = _PLANS[id(spec)] = (spec, SpecPlans(spec))
    return cached[1]


def _default_start(days: int) -> dt.datetime:
    today = dt.datetime.now(_BEIJING).date()
    return dt.datetime.combine(today, dt.time()) - dt.timedelta(days=days)


def _check_arguments(
    error_rate: float, days: int, transactions: int, category: str | None, personal: str
) -> None:
    if not 0.0 <= error_rate <= 1.0:
        raise ValueError(f"error_rate 必须在 0 与 1 之间（must be between 0 and 1）: {error_rate}")
    if days <= 0:
        raise ValueError(f"days 必须大于 0（must be positive）: {days}")
    if transactions < 0:
        raise ValueError(f"transactions 不能为负（must not be negative）: {transactions}")
    if category is not None and category not in {c.value for c in Category}:
        raise ValueError(f"未知的数据类别“{category}”（unknown category; use realtime, history or test）")
    if personal not in ("masked", "raw"):
        raise ValueError(f"personal 应为 masked 或 raw（must be masked or raw）: {personal}")


def simulate(
    province: str = "35",
    *,
    seed: int = 0,
    transactions: int = 100,
    start: dt.datetime | None = None,
    days: int = 30,
    error_rate: float = 0.0,
    category: str | None = None,
    personal: Personal = "masked",
    domains: Collection[Domain] | None = None,
    systems_seed: int | None = None,
) -> Iterator[SimulatedRecord]:
    """Records of ``transactions`` whole transactions of ``province`` in ``days`` days from ``start``.

    Each transaction runs through the stages of its domain and brings along the subject, expert,
    credit and supervision records about its parties. ``error_rate`` is the probability that a
    record gets one defect; its ``expected`` list names the findings the validator should report.
    The same arguments always give the same records; the clean records do not depend on
    ``error_rate`` (defects are drawn from a second generator seeded from the first).

    ``start`` is local time (Asia/Shanghai, naive); by default the window ends today at 00:00.
    ``personal="raw"`` writes unmasked personal data, as a trading system hands it to the node;
    the expected findings then leave out the E-PRIV-PERSONAL every such value would raise.
    ``systems_seed`` keeps the province's trading systems of another seed, so that records of
    many seeds can come from one registered node.
    """
    _check_arguments(error_rate, days, transactions, category, personal)
    systems = province_systems(province, seed if systems_seed is None else systems_seed)
    spec = load_spec()
    plans = plans_for(spec)
    rng = random.Random(seed)
    defect_rng = random.Random(rng.getrandbits(64))
    if start is None:
        begin = _default_start(days)
    elif start.tzinfo is not None:
        begin = start.astimezone(_BEIJING).replace(tzinfo=None)
    else:
        begin = start
    end = begin + dt.timedelta(days=days)
    allowed = {Domain(d).value for d in (domains if domains is not None else Domain)}
    world = World(plans, rng, systems, load_regions())
    layout_step = min(max((end - begin) / 40, dt.timedelta(minutes=10)), dt.timedelta(days=1))
    builder = BatchBuilder(world, allowed, personal == "raw", layout_step)
    injector = DefectInjector(plans, personal == "raw")
    emitter = _Emitter(spec.version, category, end - dt.timedelta(days=1), injector, defect_rng, error_rate)
    flows = _FlowPicker(plans, rng, allowed)
    for _ in range(transactions):
        batch = builder.build(flows.next(), begin, end)
        for draft in batch.drafts:
            yield from emitter.emit(draft)


class _FlowPicker:
    """Which kind of transaction comes next: every allowed domain once, then by weight."""

    def __init__(self, plans: SpecPlans, rng: random.Random, allowed: set[str]) -> None:
        self.rng = rng
        available = [d for d in TRADING_DOMAINS if plans.flows.get(d)]
        chosen = [d for d in available if d.value in allowed] or available
        self.domains = chosen
        self.weights = [_DOMAIN_WEIGHTS[d] for d in chosen]
        self.flows = plans.flows
        self.round_robin = list(chosen)

    def next(self) -> Flow:
        domain = (
            self.round_robin.pop(0) if self.round_robin else self.rng.choices(self.domains, self.weights)[0]
        )
        flows = self.flows[domain]
        return self.rng.choices([f for f, _ in flows], [w for _, w in flows])[0]


class _Emitter:
    """Turns drafts into envelopes, injecting defects at the requested rate."""

    def __init__(
        self,
        version: str,
        category: str | None,
        realtime_from: dt.datetime,
        injector: DefectInjector,
        rng: random.Random,
        error_rate: float,
    ) -> None:
        self.version = version
        self.category = category
        self.realtime_from = realtime_from
        self.injector = injector
        self.rng = rng
        self.error_rate = error_rate

    def envelope(self, draft: Draft, data: dict[str, str]) -> dict[str, Any]:
        published = draft.published
        if self.category is not None:
            category = self.category
        else:
            category = "history" if published < self.realtime_from else "realtime"
        return {
            "table": draft.plan.name,
            "op": draft.op,
            "category": category,
            "spec_version": self.version,
            "published_at": f"{published:%Y-%m-%dT%H:%M:%S}+08:00",
            "data": data,
        }

    def emit(self, draft: Draft) -> Iterator[SimulatedRecord]:
        if self.error_rate <= 0.0 or self.rng.random() >= self.error_rate:
            yield SimulatedRecord(self.envelope(draft, dict(draft.data)))
            return
        outcome = self.injector.inject(self.rng, draft)
        if outcome is None:
            yield SimulatedRecord(self.envelope(draft, dict(draft.data)))
        elif outcome.duplicate:
            yield SimulatedRecord(self.envelope(draft, dict(draft.data)))
            yield SimulatedRecord(self.envelope(draft, outcome.data), outcome.expected)
        else:
            yield SimulatedRecord(self.envelope(draft, outcome.data), _unique(outcome.expected))


def _unique(findings: list[ExpectedFinding]) -> list[ExpectedFinding]:
    return list(dict.fromkeys(findings))
