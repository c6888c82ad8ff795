"""The specification's data model: what the YAML files under ``spec/data`` must contain.

The files are the source of truth; these classes only give them a checked, typed shape.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ggzy.spec._notation import FieldType, parse_notation

__all__ = [
    "AmountGroup",
    "CodeList",
    "CodeListStatus",
    "ConditionalRequirement",
    "Domain",
    "FieldSpec",
    "InfoClass",
    "Link",
    "Privacy",
    "Scope",
    "Semantic",
    "Spec",
    "TableSpec",
    "TimeOrder",
]


class Domain(StrEnum):
    CONSTRUCTION = "construction"
    PROCUREMENT = "procurement"
    LAND = "land"
    MINING = "mining"
    PROPERTY = "property"
    OTHER = "other"
    SUBJECT = "subject"
    EXPERT = "expert"
    CREDIT = "credit"
    SUPERVISION = "supervision"

    @property
    def label_zh(self) -> str:
        return _DOMAIN_ZH[self]


_DOMAIN_ZH = {
    Domain.CONSTRUCTION: "工程建设",
    Domain.PROCUREMENT: "政府采购",
    Domain.LAND: "土地使用权",
    Domain.MINING: "矿业权",
    Domain.PROPERTY: "国有产权",
    Domain.OTHER: "其他交易",
    Domain.SUBJECT: "主体信息",
    Domain.EXPERT: "专家信息",
    Domain.CREDIT: "信用信息",
    Domain.SUPERVISION: "监管信息",
}


class InfoClass(StrEnum):
    """Sets the reporting deadline (Art. 9): trade information within minutes, the rest the same day."""

    TRADE = "trade"
    SUBJECT = "subject"
    EXPERT = "expert"
    CREDIT = "credit"
    SUPERVISION = "supervision"

    @property
    def label_zh(self) -> str:
        return {"trade": "交易信息", "subject": "主体信息", "expert": "专家信息", "credit": "信用信息"}.get(
            self.value, "监管信息"
        )

    @property
    def same_day(self) -> bool:
        return self is not InfoClass.TRADE


class Scope(StrEnum):
    PUBLIC = "public"  # 社会公开
    GOVERNMENT = "government"  # 政务公开

    @property
    def label_zh(self) -> str:
        return "社会公开" if self is Scope.PUBLIC else "政务公开"


class Privacy(StrEnum):
    """Drives redaction at the node: personal fields are masked, secret fields never leave."""

    NONE = "none"
    PERSONAL = "personal"
    SECRET = "secret"


class Semantic(StrEnum):
    """What a field's value means beyond its type, which selects the identifier checks."""

    USCC = "uscc"  # 统一社会信用代码, GB 32100
    ID_NUMBER = "id_number"  # 居民身份证号码, GB 11643
    SUBJECT_CODE = "subject_code"  # USCC, organisation code or ID number, by the record's code type
    REGION = "region"  # GB/T 2260
    INDUSTRY = "industry"  # GB/T 4754: section letter + two-digit division
    DEAL_CODE = "deal_code"  # 统一交易标识码
    DEAL_CODES = "deal_codes"  # ';'-separated list of 统一交易标识码
    PROJECT_CODE = "project_code"  # 项目编号 C17
    TENDER_PROJECT_CODE = "tender_project_code"  # 招标项目编号 C20
    SECTION_CODE = "section_code"  # 标段编号 C23
    PHONE = "phone"
    ADDRESS = "address"
    BANK_ACCOUNT = "bank_account"
    EMAIL = "email"
    URL = "url"


class CodeListStatus(StrEnum):
    OFFICIAL = "official"
    PROVISIONAL = "provisional"


