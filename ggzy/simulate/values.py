"""A generic value filler: any field of any table gets a valid, plausible string.

Every field is turned once into a :data:`Filler` (a function of the record's context) by looking at
its type notation, semantic, code list and, for free text, its name. A table added to the
specification as data therefore gets plausible records with no code change here.

:class:`TablePlan` puts the fillers of one table together with what the record as a whole needs:
the times of its stage (ordered as the table's ``time_order`` demands), its amount groups
(currency, unit and an amount plausible for the unit) and its conditional requirements.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from ggzy.identifiers import make_id_number, make_uscc
from ggzy.simulate import names
from ggzy.spec import (
    AmountGroup,
    CodeList,
    Domain,
    FieldSpec,
    InfoClass,
    Kind,
    Privacy,
    Semantic,
    Spec,
    TableSpec,
)

__all__ = [
    "Filler",
    "Lot",
    "Party",
    "Person",
    "ProvinceSystems",
    "RecordContext",
    "Scene",
    "TablePlan",
    "format_date",
    "format_datetime",
    "format_number",
    "industry_code",
    "make_party",
    "make_person",
    "mask_personal",
    "random_mobile",
]

# --- entities: who and what a record is about ---


@dataclass(slots=True)
class Party:
    """A market subject (company, agency, public body) with everything a record may say about it."""

    name: str
    code: str  # a valid 统一社会信用代码
    region: str
    address: str
    contact: str
    mobile: str
    email: str
    representative: str
    bank_account: str
    capital_yuan: int


@dataclass(slots=True)
class Person:
    """A natural person (expert, professional, individual trader)."""

    name: str
    id_number: str
    birth: dt.date
    gender: str  # GB/T 2261.1: 1 male, 2 female
    mobile: str
    address: str
    bank_account: str
    employer: str


@dataclass(frozen=True, slots=True)
class ProvinceSystems:
    """The province's trading systems: the identifiers every record carries."""

    province: str
    platform_codes: tuple[str, ...]  # PLATFORM_CODE: USCCs of the e-trading systems' operators
    service_code: str  # PUB_SERVICE_PLAT_CODE: USCC of the public service system's operator
    trade_plats: tuple[str, ...]  # TRADE_PLAT: C11 codes issued by the national tendering platform
    pub_service_plat: str  # PUB_SERVICE_PLAT: C11


@dataclass(slots=True)
class Lot:
    """A 标段(包), 子包 or 标的: the level that carries a 统一交易标识码."""

    index: int
    code: str
    name: str
    deal_code: str
    amount_yuan: float
    bidders: list[Party]
    experts: list[Person]

    @property
    def winner(self) -> Party:
        return self.bidders[0]


@dataclass(slots=True)
class Scene:
    """What one transaction is about; shared by all its records."""

    domain: str
    trade_class: str
    platform_code: str
    trade_plat: str
    province: str
    province_name: str
    region: str
    prefecture: str
    prefecture_name: str
    project_name: str
    industry: str
    project_code: str
    tender_project_code: str
    owner: Party
    agency: Party
    center: Party
    dept: Party
    target: Party
    lots: list[Lot]
    year: int
    shareholders: list[Party] = field(default_factory=list)
    memo: dict[str, str] = field(default_factory=dict)  # identifiers repeated across the transaction

    def lot_codes(self) -> str:
        return ";".join(lot.code for lot in self.lots)

    def deal_codes(self) -> str:
        return ";".join(lot.deal_code for lot in self.lots)


class RecordContext:
    """Everything a filler may look at while one record is being made."""

    __slots__ = (
        "lot", "ordinal", "party", "person", "raw_personal", "rng", "role", "scene", "serials", "systems", "times",
    )  # fmt: skip

    def __init__(
        self,
        rng: random.Random,
        systems: ProvinceSystems,
        serials: Iterator[int],
        scene: Scene,
        raw_personal: bool,
    ) -> None:
        self.rng = rng
        self.systems = systems
        self.serials = serials
        self.scene = scene
        self.raw_personal = raw_personal
        self.lot: Lot = scene.lots[0]
        self.party: Party | None = None
        self.person: Person | None = None
        self.ordinal = 1
        self.role: str | None = None  # the part the focused subject plays (owner, agency, bidder …)
        self.times: dict[str, dt.datetime] = {}

    def focus(
        self, lot: Lot, party: Party | None = None, person: Person | None = None, ordinal: int = 1
    ) -> None:
        self.lot, self.party, self.person, self.ordinal = lot, party, person, ordinal
        self.role = None

    def party_for(self, role: str) -> Party:
        scene = self.scene
        if role == "owner":
            return scene.owner
        if role == "agency":
            return scene.agency
        if role == "center":
            return scene.center
        if role == "dept":
            return scene.dept
        if role == "target":
            return scene.target
        if role == "participant" and self.party is not None:
            return self.party
        return self.lot.winner

    def the_person(self) -> Person:
        if self.person is None:
            self.person = make_person(
                self.rng, self.scene.region, self.scene.province_name, self.scene.prefecture_name
            )
        return self.person


Filler = Callable[[RecordContext], str]

# --- formatting ---


