"""``ggzy ops``: operations management at the national hub (运行管理); ``ggzy drill``; ``ggzy node doctor``.

``ggzy ops …`` works on the hub's database directly (like ``ggzy hub stats``) as a national operator;
every change is audited with the operating-system account. ``ggzy drill`` and ``ggzy node doctor``
run at a province, on the node's configuration.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ggzy.cli.app import app
from ggzy.cli.console import err, out
from ggzy.cli.hub import DbOption, _engine, _settings
from ggzy.cli.node import ConfigOption, load_node_settings, node_app
from ggzy.security.permissions import Permission, cli_permission

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from ggzy.hub.ops.session import OpsSession
    from ggzy.settings import HubSettings

R = TypeVar("R")

ops_app = typer.Typer(
    help="运行管理：可用率、停用通知、故障与事件、预案与演练、人员备案、信息上报、检查、考核、整改与通报。",
    no_args_is_help=True,
)
app.add_typer(ops_app, name="ops")
outage_app = typer.Typer(
    help="计划停用通知（停电、搬迁、线路割接、设备检修），须提前通知。", no_args_is_help=True
)
incident_app = typer.Typer(help="运行事件与故障报告：上报 → 处置中 → 已恢复 → 已关闭。", no_args_is_help=True)
plan_app = typer.Typer(help="应急预案（版本、启动与关闭程序）。", no_args_is_help=True)
drills_app = typer.Typer(help="应急演练记录；12个月内未演练的省份。", no_args_is_help=True)
roster_app = typer.Typer(
    help="人员备案：运行负责人、技术负责人、值班人员，关键岗位主备制。", no_args_is_help=True
)
register_app = typer.Typer(
    help="信息上报：电子服务系统、电子交易系统、专家库基本信息（保留历史）。", no_args_is_help=True
)
inspect_app = typer.Typer(help="定期检查与抽检：检查表、发现问题、整改跟踪。", no_args_is_help=True)
orders_app = typer.Typer(help="责令限期改正（第三十五条）：下达、查看、关闭。", no_args_is_help=True)
for sub, name in (
    (outage_app, "outage"),
    (incident_app, "incident"),
    (plan_app, "plan"),
    (drills_app, "drills"),
    (roster_app, "roster"),
    (register_app, "register"),
    (inspect_app, "inspect"),
    (orders_app, "orders"),
):
    ops_app.add_typer(sub, name=name)
drill_app = typer.Typer(help="应急演练实测（在省级前置机上运行）。", no_args_is_help=True)
app.add_typer(drill_app, name="drill")


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    XLSX = "xlsx"
    PDF = "pdf"


FormatOption = Annotated[
    Format, typer.Option("--format", "-f", help="输出：table 中文表格 / json / xlsx / pdf")
]
OutputOption = Annotated[Path | None, typer.Option("--output", "-o", help="xlsx/pdf 输出文件")]
ProvinceOption = Annotated[str | None, typer.Option("--province", "-p", help="省份代码（两位），如 35")]


# --- plumbing ---


def _hub(db: str | None) -> tuple[HubSettings, Engine]:
    settings = _settings(db)
    return settings, _engine(settings)


def _fail(exc: Exception) -> typer.Exit:
    from ggzy.hub.ops.session import OpsError

    if isinstance(exc, OpsError):
        err.print(f"[red]{exc.code}[/] {escape(exc.message_zh)}")
    else:
        err.print(f"[red]E-OPS[/] {exc}")
    return typer.Exit(1)


def _scope(province: str | None) -> str | None:
    """The province a read may cover: a province's account reads its own province only, as over HTTP."""
    from ggzy.hub.ops.session import OpsError
    from ggzy.security.permissions import cli_principal

    principal = cli_principal()
    if principal is None or principal.province is None:
        return province
    if province not in (None, principal.province):
        raise _fail(
            OpsError(
                "E-OPS-SCOPE",
                f"本账号只能查看省份 {principal.province} 的运行管理信息",
                f"this account reads province {principal.province} only",
                403,
            )
        )
    return principal.province


def _national_only() -> None:
    """Country-wide lists are for national operators."""
    from ggzy.hub.ops.session import OpsError
    from ggzy.security.permissions import cli_principal

    principal = cli_principal()
    if principal is not None and principal.province is not None:
        raise _fail(
            OpsError("E-OPS-NATIONAL", "全国范围的清单仅限国家平台操作员查看", "national operators only", 403)
        )


def _read(db: str | None, fn: Callable[[Connection, HubSettings], R]) -> R:
    settings, engine = _hub(db)
    try:
        with engine.connect() as connection:
            return fn(connection, settings)
    finally:
        engine.dispose()


def _write(db: str | None, fn: Callable[[OpsSession], R]) -> R:
    from ggzy.hub.models import audit_tables
    from ggzy.hub.ops.session import Actor, OpsError, OpsSession
    from ggzy.security.audit import open_audit_log
    from ggzy.security.permissions import NotSignedIn, cli_principal

    principal = cli_principal()
    if principal is None:  # every ops command is @cli_permission: the guard has signed someone in
        raise NotSignedIn()
    settings, engine = _hub(db)
    audit = open_audit_log(audit_tables, settings.key_dir, settings.audit_digest)
    # The signed-in person acts, with their own province scope: a province's operator files for
    # their province only, as over HTTP.
    actor = Actor(principal.account, principal.role.value, principal.province, f"cli:{getpass.getuser()}")
    try:
        with engine.connect() as plain:
            connection = plain.execution_options(sqlite_begin="IMMEDIATE")
            with connection.begin():
                return fn(OpsSession(connection, audit, actor, settings.ops))
    except OpsError as exc:
        raise _fail(exc) from exc
    finally:
        engine.dispose()


