"""Transaction search: the lifecycle of one trade across its stage tables, with versions, verdicts,
timing and stage anomalies.

A trade is found by its 统一交易标识码 (one lot: ``records.deal_code`` is indexed) or by a project,
tender project or section code. The records of the trade's stage tables are then read by key
prefix on the ``(table_name, key, version)`` index: business keys of the stage tables start with the
project, tender-project or section code, and a section code extends its tender project's code. A
record that names a lot (a ``*SECTION_CODE*`` field) belongs to the trade only when it names the
lot searched for. Which tables are stages, their order and what each needs before it come from the
specification (``stage``, ``parents``, ``predecessors``).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, Table, and_, select

from ggzy.hub.models import portal_rejections, records
from ggzy.hub.portal.scope import Scope
from ggzy.spec import Domain, InfoClass, TableSpec, load_spec
from ggzy.validation.dealcodes import deal_code_plans, list_items

__all__ = ["MAX_RECORDS", "find_trade"]

# Rows read for one trade, in all: a bound on the answer's cost, far above any real trade (a few
# hundred versions); past it the answer says it is truncated.
MAX_RECORDS: Final = 2000
TIMELY: Final = dt.timedelta(minutes=10)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


@cache
def _stage_tables() -> dict[Domain, tuple[TableSpec, ...]]:
    """Trading tables with a stage, per domain, in stage order."""
    by_domain: dict[Domain, list[TableSpec]] = defaultdict(list)
    for table in load_spec().tables.values():
        if table.info_class is InfoClass.TRADE and table.stage is not None and not table.attachments:
            by_domain[table.domain].append(table)
    return {d: tuple(sorted(ts, key=lambda t: (t.stage or 0, int(t.data_no)))) for d, ts in by_domain.items()}


def _lot_fields(table: TableSpec) -> tuple[str, ...]:
    return tuple(f.name for f in table.fields if "SECTION_CODE" in f.name)


@cache
def _code_fields() -> frozenset[str]:
    """Fields that name a project, tender project or lot: link fields and stage keys of trading tables."""
    names: set[str] = set()
    for tables in _stage_tables().values():
        for table in tables:
            for link in table.parents + table.predecessors:
                names.update(link.fields)
                names.update(link.fields.values())
            names.update(table.business_key[:1])
    return frozenset(names - {"UNIFIED_DEAL_CODE"})


def _values(data: dict[str, Any], name: str) -> list[str]:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        return []
    return [part for part in value.split(";") if part]


def _after_prefix(code: str) -> str | None:
    """The smallest string above every string starting with ``code`` (None: there is none, the code
    ends in U+10FFFF only): its last character that can grow, grown, with what follows dropped."""
    for at in range(len(code) - 1, -1, -1):
        if ord(code[at]) < 0x10FFFF:
            return code[:at] + chr(ord(code[at]) + 1)
    return None


def _prefix(connection: Connection, table: Table, code: str) -> ColumnElement[bool]:
    key = table.c.key
    if connection.dialect.name == "sqlite":  # a range on the binary-ordered index
        upper = _after_prefix(code)
        return and_(key >= code, key < upper) if upper is not None else key >= code
    return key.startswith(code, autoescape=True)


def _scoped(table: Table, scope: Scope) -> list[ColumnElement[bool]]:
    return [] if scope.national else [table.c.province == scope.province]


def _record_row(row: Any) -> dict[str, Any]:
    published, received = _utc(row.published_at), _utc(row.received_at)
    delay = (received - published).total_seconds() if published and received else None
    return {
        "version": row.version,
        "op": row.op,
        "category": row.category,
        "channel": row.channel,
        "node_id": row.node_id,
        "province": row.province,
        "batch_id": row.batch_id,
        "published_at": published.isoformat() if published else None,
        "acquired_at": a.isoformat() if (a := _utc(row.acquired_at)) else None,
        "sent_at": s.isoformat() if (s := _utc(row.sent_at)) else None,
        "received_at": received.isoformat() if received else None,
        "delay_seconds": delay,
        "timely": None if delay is None or row.channel != 1 else delay <= TIMELY.total_seconds(),
        "verdict": "accepted",
    }


def _read_records(connection: Connection, scope: Scope, condition: ColumnElement[bool]) -> list[Any]:
    r = records.c
    query = (
        select(
            r.table_name,
            r.key,
            r.version,
            r.op,
            r.category,
            r.channel,
            r.node_id,
            r.province,
            r.batch_id,
            r.data,
            r.deal_code,
            r.published_at,
            r.acquired_at,
            r.sent_at,
            r.received_at,
        )
        .where(condition, *_scoped(records, scope))
        .limit(MAX_RECORDS)
    )
    return list(connection.execute(query))


def _read_rejections(connection: Connection, scope: Scope, condition: ColumnElement[bool]) -> list[Any]:
    p = portal_rejections.c
    query = (
        select(
            p.id, p.table_name, p.key, p.node_id, p.batch_id, p.province, p.channel, p.received_at, p.findings
        )
        .where(condition, *_scoped(portal_rejections, scope))
        .order_by(p.id)
        .limit(MAX_RECORDS)
    )
    return list(connection.execute(query))


def _belongs(table: TableSpec, data: dict[str, Any], codes: set[str], lot: str | None) -> bool:
    """A record read by key prefix is part of the trade: its codes agree with the trade's."""
    lot_fields = _lot_fields(table)
    if lot is not None and lot_fields:
        named = {v for name in lot_fields for v in _values(data, name)}
        if named and lot not in named:
            return False
    for name in _code_fields() & set(table.field_map) - set(lot_fields):
        named = set(_values(data, name))
        if named and not named & codes:
            return False  # a code that merely shares the prefix
    return True


