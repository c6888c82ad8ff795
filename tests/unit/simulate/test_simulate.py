"""The simulator: reproducible, consistent across records, valid when clean, and honest about its defects."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import re
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ggzy.identifiers import deal_code_problems, is_valid_id_number, is_valid_uscc
from ggzy.simulate import CONSEQUENCES, DEFECT_KINDS, SimulatedRecord, province_systems, simulate
from ggzy.simulate.transactions import TRADING_DOMAINS
from ggzy.simulate.values import FillerFactory, Lot, RecordContext, Scene, TablePlan, make_party
from ggzy.spec import FieldSpec, Kind, Privacy, Semantic, TableSpec, load_regions, load_spec

START = dt.datetime(2026, 11, 1)
SPEC = load_spec()
REGIONS = load_regions()


def _records(**kwargs: object) -> list[SimulatedRecord]:
    arguments: dict[str, object] = {"seed": 1, "transactions": 60, "start": START}
    arguments.update(kwargs)
    return list(simulate("35", **arguments))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def clean() -> list[SimulatedRecord]:
    return _records(transactions=80)


@pytest.fixture(scope="module")
def defective() -> list[SimulatedRecord]:
    return _records(seed=5, transactions=300, error_rate=1.0)


def _values(spec: FieldSpec, value: str) -> list[str]:
    return [part for part in value.split(";") if part] if spec.multi else [value]


def _fields(records: list[SimulatedRecord]) -> Iterator[tuple[TableSpec, FieldSpec, str]]:
    for item in records:
        table = SPEC.tables[item.record["table"]]
        for name, value in item.record["data"].items():
            if value:
                yield table, table.field_map[name], value


# --- reproducibility ---


def test_same_seed_gives_identical_records() -> None:
    first = _records(transactions=15, error_rate=0.2)
    second = _records(transactions=15, error_rate=0.2)
    assert [r.record for r in first] == [r.record for r in second]
    assert [r.expected for r in first] == [r.expected for r in second]


def test_another_seed_gives_other_records() -> None:
    first, other = _records(transactions=15), _records(seed=2, transactions=15)
    assert [r.record for r in first] != [r.record for r in other]


def test_clean_records_do_not_depend_on_the_error_rate(clean: list[SimulatedRecord]) -> None:
    noisy = _records(transactions=80, error_rate=0.3)
    untouched = [r.record for r in noisy if not r.expected]
    assert len(untouched) < len(noisy)
    # Every record left without a defect is exactly a record of the clean run (copies aside).
    clean_records = [json.dumps(r.record, sort_keys=True) for r in clean]
    assert {json.dumps(r, sort_keys=True) for r in untouched} <= set(clean_records)


def test_province_systems_are_fixed_valid_uscc_of_the_province() -> None:
    systems = province_systems("35", seed=3)
    assert systems == province_systems("35", seed=3)
    for code in (*systems.platform_codes, systems.service_code):
        assert is_valid_uscc(code) and code[2:4] == "35"
    for code in (*systems.trade_plats, systems.pub_service_plat):
        assert len(code) == 11 and code.isalnum()
    with pytest.raises(ValueError, match="未知的省级行政区划代码"):
        province_systems("99")


# --- consistency of clean records ---


def test_every_trading_domain_and_side_domain_appears(clean: list[SimulatedRecord]) -> None:
    domains = {SPEC.tables[r.record["table"]].domain for r in clean}
    assert set(TRADING_DOMAINS) <= domains
    assert {"subject", "expert"} <= {d.value for d in domains}


def test_clean_records_expect_nothing(clean: list[SimulatedRecord]) -> None:
    assert all(item.expected == [] for item in clean)


def test_links_point_at_earlier_records(clean: list[SimulatedRecord]) -> None:
    seen: set[tuple[str, str, str]] = set()
    checked = 0
    for item in clean:
        table = SPEC.tables[item.record["table"]]
        data = item.record["data"]
        for link in table.parents + table.predecessors:
            for child, parent in link.fields.items():
                if data.get(child):
                    assert (link.table, parent, data[child]) in seen, (table.name, link.table, child)
                    checked += 1
        seen.update((table.name, name, value) for name, value in data.items())
    assert checked > 500


def test_business_keys_are_unique_except_updates(clean: list[SimulatedRecord]) -> None:
    keys: set[tuple[str, str]] = set()
    updates = 0
    for item in clean:
        table = SPEC.tables[item.record["table"]]
        key = (table.name, table.key_of(item.record["data"]))
        if item.record["op"] == "update":
            assert key in keys
            updates += 1
        else:
            assert key not in keys, key
            keys.add(key)
    assert updates > 0


def test_updates_change_content_but_not_the_key(clean: list[SimulatedRecord]) -> None:
    latest: dict[tuple[str, str], dict[str, str]] = {}
    for item in clean:
        table = SPEC.tables[item.record["table"]]
        key = (table.name, table.key_of(item.record["data"]))
        if item.record["op"] == "update":
            assert item.record["data"] != latest[key]
        latest[key] = item.record["data"]


_NUMBER = re.compile(r"(\d+)(?:\.(\d+))?")


def _fits_notation(spec: FieldSpec, value: str) -> bool:
    ftype = spec.field_type
    if ftype.kind is Kind.DATETIME:
        return dt.datetime.strptime(value, "%Y%m%d%H%M%S") is not None
    if ftype.kind is Kind.DATE:
        return dt.datetime.strptime(value, "%Y%m%d") is not None
    if ftype.kind is Kind.NUMBER:
        match = _NUMBER.fullmatch(value)
        if match is None or ftype.length is None:
            return False
        integer, fraction = match.group(1), match.group(2) or ""
        if ftype.fixed:
            return len(integer) == ftype.length and not fraction
        return len(fraction) <= ftype.decimals and len(integer) <= max(ftype.length - ftype.decimals, 1)
    if ftype.length is None:
        return True
    return len(value) == ftype.length if ftype.fixed else len(value) <= ftype.length


def test_every_value_fits_its_notation_and_code_list(clean: list[SimulatedRecord]) -> None:
    for table, spec, value in _fields(clean):
        assert _fits_notation(spec, value), (table.name, spec.name, value)
        if spec.codelist:
            allowed = SPEC.codelists[spec.codelist].values
            assert all(part in allowed for part in _values(spec, value)), (table.name, spec.name, value)


def test_identifiers_are_valid(clean: list[SimulatedRecord]) -> None:
    seen: Counter[Semantic] = Counter()
    for table, spec, value in _fields(clean):
        for part in _values(spec, value):
            if spec.semantic in (Semantic.USCC, Semantic.SUBJECT_CODE):
                assert is_valid_uscc(part), (table.name, spec.name, part)
            elif spec.semantic in (Semantic.DEAL_CODE, Semantic.DEAL_CODES):
                assert deal_code_problems(part) == [], (table.name, spec.name, part)
            elif spec.semantic is Semantic.REGION:
                assert REGIONS.is_valid(part) and part.startswith("35"), (table.name, spec.name, part)
            elif spec.semantic is Semantic.INDUSTRY:
                assert re.fullmatch(r"[A-T]\d{2}", part)
            else:
                continue
            seen[spec.semantic] += 1
    assert {Semantic.USCC, Semantic.SUBJECT_CODE, Semantic.DEAL_CODE, Semantic.REGION} <= set(seen)


def test_construction_codes_nest(clean: list[SimulatedRecord]) -> None:
    for item in clean:
        data = item.record["data"]
        if item.record["table"] == "SECTION":
            project = data["TENDER_PROJECT_CODE"][:17]
            assert re.fullmatch(r"[A-T]35\d{4}\d{6}\d{4}", project)
            assert data["BID_SECTION_CODE"][:20] == data["TENDER_PROJECT_CODE"]
            assert re.fullmatch(r"\d{3}", data["BID_SECTION_CODE"][20:])


def test_time_order_pairs_and_stages_hold(clean: list[SimulatedRecord]) -> None:
    events: dict[tuple[str, str, str], str] = {}
    for item in clean:
        table = SPEC.tables[item.record["table"]]
        data = item.record["data"]
        for order in table.time_order:
            earlier, later = data.get(order.earlier), data.get(order.later)
            if earlier and later:
                width = min(len(earlier), len(later))
                assert earlier[:width] <= later[:width], (table.name, order)
        own = data.get(table.event_time or "")
        for link in table.predecessors:
            child, parent = next(iter(link.fields.items()))
            before = events.get((link.table, parent, data.get(child, "")))
            if own and before:
                assert before[: len(own)] <= own, (table.name, link.table)
        event = SPEC.tables[table.name].event_time
        if event and data.get(event):
            for name, value in data.items():
                events[(table.name, name, value)] = data[event]


def test_amounts_carry_currency_and_a_plausible_unit(clean: list[SimulatedRecord]) -> None:
    checked = 0
    for item in clean:
        table = SPEC.tables[item.record["table"]]
        data = item.record["data"]
        for group in table.amounts:
            if not data.get(group.amount) or group.unit is None:
                continue
            amount = Decimal(data[group.amount])
            if group.currency:
                assert data[group.currency] == "156"
            if data[group.unit] == "0":
                assert amount >= 1000, (table.name, group.amount, amount)
            else:
                assert data[group.unit] == "1" and 1 <= amount <= 500_000, (table.name, group.amount, amount)
            checked += 1
    assert checked > 100


def test_envelopes(clean: list[SimulatedRecord]) -> None:
    end = START + dt.timedelta(days=30)
    categories = Counter(item.record["category"] for item in clean)
    assert set(categories) == {"history", "realtime"}
    for item in clean:
        record = item.record
        assert record["spec_version"] == SPEC.version and record["op"] in ("insert", "update")
        published = dt.datetime.fromisoformat(record["published_at"])
        assert published.utcoffset() == dt.timedelta(hours=8)
        local = published.replace(tzinfo=None)
        assert START <= local < end
        assert record["category"] == ("history" if local < end - dt.timedelta(days=1) else "realtime")
        assert all(isinstance(v, str) for v in record["data"].values())


def test_published_at_follows_the_publication_or_event_time(clean: list[SimulatedRecord]) -> None:
    for item in clean:
        table = SPEC.tables[item.record["table"]]
        anchor = table.publish_time or table.event_time
        value = item.record["data"].get(anchor or "")
        if item.record["op"] == "insert" and value:
            compact = item.record["published_at"][:19].replace("-", "").replace("T", "").replace(":", "")
            assert compact.startswith(value), (table.name, value, compact)


def test_category_argument_wins() -> None:
    assert {r.record["category"] for r in _records(transactions=5, category="test")} == {"test"}


def test_domains_select_the_transactions() -> None:
    tables = {r.record["table"] for r in _records(transactions=10, domains=["land"])}
    assert {SPEC.tables[t].domain.value for t in tables} <= {"land", "subject"}
    assert "DEAL_LAND_INFO" in tables


# --- personal data ---


def _personal(records: list[SimulatedRecord]) -> Iterator[tuple[FieldSpec, str]]:
    for _, spec, value in _fields(records):
        if spec.privacy is Privacy.PERSONAL:
            yield spec, value


def test_masked_personal_values_hide_the_middle(clean: list[SimulatedRecord]) -> None:
    values = list(_personal(clean))
    assert len(values) > 100
    for spec, value in values:
        assert "*" in value, (spec.name, value)
        if spec.semantic is Semantic.ID_NUMBER:
            assert re.fullmatch(r"\d{6}\*{8}[\dX]{4}", value)
        elif spec.semantic is Semantic.PHONE:
            assert re.fullmatch(r"1\d{2}\*{4}\d{4}", value)


def test_raw_personal_values_are_real_looking() -> None:
    values = list(_personal(_records(transactions=40, personal="raw")))
    kinds = Counter(spec.semantic for spec, _ in values)
    assert kinds[Semantic.ID_NUMBER] > 10 and kinds[Semantic.PHONE] > 10
    for spec, value in values:
        assert "*" not in value
        if spec.semantic is Semantic.ID_NUMBER:
            assert is_valid_id_number(value), value
        elif spec.semantic is Semantic.PHONE:
            assert re.fullmatch(r"1[358]\d{9}", value), value


# --- defects ---


def test_every_record_gets_one_defect_kind_and_all_kinds_occur(defective: list[SimulatedRecord]) -> None:
    brought = {code for codes in CONSEQUENCES.values() for code in codes}  # what a defect brings along
    kinds = Counter(f.code for item in defective for f in item.expected if f.code not in brought)
    assert set(kinds) == set(DEFECT_KINDS)
    with_defect = [item for item in defective if item.expected]
    assert len(with_defect) > 0.7 * len(defective)
    for item in with_defect:
        codes = {f.code for f in item.expected}
        own = codes - brought
        assert len(own) == 1, item.expected
        assert codes - own <= CONSEQUENCES.get(next(iter(own)), frozenset()), item.expected


def test_defects_match_the_validation_engine(defective: list[SimulatedRecord]) -> None:
    """The validator reports exactly the expected findings, record by record (and nothing for clean ones)."""
    engine = pytest.importorskip("ggzy.validation.engine")
    verdicts = engine.Validator().validate_records([item.record for item in defective])
    mismatches = []
    for item, verdict in zip(defective, verdicts, strict=True):
        expected = {(f.code, f.field) for f in item.expected}
        found = {(f.code, f.field) for f in verdict.findings}
        if expected != found:
            mismatches.append((item.record["table"], sorted(expected), sorted(found)))
    assert mismatches == []


def test_duplicates_are_exact_copies_of_the_record_before(defective: list[SimulatedRecord]) -> None:
    copies = 0
    for before, item in itertools.pairwise(defective):
        if any(f.code == "E-XR-DUPLICATE" for f in item.expected):
            assert item.record == before.record and item.record["op"] == "insert"
            copies += 1
    assert copies > 10


# --- a table the simulator has never heard of ---


def test_a_new_table_gets_valid_values_without_code_changes() -> None:
    table = TableSpec.model_validate(
        {
            "data_no": "990",
            "name": "NEW_THING",
            "name_zh": "新增业务",
            "domain": "other",
            "info_class": "trade",
            "business_key": ["THING_CODE"],
            "event_time": "START_TIME",
            "time_order": [{"earlier": "START_TIME", "later": "END_TIME"}],
            "amounts": [{"amount": "THING_PRICE", "currency": "THING_CURRENCY", "unit": "THING_UNIT"}],
            "fields": [
                {"name": "THING_CODE", "name_zh": "业务编号", "type": "C..30"},
                {"name": "THING_NAME", "name_zh": "业务名称", "type": "C..12"},
                {"name": "SELLER_CODE", "name_zh": "出让方代码", "type": "C..18", "semantic": "subject_code"},
                {"name": "REGION_CODE", "name_zh": "所在行政区域代码", "type": "C6", "semantic": "region"},
                {"name": "MODE", "name_zh": "方式", "type": "C1", "codelist": "TENDER_MODE"},
                {"name": "FLAG", "name_zh": "标志", "type": "C2"},
                {"name": "COUNT", "name_zh": "数量", "type": "N3"},
                {"name": "THING_PRICE", "name_zh": "价格", "type": "N..12,2"},
                {"name": "THING_CURRENCY", "name_zh": "币种", "type": "C3", "codelist": "CURRENCY"},
                {"name": "THING_UNIT", "name_zh": "单位", "type": "C1", "codelist": "PRICE_UNIT"},
                {"name": "START_TIME", "name_zh": "开始时间", "type": "yyyyMMddHHmmss"},
                {"name": "END_TIME", "name_zh": "结束日期", "type": "yyyyMMdd"},
                {
                    "name": "PHONE",
                    "name_zh": "手机",
                    "type": "C..20",
                    "semantic": "phone",
                    "privacy": "personal",
                },
            ],
        }
    )
    plan = TablePlan(table, FillerFactory(SPEC))
    rng = random.Random(1)
    systems = province_systems("35")
    party = make_party(rng, "福州某某有限公司", "350102", "福建省", "福州市", public=False)
    lot = Lot(
        0,
        "QT3501022026000001",
        "某项目",
        "A99-" + systems.platform_codes[0] + "-20261101-000001-0",
        1e6,
        [party],
        [],
    )
    scene = Scene(
        domain="other", trade_class="A99", platform_code=systems.platform_codes[0], trade_plat=systems.trade_plats[0],
        province="35", province_name="福建省", region="350102", prefecture="350100", prefecture_name="福州市",
        project_name="某项目", industry="L72", project_code=lot.code, tender_project_code="", owner=party,
        agency=party, center=party, dept=party, target=party, lots=[lot], year=2026,
    )  # fmt: skip
    ctx = RecordContext(rng, systems, itertools.count(1), scene, raw_personal=False)
    for _ in range(20):
        ctx.times = plan.assign_times(rng, START, dt.timedelta(hours=6), None)
        data = plan.fill(ctx, {})
        for name, value in data.items():
            assert _fits_notation(table.field_map[name], value), (name, value)
        assert is_valid_uscc(data["SELLER_CODE"]) and REGIONS.is_valid(data["REGION_CODE"])
        assert data["START_TIME"][:8] <= data["END_TIME"] and data["THING_CURRENCY"] == "156"
        assert "*" in data["PHONE"] and data["MODE"] in SPEC.codelists["TENDER_MODE"].values


# --- command line ---


def _cli() -> CliRunner:
    return CliRunner()


def test_cli_writes_records_and_expected_findings(tmp_path: Path) -> None:
    import ggzy.cli.simulate  # noqa: F401  (registers the command)
    from ggzy.cli.app import app

    out, expected = tmp_path / "fj.jsonl", tmp_path / "fj.expected.jsonl"
    arguments = ["simulate", "-n", "8", "--seed", "4", "--start", "2026-11-01", "--errors", "0.3"]
    result = _cli().invoke(app, [*arguments, "--out", str(out), "--expected", str(expected)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    findings = [json.loads(line) for line in expected.read_text(encoding="utf-8").splitlines()]
    assert len(records) == len(findings) > 50
    assert [f["line"] for f in findings] == list(range(1, len(records) + 1))
    assert [f["table"] for f in findings] == [r["table"] for r in records]
    assert any(f["findings"] for f in findings)
    assert "模拟完成" in result.output


def test_cli_writes_one_csv_per_table(tmp_path: Path) -> None:
    import ggzy.cli.simulate  # noqa: F401
    from ggzy.cli.app import app

    folder = tmp_path / "csv"
    arguments = [
        "simulate",
        "-q",
        "-n",
        "3",
        "--start",
        "2026-11-01",
        "--out",
        str(folder),
        "--format",
        "csv",
    ]
    result = _cli().invoke(app, [*arguments, "--domain", "construction", "--domain", "subject"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in folder.iterdir())
    assert "502-SECTION.csv" in names and "100-LEGAL_PERSON_BASE.csv" in names


def test_cli_refuses_an_unknown_province() -> None:
    import ggzy.cli.simulate  # noqa: F401
    from ggzy.cli.app import app

    result = _cli().invoke(app, ["simulate", "--province", "99", "-q"])
    assert result.exit_code == 2
    assert "未知的省份代码" in result.output
