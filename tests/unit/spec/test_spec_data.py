"""The specification data shipped in ``ggzy/spec/data``: tables, code lists and regions."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from ggzy.spec import (
    CodeListStatus,
    Domain,
    InfoClass,
    Kind,
    Privacy,
    Semantic,
    Spec,
    load_regions,
    load_spec,
    parse_notation,
)

# Every national table this release implements: DATA_NO -> (name, domain).
EXPECTED_TABLES: dict[str, tuple[str, Domain]] = {
    "500": ("PROJECT", Domain.CONSTRUCTION),
    "501": ("TENDER_PROJECT", Domain.CONSTRUCTION),
    "502": ("SECTION", Domain.CONSTRUCTION),
    "503": ("TENDER_ANN_QUA_INQUERY_ANN", Domain.CONSTRUCTION),
    "504": ("TENDER_FILE_CLARI_MODI", Domain.CONSTRUCTION),
    "505": ("TENDER_INVITATION", Domain.CONSTRUCTION),
    "506": ("BID_OPENING_RECORD", Domain.CONSTRUCTION),
    "507": ("TENDER_LIST", Domain.CONSTRUCTION),
    "508": ("BID_EVALUATION_EXPERT", Domain.CONSTRUCTION),
    "509": ("EVALUATION_REPORT", Domain.CONSTRUCTION),
    "510": ("TENDER_CANDIDATE", Domain.CONSTRUCTION),
    "511": ("TENDER_CANDIDATE_ANNOUNCE", Domain.CONSTRUCTION),
    "512": ("CONTRACT_PERFORMANCE", Domain.CONSTRUCTION),
    "513": ("WIN_RESULT_ANNO", Domain.CONSTRUCTION),
    "514": ("QUALI_INQUERY_CLARI", Domain.CONSTRUCTION),
    "515": ("QUALI_INQUERY_APP_FILE", Domain.CONSTRUCTION),
    "516": ("QUALI_INQUERY_RESULT", Domain.CONSTRUCTION),
    "517": ("TENDER_ABNORMITY_REPORT", Domain.CONSTRUCTION),
    "518": ("PROJECT_ATTACHMENTS", Domain.CONSTRUCTION),
    "550": ("PURCHASE_PROJECT", Domain.PROCUREMENT),
    "551": ("PURCHASE_QUALI_INQUERY_ANN", Domain.PROCUREMENT),
    "552": ("CORRECTION_ITEM", Domain.PROCUREMENT),
    "553": ("BID_DEAL_ANNOUNCE", Domain.PROCUREMENT),
    "554": ("PURCHASE_CONTRACT", Domain.PROCUREMENT),
    "555": ("PURCHASE_ATTACHMENTS", Domain.PROCUREMENT),
    "600": ("DEAL_BEHAVIOR_INFO", Domain.LAND),
    "601": ("DEAL_LAND_INFO", Domain.LAND),
    "650": ("EXPLOR_BID_AUCTION_TRANS_ANN", Domain.MINING),
    "651": ("MINING_BID_AUCTION_TRANS_ANN", Domain.MINING),
    "652": ("EXPLOR_BID_AUC_TRANS_RES_ANN", Domain.MINING),
    "653": ("MINING_BID_AUC_TRANS_RES_ANN", Domain.MINING),
    "654": ("EXPLOR_TRANS_PUB_INFO", Domain.MINING),
    "655": ("MINING_TRANS_PUB_INFO", Domain.MINING),
    "656": ("MINING_DISTRICT_RANGE_PUB", Domain.MINING),
    "657": ("NON_OIL_GAS_EXPLOR_REG_ANN", Domain.MINING),
    "658": ("NON_OIL_GAS_MINING_REG_ANN", Domain.MINING),
    "659": ("OIL_GAS_EXPLOR_REG_ANN", Domain.MINING),
    "660": ("OIL_GAS_MINING_REG_ANN", Domain.MINING),
    "661": ("MINING_ATTACHMENTS", Domain.MINING),
    "700": ("LISTING_PUB_INFO", Domain.PROPERTY),
    "701": ("TRADE_RESULT_INFO", Domain.PROPERTY),
    "750": ("STOCK_LISTING_PUB_INFO", Domain.PROPERTY),
    "751": ("TRANSFER_ENTE_INFO", Domain.PROPERTY),
    "752": ("TRANSFER_ENTE_HAREHOLDER", Domain.PROPERTY),
    "753": ("STOCK_TRADE_RESULT_INFO", Domain.PROPERTY),
    "800": ("OTHER_TRADE_PUB_INFO", Domain.OTHER),
    "801": ("OTHER_TRADE_RESULT_INFO", Domain.OTHER),
    "100": ("LEGAL_PERSON_BASE", Domain.SUBJECT),
    "101": ("TENDER_EX_INFO", Domain.SUBJECT),
    "102": ("TENDER_AGENT_EX_INFO", Domain.SUBJECT),
    "103": ("TENDERER_EX_INFO", Domain.SUBJECT),
    "104": ("PURCHASE_EX_INFO", Domain.SUBJECT),
    "105": ("PURCHASE_AGENT_EX_INFO", Domain.SUBJECT),
    "106": ("SUPPLIER_EX_INFO", Domain.SUBJECT),
    "107": ("TRANSFEROR_EX_INFO", Domain.SUBJECT),
    "108": ("ASSIGNEE_EX_INFO", Domain.SUBJECT),
    "109": ("BIDER_EX_INFO", Domain.SUBJECT),
    "110": ("LEGAL_PERSON_TRADE_PERFORM", Domain.SUBJECT),
    "111": ("QUALI_PERSON_BASE", Domain.SUBJECT),
    "112": ("QUALI_PERSON_QUALI", Domain.SUBJECT),
    "113": ("QUALI_PERSON_PERFORME", Domain.SUBJECT),
    "114": ("INDIVIDUAL_BASE", Domain.SUBJECT),
    "115": ("INDIVIDUAL_SUPPLIER_EX_INFO", Domain.SUBJECT),
    "117": ("INDIVIDUAL_ASSIGNEE_EX_INFO", Domain.SUBJECT),
    "118": ("INDIVIDUAL_BIDER_EX_INFO", Domain.SUBJECT),
    "119": ("SUBJECT_ATTACHMENTS", Domain.SUBJECT),
    "208": ("EXPERT_CREDIT_RECORD", Domain.EXPERT),
    "211": ("EXPERT_ATTACHMENTS", Domain.EXPERT),
    "212": ("EXPERT_BID_EVALUATION", Domain.EXPERT),
    "213": ("EXPERT_EVALUATION", Domain.EXPERT),
    "300": ("VIOLATING_LAWS_RULES_INFO", Domain.CREDIT),
    "302": ("BLACK_LIST", Domain.CREDIT),
    "303": ("WITHDRAW_BLACK_LIST", Domain.CREDIT),
    "304": ("AWARD_INFO", Domain.CREDIT),
    "305": ("PERFORMANCE_INFO", Domain.CREDIT),
    "306": ("SOCIAL_CREDIT_INFO", Domain.CREDIT),
    "307": ("CREDIT_ATTACHMENTS", Domain.CREDIT),
    "400": ("ADMIN_SUPER_ITEM_INFO", Domain.SUPERVISION),
    "402": ("PROJECT_ALERTING_INFO", Domain.SUPERVISION),
    "404": ("COMPLAINT_INFO", Domain.SUPERVISION),
    "406": ("SUPERVISION_ATTACHMENTS", Domain.SUPERVISION),
}

ATTACHMENT_TABLES = {"518", "555", "661", "119", "211", "307", "406"}
TRADE_DOMAINS = {
    Domain.CONSTRUCTION,
    Domain.PROCUREMENT,
    Domain.LAND,
    Domain.MINING,
    Domain.PROPERTY,
    Domain.OTHER,
}
OFFICIAL_LISTS = {
    "YES_NO",
    "PRICE_UNIT",
    "PRICE_FORM",
    "RELATE_CODE",
    "CURRENCY",
    "INDUSTRY_SECTION",
    "GENDER",
}

SPEC = load_spec()
ALL_FIELDS = [(t, f) for t in SPEC.tables.values() for f in t.fields]


def _code_fits(code: str, notation: str) -> bool:
    parsed = parse_notation(notation)
    if parsed.kind is Kind.NUMBER:
        return code.isdigit() and parsed.length is not None and len(code) <= parsed.length
    if parsed.kind is not Kind.TEXT:
        return False
    if parsed.length is None:
        return True
    return len(code) == parsed.length if parsed.fixed else len(code) <= parsed.length


# --- tables ------------------------------------------------------------------------------------------


def test_spec_loads_with_every_national_table() -> None:
    assert isinstance(SPEC, Spec)
    assert SPEC.version == "2.0"
    assert set(SPEC.by_number) == set(EXPECTED_TABLES)
    assert len(SPEC.tables) == len(EXPECTED_TABLES)


@pytest.mark.parametrize(("data_no", "expected"), sorted(EXPECTED_TABLES.items()))
def test_table_has_its_number_name_and_domain(data_no: str, expected: tuple[str, Domain]) -> None:
    name, domain = expected
    table = SPEC.table(data_no)
    assert table is not None
    assert table.name == name
    assert table.domain is domain
    assert SPEC.table(name) is table


def test_lookup_by_number_and_by_name_is_the_same_table() -> None:
    assert SPEC.table("502") is SPEC.table("SECTION")
    assert SPEC.table("800") is SPEC.table("OTHER_TRADE_PUB_INFO")
    assert SPEC.table("1800") is None  # the provincial number is not the national one


def test_provincial_tables_are_not_included() -> None:
    provincial = ["519", "520", "521", "522", "523", "556", "557", "1000", "1050", "1104"]
    assert all(SPEC.table(no) is None for no in provincial)
    assert SPEC.table("LETTER_OF_GUARANTEE") is None


def test_info_class_follows_domain() -> None:
    for table in SPEC.tables.values():
        if table.domain in TRADE_DOMAINS:
            assert table.info_class is InfoClass.TRADE, table.name
        else:
            assert table.info_class.value == table.domain.value, table.name
            assert table.stage is None, table.name


def test_every_field_type_parses() -> None:
    for table, spec_field in ALL_FIELDS:
        assert parse_notation(spec_field.type).notation == spec_field.type, (table.name, spec_field.name)


def test_amounts_are_not_fixed_length_numbers() -> None:
    for table in SPEC.tables.values():
        for group in table.amounts:
            field_type = table.field_map[group.amount].field_type
            assert field_type.kind is Kind.NUMBER, (table.name, group.amount)
            assert not field_type.fixed, (table.name, group.amount)


def test_field_names_are_unique_and_trailer_fields_present() -> None:
    for table in SPEC.tables.values():
        names = [f.name for f in table.fields]
        assert len(names) == len(set(names)), table.name
        for trailer in ("PLATFORM_CODE", "PUB_SERVICE_PLAT_CODE", "DATA_TIMESTAMP"):
            assert trailer in table.field_map, (table.name, trailer)
        assert table.field_map["PLATFORM_CODE"].semantic is Semantic.USCC
        assert table.field_map["PUB_SERVICE_PLAT_CODE"].semantic is Semantic.USCC


def test_construction_tables_carry_the_platform_identifiers() -> None:
    for table in SPEC.tables.values():
        if table.domain is Domain.CONSTRUCTION:
            assert table.field_map["TRADE_PLAT"].type == "C11", table.name
            assert table.field_map["PUB_SERVICE_PLAT"].type == "C11", table.name


def test_catalogue_glitch_in_expert_table_is_corrected() -> None:
    table = SPEC.table("EXPERT_BID_EVALUATION")
    assert table is not None
    assert table.field_map["MAJOR_CODE"].type == "C..7"
    assert table.field_map["IS_MAIN"].codelist == "YES_NO"
    assert table.field_map["PUB_SERVICE_PLAT_CODE"].type == "C18"
    assert table.field_map["DATA_TIMESTAMP"].type == "yyyyMMddHHmmss"


def test_business_keys_are_required_fields() -> None:
    for table in SPEC.tables.values():
        assert table.business_key, table.name
        for key in table.business_key:
            assert table.field_map[key].required, (table.name, key)


def test_known_business_keys() -> None:
    def key(name: str) -> list[str]:
        table = SPEC.table(name)
        assert table is not None
        return table.business_key

    assert key("PROJECT") == ["PROJECT_CODE"]
    assert key("TENDER_PROJECT") == ["TENDER_PROJECT_CODE"]
    assert key("SECTION") == ["BID_SECTION_CODE"]
    assert key("LEGAL_PERSON_BASE") == ["LEGAL_CODE"]
    assert key("VIOLATING_LAWS_RULES_INFO") == ["VIOLATING_CODE"]
    assert key("BLACK_LIST") == ["BLACKLIST_CODE"]
    assert {"TENDER_PROJECT_CODE", "NOTICE_SEND_TIME"} <= set(key("TENDER_ANN_QUA_INQUERY_ANN"))


def test_links_point_at_existing_fields_of_both_tables() -> None:
    for table in SPEC.tables.values():
        for link in table.parents + table.predecessors:
            target = SPEC.tables[link.table]
            assert link.table != table.name
            for own, other in link.fields.items():
                assert own in table.field_map, (table.name, own)
                assert other in target.field_map, (link.table, other)


def test_construction_chain_of_parents() -> None:
    def parents(name: str) -> set[str]:
        table = SPEC.table(name)
        assert table is not None
        return {link.table for link in table.parents}

    assert parents("TENDER_PROJECT") == {"PROJECT"}
    assert parents("SECTION") == {"TENDER_PROJECT"}
    for number in range(503, 518):
        assert "TENDER_PROJECT" in parents(str(number)), number
    win = SPEC.table("WIN_RESULT_ANNO")
    assert win is not None
    assert [p.table for p in win.predecessors] == ["TENDER_ANN_QUA_INQUERY_ANN", "TENDER_INVITATION"]


def test_stage_times_are_dates() -> None:
    for table in SPEC.tables.values():
        for name in (table.event_time, table.publish_time):
            if name:
                kind = table.field_map[name].field_type.kind
                assert kind in (Kind.DATETIME, Kind.DATE), (table.name, name)
        for order in table.time_order:
            kinds = {table.field_map[f].field_type.kind for f in (order.earlier, order.later)}
            assert len(kinds) == 1, (table.name, order)
            assert kinds <= {Kind.DATETIME, Kind.DATE}, (table.name, order)


def test_predecessors_are_earlier_stages() -> None:
    for table in SPEC.tables.values():
        for link in table.predecessors:
            earlier = SPEC.tables[link.table]
            if table.stage is not None and earlier.stage is not None:
                assert earlier.stage < table.stage, (table.name, earlier.name)


def test_project_investment_code_is_conditionally_required() -> None:
    project = SPEC.table("PROJECT")
    assert project is not None
    (rule,) = project.conditional_required
    assert (rule.when, rule.equals, rule.then) == ("RELATE_CODE", ["1"], ["INVEST_PROJECT_CODE"])


def test_deal_code_fields() -> None:
    for table in SPEC.tables.values():
        if table.deal_code:
            assert table.field_map[table.deal_code].semantic is Semantic.DEAL_CODE, table.name
        for spec_field in table.fields:
            if spec_field.semantic is Semantic.DEAL_CODES:
                assert spec_field.multi, (table.name, spec_field.name)
            if spec_field.semantic is Semantic.DEAL_CODE:
                assert spec_field.type == "C40", (table.name, spec_field.name)


def test_attachment_tables_share_one_provisional_structure() -> None:
    structures = set()
    for number in ATTACHMENT_TABLES:
        table = SPEC.table(number)
        assert table is not None
        assert table.attachments
        assert table.note, table.name
        assert not table.parents
        assert table.business_key == ["ATTACHMENT_CODE"]
        core = tuple(
            (f.name, f.type, f.required)
            for f in table.fields
            if f.name not in ("TRADE_PLAT", "PUB_SERVICE_PLAT")
        )
        structures.add(core)
    assert len(structures) == 1
    assert not any(t.attachments for n, t in SPEC.by_number.items() if n not in ATTACHMENT_TABLES)


def test_personal_data_of_natural_persons_and_experts_is_marked() -> None:
    for name, fields in {
        "QUALI_PERSON_BASE": ["ID_CARD", "PERSON_PHONE"],
        "INDIVIDUAL_BASE": ["ID_CARD", "CONTACT", "BANK_ACCOUNT", "ADDRESS"],
        "EXPERT_BID_EVALUATION": ["ID_CARD", "PHONE_NUMBER"],
        "EXPERT_EVALUATION": ["ID_CARD", "PHONE_NUMBER"],
        "BID_EVALUATION_EXPERT": ["ID_CARD"],
    }.items():
        table = SPEC.table(name)
        assert table is not None
        for field_name in fields:
            assert table.field_map[field_name].privacy is Privacy.PERSONAL, (name, field_name)
    notice = SPEC.table("TENDER_ANN_QUA_INQUERY_ANN")
    assert notice is not None
    assert notice.field_map["TENDERER_PHONE_NUMBER"].privacy is Privacy.NONE
    assert not any(f.privacy is Privacy.SECRET for _, f in ALL_FIELDS)


# --- code lists --------------------------------------------------------------------------------------


def test_every_referenced_code_list_exists_and_fits_its_field() -> None:
    for table, spec_field in ALL_FIELDS:
        if spec_field.codelist:
            codelist = SPEC.codelists[spec_field.codelist]
            for code in codelist.values:
                assert _code_fits(code, spec_field.type), (table.name, spec_field.name, code)


def test_every_code_list_has_a_status_and_string_codes() -> None:
    assert len(SPEC.codelists) >= 20
    for codelist in SPEC.codelists.values():
        assert codelist.status in (CodeListStatus.OFFICIAL, CodeListStatus.PROVISIONAL)
        assert codelist.values, codelist.name
        assert codelist.source, codelist.name
        assert all(isinstance(code, str) and code for code in codelist.values)


def test_official_and_provisional_lists() -> None:
    for name, codelist in SPEC.codelists.items():
        expected = CodeListStatus.OFFICIAL if name in OFFICIAL_LISTS else CodeListStatus.PROVISIONAL
        assert codelist.status is expected, name
    for assumed in (
        "TRADE_CLASS",
        "SUBJECT_ROLE",
        "PURCHASE_MODE",
        "TENDER_MODE",
        "ID_TYPE",
        "LAND_SUPPLY_TYPE",
    ):
        assert SPEC.codelists[assumed].status is CodeListStatus.PROVISIONAL


def test_spot_code_values() -> None:
    lists = SPEC.codelists
    assert lists["CURRENCY"].values["156"] == "人民币"
    assert lists["CURRENCY"].values["036"] == "澳大利亚元"
    assert lists["YES_NO"].values == {"0": "否", "1": "是"}
    assert lists["PRICE_UNIT"].values == {"0": "元", "1": "万元"}
    assert set(lists["PRICE_FORM"].values) == {"1", "2", "3", "9"}
    assert set(lists["INDUSTRY_SECTION"].values) == set("ABCDEFGHIJKLMNOPQRST")
    assert lists["GENDER"].values["2"] == "女性"
    assert all(len(code) == 3 and code[0].isupper() for code in lists["TRADE_CLASS"].values)
    assert all(len(code) == 2 for code in lists["SUBJECT_ROLE"].values)


def test_typical_fields_are_linked() -> None:
    section = SPEC.table("SECTION")
    assert section is not None
    assert section.field_map["CURRENCY_CODE"].codelist == "CURRENCY"
    assert section.field_map["PRICE_UNIT"].codelist == "PRICE_UNIT"
    assert section.field_map["REGION_CODE"].semantic is Semantic.REGION
    tender_project = SPEC.table("TENDER_PROJECT")
    assert tender_project is not None
    assert tender_project.field_map["TENDER_PROJECT_TYPE"].codelist == "TRADE_CLASS"
    assert tender_project.field_map["TENDERER_CODE"].multi
    assert tender_project.field_map["TENDERER_CODE"].semantic is Semantic.SUBJECT_CODE


# --- regions -----------------------------------------------------------------------------------------

PROVINCES = {
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42",
    "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82",
}  # fmt: skip


def test_regions_have_every_province() -> None:
    regions = load_regions()
    assert set(regions.provinces()) == PROVINCES


def test_regions_have_the_prefectures() -> None:
    regions = load_regions()
    prefectures = {code for code in regions.names if not code.endswith("0000")}
    assert len(prefectures) >= 330
    for code in regions.names:
        assert len(code) == 6 and code.isdigit(), code
    for code in prefectures:
        assert code.endswith("00"), code
        assert code[:2] + "0000" in regions.names, code


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("350000", "福建省"),
        ("350100", "福州市"),
        ("350200", "厦门市"),
        ("440300", "深圳市"),
        ("460400", "儋州市"),
        ("522300", "黔西南布依族苗族自治州"),
        ("650100", "乌鲁木齐市"),
        ("652300", "昌吉回族自治州"),
        ("150900", "乌兰察布市"),
        ("710000", "台湾省"),
        ("810000", "香港特别行政区"),
        ("820000", "澳门特别行政区"),
    ],
)
def test_known_region_names(code: str, name: str) -> None:
    assert load_regions().names[code] == name


def test_region_validity_through_prefecture() -> None:
    regions = load_regions()
    assert regions.is_valid("350102")  # a county of 福州市
    assert regions.is_valid("419001")  # 济源市 under 省直辖县级行政区划
    assert not regions.is_valid("350A00")
    assert not regions.is_valid("359900")
    assert len(regions.prefectures("50")) == 2  # 重庆: 市辖区 and 县


# --- generator ---------------------------------------------------------------------------------------


def test_table_files_match_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    """The committed table files are what tools/import_field_catalog.py makes of catalogue + overlay."""
    script = Path(__file__).resolve().parents[3] / "tools" / "import_field_catalog.py"
    module_spec = importlib.util.spec_from_file_location("import_field_catalog", script)
    assert module_spec is not None and module_spec.loader is not None
    tool = importlib.util.module_from_spec(module_spec)
    monkeypatch.setitem(sys.modules, "import_field_catalog", tool)
    module_spec.loader.exec_module(tool)
    if not tool.DEFAULT_CATALOG.exists():
        pytest.skip(f"field catalogue not found at {tool.DEFAULT_CATALOG}")
    assert tool.main(["--check"]) == 0


def test_the_fast_yaml_parser_reads_every_shipped_file_as_pyyaml_does() -> None:
    """The spec is read with libyaml when PyYAML has it; PyYAML's own parser is the reference."""
    import yaml

    from ggzy.spec._loader import SAFE_LOADER

    files = sorted((Path(__file__).resolve().parents[3] / "ggzy" / "spec" / "data").rglob("*.yaml"))
    assert len(files) > 100
    assert SAFE_LOADER is yaml.CSafeLoader  # the wheel ships libyaml: the fast path is the one in use
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert yaml.load(text, Loader=SAFE_LOADER) == yaml.safe_load(text), path.name