def format_datetime(moment: dt.datetime) -> str:
    return f"{moment.year:04d}{moment.month:02d}{moment.day:02d}{moment.hour:02d}{moment.minute:02d}{moment.second:02d}"


def format_date(moment: dt.date) -> str:
    return f"{moment.year:04d}{moment.month:02d}{moment.day:02d}"


def format_number(value: float, notation_digits: int, decimals: int, fixed: bool, rng: random.Random) -> str:
    """``value`` as a plain decimal string that fits ``N..digits,decimals`` (or exactly ``N{digits}``)."""
    if fixed:
        text = str(int(abs(value)))
        if len(text) != notation_digits:
            low = 0 if notation_digits == 1 else 10 ** (notation_digits - 1)
            text = str(rng.randint(low, 10**notation_digits - 1))
        return text
    integer_digits = max(notation_digits - decimals, 1)
    ceiling = 10**integer_digits - 1
    value = min(abs(value), float(ceiling))
    places = min(decimals, 2)
    text = f"{value:.{places}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if len(text.partition(".")[0]) > integer_digits:  # rounding carried into a new digit
        text = str(ceiling)
    return text


# --- personal data ---

_ID_SHAPE = re.compile(r"\d{17}[\dXx]")
_DIGITS = re.compile(r"\d+")


def random_mobile(rng: random.Random) -> str:
    """An 11-digit mobile number of the 13x/15x/18x ranges."""
    return f"1{rng.choice('358')}{rng.randrange(10)}{rng.randrange(10**8):08d}"


def _bank_account(rng: random.Random) -> str:
    return f"6222{rng.randrange(10**15):015d}"


def _mask_address(value: str) -> str:
    """Keep the province and city of an address and hide the rest (the street and house number)."""
    match = re.match(r"^(.*?(?:省|自治区|特别行政区))?(.*?(?:市|自治州|地区|盟))?", value)
    kept = "".join(part for part in (match.groups() if match else ()) if part)
    return (kept or value[:3]) + "****"


def mask_personal(value: str) -> str:
    """The masked form of a personal value, by its shape (ID, mobile, account, phone, address, name)."""
    if _ID_SHAPE.fullmatch(value):
        return value[:6] + "********" + value[-4:]
    if value.isdigit() and len(value) == 11:
        return value[:3] + "****" + value[-4:]
    if value.isdigit() and len(value) >= 12:
        return value[:6] + "*" * (len(value) - 10) + value[-4:]
    if _DIGITS.search(value) and len(value) <= 20 and not re.search(r"[省市区县路街号]", value):
        return value[:4] + "****" + value[-4:]  # a landline or another number
    if re.search(r"[省市]", value):
        return _mask_address(value)
    if len(value) <= 2:
        return value[:1] + "*"
    return value[:1] + "*" * (len(value) - 2) + value[-1:]


def make_person(rng: random.Random, region: str, province_name: str, prefecture_name: str) -> Person:
    birth = dt.date(rng.randint(1960, 1995), rng.randint(1, 12), rng.randint(1, 28))
    return Person(
        name=names.person_name(rng),
        id_number=make_id_number(rng, region, birth),
        birth=birth,
        gender=rng.choice("12"),
        mobile=random_mobile(rng),
        address=names.address(rng, province_name, prefecture_name),
        bank_account=_bank_account(rng),
        employer=names.company_name(rng, names.short_place(prefecture_name), names.CompanyKind.AGENCY),
    )


def _email(rng: random.Random) -> str:
    mailbox = rng.choice(("ggzy", "zb", "info", "bid", "office"))
    return f"{mailbox}{rng.randrange(10000)}@{rng.choice(('163.com', '126.com', 'qq.com', 'sina.com'))}"


def make_party(
    rng: random.Random, name: str, region: str, province_name: str, prefecture_name: str, public: bool
) -> Party:
    """A subject registered in ``region``; public bodies get a 机关/事业单位 USCC (registration authority 1)."""
    code = make_uscc(rng, region, authority="1", kind=rng.choice("12")) if public else make_uscc(rng, region)
    return Party(
        name=name,
        code=code,
        region=region,
        address=names.address(rng, province_name, prefecture_name),
        contact=names.person_name(rng),
        mobile=random_mobile(rng),
        email=_email(rng),
        representative=names.person_name(rng),
        bank_account=_bank_account(rng),
        capital_yuan=rng.choice((1, 2, 5, 10, 20, 50, 100)) * 1_000_000,
    )


# --- GB/T 4754 ---

_DIVISIONS = {
    "A": (1, 5), "B": (6, 12), "C": (13, 43), "D": (44, 46), "E": (47, 50), "F": (51, 52), "G": (53, 60),
    "H": (61, 62), "I": (63, 65), "J": (66, 69), "K": (70, 70), "L": (71, 72), "M": (73, 75), "N": (76, 79),
    "O": (80, 82), "P": (83, 83), "Q": (84, 85), "R": (86, 90), "S": (91, 97), "T": (98, 98),
}  # fmt: skip


def industry_code(rng: random.Random, section: str) -> str:
    """A GB/T 4754-2017 division: the section letter and one of its two-digit 大类."""
    low, high = _DIVISIONS.get(section, (47, 50))
    return f"{section}{rng.randint(low, high):02d}"


# --- field fillers ---