class CodeList(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    name_zh: str
    status: CodeListStatus
    source: str = ""
    values: dict[str, str]

    @field_validator("values", mode="before")
    @classmethod
    def _keys_as_strings(cls, value: object) -> object:
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value


class FieldSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")  # national column names are upper-case identifiers
    name_zh: str
    type: str
    required: bool = True
    codelist: str | None = None
    scope: Scope = Scope.GOVERNMENT
    privacy: Privacy = Privacy.NONE
    semantic: Semantic | None = None
    multi: bool = False  # several values separated by a half-width ';'
    note: str = ""

    @field_validator("type")
    @classmethod
    def _known_notation(cls, value: str) -> str:
        parse_notation(value)
        return value

    @cached_property
    def field_type(self) -> FieldType:
        return parse_notation(self.type)


class Link(BaseModel):
    """A reference from this table to another by equal field values (child → parent)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    table: str
    fields: dict[str, str]  # this table's field -> the other table's field


class TimeOrder(BaseModel):
    """``earlier`` must not be after ``later`` when both are present."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    earlier: str
    later: str


class AmountGroup(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: str
    currency: str | None = None
    unit: str | None = None


class ConditionalRequirement(BaseModel):
    """``then`` becomes required when field ``when`` holds one of ``equals``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    when: str
    equals: list[str]
    then: list[str]


class TableSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    data_no: str
    name: str
    name_zh: str
    domain: Domain
    info_class: InfoClass
    business_key: list[str]
    fields: list[FieldSpec]
    parents: list[Link] = Field(default_factory=list)
    # Earlier stages of the same transaction, as alternatives: at least one must have been received.
    predecessors: list[Link] = Field(default_factory=list)
    stage: int | None = None
    event_time: str | None = None  # the field that dates this stage of the transaction
    publish_time: str | None = None  # the field that gives the local publication time
    deal_code: str | None = None  # the field holding this record's 统一交易标识码
    time_order: list[TimeOrder] = Field(default_factory=list)
    amounts: list[AmountGroup] = Field(default_factory=list)
    conditional_required: list[ConditionalRequirement] = Field(default_factory=list)
    attachments: bool = False  # an 附件集 table
    note: str = ""

    @model_validator(mode="after")
    def _references_are_own_fields(self) -> TableSpec:
        names = {f.name for f in self.fields}
        if len(names) != len(self.fields):
            raise ValueError(f"{self.name}: duplicate field names")
        referenced: list[str] = list(self.business_key)
        referenced += [f for link in self.parents + self.predecessors for f in link.fields]
        referenced += [f for f in (self.event_time, self.publish_time, self.deal_code) if f]
        referenced += [f for order in self.time_order for f in (order.earlier, order.later)]
        referenced += [f for g in self.amounts for f in (g.amount, g.currency, g.unit) if f]
        referenced += [f for c in self.conditional_required for f in [c.when, *c.then]]
        missing = sorted(set(referenced) - names)
        if missing:
            raise ValueError(f"{self.name}: references unknown fields {missing}")
        return self

    @cached_property
    def field_map(self) -> dict[str, FieldSpec]:
        return {f.name: f for f in self.fields}

    def key_of(self, data: dict[str, str]) -> str:
        """The business key of a record of this table: key field values joined by '|'."""
        return "|".join(str(data.get(name) or "") for name in self.business_key)


class Spec(BaseModel):
    """The whole specification of one version: tables, code lists and what versions are accepted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    accepted_versions: list[str]
    tables: dict[str, TableSpec]  # by English name
    codelists: dict[str, CodeList]

    @model_validator(mode="after")
    def _consistent(self) -> Spec:
        numbers = [t.data_no for t in self.tables.values()]
        if len(set(numbers)) != len(numbers):
            raise ValueError("two tables share a DATA_NO")
        for table in self.tables.values():
            for spec_field in table.fields:
                if spec_field.codelist and spec_field.codelist not in self.codelists:
                    raise ValueError(
                        f"{table.name}.{spec_field.name}: unknown code list {spec_field.codelist}"
                    )
            for link in table.parents + table.predecessors:
                target = self.tables.get(link.table)
                if target is None:
                    raise ValueError(f"{table.name}: links to unknown table {link.table}")
                unknown = set(link.fields.values()) - set(target.field_map)
                if unknown:
                    raise ValueError(f"{table.name} -> {link.table}: unknown fields {sorted(unknown)}")
        return self

    @cached_property
    def by_number(self) -> dict[str, TableSpec]:
        return {t.data_no: t for t in self.tables.values()}

    def table(self, name_or_number: str) -> TableSpec | None:
        """Find a table by its English name (``SECTION``) or its DATA_NO (``"502"``)."""
        return self.tables.get(name_or_number) or self.by_number.get(name_or_number)