def _time(text: str) -> dt.datetime:
    """An ISO time; without a zone it is Beijing time."""
    from ggzy.hub.ops.periods import SHANGHAI

    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"时间“{text}”应为 YYYY-MM-DDTHH:MM（北京时间）") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)


def _table(title: str, headers: list[str], rows: list[list[Any]]) -> Table:
    """Cells are text as written (a ``[node]`` in a message stays); our own colours come as ``Text``."""
    table = Table(title=title, show_lines=False)
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*[v if isinstance(v, Text) else Text("—" if v is None else str(v)) for v in row])
    return table


def _json(data: Any) -> None:
    out.print_json(json.dumps(data, ensure_ascii=False, default=str))


def _pct(value: Any) -> str:
    return f"{value:.2%}" if isinstance(value, float) else ("—" if value is None else str(value))


def _verdict(met: bool | None) -> Text:
    return Text.from_markup({True: "[green]达标[/]", False: "[red]未达标[/]", None: "无数据"}[met])


def _export(report: Any, fmt: Format, output: Path | None, default: str) -> None:
    from ggzy.hub.ops.exports import write_pdf, write_xlsx

    target = output or Path(f"{default}.{fmt.value}")
    (write_xlsx if fmt is Format.XLSX else write_pdf)(report, target)
    out.print(f"已导出：{target}")


# --- availability ---


@ops_app.command("availability")
@cli_permission(Permission.OPS_READ)
def availability_command(
    province: Annotated[str, typer.Option("--province", "-p", help="省份代码（两位）")],
    period: Annotated[
        str, typer.Option("--period", help="期间：YYYY（年）、YYYY-MM（月）或 YYYY-MM-DD（日）")
    ],
    output_format: FormatOption = Format.TABLE,
    db: DbOption = None,
) -> None:
    """前置机、网络、省级平台可用率与故障数（按心跳计时，扣除提前通知的计划停用）。

    前置机：连续3个心跳间隔无心跳即为中断，目标≥98%；网络：连接成功率（节点上报+国家平台探测），目标≥99%；
    省级平台：节点探测健康地址+故障报告，目标≥99%。

    示例：ggzy ops availability -p 35 --period 2026-11
    """
    from ggzy.hub.ops.availability import province_availability
    from ggzy.hub.ops.periods import parse_period

    try:
        chosen = parse_period(period)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    province = _scope(province) or province
    result = _read(db, lambda c, s: province_availability(c, province, chosen, s.ops))
    if output_format is Format.JSON:
        _json(result.to_dict())
        return
    rows = [
        [label, _pct(f.value), _pct(f.target), _verdict(f.met), f"{f.numerator:g}/{f.denominator:g} {f.unit}"]
        for label, f in (
            ("前置机系统可用率", result.node),
            ("网络可用率", result.network),
            ("省级平台系统可用率", result.system),
        )
    ]
    out.print(
        _table(f"省份 {province} 可用率（{chosen.label}）", ["指标", "数值", "目标", "结论", "计算"], rows)
    )
    out.print(
        f"计划停用（已扣除）{result.maintenance_seconds / 60:.0f} 分钟；未通知的中断 {result.unnotified_down_seconds / 60:.0f} 分钟；"
        f"迟报通知的中断 {result.late_notice_down_seconds / 60:.0f} 分钟；故障 {result.faults} 起；依据 {result.evidence}"
    )


# --- outages ---


@outage_app.command("add")
@cli_permission(Permission.OPS_WRITE)
def outage_add(
    province: Annotated[str, typer.Option("--province", "-p", help="省份代码")],
    kind: Annotated[
        str,
        typer.Option("--kind", help="power 停电 / relocation 搬迁 / cutover 线路割接 / maintenance 设备检修"),
    ],
    start: Annotated[str, typer.Option("--start", help="开始时间 YYYY-MM-DDTHH:MM（北京时间）")],
    end: Annotated[str, typer.Option("--end", help="结束时间")],
    impact: Annotated[str, typer.Option("--impact", help="对平台对接的影响")],
    db: DbOption = None,
) -> None:
    """登记计划停用通知。至少提前 hub.ops.outage_lead_hours（默认24小时）通知的，停用时段不计入可用率；否则标记为迟报。

    示例：ggzy ops outage add -p 35 --kind cutover --start 2026-12-01T22:00 --end 2026-12-02T02:00 --impact "链路割接，前置机断开"
    """
    from ggzy.hub.ops.outages import OutageKind, notify_outage

    try:
        chosen = OutageKind(kind)
    except ValueError as exc:
        raise typer.BadParameter("kind 应为 power / relocation / cutover / maintenance") from exc
    notice = _write(db, lambda s: notify_outage(s, province, chosen, _time(start), _time(end), impact))
    flag = (
        "按时通知，停用时段不计入可用率"
        if notice.in_time
        else "[yellow]迟报：未提前足够时间通知，停用时段计入可用率[/]"
    )
    out.print(f"停用通知 #{notice.id} 已登记（提前 {notice.lead_hours:.1f} 小时）：{flag}")