_ROLE_PREFIXES: tuple[tuple[str, str], ...] = (
    ("COMPLAINTED_BODY", "participant"),
    ("SUPERVISOR_UNIT", "dept"),
    ("SUPERVISE_DEPT", "dept"),
    ("APPROVE_DEPT", "dept"),
    ("PURCHASER_AGENCY", "agency"),
    ("TENDER_AGENCY", "agency"),
    ("TRA_AGENCY", "center"),
    ("TRAD_CENTER", "center"),
    ("TRADING_CENTER", "center"),
    ("WIN_CANDIDATE", "participant"),
    ("WINNINGBIDDER", "winner"),
    ("WIN_BIDDER", "winner"),
    ("PERFORMANCE_PARTY", "winner"),
    ("SUBJECT_COMPANY", "target"),
    ("TOP10_HOLDER", "participant"),
    ("APPLICANTION", "participant"),
    ("SUPPLIER", "winner"),
    ("LENDING", "winner"),
    ("TENDERER", "owner"),
    ("PURCHASER", "owner"),
    ("BIDDER", "participant"),
    ("SELLER", "owner"),
    ("TENDER", "owner"),
    ("OWNER", "owner"),
    ("APPLY", "winner"),
    ("UNION", "participant"),
    ("LEGAL", "participant"),
    ("BODY", "participant"),
    ("UNIT", "participant"),
)
_ATTRIBUTES = {
    "_NAME": "name", "_NAM": "name", "_CODE": "code", "_ORG_CODE": "code", "_NO": "code",
    "_CODE_TYPE": "code_type", "_TYPE": "code_type", "_ROLE": "role", "_ADDRESS": "address",
    "_UNIT_ADDRESS": "address", "_CONTACT_ADDRESS": "address", "_CONTACTOR": "contact", "_CONNECTOR": "contact",
    "_CONTACT": "contact", "_CONTACT_NAME": "contact", "_PHONE_NUMBER": "phone", "_PHONE": "phone",
    "_CONTACT_PHONE": "phone", "_INFORMATION": "phone", "_EMAIL": "email", "_REPRESENT": "representative",
    "_WEB": "url", "_ZIP_CODE": "zip",
}  # fmt: skip
_EXACT_SLOTS = {
    "LEGAL_PERSON": ("owner", "name"),
    "NA_APPLY_PERSON": ("winner", "name"),
    "NA_PUBLIC_BIDDER": ("winner", "name"),
    "NA_REG_ADDRESS": ("winner", "address"),
    "BASIC_ACCOUNT_NAME": ("participant", "name"),
    "LIAISON_UNIT": ("center", "name"),
    "ANNOUNCEMENT_UNIT": ("center", "name"),
}
# SUBJECT_ROLE codes by the part a subject plays, per trading domain.
_BIDDER_ROLES = {"construction": "03", "procurement": "06", "land": "08", "mining": "09", "property": "08"}
_ROLE_CODES = {
    "owner": {"construction": "01", "procurement": "04", "land": "07", "mining": "07", "property": "07"},
    "agency": {"construction": "02", "procurement": "05"},
    "participant": _BIDDER_ROLES,
    "winner": _BIDDER_ROLES,
    "bidder": _BIDDER_ROLES,
}
_PREFERRED_CODES = {
    "CURRENCY": "156",
    "SUBJECT_CODE_TYPE": "1",
    "ID_TYPE": "01",
    "CLASS_VER": "2",
}


_SLOT_SEMANTICS = (
    None,
    Semantic.USCC,
    Semantic.SUBJECT_CODE,
    Semantic.PHONE,
    Semantic.ADDRESS,
    Semantic.EMAIL,
)


def _party_slot(spec: FieldSpec) -> tuple[str, str] | None:
    """Which party and which of its attributes a field names (``TENDERER_CODE`` → owner's code)."""
    if spec.semantic not in _SLOT_SEMANTICS:
        return None  # a natural person's ID number is never a company's code
    if spec.name in _EXACT_SLOTS:
        return _EXACT_SLOTS[spec.name]
    for prefix, role in _ROLE_PREFIXES:
        if spec.name.startswith(prefix):
            attribute = _ATTRIBUTES.get(spec.name[len(prefix) :])
            if attribute is None:
                continue
            if (
                attribute == "code_type"
                and spec.codelist != "SUBJECT_CODE_TYPE"
                and not spec.name.endswith("_CODE_TYPE")
            ):
                continue
            length = spec.field_type.length
            if attribute == "code" and spec.semantic is None and length is not None and length < 18:
                continue
            return role, attribute
    return None


def _fit(value: str, spec: FieldSpec) -> str:
    """Cut or pad free text to the field's length (counting characters, as the spec does)."""
    length = spec.field_type.length
    if length is None:
        return value
    if spec.field_type.fixed:
        return (value + "0" * length)[:length] if len(value) != length else value
    return value[:length]


