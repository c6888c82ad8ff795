"""The information register (信息上报, Art. 12): each province's systems and expert pool, with history.

A province registers the basic information of its 公共资源交易电子服务系统 (``service``), each
公共资源电子交易系统 (``trading``) and its 专家库 (``expert``). Each registration of the same system
adds a version; the register shows the newest version of each system and keeps all the earlier ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, func, insert, select

from ggzy.hub.models import ops_tables
from ggzy.hub.ops.periods import utc
from ggzy.hub.ops.session import OpsError, OpsSession

__all__ = ["REQUIRED_FIELDS", "SYSTEM_KINDS", "register_history", "register_of", "register_system"]

T = ops_tables.register
SYSTEM_KINDS = {"service": "公共资源交易电子服务系统", "trading": "公共资源电子交易系统", "expert": "专家库"}
# The least a registration must say; anything else the province adds is kept as given.
REQUIRED_FIELDS = {
    "service": ("name", "operator", "url"),
    "trading": ("name", "operator", "uscc", "trade_areas"),
    "expert": ("name", "operator", "experts"),
}


def register_system(
    session: OpsSession, province: str, kind: str, code: str, data: Mapping[str, Any]
) -> dict[str, Any]:
    session.actor.check_province(province)
    if kind not in SYSTEM_KINDS:
        raise OpsError(
            "E-OPS-REGISTER-KIND",
            f"登记类别应为 {', '.join(SYSTEM_KINDS)}",
            f"kind must be one of {list(SYSTEM_KINDS)}",
        )
    missing = [name for name in REQUIRED_FIELDS[kind] if data.get(name) in (None, "", [])]
    if missing or not code.strip():
        raise OpsError(
            "E-OPS-REGISTER-FIELDS",
            f"{SYSTEM_KINDS[kind]}登记缺少：{'、'.join(missing or ['系统编号'])}",
            f"missing fields: {missing or ['code']}",
        )
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
            "system_code": code.strip(),
            "version": version,
            "data": dict(data),
            "recorded_at": session.now(),
            "recorded_by": session.actor.account,
        },
    )
    session.changed("ops.register.record", f"register:{province}:{kind}:{code}", {"version": version})
    return {"province": province, "kind": kind, "code": code, "version": version, "data": dict(data)}


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