@outage_app.command("list")
@cli_permission(Permission.OPS_READ)
def outage_list(
    province: ProvinceOption = None, output_format: FormatOption = Format.TABLE, db: DbOption = None
) -> None:
    """列出停用通知（含迟报标记）。"""
    from ggzy.hub.ops.outages import list_notices

    province = _scope(province)
    notices = _read(db, lambda c, s: list_notices(c, province, include_withdrawn=True))
    if output_format is Format.JSON:
        _json([n.to_dict() for n in notices])
        return
    rows = [
        [
            n.id,
            n.province,
            n.kind.label,
            n.starts_at.isoformat(),
            n.ends_at.isoformat(),
            f"{n.lead_hours:.1f}h",
            "是" if n.in_time else Text.from_markup("[yellow]迟报[/]"),
            n.status,
            n.impact,
        ]
        for n in notices
    ]
    out.print(
        _table("计划停用通知", ["编号", "省份", "类型", "开始", "结束", "提前", "按时", "状态", "影响"], rows)
    )


# --- incidents ---


@incident_app.command("list")
@cli_permission(Permission.OPS_READ)
def incident_list(
    province: ProvinceOption = None,
    unreported: Annotated[bool, typer.Option("--unreported", help="只看尚未提交故障报告的自动事件")] = False,
    output_format: FormatOption = Format.TABLE,
    db: DbOption = None,
) -> None:
    """列出运行事件；--unreported 列出各省未报告的事件（国家平台值班人员查看）。"""
    from ggzy.hub.ops.incidents import list_incidents

    province = _scope(province)
    found = _read(db, lambda c, s: list_incidents(c, province, unreported=True if unreported else None))
    if output_format is Format.JSON:
        _json([i.to_dict() for i in found])
        return
    rows = [
        [
            i.id,
            i.province,
            i.node_id,
            i.to_dict()["trigger_zh"] or "故障报告",
            i.title,
            i.started_at.isoformat(),
            i.to_dict()["status_zh"],
            "否" if i.unreported else "是",
        ]
        for i in found
    ]
    out.print(_table("运行事件", ["编号", "省份", "节点", "类型", "内容", "开始", "状态", "已报告"], rows))


@incident_app.command("report")
@cli_permission(Permission.OPS_WRITE)
def incident_report(
    province: Annotated[str, typer.Option("--province", "-p")],
    title: Annotated[str, typer.Option("--title", help="故障概述")],
    classification: Annotated[
        str,
        typer.Option(
            "--class",
            help="power 电力 / link 链路 / equipment 设备 / software 软件 / security 安全 / other 其他",
        ),
    ],
    start: Annotated[str, typer.Option("--start", help="故障开始时间（北京时间）")],
    end: Annotated[str | None, typer.Option("--end", help="故障结束时间")] = None,
    impact: Annotated[str, typer.Option("--impact", help="影响")] = "",
    cause: Annotated[str, typer.Option("--cause", help="原因")] = "",
    handling: Annotated[str, typer.Option("--handling", help="处置经过")] = "",
    lessons: Annotated[str, typer.Option("--lessons", help="经验教训")] = "",
    actions: Annotated[str, typer.Option("--actions", help="整改措施")] = "",
    incident: Annotated[
        int | None, typer.Option("--incident", help="为已自动立案的事件补报时填事件编号")
    ] = None,
    db: DbOption = None,
) -> None:
    """登记省级平台的故障报告（故障报告单）。

    示例：ggzy ops incident report -p 35 --title 机房停电 --class power --start 2026-11-05T10:00 --end 2026-11-05T12:00 --cause 市电中断 --actions 加装UPS
    """
    from ggzy.hub.ops.incidents import Classification, FaultReport, file_fault_report

    try:
        chosen = Classification(classification)
    except ValueError as exc:
        raise typer.BadParameter("class 应为 power/link/equipment/software/security/other") from exc
    report = FaultReport(
        title, chosen, _time(start), _time(end) if end else None, impact, cause, handling, lessons, actions
    )
    found = _write(db, lambda s: file_fault_report(s, province, report, incident))
    out.print(f"故障报告已登记：事件 #{found.id}（{found.to_dict()['status_zh']}）")


@incident_app.command("status")
@cli_permission(Permission.OPS_WRITE)
def incident_status(
    incident_id: Annotated[int, typer.Argument(help="事件编号")],
    status: Annotated[str, typer.Argument(help="handling 处置中 / recovered 已恢复 / closed 已关闭")],
    db: DbOption = None,
) -> None:
    """推进事件流程（只能向前；关闭须已提交故障报告并写明原因和整改措施）。"""
    from ggzy.hub.ops.incidents import advance_incident

    found = _write(db, lambda s: advance_incident(s, incident_id, status))
    out.print(f"事件 #{found.id}：{found.to_dict()['status_zh']}")