def _anchors(hits: Sequence[Any]) -> tuple[set[str], str | None, set[Domain]]:
    """Codes, the lot and the domains named by the records that carry the searched deal code."""
    spec = load_spec()
    codes: set[str] = set()
    lots: set[str] = set()
    domains: set[Domain] = set()
    for row in hits:
        table = spec.table(row.table_name)
        if table is None or table.info_class is not InfoClass.TRADE:
            continue
        domains.add(table.domain)
        for name in _code_fields() & set(table.field_map):
            codes.update(_values(row.data, name))
        for name in _lot_fields(table):
            values = _values(row.data, name)
            if len(values) == 1:
                lots.add(values[0])
    return codes, (next(iter(lots)) if len(lots) == 1 else None), domains


def find_trade(connection: Connection, scope: Scope, query: str) -> dict[str, Any]:
    """The lifecycle of the trade named by ``query`` as the caller's scope lets it see it."""
    spec = load_spec()
    query = query.strip()
    r = records.c
    hits = _read_records(connection, scope, r.deal_code == query) if query else []
    if hits:
        codes, lot, domains = _anchors(hits)
        kind = "deal_code"
    else:
        codes, lot, domains, kind = {query}, None, set(_stage_tables()), "code"
    rows: dict[tuple[str, str, int], Any] = {(row.table_name, row.key, row.version): row for row in hits}
    rejected: dict[int, Any] = {}
    roots = sorted({c for c in codes if c and not any(c != o and c.startswith(o) for o in codes)})
    searched = [(t, c) for d in sorted(domains) for t in _stage_tables().get(d, ()) for c in roots]
    truncated = False
    for table, code in searched:
        if len(rows) + len(rejected) >= MAX_RECORDS:
            truncated = True
            break
        where = and_(r.table_name == table.name, _prefix(connection, records, code))
        for row in _read_records(connection, scope, where):
            if row.key.startswith(code):
                rows[(row.table_name, row.key, row.version)] = row
        p = portal_rejections.c
        where = and_(p.table_name == table.name, _prefix(connection, portal_rejections, code))
        for row in _read_rejections(connection, scope, where):
            rejected[row.id] = row
    if kind == "code":
        lot = (
            query
            if any(
                query in _values(row.data, name)
                for row in rows.values()
                if (t := spec.table(row.table_name)) is not None
                for name in _lot_fields(t)
            )
            else None
        )
        codes |= {
            v
            for row in rows.values()
            if (t := spec.table(row.table_name)) is not None
            for name in _code_fields() & set(t.field_map)
            for v in _values(row.data, name)
            if v.startswith(query) or query.startswith(v)
        }
    return _assemble(query, kind, lot, codes, rows.values(), rejected.values(), hits) | {
        "truncated": truncated
    }


def _event(table: TableSpec, data: dict[str, Any]) -> str | None:
    value = data.get(table.event_time) if table.event_time else None
    return value.ljust(14, "0") if isinstance(value, str) and value.isdigit() else None