class FillerFactory:
    """Builds the filler of each field of a specification, once."""

    def __init__(self, spec: Spec) -> None:
        self.codelists: Mapping[str, CodeList] = spec.codelists

    def codes(self, name: str) -> tuple[str, ...]:
        return tuple(self.codelists[name].values)

    def make(self, table: TableSpec, spec: FieldSpec) -> Filler:
        base = self._base(table, spec)
        if spec.privacy is Privacy.PERSONAL:
            return _personal(base)
        return base

    def _base(self, table: TableSpec, spec: FieldSpec) -> Filler:
        kind = spec.field_type.kind
        name = spec.name
        if kind is Kind.DATETIME:
            return lambda ctx: format_datetime(ctx.times[name])
        if kind is Kind.DATE:
            return lambda ctx: format_date(ctx.times[name])
        special = _platform_filler(name)
        if special is not None:
            return special
        slot = _party_slot(spec)
        if slot is not None:
            return self._slot_filler(spec, *slot)
        if spec.codelist:
            return self._code_filler(spec)
        if kind is Kind.NUMBER:
            return _number_filler(table, spec)
        if spec.semantic is not None:
            return _semantic_filler(table, spec)
        return _text_filler(table, spec)

    def _code_filler(self, spec: FieldSpec) -> Filler:
        listed = spec.codelist or ""
        codes = self.codes(listed)
        if listed == "TRADE_CLASS":
            return lambda ctx: ctx.scene.trade_class
        if listed == "INDUSTRY_SECTION":
            return lambda ctx: ctx.scene.industry[0]
        if listed == "GENDER":
            return lambda ctx: ctx.the_person().gender
        preferred = _PREFERRED_CODES.get(listed)
        if preferred in codes:
            chosen = preferred
            return lambda ctx: chosen
        return lambda ctx: ctx.rng.choice(codes)

    def _slot_filler(self, spec: FieldSpec, role: str, attribute: str) -> Filler:
        if attribute == "code_type":
            codes = self.codes(spec.codelist) if spec.codelist else ("1",)
            chosen = "1" if "1" in codes else codes[0]
            return lambda ctx: chosen
        if attribute == "role":
            codes = self.codes(spec.codelist) if spec.codelist else ("99",)
            fallback = "99" if "99" in codes else codes[0]

            def role_code(ctx: RecordContext) -> str:
                part = ctx.role if role == "participant" and ctx.role else role
                return _ROLE_CODES.get(part, {}).get(ctx.scene.domain, fallback)

            return role_code
        getter = _PARTY_ATTRIBUTES[attribute]
        if attribute in ("name", "address", "contact", "url"):
            return lambda ctx: _fit(getter(ctx.party_for(role), ctx), spec)
        return lambda ctx: getter(ctx.party_for(role), ctx)


_PARTY_ATTRIBUTES: dict[str, Callable[[Party, RecordContext], str]] = {
    "name": lambda p, ctx: p.name,
    "code": lambda p, ctx: p.code,
    "address": lambda p, ctx: p.address,
    "contact": lambda p, ctx: p.contact,
    "phone": lambda p, ctx: p.mobile,
    "email": lambda p, ctx: p.email,
    "representative": lambda p, ctx: p.representative,
    "url": lambda p, ctx: f"https://www.{p.code[-6:].lower()}.com.cn",
    "zip": lambda p, ctx: f"{p.region[:2]}{ctx.rng.randrange(10000):04d}",
}


def _platform_filler(name: str) -> Filler | None:
    """The identifiers of the province's own systems, which every record carries."""
    if name == "PLATFORM_CODE":
        return lambda ctx: ctx.scene.platform_code
    if name == "PUB_SERVICE_PLAT_CODE":
        return lambda ctx: ctx.systems.service_code
    if name == "TRADE_PLAT":
        return lambda ctx: ctx.scene.trade_plat
    if name == "PUB_SERVICE_PLAT":
        return lambda ctx: ctx.systems.pub_service_plat
    return None


def _personal(base: Filler) -> Filler:
    def fill(ctx: RecordContext) -> str:
        value = base(ctx)
        return value if ctx.raw_personal else mask_personal(value)

    return fill


def _semantic_filler(table: TableSpec, spec: FieldSpec) -> Filler:
    semantic = spec.semantic
    multi = spec.multi
    if semantic is Semantic.USCC or semantic is Semantic.SUBJECT_CODE:
        return lambda ctx: ctx.party_for("participant").code
    if semantic is Semantic.ID_NUMBER:
        return lambda ctx: ctx.the_person().id_number
    if semantic is Semantic.REGION:
        if spec.name.startswith("TRA_PLACE"):
            return lambda ctx: ctx.scene.prefecture
        if table.domain is Domain.SUBJECT:
            return lambda ctx: ctx.party_for("participant").region
        return lambda ctx: ctx.scene.region
    if semantic is Semantic.INDUSTRY:
        return lambda ctx: ctx.scene.industry
    if semantic is Semantic.DEAL_CODE:
        return lambda ctx: ctx.lot.deal_code
    if semantic is Semantic.DEAL_CODES:
        return lambda ctx: ctx.scene.deal_codes()
    if semantic is Semantic.PROJECT_CODE:
        return lambda ctx: ctx.scene.project_code
    if semantic is Semantic.TENDER_PROJECT_CODE:
        return lambda ctx: ctx.scene.tender_project_code
    if semantic is Semantic.SECTION_CODE:
        if multi:
            return lambda ctx: ctx.scene.lot_codes()
        return lambda ctx: ctx.lot.code
    if semantic is Semantic.PHONE:
        return lambda ctx: (
            ctx.person.mobile if ctx.person is not None else ctx.party_for("participant").mobile
        )
    if semantic is Semantic.ADDRESS:
        return lambda ctx: _fit(
            ctx.person.address if ctx.person is not None else ctx.party_for("owner").address, spec
        )
    if semantic is Semantic.BANK_ACCOUNT:
        return lambda ctx: (
            ctx.person.bank_account if ctx.person is not None else ctx.party_for("participant").bank_account
        )
    if semantic is Semantic.EMAIL:
        return lambda ctx: ctx.party_for("owner").email
    return lambda ctx: _fit(_url(ctx, table), spec)