@ops_app.command("watch")
@cli_permission(Permission.OPS_WRITE)
def watch(
    once: Annotated[bool, typer.Option("--once", help="只检查一轮")] = False,
    interval: Annotated[float, typer.Option("--interval", help="每轮间隔秒数")] = 60.0,
    db: DbOption = None,
) -> None:
    """自动发现运行事件并通知值班人员（邮件/Webhook），同时探测各节点可达性。

    触发条件：前置机中断、错误率突增、实时数据超10分钟未送达、磁盘超过90%、备份超过N天未验证。
    """
    import time

    from ggzy.hub.models import audit_log
    from ggzy.hub.ops.detect import run_detection
    from ggzy.hub.ops.probes import probe_nodes
    from ggzy.security.audit import AuditLog
    from ggzy.security.keys import load_or_create_key

    settings, engine = _hub(db)
    audit = AuditLog(audit_log, load_or_create_key(settings.key_dir / "audit.key"), settings.audit_digest)
    try:
        while True:
            probe_nodes(engine, settings.ops)
            result = run_detection(engine, audit, settings.ops)
            for incident in result.opened:
                sent = result.deliveries.get(incident.id, [])
                status = "、".join(f"{d.channel}{'成功' if d.ok else '失败'}" for d in sent) or "未配置通知"
                out.print(
                    f"[red]新事件[/] #{incident.id} 省份 {incident.province}：{incident.title}（通知：{status}）"
                )
            for incident in result.recovered:
                out.print(f"[green]已恢复[/] #{incident.id} 省份 {incident.province}：{incident.title}")
            if once:
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        engine.dispose()


# --- plans and drills ---


@plan_app.command("add")
@cli_permission(Permission.OPS_WRITE)
def plan_add(
    province: Annotated[str, typer.Option("--province", "-p")],
    title: Annotated[str, typer.Option("--title", help="预案名称")],
    activation: Annotated[str, typer.Option("--activation", help="启动程序")],
    closing: Annotated[str, typer.Option("--closing", help="关闭程序")],
    content_file: Annotated[Path | None, typer.Option("--content", help="预案正文文件（UTF-8 文本）")] = None,
    db: DbOption = None,
) -> None:
    """备案应急预案；再次备案即生成新版本，旧版本保留。"""
    from ggzy.hub.ops.preparedness import file_plan

    content = content_file.read_text(encoding="utf-8") if content_file else ""
    plan = _write(db, lambda s: file_plan(s, province, title, activation, closing, content=content))
    out.print(f"预案已备案：省份 {plan.province} 第 {plan.version} 版（#{plan.id}）")


@plan_app.command("list")
@cli_permission(Permission.OPS_READ)
def plan_list(province: ProvinceOption = None, db: DbOption = None) -> None:
    """列出预案及其各版本。"""
    from ggzy.hub.ops.preparedness import list_plans

    province = _scope(province)
    plans = _read(db, lambda c, s: list_plans(c, province))
    rows = [
        [p.id, p.province, p.version, p.title, p.effective_on, p.activation_procedure, p.closing_procedure]
        for p in plans
    ]
    out.print(_table("应急预案", ["编号", "省份", "版本", "名称", "生效", "启动程序", "关闭程序"], rows))


@plan_app.command("activate")
@cli_permission(Permission.OPS_WRITE)
def plan_activate(
    plan_id: Annotated[int, typer.Argument(help="预案编号")],
    incident: Annotated[int | None, typer.Option("--incident", help="所应对的事件编号")] = None,
    note: Annotated[str, typer.Option("--note", help="说明")] = "",
    db: DbOption = None,
) -> None:
    """按启动程序启动预案，记录启动时间（关闭时用 ggzy ops plan close）。"""
    from ggzy.hub.ops.preparedness import activate_plan

    activation = _write(db, lambda s: activate_plan(s, plan_id, incident, note))
    out.print(f"预案 #{plan_id} 已启动，启动记录 #{activation}")


@plan_app.command("close")
@cli_permission(Permission.OPS_WRITE)
def plan_close(
    activation_id: Annotated[int, typer.Argument(help="启动记录编号")],
    note: Annotated[str, typer.Option("--note", help="关闭说明")] = "",
    db: DbOption = None,
) -> None:
    """按关闭程序关闭一次预案启动。"""
    from ggzy.hub.ops.preparedness import close_activation

    _write(db, lambda s: close_activation(s, activation_id, note))
    out.print(f"启动记录 #{activation_id} 已关闭")


@drills_app.command("add")
@cli_permission(Permission.OPS_WRITE)
def drill_add(
    province: Annotated[str, typer.Option("--province", "-p")],
    held_on: Annotated[str, typer.Option("--date", help="演练日期 YYYY-MM-DD")],
    scenario: Annotated[str, typer.Option("--scenario", help="演练场景")],
    participant: Annotated[list[str] | None, typer.Option("--participant", help="参演人员（可重复）")] = None,
    recovery: Annotated[float | None, typer.Option("--recovery-seconds", help="实测恢复时间（秒）")] = None,
    loss: Annotated[int | None, typer.Option("--data-loss", help="丢失数据条数")] = None,
    findings: Annotated[str, typer.Option("--findings", help="发现的问题")] = "",
    db: DbOption = None,
) -> None:
    """登记一次应急演练（手工）。实测演练请在前置机上运行 ggzy drill hub-outage，结果自动上报。"""
    from ggzy.hub.ops.preparedness import record_drill

    drill = _write(
        db,
        lambda s: record_drill(
            s,
            province,
            dt.date.fromisoformat(held_on),
            scenario,
            participant or [],
            recovery_seconds=recovery,
            data_loss_records=loss,
            findings=findings,
        ),
    )
    out.print(f"演练已登记 #{drill.id}")


