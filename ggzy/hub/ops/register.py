"""The information register (信息上报, Art. 12): each province's systems and expert pool, with history.

A province registers the basic information of its 公共资源交易电子服务系统 (``service``), each
公共资源电子交易系统 (``trading``) and its 专家库 (``expert``). Each registration of the same system
adds a version; the register shows the newest version of each system and keeps all the earlier ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select

from ggzy.hub.models import ops_tables
from ggzy.hub.ops.fields import Problems, beijing_today, check_province
from ggzy.hub.ops.periods import utc
from ggzy.hub.ops.session import OpsError, OpsSession
from ggzy.spec import load_spec

__all__ = [
    "FIELDS",
    "REQUIRED_FIELDS",
    "SYSTEM_KINDS",
    "RegisterField",
    "register_history",
    "register_of",
    "register_system",
    "trade_classes",
]

T = ops_tables.register
SYSTEM_KINDS = {"service": "公共资源交易电子服务系统", "trading": "公共资源电子交易系统", "expert": "专家库"}
# 交易领域: the classes of public resource trading, by section letter or by class (TRADE_CLASS).
TRADE_SECTIONS = {
    "A": "工程建设",
    "B": "土地使用权",
    "C": "矿业权",
    "D": "政府采购",
    "E": "国有产权",
    "F": "其他交易",
}
SECURITY_LEVELS = {"1": "第一级", "2": "第二级", "3": "第三级", "4": "第四级", "5": "第五级"}
YES_NO = {"yes": "是", "no": "否"}


@dataclass(frozen=True, slots=True)
class RegisterField:
    """One item of a registration: its name, Chinese label, the check it gets and whether it is required."""

    name: str
    label_zh: str
    check: str  # text | long_text | uscc | url | email | phone | mobile | count | date | regions | …
    kinds: tuple[str, ...]  # the system kinds that have this item
    required: tuple[str, ...] = ()  # the kinds that must give it


_ALL = ("service", "trading", "expert")
FIELDS: tuple[RegisterField, ...] = (
    RegisterField("name", "系统名称", "text", _ALL, _ALL),
    RegisterField("operator", "建设运维单位", "text", _ALL, _ALL),
    RegisterField("uscc", "运维单位统一社会信用代码", "uscc", _ALL, ("trading",)),
    RegisterField("url", "访问地址", "url", _ALL, ("service",)),
    RegisterField("trade_areas", "交易领域", "trade_classes", ("service", "trading"), ("trading",)),
    RegisterField("regions", "服务区域（行政区划代码）", "regions", _ALL),
    RegisterField("launched_on", "上线日期", "date", _ALL),
    RegisterField("software_version", "软件版本", "text", ("service", "trading")),
    RegisterField("security_level", "等级保护级别", "security_level", ("service", "trading")),
    RegisterField("security_record_no", "等级保护备案编号", "text", ("service", "trading")),
    RegisterField("experts", "专家人数", "count", ("expert",), ("expert",)),
    RegisterField("specialties", "评标专业数", "count", ("expert",)),
    RegisterField("shared", "是否跨区域共享", "yes_no", ("expert",)),
    RegisterField("updated_on", "专家信息更新日期", "date", ("expert",)),
    RegisterField("contact", "联系人", "text", _ALL),
    RegisterField("contact_phone", "联系电话", "phone", _ALL),
    RegisterField("contact_mobile", "联系人手机", "mobile", _ALL),
    RegisterField("contact_email", "联系邮箱", "email", _ALL),
    RegisterField("notes", "备注", "long_text", _ALL),
)
# The least a registration must say (the rest is optional, but checked when given).
REQUIRED_FIELDS = {kind: tuple(f.name for f in FIELDS if kind in f.required) for kind in SYSTEM_KINDS}


def trade_classes() -> dict[str, str]:
    """The 交易领域 a registration may name: code → Chinese name."""
    classes = dict(TRADE_SECTIONS)
    codelist = load_spec().codelists.get("TRADE_CLASS")
    if codelist is not None:
        classes.update({str(code): str(name) for code, name in codelist.values.items()})
    return classes


def _check_value(problems: Problems, spec: RegisterField, value: Any, province: str, today: Any) -> Any:
    name, label = spec.name, spec.label_zh
    checks: dict[str, Callable[[], Any]] = {
        "text": lambda: problems.text(name, label, value),
        "long_text": lambda: problems.text(name, label, value, max_length=2000),
        "uscc": lambda: problems.uscc(name, label, value),
        "url": lambda: problems.url(name, label, value),
        "email": lambda: problems.email(name, label, value),
        "phone": lambda: problems.phone(name, label, value),
        "mobile": lambda: problems.phone(name, label, value, mobile=True),
        "count": lambda: problems.count(name, label, value),
        "date": lambda: d.isoformat() if (d := problems.date(name, label, value, not_after=today)) else None,
        "regions": lambda: problems.regions(name, label, value, province),
        "trade_classes": lambda: problems.choices(name, label, value, trade_classes(), many=True),
        "security_level": lambda: problems.choices(name, label, _as_text(value), SECURITY_LEVELS),
        "yes_no": lambda: problems.choices(name, label, value, YES_NO),
    }
    return checks[spec.check]()


def _as_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def validate_registration(
    province: str, kind: str, code: Any, data: Any, today: Any
) -> tuple[str, dict[str, Any]]:
    """The cleaned code and items of a registration, or ``OpsError`` naming every refused item."""
    if kind not in SYSTEM_KINDS:
        raise OpsError(
            "E-OPS-REGISTER-KIND",
            f"登记类别“{kind}”应为 {'、'.join(f'{k}（{v}）' for k, v in SYSTEM_KINDS.items())}",
            f"kind must be one of {list(SYSTEM_KINDS)}",
        )
    problems = Problems()
    if not isinstance(data, Mapping):
        raise OpsError("E-OPS-FIELD-TYPE", "登记内容应为“字段: 值”的对象", "data must be an object")
    cleaned_code = problems.text("code", "系统编号", code, max_length=100)
    if cleaned_code is not None and any(c.isspace() for c in cleaned_code):
        problems.add("code", "E-OPS-FIELD-CODE", "系统编号不得含空白字符", "the system code contains spaces")
    known = {f.name: f for f in FIELDS if kind in f.kinds}
    unknown = [str(name) for name in data if name not in known]
    if unknown:
        problems.add(
            "data",
            "E-OPS-REGISTER-UNKNOWN",
            f"{SYSTEM_KINDS[kind]}登记没有这些字段：{'、'.join(unknown)}；可填：{'、'.join(f'{n}（{f.label_zh}）' for n, f in known.items())}",
            f"unknown fields {unknown}; known: {list(known)}",
        )
    cleaned: dict[str, Any] = {}
    for name, spec in known.items():
        if name in data:
            value = _check_value(problems, spec, data[name], province, today)
            if value is not None:
                cleaned[name] = value
    reported = {p.field for p in problems.found}
    missing = [
        f.label_zh for n, f in known.items() if kind in f.required and n not in cleaned and n not in reported
    ]
    if cleaned_code is None and "code" not in reported:
        missing.insert(0, "系统编号")
    if missing:
        problems.add(
            "data",
            "E-OPS-REGISTER-FIELDS",
            f"{SYSTEM_KINDS[kind]}登记缺少：{'、'.join(missing)}",
            f"missing fields: {missing}",
        )
    problems.raise_if_any()
    assert cleaned_code is not None
    return cleaned_code, cleaned


def register_system(
    session: OpsSession, province: str, kind: str, code: str, data: Mapping[str, Any]
) -> dict[str, Any]:
    """Record a new version of a system's registration after checking every item (Art. 12)."""
    check_province(province)
    session.actor.check_province(province)
    code, cleaned = validate_registration(province, kind, code, data, beijing_today(session.now()))
    connection = session.connection
    current = connection.execute(
        select(func.max(T.c.version)).where(
            T.c.province == province, T.c.system_kind == kind, T.c.system_code == code
        )
    ).scalar()
    version = int(current or 0) + 1
    connection.execute(
        insert(T),
        {
            "province": province,
            "system_kind": kind,
            "system_code": code,
            "version": version,
            "data": cleaned,
            "recorded_at": session.now(),
            "recorded_by": session.actor.account,
        },
    )
    session.changed("ops.register.record", f"register:{province}:{kind}:{code}", {"version": version})
    return {"province": province, "kind": kind, "code": code, "version": version, "data": cleaned}


def _row(row: Any) -> dict[str, Any]:
    return {
        "province": row.province,
        "kind": row.system_kind,
        "kind_zh": SYSTEM_KINDS.get(row.system_kind, row.system_kind),
        "code": row.system_code,
        "version": row.version,
        "data": row.data,
        "recorded_at": utc(row.recorded_at).isoformat(),
        "recorded_by": row.recorded_by,
    }


def register_history(connection: Connection, province: str | None = None) -> list[dict[str, Any]]:
    where = [T.c.province == province] if province is not None else []
    rows = connection.execute(
        select(T).where(*where).order_by(T.c.province, T.c.system_kind, T.c.system_code, T.c.version.desc())
    )
    return [_row(r) for r in rows]


def register_of(connection: Connection, province: str) -> list[dict[str, Any]]:
    """The newest version of each registered system of ``province``."""
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in register_history(connection, province):
        newest.setdefault((entry["kind"], entry["code"]), entry)
    return list(newest.values())