def _url(ctx: RecordContext, table: TableSpec) -> str:
    return f"https://ggzy.example.gov.cn/{ctx.scene.province}/{table.data_no}/{ctx.scene.year}/{next(ctx.serials)}.html"


# --- numbers ---


def _number_filler(table: TableSpec, spec: FieldSpec) -> Filler:
    ftype = spec.field_type
    digits, decimals, fixed = ftype.length or 1, ftype.decimals, ftype.fixed
    value = _number_source(spec)

    def fill(ctx: RecordContext) -> str:
        return format_number(value(ctx), digits, decimals, fixed, ctx.rng)

    return fill


_MONEY_WORDS = ("金额", "价", "费", "资本", "预算", "资产", "负债", "收入", "利润", "净值", "估值", "权益")
_PERSON_WORDS = (
    "姓名",
    "联系人",
    "负责人",
    "责任人",
    "代表人",
    "创建人",
    "发布人",
    "处理人",
    "经办人",
    "申请人",
)
_CODE_WORDS = ("编号", "代码", "号码", "标识", "标示", "文号", "证号", "编码", "许可证", "主键")


def _number_source(spec: FieldSpec) -> Callable[[RecordContext], float]:
    zh = spec.name_zh
    ftype = spec.field_type
    if ftype.length == 4 and ftype.decimals == 0 and "年" in zh:
        return lambda ctx: ctx.scene.year - 1
    if "数量" in zh and any(word in zh for word in ("标段", "子包", "宗地")):
        return lambda ctx: len(ctx.scene.lots)
    if "排名" in zh or "序号" in zh:
        return lambda ctx: ctx.ordinal
    if "次数" in zh:
        return lambda ctx: 1
    if "比例" in zh or "比率" in zh or "%" in zh:
        return lambda ctx: round(ctx.rng.uniform(5, 60), 2)
    if "面积" in zh:
        return lambda ctx: round(ctx.rng.uniform(2_000, 200_000), 2)
    if "年限" in zh:
        return lambda ctx: ctx.rng.choice((5, 10, 20, 30, 40, 50))
    if "期间" in zh:
        return lambda ctx: ctx.rng.randint(10, 60)
    if any(word in zh for word in ("工期", "期限", "有效期", "天")):
        return lambda ctx: ctx.rng.randint(20, 720)
    if any(word in zh for word in ("人数", "数量", "条数", "规模")):
        return lambda ctx: ctx.rng.randint(1, 500)
    if "大小" in zh:
        return lambda ctx: ctx.rng.randint(20_000, 9_000_000)
    if any(word in zh for word in _MONEY_WORDS):
        return lambda ctx: round(ctx.lot.amount_yuan * ctx.rng.uniform(0.3, 1.2), 2)
    return lambda ctx: ctx.rng.randint(1, 9)


# --- free text ---

_EDUCATION = ("本科", "硕士研究生", "博士研究生", "大专")
_TITLES = ("高级工程师", "工程师", "正高级工程师", "高级经济师", "高级会计师")
_JOBS = ("总工程师", "项目经理", "技术负责人", "部门经理", "副总经理")
_BANKS = ("中国工商银行", "中国建设银行", "中国农业银行", "中国银行", "交通银行", "兴业银行")
_PHRASES = (
    "按照相关法律法规和交易规则执行",
    "详见交易文件及有关附件",
    "符合国家及行业现行标准规范要求",
    "以交易平台公布的信息为准",
    "依法依规公开、公平、公正进行",
)


def _text_filler(table: TableSpec, spec: FieldSpec) -> Filler:
    """Free text chosen by what the field's Chinese name says it holds."""
    ftype = spec.field_type
    if ftype.fixed and ftype.length is not None:
        return _fixed_text_filler(spec, ftype.length)
    choose = _free_text_source(table, spec)
    return lambda ctx: _fit(choose(ctx), spec)