@drills_app.command("list")
@cli_permission(Permission.OPS_READ)
def drill_list(province: ProvinceOption = None, db: DbOption = None) -> None:
    """列出演练记录。"""
    from ggzy.hub.ops.preparedness import list_drills

    province = _scope(province)
    drills = _read(db, lambda c, s: list_drills(c, province))
    rows = [
        [
            d.id,
            d.province,
            d.held_on,
            d.scenario,
            "、".join(d.participants),
            d.recovery_seconds,
            d.data_loss_records,
            d.origin,
            d.findings,
        ]
        for d in drills
    ]
    out.print(
        _table(
            "应急演练",
            ["编号", "省份", "日期", "场景", "参演人员", "恢复秒数", "丢失条数", "来源", "发现"],
            rows,
        )
    )


@drills_app.command("overdue")
@cli_permission(Permission.OPS_READ)
def drill_overdue(db: DbOption = None) -> None:
    """列出12个月内（hub.ops.drill_max_age_days）未演练的省份。"""
    from ggzy.hub.ops.periods import SHANGHAI
    from ggzy.hub.ops.preparedness import provinces_without_drill

    today = dt.datetime.now(SHANGHAI).date()
    _national_only()
    flagged = _read(db, lambda c, s: provinces_without_drill(c, today, s.ops.drill_max_age_days))
    out.print(
        _table(
            "未按期演练的省份",
            ["省份", "最近演练"],
            [[f["province"], f["last_drill"] or "从未"] for f in flagged],
        )
    )


# --- roster ---


@roster_app.command("show")
@cli_permission(Permission.OPS_READ)
def roster_show(province: Annotated[str, typer.Argument(help="省份代码")], db: DbOption = None) -> None:
    """查看一个省的人员备案与缺项。"""
    from ggzy.hub.ops.roster import roster_gaps, roster_of

    province = _scope(province) or province
    entries, gaps = _read(db, lambda c, s: (roster_of(c, province), roster_gaps(c, province)))
    rows = [
        [e.to_dict()["post_zh"], e.to_dict()["rank_zh"], e.name, e.phone, e.mobile, e.email] for e in entries
    ]
    out.print(_table(f"省份 {province} 人员备案", ["岗位", "主备", "姓名", "电话", "手机", "邮件"], rows))
    for gap in gaps:
        out.print(f"[yellow]{gap.code}[/] {escape(gap.message_zh)}")
    if not gaps:
        out.print("[green]人员备案完整[/]")


@roster_app.command("set")
@cli_permission(Permission.OPS_WRITE)
def roster_set(
    province: Annotated[str, typer.Argument(help="省份代码")],
    post: Annotated[
        str,
        typer.Argument(
            help="lead_ops 运行负责人 / lead_tech 技术负责人 / duty 值班 / security 安全 / network 网络 / equipment 设备 / exchange 数据交换 / backup 数据备份"
        ),
    ],
    rank: Annotated[str, typer.Argument(help="primary 主 / backup 备")],
    name: Annotated[str, typer.Option("--name", help="姓名")],
    phone: Annotated[str, typer.Option("--phone", help="电话")] = "",
    mobile: Annotated[str, typer.Option("--mobile", help="手机")] = "",
    email: Annotated[str, typer.Option("--email", help="邮件")] = "",
    db: DbOption = None,
) -> None:
    """备案或变更一名人员（变更留痕）。示例：ggzy ops roster set 35 network backup --name 李四 --phone 0591-1 --mobile 139 --email ls@fj.gov.cn"""
    from ggzy.hub.ops.roster import set_entry

    entry = _write(
        db, lambda s: set_entry(s, province, post, rank, name=name, phone=phone, mobile=mobile, email=email)
    )
    out.print(f"已备案：{entry.to_dict()['post_zh']}（{entry.to_dict()['rank_zh']}）{entry.name}")


@roster_app.command("gaps")
@cli_permission(Permission.OPS_READ)
def roster_gaps_command(db: DbOption = None) -> None:
    """列出所有已登记节点省份的人员备案缺项。"""
    from sqlalchemy import select

    from ggzy.hub.models import nodes
    from ggzy.hub.ops.roster import roster_gaps

    def load(connection: Connection, _settings: HubSettings) -> list[list[Any]]:
        rows = []
        for province in sorted(set(connection.execute(select(nodes.c.province)).scalars())):
            rows += [[province, g.code, g.message_zh] for g in roster_gaps(connection, province)]
        return rows

    _national_only()
    out.print(_table("人员备案缺项", ["省份", "代码", "说明"], _read(db, load)))


@roster_app.command("history")
@cli_permission(Permission.OPS_READ)
def roster_history_command(
    province: Annotated[str, typer.Argument(help="省份代码")], db: DbOption = None
) -> None:
    """人员备案变更记录。"""
    from ggzy.hub.ops.roster import roster_history

    province = _scope(province) or province
    history = _read(db, lambda c, s: roster_history(c, province))
    rows = [
        [
            h["at"],
            h["post_zh"],
            h["rank"],
            h["action"],
            (h["before"] or {}).get("name"),
            (h["after"] or {}).get("name"),
            h["by"],
        ]
        for h in history
    ]
    out.print(
        _table(f"省份 {province} 人员变更", ["时间", "岗位", "主备", "操作", "原", "现", "操作人"], rows)
    )


# --- register ---


