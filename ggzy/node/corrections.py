"""Verdicts for operators (Art. 8, 11): what was rejected or held and why, corrections, the repair rate.

A record the hub rejected (or that pre-validation held) stays in the outbox with its findings until
an operator corrects it. ``import_corrections`` takes a corrected file in any interchange format:
each record is matched to the latest rejected or held row of the same table and key, pre-validated
like intake, and queued as the next version of that key (``update`` when the hub already holds the
key, otherwise ``insert``) with ``corrects`` pointing at the row it replaces, which the outbox marks
superseded. Keys with nothing to correct are reported, never queued.

The local repair rate mirrors the hub's (Art. 11): of the keys the hub rejected, how many have a
later accepted version, and how long that took.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Select, and_, func, select

from ggzy.interchange import Category
from ggzy.interchange.readers import NOTES_SHEET_MARK, read_path
from ggzy.node.models import outbox
from ggzy.node.outbox import NOT_BY_STATE, NewRecord, keys_in
from ggzy.node.uploader import utc
from ggzy.security.audit import AuditEntry
from ggzy.spec import Spec, TableSpec, load_spec
from ggzy.store.database import writing
from ggzy.validation import Finding
from ggzy.validation.structure import read_envelope

if TYPE_CHECKING:
    from ggzy.node.context import NodeContext

__all__ = [
    "REPAIR_TARGET",
    "CorrectionProblem",
    "CorrectionReport",
    "DiskFull",
    "RejectFilter",
    "RejectRow",
    "RepairSummary",
    "export_rejects_xlsx",
    "import_corrections",
    "iter_rejects",
    "list_rejects",
    "repair_summary",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")
REPAIR_TARGET = 0.90  # Art. 11: rejected data repaired and re-uploaded
OPEN_STATES = ("rejected", "held")
_CHUNK = 400

STATE_ZH = {"rejected": "国家平台拒收", "held": "预校验暂存"}


# --- listing ---


@dataclass(frozen=True, slots=True)
class RejectFilter:
    table: str | None = None
    rule: str | None = None
    start: dt.date | None = None  # Asia/Shanghai days, inclusive
    end: dt.date | None = None

    def matches_rule(self, findings: Sequence[dict[str, Any]]) -> bool:
        return self.rule is None or any(str(f.get("code", "")).upper() == self.rule.upper() for f in findings)


@dataclass(frozen=True, slots=True)
class RejectRow:
    id: int
    at: dt.datetime  # when the hub rejected it (or when it was held)
    table: str
    key: str
    state: str
    op: str
    channel: int
    findings: list[dict[str, Any]]
    record: dict[str, Any] | None = None  # the stored envelope, read for the export only

    @property
    def codes(self) -> list[str]:
        return list(dict.fromkeys(str(f.get("code", "")) for f in self.findings))

    @property
    def state_zh(self) -> str:
        return STATE_ZH.get(self.state, self.state)


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), SHANGHAI).astimezone(dt.UTC)


def _rejects_statement(flt: RejectFilter, *, with_record: bool = False) -> Select[Any]:
    o = outbox.c
    when = func.coalesce(o.decided_at, o.acquired_at)
    where: list[Any] = [o.state.in_(OPEN_STATES)]
    if flt.table:
        where.append(o.table_name == flt.table)
    if flt.start:
        where.append(when >= _day_start(flt.start))
    if flt.end:
        where.append(when < _day_start(flt.end + dt.timedelta(days=1)))
    columns = [o.id, o.table_name, o.key, o.state, o.op, o.channel, o.findings, when.label("at")]
    if with_record:
        columns.append(o.record)
    return select(*columns).where(and_(*where)).order_by(when.desc(), o.id.desc())


def _reject_row(row: Any) -> RejectRow:
    at = row.at if isinstance(row.at, dt.datetime) else dt.datetime.fromisoformat(str(row.at))
    return RejectRow(
        row.id,
        utc(at),
        row.table_name,
        row.key,
        row.state,
        row.op,
        row.channel,
        list(row.findings or []),
        getattr(row, "record", None),
    )


def iter_rejects(engine: Engine, flt: RejectFilter, *, with_record: bool = False) -> Iterator[RejectRow]:
    """Rejected and held rows matching ``flt``, newest first (with the stored record when asked)."""
    statement = _rejects_statement(flt, with_record=with_record)
    with engine.connect() as connection:
        for row in connection.execution_options(yield_per=500).execute(statement):
            if flt.matches_rule(list(row.findings or [])):
                yield _reject_row(row)


def list_rejects(
    engine: Engine, flt: RejectFilter, page: int = 1, page_size: int = 20
) -> tuple[list[RejectRow], int]:
    """One page (1-based) of ``iter_rejects`` and the number of matching rows."""
    first = (max(page, 1) - 1) * page_size
    if flt.rule is None:
        # Nothing to look for inside the findings: the database counts and cuts the page.
        statement = _rejects_statement(flt)
        with engine.connect() as connection:
            total = connection.execute(select(func.count()).select_from(statement.subquery())).scalar_one()
            rows = connection.execute(statement.limit(page_size).offset(first)).all()
        return [_reject_row(row) for row in rows], int(total)
    shown: list[RejectRow] = []
    total = 0
    for item in iter_rejects(engine, flt):
        if first <= total < first + page_size:
            shown.append(item)
        total += 1
    return shown, total


EXPORT_HEADERS = (
    "时间（北京时间）",
    "状态",
    "数据表",
    "记录标识",
    "操作",
    "通道",
    "规则编码",
    "级别",
    "字段",
    "值",
    "说明",
    "Message",
    "发件箱编号",
)


PROBLEMS_SHEET = f"{NOTES_SHEET_MARK}问题清单（不导入）"


def export_rejects_xlsx(engine: Engine, flt: RejectFilter, path: Path, spec: Spec | None = None) -> int:
    """The rejected and held records as a workbook an operator corrects and imports back.

    The first sheet lists every problem, one row per finding (frozen header, autofilter); its name
    starts with ``#``, so ``import_corrections`` does not read it. Then one sheet per table holds
    the records themselves (a ``table`` and ``category`` column, then the fields in the
    specification's order): the operator fixes the cells there and imports the same file with
    ``ggzy node corrections import``. Returns the problem rows written.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    from ggzy.interchange.spreadsheet import safe_row

    spec = spec or load_spec()
    workbook = Workbook(write_only=False)
    sheet = workbook.active
    sheet.title = PROBLEMS_SHEET
    sheet.append(list(EXPORT_HEADERS))
    records: dict[str, dict[str, dict[str, Any]]] = {}  # table → key → record, first seen first
    written = 0
    for row in iter_rejects(engine, flt, with_record=True):
        if row.record is not None:
            records.setdefault(row.table, {}).setdefault(row.key, row.record)
        at = row.at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
        for finding in row.findings or [{}]:
            if flt.rule and str(finding.get("code", "")).upper() != flt.rule.upper():
                continue
            sheet.append(
                safe_row(  # provincial text: no cell may become a formula
                    [
                        at,
                        row.state_zh,
                        row.table,
                        row.key,
                        row.op,
                        row.channel,
                        finding.get("code", ""),
                        finding.get("severity", ""),
                        finding.get("field") or "",
                        finding.get("value") or "",
                        finding.get("message_zh", ""),
                        finding.get("message_en", ""),
                        row.id,
                    ]
                )
            )
            written += 1
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(EXPORT_HEADERS))}{max(sheet.max_row, 1)}"
    for index, width in enumerate((20, 12, 24, 36, 8, 6, 24, 9, 22, 24, 60, 60, 10), start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    for table_name, by_key in records.items():
        _records_sheet(workbook, spec.tables.get(table_name), table_name, list(by_key.values()))
    for data_sheet in workbook.worksheets:
        for cell in data_sheet[1]:
            cell.font = Font(bold=True)
            cell.fill = PatternFill("solid", fgColor="DDEBF7")
        data_sheet.freeze_panes = "A2"
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return written


def _records_sheet(workbook: Any, table: TableSpec | None, name: str, rows: list[dict[str, Any]]) -> None:
    """One table's records to correct: ``table``, ``category``, then the fields (text cells)."""
    known = [field.name for field in table.fields] if table is not None else []
    present = dict.fromkeys(k for row in rows for k in (row.get("data") or {}))
    columns = known + [k for k in present if k not in known]
    title = f"{table.data_no}-{table.name_zh}" if table is not None else name
    sheet = workbook.create_sheet(re.sub(r"[\\/*?:\[\]]", "_", title)[:31])  # what a sheet name cannot hold
    sheet.append(["table", "category", *columns])
    for record in rows:
        data = record.get("data") or {}
        values = [data.get(column) for column in columns]
        sheet.append([name, record.get("category"), *("" if v is None else str(v) for v in values)])
    for column in sheet.iter_cols(min_row=2):
        for cell in column:
            cell.number_format = "@"  # text: codes and amounts come back exactly as written
            # openpyxl writes a text starting with "=" as a formula; here it must stay the province's
            # text, both so it never runs when opened and so it imports back unchanged (no "'" added)
            if cell.data_type == "f":
                cell.data_type = "s"


# --- corrections ---


class DiskFull(Exception):
    """The disk guard refuses new records (``E-NODE-DISK-FULL``)."""

    code = "E-NODE-DISK-FULL"


@dataclass(slots=True)
class CorrectionProblem:
    line: int
    table: str | None
    key: str | None
    reason_zh: str


@dataclass(slots=True)
class CorrectionReport:
    source: str
    read: int = 0
    queued: list[int] = field(default_factory=list)  # new outbox ids, sent as the next version
    held: list[int] = field(default_factory=list)  # still failing pre-validation: held again
    corrected: list[int] = field(default_factory=list)  # the rejected/held rows they replace
    unknown: list[CorrectionProblem] = field(default_factory=list)  # nothing rejected or held to correct
    unreadable: list[CorrectionProblem] = field(default_factory=list)

    @property
    def accepted_into_queue(self) -> int:
        return len(self.queued) + len(self.held)


DiskCheck = Callable[[], bool]  # the disk guard: True while new records may be stored


@dataclass(slots=True)
class _Corrected:
    line: int
    raw: dict[str, Any]
    table: TableSpec
    key: str
    data: dict[str, str]  # redacted
    redacted: list[str]


class _Reader:
    """Reads a corrected record the way intake reads a new one: secrets refused, personal data redacted.

    The key is formed after redaction, as intake forms it: a personal key field (an expert's ID
    number) is stored as a pseudonym, and the corrected record must find the row it corrects.
    """

    def __init__(self, ctx: NodeContext) -> None:
        from ggzy.node.intake import Intake

        self.spec = ctx.spec
        self.redactor = Intake(ctx).redactor

    def read(self, line: int, raw: dict[str, Any], extra: dict[str, Any]) -> _Corrected | CorrectionProblem:
        from ggzy.node.redaction import RedactionError, is_secret

        findings: list[Finding] = []
        envelope = read_envelope(raw, self.spec, findings)
        if envelope is None:
            reason = next((f.message_zh for f in findings if f.is_error), "无法读取记录")
            table = raw.get("table")
            return CorrectionProblem(line, str(table) if table else None, None, reason)
        table = envelope.table
        if envelope.secret or is_secret(raw, extra):
            return CorrectionProblem(line, table.name, None, "涉密记录不得上传 (E-PRIV-SECRET)")
        data = {k: v for k, v in envelope.data.items() if k != "secret"}
        try:
            redaction = self.redactor.redact(table, data)
        except RedactionError:
            return CorrectionProblem(
                line, table.name, None, "个人信息脱敏失败，记录未处理 (E-NODE-REDACTION)"
            )
        absent = [name for name in table.business_key if not redaction.data.get(name)]
        if absent:
            return CorrectionProblem(line, table.name, None, f"缺少记录标识字段：{'、'.join(absent)}")
        key = table.key_of(redaction.data)
        return _Corrected(line, raw, table, key, redaction.data, list(redaction.actions))


def _open_rows(engine: Engine, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """The latest rejected or held row of each (table, key)."""
    o = outbox.c
    found: dict[tuple[str, str], Any] = {}
    with engine.connect() as connection:
        # One index search per key (ix_outbox_key); a row-value IN list would scan the outbox.
        for matches in keys_in((o.table_name, o.key), sorted(set(pairs))):
            rows = connection.execute(
                select(o.id, o.table_name, o.key, o.record, o.channel, o.published_at)
                .where(matches, NOT_BY_STATE.in_(OPEN_STATES))
                .order_by(o.id)
            )
            for row in rows:
                found[(row.table_name, row.key)] = row  # ascending ids: the last one wins
    return found


def _held_at_hub(engine: Engine, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Keys the hub holds now: their latest accepted version is not a deletion."""
    o = outbox.c
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    with engine.connect() as connection:
        for matches in keys_in((o.table_name, o.key), sorted(set(pairs))):
            for row in connection.execute(
                select(o.id, o.table_name, o.key, o.op).where(matches, NOT_BY_STATE == "accepted")
            ):
                pair = (row.table_name, row.key)
                if pair not in latest or row.id > latest[pair][0]:
                    latest[pair] = (row.id, row.op)
    return {pair for pair, (_, op) in latest.items() if op != "delete"}


def _corrected_envelope(item: _Corrected, old: Any, op: str, now: dt.datetime) -> dict[str, Any]:
    """The corrected record as it will be sent: the file's (redacted) data, the old record's labels."""
    previous = dict(old.record or {})
    record: dict[str, Any] = {"table": item.table.name, "op": op}
    for name in ("category", "spec_version", "published_at"):
        value = item.raw.get(name) or previous.get(name)
        if value:
            record[name] = value
    record["acquired_at"] = now.isoformat()
    data = dict(item.data)
    deal_code = item.table.deal_code
    old_data = previous.get("data") or {}
    if deal_code and not data.get(deal_code) and old_data.get(deal_code):
        data[deal_code] = old_data[deal_code]  # a code intake assigned is kept by the correction
    record["data"] = data
    if item.raw.get("attachments"):
        record["attachments"] = item.raw["attachments"]
    return record


def _channel(record: dict[str, Any], fallback: int) -> int:
    category = record.get("category")
    if isinstance(category, str) and category in Category.__members__.values():
        return Category(category).channel
    return fallback


def import_corrections(
    ctx: NodeContext,
    path: Path,
    *,
    account: str = "-",
    disk_guard: DiskCheck | None = None,
    now: dt.datetime | None = None,
) -> CorrectionReport:
    """Queue the corrected records of ``path`` as next versions of the keys they correct."""
    moment = now or dt.datetime.now(dt.UTC)
    report = CorrectionReport(source=path.name)
    if disk_guard is not None and not disk_guard():
        raise DiskFull()
    reader = _Reader(ctx)
    candidates: list[_Corrected] = []
    for item in read_path(path):
        report.read += 1
        if item.raw is None:
            report.unreadable.append(CorrectionProblem(item.line, None, None, f"无法读取：{item.error}"))
            continue
        read = reader.read(item.line, item.raw, item.extra)
        if isinstance(read, CorrectionProblem):
            report.unreadable.append(read)
        else:
            candidates.append(read)
    pairs = sorted({(c.table.name, c.key) for c in candidates})
    open_rows = _open_rows(ctx.engine, pairs)
    at_hub = _held_at_hub(ctx.engine, pairs)
    items: list[NewRecord] = []
    taken: set[int] = set()
    for candidate in candidates:
        pair = (candidate.table.name, candidate.key)
        old = open_rows.get(pair)
        if old is None or old.id in taken:
            reason = "该记录没有待更正的拒收或暂存版本" if old is None else "同一文件中重复更正同一记录"
            report.unknown.append(CorrectionProblem(candidate.line, pair[0], pair[1], reason))
            continue
        taken.add(old.id)
        items.append(_queued_correction(ctx, candidate, old, pair in at_hub, path, moment))
    ids = ctx.outbox.enqueue(items, now=moment) if items else []
    for new, row_id in zip(items, ids, strict=True):
        (report.held if new.held else report.queued).append(row_id)
        assert new.corrects is not None
        report.corrected.append(new.corrects)
    _audit_import(ctx, report, account, moment)
    return report


def _queued_correction(
    ctx: NodeContext, item: _Corrected, old: Any, held_at_hub: bool, path: Path, now: dt.datetime
) -> NewRecord:
    op = "update" if held_at_hub else "insert"
    if item.raw.get("op") == "delete" and held_at_hub:
        op = "delete"
    record = _corrected_envelope(item, old, op, now)
    findings = [f.to_dict() for f in ctx.validator.check(record, None).verdict.findings]
    errors = any(f["severity"] == "error" for f in findings)
    return NewRecord(
        table=item.table,
        key=item.key,
        record=record,
        channel=_channel(record, old.channel),
        held=errors and ctx.settings.hold_invalid,
        findings=findings,
        redacted=item.redacted,
        source="correction",
        source_ref=f"{path.name}:{item.line}",
        corrects=old.id,
        # Left empty on purpose: a correction is late by nature, not a late realtime record.
        published_at=None,
        acquired_at=now,
    )


def _audit_import(ctx: NodeContext, report: CorrectionReport, account: str, now: dt.datetime) -> None:
    with writing(ctx.engine) as connection:
        ctx.audit.append(
            connection,
            AuditEntry(
                action="correction.import",
                object=f"file:{report.source}"[:512],
                outcome="success" if report.accepted_into_queue else "failure",
                account=account,
                role="operator",
                source="cli",
                detail={
                    "read": report.read,
                    "queued": report.queued,
                    "held": report.held,
                    "corrects": report.corrected,
                    "unknown": [f"{p.table}/{p.key}" for p in report.unknown],
                    "unreadable": len(report.unreadable),
                },
                at=now,
            ),
        )


# --- the repair rate ---


@dataclass(frozen=True, slots=True)
class RepairSummary:
    rejected_keys: int
    repaired_keys: int
    average_seconds: float | None
    open_keys: list[tuple[str, str]]

    @property
    def rate(self) -> float | None:
        return self.repaired_keys / self.rejected_keys if self.rejected_keys else None

    @property
    def meets_target(self) -> bool | None:
        return None if self.rate is None else self.rate >= REPAIR_TARGET


def repair_summary(engine: Engine, start: dt.date | None = None, end: dt.date | None = None) -> RepairSummary:
    """Keys the hub rejected (in the period, by rejection time) and those with a later accepted version."""
    o = outbox.c
    # A row the hub rejected keeps its decision time after it is corrected (superseded); held
    # rows never had one, since they were never sent.
    where: list[Any] = [
        o.state.in_(("rejected", "superseded")),
        o.decided_at.is_not(None),
        o.hub_version.is_(None),
    ]
    if start:
        where.append(o.decided_at >= _day_start(start))
    if end:
        where.append(o.decided_at < _day_start(end + dt.timedelta(days=1)))
    first_rejection: dict[tuple[str, str], tuple[int, dt.datetime]] = {}
    last_rejection: dict[tuple[str, str], int] = {}
    with engine.connect() as connection:
        for row in connection.execute(
            select(o.id, o.table_name, o.key, o.decided_at).where(*where).order_by(o.id)
        ):
            pair = (row.table_name, row.key)
            first_rejection.setdefault(pair, (row.id, utc(row.decided_at)))
            last_rejection[pair] = row.id
        by_table: dict[str, list[str]] = defaultdict(list)
        for table, key in sorted(first_rejection):
            by_table[table].append(key)
        accepted: dict[tuple[str, str], list[tuple[int, dt.datetime]]] = defaultdict(list)
        for table, keys in by_table.items():
            for begin in range(0, len(keys), _CHUNK):
                # One table and a list of keys, so SQLite searches ix_outbox_key; ``state || ''`` keeps it
                # from scanning every accepted row of ix_outbox_state_decided instead (a row-value IN
                # over (table, key) pairs cannot use the key index at all).
                for row in connection.execute(
                    select(o.id, o.table_name, o.key, o.decided_at)
                    .where(
                        o.table_name == table,
                        o.key.in_(keys[begin : begin + _CHUNK]),
                        o.state.concat("") == "accepted",
                    )
                    .order_by(o.id)
                ):
                    accepted[(row.table_name, row.key)].append((row.id, utc(row.decided_at)))
    repaired = 0
    durations: list[float] = []
    still_open: list[tuple[str, str]] = []
    for pair, (first_id, rejected_at) in first_rejection.items():
        versions = accepted.get(pair, [])
        if not any(row_id > last_rejection[pair] for row_id, _ in versions):
            still_open.append(pair)
            continue
        repaired += 1
        fixed_at = next(when for row_id, when in versions if row_id > first_id)
        durations.append(max((fixed_at - rejected_at).total_seconds(), 0.0))
    average = sum(durations) / len(durations) if durations else None
    return RepairSummary(len(first_rejection), repaired, average, sorted(still_open))