def _assemble(
    query: str,
    kind: str,
    lot: str | None,
    codes: set[str],
    rows: Iterable[Any],
    rejections: Iterable[Any],
    hits: Sequence[Any],
) -> dict[str, Any]:
    spec = load_spec()
    searched = {(row.table_name, row.key, row.version) for row in hits}  # carry the deal code searched for
    keys: dict[tuple[str, str], dict[str, Any]] = {}
    latest: dict[tuple[str, str], dict[str, Any]] = {}  # the data of each key's newest version
    related: list[dict[str, Any]] = []
    for row in sorted(rows, key=lambda row: (row.table_name, row.key, row.version)):
        table = spec.table(row.table_name)
        if table is None:
            continue
        if table.stage is None or table.info_class is not InfoClass.TRADE:
            if row.deal_code == query:
                related.append(
                    {"table": table.name, "name_zh": table.name_zh, "key": row.key, **_record_row(row)}
                )
            continue
        named = (row.table_name, row.key, row.version) in searched
        if not named and not _belongs(table, row.data, codes, lot):
            continue
        entry = keys.setdefault(
            (table.name, row.key),
            {"table": table.name, "key": row.key, "versions": [], "rejections": [], "event_time": None},
        )
        entry["versions"].append(_record_row(row))
        entry["event_time"] = _event(table, row.data) or entry["event_time"]
        entry["deleted"] = row.op == "delete"
        latest[(table.name, row.key)] = {} if row.op == "delete" else dict(row.data or {})
    for row in sorted(rejections, key=lambda row: row.id):
        found = keys.get((row.table_name, row.key))
        if found is not None:
            entry = found
        else:
            table = spec.table(row.table_name)
            if table is None or (lot is not None and _lot_fields(table) and lot not in (row.key or "")):
                continue
            entry = keys.setdefault(
                (row.table_name, row.key),
                {
                    "table": row.table_name,
                    "key": row.key,
                    "versions": [],
                    "rejections": [],
                    "event_time": None,
                },
            )
        received = _utc(row.received_at)
        entry["rejections"].append(
            {
                "batch_id": row.batch_id,
                "channel": row.channel,
                "received_at": received.isoformat() if received else None,
                "verdict": "rejected",
                "findings": [f for f in row.findings if f.get("severity") == "error"] or row.findings,
            }
        )
    stages = _stages(keys.values())
    present = {entry["table"] for entry in keys.values() if entry["versions"]}
    provinces = sorted({v["province"] for e in keys.values() for v in e["versions"]})
    return {
        "query": query,
        "kind": kind,
        "found": bool(keys or related),
        "lot": lot,
        "provinces": provinces,
        "domain": stages[0]["domain"] if stages else None,
        "stages": stages,
        "related": related,
        "anomalies": _anomalies(stages, present) + _deal_code_anomalies(latest, keys.values(), query, hits),
    }