def _fixed_text_filler(spec: FieldSpec, length: int) -> Filler:
    zh = spec.name_zh
    if "项目" in zh and "编号" in zh:
        return lambda ctx: ((ctx.scene.tender_project_code or ctx.scene.project_code) + "0" * length)[:length]
    if length == 24 and "投资项目" in zh:
        return lambda ctx: (
            f"{ctx.scene.year}-{ctx.scene.region}-{ctx.scene.industry[1:]}-0{ctx.rng.randint(1, 4)}-"
            f"{ctx.rng.randrange(10**6):06d}"
        )
    if length == 36:
        return lambda ctx: _guid(ctx.rng)
    if length == 64:
        return lambda ctx: hashlib.sha256(str(ctx.rng.random()).encode()).hexdigest()
    if length == 9 and "组织机构" in zh:
        return lambda ctx: ctx.party_for("participant").code[8:17]
    if length == 18 and ("身份证" in zh or "证件" in zh):
        return lambda ctx: ctx.the_person().id_number
    if length == 3 and "行业" in zh:
        return lambda ctx: ctx.scene.industry
    if "国别" in zh:
        return lambda ctx: "156"[:length]
    if "邮" in zh:
        return lambda ctx: f"{ctx.scene.province}{ctx.rng.randrange(10 ** (length - 2)):0{length - 2}d}"
    if "地区" in zh or "区域" in zh:
        return lambda ctx: (ctx.scene.region + "0" * length)[:length]
    if length <= 2:
        first = "1" if length == 1 else "01"
        return lambda ctx: first
    return lambda ctx: f"{ctx.rng.randrange(10**length):0{length}d}"


def _guid(rng: random.Random) -> str:
    text = f"{rng.getrandbits(128):032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _identifier(ctx: RecordContext, spec: FieldSpec, shared: bool) -> str:
    """A code such as 公示编号 or 许可证号; ``shared`` ones are repeated by the records of one transaction."""
    memo = ctx.scene.memo
    value = memo.get(spec.name) if shared else None
    if value is None:
        initials = "".join(part[:1] for part in spec.name.split("_"))[:4]
        value = f"{initials}{ctx.scene.province}{ctx.scene.year}{next(ctx.serials):06d}"
        if shared:
            memo[spec.name] = value
    return value


def _free_text_source(table: TableSpec, spec: FieldSpec) -> Callable[[RecordContext], str]:
    zh, name = spec.name_zh, spec.name
    title = re.sub(r"[(（][^)）]*[)）]", "", table.name_zh)
    per_lot = any(
        not f.multi and (f.semantic is Semantic.SECTION_CODE or f.name == "PURCHASE_SECTION_CODE")
        for f in table.fields
    )
    if "身份证" in zh or "证件号" in zh:
        return lambda ctx: ctx.the_person().id_number
    if name in ("PERSON_NAME", "EXPERT_NAME") or zh == "姓名":
        return lambda ctx: ctx.the_person().name
    if (spec.field_type.length or 99) <= 4:
        return lambda ctx: "1"
    if spec.multi and ("标段" in zh or "子包" in zh) and "编号" in zh:
        return lambda ctx: ctx.scene.lot_codes()
    if "子包编号" in zh or name == "BID_CODE":
        return lambda ctx: ctx.lot.code
    if "项目编号" in zh or "项目（采购项目）编号" in zh or name in ("SECTION_NO",):
        return lambda ctx: ctx.scene.tender_project_code or ctx.scene.project_code
    if any(word in zh for word in _PERSON_WORDS):
        return lambda ctx: names.person_name(ctx.rng)
    if "证书" in zh:
        return lambda ctx: f"建[{ctx.scene.year - ctx.rng.randint(1, 10)}]{ctx.rng.randrange(10**6):06d}"
    if "联合体" in zh and "名称" in zh:
        return lambda ctx: f"{ctx.party_for('participant').name}联合体"
    if "行政区" in zh:
        return lambda ctx: ctx.scene.region
    if "年限" in zh:
        return lambda ctx: f"{ctx.rng.choice((40, 50, 70))}年"
    if "用途" in zh:
        return lambda ctx: ctx.rng.choice(("商服用地", "住宅用地", "工业用地", "公共管理与公共服务用地"))
    if "分类代码" in zh:
        return lambda ctx: ctx.scene.trade_class
    if (spec.field_type.length or 99) <= 30 and "方式" in zh:
        return lambda ctx: ctx.rng.choice(("银行转账", "电子保函", "网上支付"))
    if "参与人" in zh:
        return lambda ctx: "、".join(names.person_name(ctx.rng) for _ in range(3))
    if "电话" in zh or "手机" in zh or "联系方式" in zh:
        return lambda ctx: random_mobile(ctx.rng)
    if "学历" in zh:
        return lambda ctx: ctx.rng.choice(_EDUCATION)
    if "职称" in zh:
        return lambda ctx: ctx.rng.choice(_TITLES)
    if "职务" in zh:
        return lambda ctx: ctx.rng.choice(_JOBS)
    if "银行" in zh or "开户行" in zh:
        return lambda ctx: f"{ctx.rng.choice(_BANKS)}{names.short_place(ctx.scene.prefecture_name)}分行"
    if "工作单位" in zh:
        return lambda ctx: ctx.the_person().employer
    if "媒体" in zh:
        return lambda ctx: f"中国招标投标公共服务平台;{ctx.scene.province_name}公共资源交易平台"
    if "地址" in zh or "地点" in zh or "坐落" in zh or "位置" in zh:
        return lambda ctx: names.address(ctx.rng, ctx.scene.province_name, ctx.scene.prefecture_name)
    if "邮政编码" in zh or "邮编" in zh:
        return lambda ctx: f"{ctx.scene.province}{ctx.rng.randrange(10000):04d}"
    if "坐标" in zh:
        return lambda ctx: f"{ctx.rng.uniform(115, 121):.6f},{ctx.rng.uniform(23, 28):.6f}"
    if "文件名" in zh and "文件名称" not in zh:
        return lambda ctx: f"{ctx.scene.project_name[:20]}{ctx.rng.randint(1, 9)}.pdf"
    if "附件类型" in zh:
        return lambda ctx: "pdf"
    if "数据表编号" in zh:
        return lambda ctx: table.data_no
    if zh.endswith(("单位", "机构", "部门", "机关", "企业")) or "单位名称" in zh or "通报部门" in zh:
        return lambda ctx: ctx.scene.dept.name
    if "支行号" in zh or "行号" in zh:
        return lambda ctx: f"{ctx.rng.randrange(10**12):012d}"
    if "资信等级" in zh or "等级" in zh:
        return lambda ctx: ctx.rng.choice(("AAA", "AA", "A"))
    if zh.endswith("省"):
        return lambda ctx: ctx.scene.province_name
    if zh.endswith("市"):
        return lambda ctx: ctx.scene.prefecture_name
    if any(word in zh for word in _CODE_WORDS):
        # Codes of a transaction (公示编号) repeat across its records; a subject's (执照号) do not.
        shared = name not in table.business_key and table.info_class is InfoClass.TRADE
        return lambda ctx: _identifier(ctx, spec, shared)
    if "标段" in zh and "名称" in zh:
        return lambda ctx: ctx.lot.name
    if any(word in zh for word in ("项目名称", "矿山名称", "油气田名称", "标的名称")):
        return lambda ctx: ctx.scene.project_name
    if zh.endswith(("名称", "标题")) or "名称" in zh:
        if per_lot:
            return lambda ctx: f"{ctx.lot.name}{title}"
        return lambda ctx: f"{ctx.scene.project_name}{title}"
    return lambda ctx: f"{ctx.scene.project_name}{spec.name_zh}：{ctx.rng.choice(_PHRASES)}。"