@register_app.command("add")
@cli_permission(Permission.OPS_WRITE)
def register_add(
    province: Annotated[str, typer.Argument(help="省份代码")],
    kind: Annotated[str, typer.Argument(help="service 电子服务系统 / trading 电子交易系统 / expert 专家库")],
    code: Annotated[str, typer.Argument(help="系统编号（交易系统可用统一社会信用代码）")],
    field: Annotated[
        list[str], typer.Option("--field", help="字段 名=值（可重复），如 name=福建省电子服务系统")
    ],
    db: DbOption = None,
) -> None:
    """登记或更新系统基本信息（新版本，历史保留）。必填：service: name operator url；trading: name operator uscc trade_areas；expert: name operator experts。"""
    from ggzy.hub.ops.register import register_system

    data = dict(item.split("=", 1) for item in field if "=" in item)
    entry = _write(db, lambda s: register_system(s, province, kind, code, data))
    out.print(f"已登记 {entry['kind']} {entry['code']} 第 {entry['version']} 版")


@register_app.command("show")
@cli_permission(Permission.OPS_READ)
def register_show(
    province: Annotated[str, typer.Argument(help="省份代码")],
    history: Annotated[bool, typer.Option("--history", help="显示所有历史版本")] = False,
    db: DbOption = None,
) -> None:
    """查看一个省的信息上报登记。"""
    from ggzy.hub.ops.register import register_history, register_of

    province = _scope(province) or province
    found = _read(db, lambda c, s: register_history(c, province) if history else register_of(c, province))
    rows = [
        [e["kind_zh"], e["code"], e["version"], json.dumps(e["data"], ensure_ascii=False), e["recorded_at"]]
        for e in found
    ]
    out.print(_table(f"省份 {province} 信息上报", ["类别", "编号", "版本", "内容", "登记时间"], rows))


# --- inspections ---


@inspect_app.command("plan")
@cli_permission(Permission.OPS_ASSESS)
def inspect_plan(
    province: Annotated[str, typer.Option("--province", "-p")],
    kind: Annotated[str, typer.Option("--kind", help="scheduled 定期 / spot 抽检")],
    planned_on: Annotated[str, typer.Option("--date", help="计划日期 YYYY-MM-DD")],
    db: DbOption = None,
) -> None:
    """安排一次检查。"""
    from ggzy.hub.ops.inspections import plan_inspection

    found = _write(db, lambda s: plan_inspection(s, province, kind, dt.date.fromisoformat(planned_on)))
    out.print(f"检查 #{found['id']} 已安排（{found['kind_zh']}，{found['planned_on']}）")


@inspect_app.command("result")
@cli_permission(Permission.OPS_ASSESS)
def inspect_result(
    inspection_id: Annotated[int, typer.Argument(help="检查编号")],
    item: Annotated[
        list[str],
        typer.Option(
            "--item",
            help="检查项=结论[:说明]，结论 pass/fail/na；项目：security sharing frontend organisation rules plans",
        ),
    ],
    findings: Annotated[str, typer.Option("--findings", help="发现的问题")] = "",
    follow_up: Annotated[str, typer.Option("--follow-up", help="整改要求")] = "",
    db: DbOption = None,
) -> None:
    """登记检查结果（检查表须逐项填写）。示例：--item security=pass --item plans=fail:未演练 …"""
    from ggzy.hub.ops.inspections import perform_inspection

    results: dict[str, dict[str, str]] = {}
    for entry in item:
        name, _, rest = entry.partition("=")
        verdict, _, note = rest.partition(":")
        results[name] = {"result": verdict, "note": note}
    found = _write(
        db, lambda s: perform_inspection(s, inspection_id, results, findings, follow_up_text=follow_up)
    )
    out.print(f"检查 #{found['id']} 已完成；不合格项：{'、'.join(found['failed_items']) or '无'}")


@inspect_app.command("list")
@cli_permission(Permission.OPS_READ)
def inspect_list(province: ProvinceOption = None, db: DbOption = None) -> None:
    """列出检查。"""
    from ggzy.hub.ops.inspections import list_inspections

    province = _scope(province)
    found = _read(db, lambda c, s: list_inspections(c, province))
    rows = [
        [
            i["id"],
            i["province"],
            i["kind_zh"],
            i["planned_on"],
            i["status"],
            "、".join(i["failed_items"]),
            i["findings"],
        ]
        for i in found
    ]
    out.print(_table("检查", ["编号", "省份", "方式", "日期", "状态", "不合格项", "发现"], rows))


# --- assessment, orders, notices ---