def _stages(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    spec = load_spec()
    by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        by_table[entry["table"]].append(entry)
    stages: list[dict[str, Any]] = []
    for name, items in by_table.items():
        table = spec.tables[name]
        items.sort(key=lambda e: (e["event_time"] or "", e["key"] or ""))
        times = [e["event_time"] for e in items if e["event_time"]]
        stages.append(
            {
                "stage": table.stage,
                "table": name,
                "data_no": table.data_no,
                "name_zh": table.name_zh,
                "domain": table.domain.value,
                "domain_zh": table.domain.label_zh,
                "first_event": min(times) if times else None,
                "accepted": any(e["versions"] for e in items),
                "records": items,
            }
        )
    stages.sort(key=lambda s: (s["stage"] or 0, s["first_event"] or "", int(str(s["data_no"]))))
    return stages


def _anomalies(stages: Sequence[dict[str, Any]], present: set[str]) -> list[dict[str, Any]]:
    """Missing earlier stages (by the specification's links) and stages dated before an earlier stage."""
    spec = load_spec()
    found: list[dict[str, Any]] = []
    for stage in stages:
        table = spec.tables[stage["table"]]
        if not stage["accepted"]:
            found.append(
                {
                    "kind": "rejected",
                    "table": table.name,
                    "message_zh": f"“{table.name_zh}”只有被拒收的记录，尚未被接收",
                }
            )
        missing_parents = [link.table for link in table.parents if link.table not in present]
        if table.predecessors and not any(link.table in present for link in table.predecessors):
            missing_parents.append(" / ".join(link.table for link in table.predecessors))
        for name in missing_parents:
            names_zh = " 或 ".join(spec.tables[n].name_zh for n in name.split(" / "))
            found.append(
                {
                    "kind": "missing",
                    "table": table.name,
                    "needs": name,
                    "message_zh": f"缺少前序环节：“{table.name_zh}”之前应有“{names_zh}”",
                }
            )
    dated = [s for s in stages if s["first_event"] and s["stage"] is not None]
    for earlier, later in itertools.pairwise(dated):
        if earlier["stage"] < later["stage"] and later["first_event"] < earlier["first_event"]:
            found.append(
                {
                    "kind": "out_of_order",
                    "table": later["table"],
                    "after": earlier["table"],
                    "message_zh": f"环节顺序异常：“{later['name_zh']}”({later['first_event']}) 早于前序环节"
                    f"“{earlier['name_zh']}”({earlier['first_event']})",
                }
            )
    return found


_DEAL_CODE_RULES = ("E-XR-DEAL-CODE-REUSED", "E-XR-DEAL-CODE-MISMATCH")


def _deal_code_anomalies(
    latest: dict[tuple[str, str], dict[str, Any]],
    entries: Iterable[dict[str, Any]],
    query: str,
    hits: Sequence[Any],
) -> list[dict[str, Any]]:
    """Code conflicts (Art. 7) as stage anomalies: accepted records of the trade under another code
    than their section's (or lot's) registration, list items no registration of the trade holds, the
    searched code registered for several transactions, and rejections for either rule."""
    spec = load_spec()
    plans = deal_code_plans(spec)
    registered: dict[tuple[str, str], str] = {}
    for (name, key), data in latest.items():
        plan = plans.get(name)
        code = data.get(plan.code_field) if plan is not None and plan.registers and plan.code_field else None
        if isinstance(code, str) and code:
            registered[(name, key)] = code
    found: list[dict[str, Any]] = []
    trade_codes = set(registered.values())
    for (name, key), data in sorted(latest.items()):
        plan = plans.get(name)
        if plan is None or plan.registers or not data:
            continue
        table = spec.tables[name]
        code = data.get(plan.code_field) if plan.code_field else None
        names = plan.names
        named = names.key(data) if names is not None else None
        if isinstance(code, str) and code and names is not None and named is not None:
            holder = registered.get((names.table.name, named))
            if holder is not None and holder != code:
                found.append(
                    {
                        "kind": "deal_code",
                        "table": name,
                        "key": key,
                        "message_zh": f"统一交易标识码冲突：“{table.name_zh}”({key}) 的统一交易标识码“{code}”"
                        f"与所属{names.table.name_zh}“{named}”登记的“{holder}”不一致",
                    }
                )
        if plan.list_field and trade_codes:
            strangers = [c for c in list_items(data.get(plan.list_field)) if c not in trade_codes]
            if strangers:
                found.append(
                    {
                        "kind": "deal_code",
                        "table": name,
                        "key": key,
                        "message_zh": f"统一交易标识码冲突：“{table.name_zh}”({key}) 列出的"
                        f"“{'、'.join(strangers)}”不是本交易已登记的统一交易标识码",
                    }
                )
    holders = sorted({(row.table_name, row.key) for row in hits if plans.get(row.table_name, None) is not None
                      and plans[row.table_name].registers and row.deal_code == query})  # fmt: skip
    # A tender project sharing its section's code is that transaction's container, not another one.
    separate = [h for h in holders if not any(o != h and o[1].startswith(h[1]) for o in holders)]
    if len(separate) > 1:
        holding = "、".join(f"{spec.tables[t].name_zh}“{k}”" for t, k in separate)
        found.append(
            {
                "kind": "deal_code",
                "table": separate[0][0],
                "message_zh": f"统一交易标识码“{query}”被多个交易使用：{holding}",
            }
        )
    for entry in entries:
        for rejection in entry["rejections"]:
            for finding in rejection["findings"]:
                if finding.get("code") in _DEAL_CODE_RULES:
                    found.append(
                        {
                            "kind": "deal_code",
                            "table": entry["table"],
                            "key": entry["key"],
                            "message_zh": f"统一交易标识码冲突（已拒收，{finding['code']}）：{finding.get('message_zh', '')}",
                        }
                    )
    return found