# --- the whole record ---


_ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class _TimeSlot:
    name: str
    is_date: bool
    mode: str  # "event" | "relative" | "birth" | "future" | "past" | "stamp"
    level: int = 0


def _time_slots(table: TableSpec) -> tuple[_TimeSlot, ...]:
    """Where each time field of a record lies relative to the record's moment.

    The ``time_order`` pairs form a small graph; a field's level is its longest path from a
    source, and its time is the record's moment shifted by (level - the event field's level)
    steps, so every pair keeps its order and the event field is exactly the record's moment.
    """
    times = [f for f in table.fields if f.field_type.kind in (Kind.DATE, Kind.DATETIME)]
    names_in_pairs = {n for order in table.time_order for n in (order.earlier, order.later)}
    level = {f.name: 0 for f in times}
    edges = [(o.earlier, o.later) for o in table.time_order if o.earlier in level and o.later in level]
    for _ in range(len(times)):  # Bellman-Ford style relaxation: the graphs have a handful of edges
        for earlier, later in edges:
            level[later] = max(level[later], level[earlier] + 1)
    # Then as late as possible: a deadline sits just before what it is the deadline for.
    for name in sorted(level, key=level.__getitem__, reverse=True):
        successors = [level[later] for earlier, later in edges if earlier == name]
        if successors:
            level[name] = min(successors) - 1
    anchor = table.event_time or table.publish_time
    anchored = _connected(table, anchor) if anchor else set()
    base = level.get(anchor, 0) if anchor else 0
    slots = []
    for spec in times:
        is_date = spec.field_type.kind is Kind.DATE
        zh = spec.name_zh
        if spec.name == anchor:
            slots.append(_TimeSlot(spec.name, is_date, "event"))
        elif spec.name in anchored or spec.name in names_in_pairs:
            offset = level[spec.name] - (base if spec.name in anchored else 0)
            slots.append(_TimeSlot(spec.name, is_date, "relative", offset))
        elif "出生" in zh:
            slots.append(_TimeSlot(spec.name, is_date, "birth"))
        elif "失效" in zh or "有效期止" in zh:
            slots.append(_TimeSlot(spec.name, is_date, "future"))
        elif any(word in zh for word in ("入库", "从业开始", "成立", "注册")):
            slots.append(_TimeSlot(spec.name, is_date, "past"))
        else:
            slots.append(_TimeSlot(spec.name, is_date, "stamp"))
    return tuple(slots)


def _connected(table: TableSpec, start: str) -> set[str]:
    reached, frontier = {start}, [start]
    while frontier:
        current = frontier.pop()
        for order in table.time_order:
            for a, b in ((order.earlier, order.later), (order.later, order.earlier)):
                if a == current and b not in reached:
                    reached.add(b)
                    frontier.append(b)
    return reached


@dataclass(frozen=True, slots=True)
class _AmountPlan:
    amount: str
    currency: str | None
    unit: str | None
    digits: int
    decimals: int
    fixed: bool
    # "lot": a share of the lot's amount; "fee": a small fixed fee; "capital": the subject's capital
    source: str
    share: tuple[float, float]  # the part of the lot's amount this figure usually is


def _amount_source(spec: FieldSpec) -> str:
    zh = spec.name_zh
    if "售价" in zh or "费用" in zh:
        return "fee"
    if "资本" in zh:
        return "capital"
    return "lot"