@ops_app.command("assess")
@cli_permission(Permission.OPS_ASSESS)
def assess(
    period: Annotated[str, typer.Option("--period", help="考核期间：YYYY-MM（月）或 YYYY（年）")],
    province: ProvinceOption = None,
    output_format: FormatOption = Format.TABLE,
    output: OutputOption = None,
    db: DbOption = None,
) -> None:
    """省级平台运行考核：每项指标的数值、目标、结论和依据；权重默认相等（hub.ops.weights 可配置）。

    示例：ggzy ops assess --period 2026-11 --format xlsx -o 十一月考核.xlsx
    """
    from sqlalchemy import select

    from ggzy.hub.models import nodes
    from ggzy.hub.ops.assessment import assess_province
    from ggzy.hub.ops.exports import assessment_report
    from ggzy.hub.ops.periods import parse_period

    try:
        chosen = parse_period(period)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc

    def load(connection: Connection, settings: HubSettings) -> list[Any]:
        provinces = (
            [province] if province else sorted(set(connection.execute(select(nodes.c.province)).scalars()))
        )
        return [assess_province(connection, p, chosen, settings.ops) for p in provinces]

    province = _scope(province)
    assessments = _read(db, load)
    if output_format is Format.JSON:
        _json([a.to_dict() for a in assessments])
    elif output_format in (Format.XLSX, Format.PDF):
        _export(assessment_report(assessments), output_format, output, f"ggzy-assessment-{chosen.label}")
    else:
        for a in assessments:
            rows = [
                [i.name_zh, _pct(i.value), _pct(i.target), _verdict(i.met), i.note, i.evidence]
                for i in a.indicators
            ]
            out.print(
                _table(
                    f"{a.province} {a.name_zh or ''} 考核（{chosen.label}）得分 {_pct(a.score)}",
                    ["指标", "数值", "目标", "结论", "说明", "依据"],
                    rows,
                )
            )


@orders_app.command("issue")
@cli_permission(Permission.OPS_ASSESS)
def orders_issue(
    period: Annotated[str, typer.Option("--period", help="考核期间 YYYY-MM 或 YYYY")],
    db: DbOption = None,
) -> None:
    """按考核结果检查第三十五条各项，对违反项下达责令限期改正通知（同期同项只下达一次）。"""
    from sqlalchemy import select

    from ggzy.hub.models import nodes
    from ggzy.hub.ops.assessment import assess_province
    from ggzy.hub.ops.periods import parse_period
    from ggzy.hub.ops.rectification import issue_orders

    chosen = parse_period(period)

    def issue(session: OpsSession) -> list[dict[str, Any]]:
        issued: list[dict[str, Any]] = []
        for p in sorted(set(session.connection.execute(select(nodes.c.province)).scalars())):
            issued += issue_orders(session, assess_province(session.connection, p, chosen, session.settings))
        return issued

    issued = _write(db, issue)
    rows = [[o["id"], o["province"], o["condition"], o["basis"], o["deadline"][:10]] for o in issued]
    out.print(
        _table(f"新下达整改通知（{chosen.label}）", ["编号", "省份", "第三十五条", "依据", "期限"], rows)
    )


@orders_app.command("add")
@cli_permission(Permission.OPS_ASSESS)
def orders_add(
    province: Annotated[str, typer.Option("--province", "-p")],
    condition: Annotated[int, typer.Option("--condition", min=1, max=8, help="第三十五条第几项（1–8）")],
    basis: Annotated[str, typer.Option("--basis", help="依据（检查发现的事实）")],
    days: Annotated[
        int | None, typer.Option("--days", help="整改期限天数（默认 hub.ops.rectification_days）")
    ] = None,
    db: DbOption = None,
) -> None:
    """检查人员下达整改通知（数据无法自动判断的项，如第五、八项）。"""
    from ggzy.hub.ops.rectification import issue_order

    order = _write(db, lambda s: issue_order(s, province, condition, basis, deadline_days=days))
    out.print(f"整改通知 #{order['id']} 已下达，期限 {order['deadline'][:10]}")


@orders_app.command("close")
@cli_permission(Permission.OPS_ASSESS)
def orders_close(
    order_id: Annotated[int, typer.Argument(help="整改通知编号")],
    note: Annotated[str, typer.Option("--note", help="整改情况")],
    db: DbOption = None,
) -> None:
    """确认整改完成，关闭通知（逾期后关闭的仍列入通报）。"""
    from ggzy.hub.ops.rectification import close_order

    order = _write(db, lambda s: close_order(s, order_id, note))
    out.print(f"整改通知 #{order['id']} 已关闭" + ("（逾期）" if order["overdue"] else ""))


@orders_app.command("list")
@cli_permission(Permission.OPS_READ)
def orders_list(
    province: ProvinceOption = None,
    output_format: FormatOption = Format.TABLE,
    output: OutputOption = None,
    db: DbOption = None,
) -> None:
    """列出整改通知。"""
    from ggzy.hub.ops.exports import orders_report
    from ggzy.hub.ops.rectification import list_orders

    province = _scope(province)
    orders = _read(db, lambda c, s: list_orders(c, dt.datetime.now(dt.UTC), province))
    if output_format is Format.JSON:
        _json(orders)
    elif output_format in (Format.XLSX, Format.PDF):
        _export(orders_report(orders), output_format, output, "ggzy-rectifications")
    else:
        rows = [
            [
                o["id"],
                o["province"],
                o["condition"],
                o["basis"],
                o["deadline"][:10],
                o["status"],
                "是" if o["overdue"] else "",
            ]
            for o in orders
        ]
        out.print(_table("整改通知", ["编号", "省份", "第三十五条", "依据", "期限", "状态", "逾期"], rows))


@ops_app.command("notices")
@cli_permission(Permission.OPS_READ)
def notices(
    output_format: FormatOption = Format.TABLE, output: OutputOption = None, db: DbOption = None
) -> None:
    """通报名单：整改通知逾期未改正（或逾期后才改正）的省份。示例：ggzy ops notices --format pdf -o 通报.pdf"""
    from ggzy.hub.ops.exports import notice_report
    from ggzy.hub.ops.rectification import notice_list

    _national_only()
    listed = _read(db, lambda c, s: notice_list(c, dt.datetime.now(dt.UTC)))
    if output_format is Format.JSON:
        _json(listed)
    elif output_format in (Format.XLSX, Format.PDF):
        _export(notice_report(listed), output_format, output, "ggzy-notices")
    else:
        rows = [
            [
                o["province"],
                f"({o['condition']}) {o['condition_zh']}",
                o["basis"],
                o["deadline"][:10],
                o["notice_zh"],
            ]
            for o in listed
        ]
        out.print(_table("通报名单", ["省份", "第三十五条", "依据", "期限", "情况"], rows))


# --- at the province: drills and the doctor ---


@contextmanager
def _node(config: Path | None) -> Iterator[Any]:
    from ggzy.node.context import build_context

    settings = load_node_settings(config)
    try:
        ctx = build_context(settings)
    except (FileNotFoundError, ValueError) as exc:
        err.print(f"[red]E-NODE-KEY[/] 无法读取签名密钥 {settings.key_file}：{exc}")
        raise typer.Exit(4) from exc
    try:
        yield ctx
    finally:
        ctx.engine.dispose()


@drill_app.command("hub-outage")
@cli_permission(Permission.OPS_WRITE)
def drill_hub_outage(
    config: ConfigOption = None,
    seconds: Annotated[float, typer.Option("--seconds", min=1, help="链路断开时长（秒）")] = 60.0,
    drain_timeout: Annotated[
        float, typer.Option("--drain-timeout", help="恢复后等待积压清空的最长秒数")
    ] = 600.0,
    participant: Annotated[list[str] | None, typer.Option("--participant", help="参演人员（可重复）")] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="不向国家平台上报演练结果")] = False,
) -> None:
    """实测演练：断开本前置机与国家平台的链路一段时间（服务照常接收数据），恢复后记录积压清空用时，并对账确认无数据丢失。

    须在运行中的前置服务（ggzy node run）旁执行，使用同一配置。结果自动上报国家平台作为本省演练记录。

    示例：ggzy drill hub-outage --config node.toml --seconds 120 --participant 张三 --participant 李四
    """
    from ggzy.node.drill import run_hub_outage

    with _node(config) as ctx:
        import httpx

        client = ctx.hub_client(transport=httpx.HTTPTransport())  # not through the switch it pulls
        try:
            result = run_hub_outage(
                ctx,
                client,
                seconds=seconds,
                drain_timeout=drain_timeout,
                participants=participant or [],
                report=not no_report,
                progress=lambda message: err.print(message),
            )
        finally:
            client.close()
    facts = result.to_dict()
    rows = [
        ["链路断开", f"{facts['outage_seconds']:.1f} 秒"],
        ["断开期间失败连接", facts["failed_attempts"]],
        ["积压峰值 / 恢复时积压", f"{facts['peak_backlog']} / {facts['backlog_at_restore']} 条"],
        [
            "积压清空用时",
            f"{facts['drain_seconds']:.1f} 秒"
            if facts["drain_seconds"] is not None
            else Text.from_markup("[red]未清空[/]"),
        ],
        [
            "恢复时间（断开到清空）",
            f"{facts['recovery_seconds']:.1f} 秒" if facts["recovery_seconds"] is not None else "—",
        ],
        ["数据丢失", f"{facts['data_loss_records']} 条"],
        ["结论", Text.from_markup("[green]通过[/]" if result.passed else "[red]未通过[/]")],
        [
            "上报国家平台",
            f"演练 #{result.reported['id']}" if result.reported else (result.report_error or "未上报"),
        ],
    ]
    out.print(_table("应急演练：国家平台链路中断", ["项目", "结果"], rows))
    if not result.passed:
        raise typer.Exit(1)


@drill_app.command("restore")
@cli_permission(Permission.OPS_WRITE)
def drill_restore(config: ConfigOption = None) -> None:
    """立即恢复被演练断开的链路（演练异常中止时使用）。"""
    from ggzy.node.link_control import restore_link

    with _node(config) as ctx:
        restore_link(ctx.engine)
    out.print("链路已恢复")


@node_app.command("doctor")
@cli_permission(Permission.OPS_READ)
def doctor(
    config: ConfigOption = None,
    output_format: Annotated[str, typer.Option("--format", "-f", help="table 或 json")] = "table",
) -> None:
    """自检：列出本省当前不满足的每一项要求及整改方法（本机检查 + 国家平台掌握的情况），迎检前运行。

    示例：ggzy node doctor --config node.toml
    """
    from ggzy.node.doctor import diagnose

    with _node(config) as ctx:
        client = ctx.hub_client()
        try:
            report = diagnose(ctx, client)
        finally:
            client.close()
    if output_format == "json":
        _json(report.to_dict())
    else:
        rows = [
            [
                f.source.replace("local", "本机").replace("hub", "国家平台"),
                f.code,
                f.title_zh,
                f.detail_zh,
                f.fix_zh,
            ]
            for f in report.findings
        ]
        title = "运行管理自检" + (
            f"（国家平台本月考核得分 {_pct(report.hub_score)}）" if report.hub_reached else ""
        )
        out.print(_table(title, ["来源", "代码", "问题", "详情", "整改方法"], rows))
        if report.healthy:
            out.print("[green]未发现问题[/]")
    if report.findings:
        raise typer.Exit(1)


__all__ = ["drill_app", "ops_app"]