def _amount_share(spec: FieldSpec) -> tuple[float, float]:
    zh = spec.name_zh
    if "保证金" in zh:
        return 0.01, 0.02
    if "结算" in zh:
        return 0.95, 1.05
    if "预算" in zh or "估算" in zh or "控制价" in zh or "评估" in zh or "挂牌" in zh:
        return 1.0, 1.0
    return 0.85, 1.0


def _amount_plan(table: TableSpec, group: AmountGroup) -> _AmountPlan:
    spec = table.field_map[group.amount]
    ftype = spec.field_type
    return _AmountPlan(
        group.amount,
        group.currency,
        group.unit,
        ftype.length or 20,
        ftype.decimals,
        ftype.fixed,
        _amount_source(spec),
        _amount_share(spec),
    )


class TablePlan:
    """Everything needed to make records of one table, computed once from its specification."""

    def __init__(self, table: TableSpec, factory: FillerFactory) -> None:
        self.table = table
        self.name = table.name
        self.fillers: tuple[tuple[str, Filler, bool], ...] = tuple(
            (f.name, factory.make(table, f), f.required or f.name in table.business_key) for f in table.fields
        )
        self.filler_map = {name: filler for name, filler, _ in self.fillers}
        self.time_slots = _time_slots(table)
        self.amounts = tuple(_amount_plan(table, g) for g in table.amounts)
        self.amount_fields = frozenset(
            n for g in table.amounts for n in (g.amount, g.currency, g.unit) if n is not None
        )
        self.links = tuple(table.parents) + tuple(table.predecessors)
        self.key_fields = tuple(table.business_key)
        # Dates compare by day: a table ordering dates needs its steps to be whole days at least.
        self.day_steps = any(slot.mode == "relative" and slot.is_date for slot in self.time_slots)

    # --- times ---

    def assign_times(
        self, rng: random.Random, moment: dt.datetime, step: dt.timedelta, person: Person | None
    ) -> dict[str, dt.datetime]:
        times: dict[str, dt.datetime] = {}
        if self.day_steps and step < _ONE_DAY:
            step = _ONE_DAY
        half = step.total_seconds() * 0.4
        for slot in self.time_slots:
            mode = slot.mode
            if mode == "event":
                times[slot.name] = moment
            elif mode == "relative":
                jitter = dt.timedelta(seconds=int(rng.random() * half)) if slot.level else dt.timedelta()
                times[slot.name] = moment + step * slot.level + jitter
            elif mode == "stamp":
                times[slot.name] = moment + dt.timedelta(seconds=int(rng.random() * half))
            elif mode == "birth":
                birth = (
                    person.birth
                    if person is not None
                    else dt.date(rng.randint(1960, 1995), rng.randint(1, 12), 1)
                )
                times[slot.name] = dt.datetime(birth.year, birth.month, birth.day)
            elif mode == "future":
                times[slot.name] = moment + dt.timedelta(days=rng.randint(365, 3650))
            else:
                times[slot.name] = moment - dt.timedelta(days=rng.randint(365, 5000))
        return times

    # --- the record ---

    def fill(
        self, ctx: RecordContext, bound: Mapping[str, str], optional_rate: float = 0.8
    ) -> dict[str, str]:
        rng = ctx.rng
        data: dict[str, str] = {}
        for name, filler, required in self.fillers:
            value = bound.get(name)
            if value is not None:
                data[name] = value
            elif required or rng.random() < optional_rate:
                data[name] = filler(ctx)
        units: dict[str, str] = {}  # a unit column shared by two amounts must suit both
        for plan in self.amounts:
            if plan.amount not in bound:
                self._fill_amount(ctx, plan, data, units)
        for rule in self.table.conditional_required:
            if data.get(rule.when) in rule.equals:
                for name in rule.then:
                    if not data.get(name):
                        data[name] = self.filler_map[name](ctx)
        return data

    def _fill_amount(
        self, ctx: RecordContext, plan: _AmountPlan, data: dict[str, str], units: dict[str, str]
    ) -> None:
        """An amount with its currency 156 and a unit it is plausible in (元 ≥ 1000, 1 ≤ 万元 ≤ 500000)."""
        rng = ctx.rng
        low, high = plan.share
        if plan.source == "fee":
            yuan = rng.uniform(1_000, 5_000)
        elif plan.source == "capital":
            yuan = float(ctx.party_for("participant").capital_yuan)
        else:
            yuan = max(ctx.lot.amount_yuan * rng.uniform(low, high), 1_000.0)
        in_wan = plan.unit is not None and yuan >= 10_000 and rng.random() < 0.3
        integer_digits = max(plan.digits - plan.decimals, 1)
        if plan.unit is not None and not in_wan and yuan >= 10**integer_digits:
            in_wan = True  # too many digits for 元
        if plan.unit is not None and plan.unit in units:
            in_wan = units[plan.unit] == "1"
            yuan = max(yuan, 10_000.0) if in_wan else yuan
        value = yuan / 10_000 if in_wan else yuan
        data[plan.amount] = format_number(value, plan.digits, plan.decimals, plan.fixed, rng)
        if plan.currency is not None:
            data[plan.currency] = "156"
        if plan.unit is not None:
            data[plan.unit] = units[plan.unit] = "1" if in_wan else "0"
