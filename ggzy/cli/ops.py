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
versions_app = typer.Typer(
    help="前置机版本（第十三条）：软件、操作系统、Python、数据库版本及其变化，审批清单，国家平台升级登记。",
    no_args_is_help=True,
)
selfcheck_app = typer.Typer(
    help="安全自查与信息安全通报（第二十条）：自查计划、逐项结果、逾期提醒；按期生成信息安全通报（xlsx/PDF）并通知各省。",
    no_args_is_help=True,
)
change_app = typer.Typer(
    help="系统上线与升级（第二十二条）：申请、上线前安全检查、第二人审核（申请人不能自审）、实施结果。",
    no_args_is_help=True,
)
notify_app = typer.Typer(
    help="发给省份的通知：整改通知、通报、国家平台停用、考核结果与自由通知；邮件/Webhook 发送，省份在门户与 ggzy node doctor 中查看。",
    no_args_is_help=True,
)
for sub, name in (
    (outage_app, "outage"),
    (incident_app, "incident"),
    (plan_app, "plan"),
    (drills_app, "drills"),
    (roster_app, "roster"),
    (register_app, "register"),
    (inspect_app, "inspect"),
    (orders_app, "orders"),
    (notify_app, "notify"),
    (versions_app, "versions"),
    (selfcheck_app, "selfcheck"),
    (change_app, "change"),
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
DaysOption = Annotated[
    int | None,
    typer.Option(
        "--days",
        min=0,
        help="整改期限天数，按北京时间自然日计，0 为当天内（默认 hub.ops.rectification_days）",
    ),
]


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


def _now() -> dt.datetime:
    """The operations clock, read through its module so a test can set it (every date is Beijing's)."""
    from ggzy.hub.ops import session

    return session.system_clock()


def _beijing(moment: dt.datetime | str | None) -> str:
    """A stored time as Beijing wall-clock time, the way every operator reads it."""
    from ggzy.web.portal import beijing

    return beijing(moment)[:16] if moment else "—"


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
                return fn(OpsSession(connection, audit, actor, settings.ops, _now))
    except OpsError as exc:
        raise _fail(exc) from exc
    finally:
        engine.dispose()


def _sent(deliveries: list[Any]) -> str:
    return "、".join(f"{d.channel}{'成功' if d.ok else '失败'}" for d in deliveries) or "未配置邮件/Webhook"


def _deliver(db: str | None) -> None:
    """Mail and post the notices just committed (failures are recorded; ``ggzy ops watch`` retries)."""
    from ggzy.hub.models import audit_tables
    from ggzy.hub.ops.notices import deliver_pending
    from ggzy.security.audit import open_audit_log

    settings, engine = _hub(db)
    try:
        audit = open_audit_log(audit_tables, settings.key_dir, settings.audit_digest)
        done = deliver_pending(engine, audit, settings.ops, clock=_now)
    finally:
        engine.dispose()
    for notice_id, deliveries in done.items():
        out.print(f"通知 #{notice_id} 发送：{_sent(deliveries)}")


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
    """前置机、网络、省级平台可用率与故障数（均按时间计算，扣除提前通知的计划停用）。

    精度为一个心跳间隔加送达余量（默认30+5秒）：每次心跳证明此后这段时间可用，超出即计为中断（立案宽限不影响可用率）。
    前置机：有心跳覆盖的时间，目标≥98%；网络：节点能连通国家平台（心跳覆盖且节点未上报连接失败）且国家平台能连通节点
    （探测未失败）的时间，目标≥99%；省级平台：心跳携带的健康检查结果为正常、且无故障报告的时间，目标≥99%，
    未配置健康检查地址时为“无数据”。

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
        [label, _pct(f.value), _pct(f.target), _verdict(f.met), f"{f.numerator:g}/{f.denominator:g} 秒"]
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
    network, system = result.network.evidence, result.system.evidence
    out.print(
        f"精度：一次心跳 {result.resolution_seconds:g} 秒。网络中断构成：无心跳 {network.get('no_heartbeat_seconds', 0) / 60:.1f} 分钟，"
        f"节点→国家平台 {network.get('node_to_hub_down_seconds', 0) / 60:.1f} 分钟，"
        f"国家平台→节点 {network.get('hub_to_node_down_seconds', 0) / 60:.1f} 分钟"
        + ("" if result.node_probes else "（国家平台未探测本省节点）")
    )
    out.print(
        "省级平台：未配置健康检查地址，可用率无数据（考核计为问题）"
        if not result.probe_configured
        else f"省级平台中断构成：健康检查失败 {system.get('failing_seconds', 0) / 60:.1f} 分钟，"
        f"无探测结果 {system.get('unverified_seconds', 0) / 60:.1f} 分钟，无心跳 {system.get('no_heartbeat_seconds', 0) / 60:.1f} 分钟，"
        f"故障报告 {system.get('reported_fault_seconds', 0) / 60:.1f} 分钟"
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
            _beijing(n.starts_at),
            _beijing(n.ends_at),
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
            _beijing(i.started_at),
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
    interval: Annotated[
        float | None, typer.Option("--interval", help="每轮间隔秒数（默认为 hub.ops.probe_seconds）")
    ] = None,
    db: DbOption = None,
) -> None:
    """自动发现运行事件并通知值班人员（邮件/Webhook），同时探测各节点可达性；把逾期整改列入通报并通知各省，发送未发出的通知。

    触发条件：前置机中断、错误率突增、实时数据超10分钟未送达、磁盘超过90%、备份超过N天未验证。
    """
    import time

    from ggzy.hub.models import audit_tables
    from ggzy.hub.ops.detect import run_detection
    from ggzy.hub.ops.probes import probe_nodes
    from ggzy.security.audit import open_audit_log

    settings, engine = _hub(db)
    audit = open_audit_log(audit_tables, settings.key_dir, settings.audit_digest)
    try:
        while True:
            probe_nodes(engine, settings.ops)
            result = run_detection(engine, audit, settings.ops)
            for incident in result.opened:
                sent = result.deliveries.get(incident.id, [])
                status = _sent(sent)
                out.print(
                    f"[red]新事件[/] #{incident.id} 省份 {incident.province}：{incident.title}（通知：{status}）"
                )
            for incident in result.recovered:
                out.print(f"[green]已恢复[/] #{incident.id} 省份 {incident.province}：{incident.title}")
            _tell_provinces(engine, audit, settings)
            if once:
                break
            time.sleep(interval if interval is not None else settings.ops.probe_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        engine.dispose()


def _tell_provinces(engine: Engine, audit: Any, settings: HubSettings) -> None:
    """One round of telling: orders newly on the 通报 list become notices, then every notice is sent."""
    from ggzy.hub.ops.detect import DETECTOR
    from ggzy.hub.ops.notices import deliver_pending, publish_notice_list
    from ggzy.hub.ops.session import OpsSession

    with engine.connect() as plain:
        connection = plain.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            session = OpsSession(connection, audit, DETECTOR, settings.ops, _now)
            for notice in publish_notice_list(session, session.now()):
                out.print(f"[yellow]通报[/] 省份 {notice.province}：{notice.title}")
    for notice_id, deliveries in deliver_pending(engine, audit, settings.ops, clock=_now).items():
        out.print(f"通知 #{notice_id} 发送：{_sent(deliveries)}")


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

    today = _now().astimezone(SHANGHAI).date()
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
    """查看一个省的人员备案与缺项（含今天外出造成的空岗）。"""
    from ggzy.hub.ops.roster import roster_gaps, roster_of

    province = _scope(province) or province
    entries, gaps = _read(db, lambda c, s: (roster_of(c, province), roster_gaps(c, province, at=_now())))
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
            _beijing(h["at"]),
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


@roster_app.command("absence")
@cli_permission(Permission.OPS_WRITE)
def roster_absence(
    province: Annotated[str, typer.Argument(help="省份代码")],
    name: Annotated[str, typer.Argument(help="已备案人员姓名")],
    start: Annotated[str, typer.Option("--from", help="外出开始日期 YYYY-MM-DD（北京时间）")],
    end: Annotated[str, typer.Option("--to", help="外出结束日期（含）")],
    reason: Annotated[str, typer.Option("--reason", help="事由")] = "",
    db: DbOption = None,
) -> None:
    """登记人员外出（第三十条：变动或外出及时通知国家平台）；主岗外出而备岗不在岗即为空岗。

    示例：ggzy ops roster absence 35 张三 --from 2026-12-08 --to 2026-12-10 --reason 出差
    """
    from ggzy.hub.ops.roster import record_absence

    found = _write(db, lambda s: record_absence(s, province, name, start, end, reason))
    out.print(f"已登记外出 #{found['id']}：{found['name']} {found['starts_on']} 至 {found['ends_on']}")


@roster_app.command("training")
@cli_permission(Permission.OPS_WRITE)
def roster_training(
    province: Annotated[str, typer.Argument(help="省份代码")],
    held_on: Annotated[str, typer.Option("--date", help="培训日期 YYYY-MM-DD")],
    subject: Annotated[str, typer.Option("--subject", help="培训内容")],
    topic: Annotated[
        str,
        typer.Option(
            "--topic", help="security 运行安全 / sharing 信息共享 / operations 运行维护 / emergency 应急处置"
        ),
    ],
    participant: Annotated[list[str], typer.Option("--participant", help="参训人员（可重复）")],
    hours: Annotated[float | None, typer.Option("--hours", help="学时")] = None,
    db: DbOption = None,
) -> None:
    """登记一次培训（第二十九、三十条；近一年无运行安全和信息共享培训即第三十五条第六项）。

    示例：ggzy ops roster training 35 --date 2026-12-01 --subject 等级保护 --topic security --participant 张三 --participant 李四
    """
    from ggzy.hub.ops.roster import record_training

    found = _write(db, lambda s: record_training(s, province, held_on, subject, topic, participant, hours))
    out.print(f"已登记培训 #{found['id']}：{found['held_on']} {found['subject']}（{found['topic_zh']}）")


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
    """登记或更新系统基本信息（新版本，历史保留）。每个字段都按其类型校验，出错时逐项列出错误码和原因。

    必填：service（电子服务系统）name operator url；trading（电子交易系统）name operator uscc trade_areas；
    expert（专家库）name operator experts。

    可选：uscc 统一社会信用代码、url 访问地址、trade_areas 交易领域（A 工程建设 / B 土地使用权 / C 矿业权 /
    D 政府采购 / E 国有产权 / F 其他，或 A01、D01 等分类代码，逗号分隔）、regions 服务区域（本省6位行政区划代码，
    逗号分隔）、launched_on 上线日期、software_version 软件版本、security_level 等保级别（1–5）、
    security_record_no 等保备案编号、experts 专家人数、specialties 评标专业数、shared 是否跨区域共享（yes/no）、
    updated_on 专家信息更新日期、contact 联系人、contact_phone 联系电话、contact_mobile 联系人手机、
    contact_email 联系邮箱、notes 备注。

    示例：ggzy ops register add 35 trading FJ-TRD --field name=福建省电子交易系统 --field operator=福建省信息中心
    --field uscc=12350000MB0K7C8P59 --field trade_areas=A,D
    """
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
        [
            e["kind_zh"],
            e["code"],
            e["version"],
            json.dumps(e["data"], ensure_ascii=False),
            _beijing(e["recorded_at"]),
        ]
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
            help="检查项=结论[:说明]，结论 pass 合格 / fail 不合格 / na 不适用；项目：security 安全保护措施、sharing 信息共享、"
            "frontend 前置机运行保障、organisation 组织与人员、rules 运维制度、plans 应急预案与演练、training 教育培训、"
            "funding 安全资金投入、major_events 重大活动安全措施",
        ),
    ],
    findings: Annotated[str, typer.Option("--findings", help="发现的问题")] = "",
    follow_up: Annotated[str, typer.Option("--follow-up", help="整改要求")] = "",
    db: DbOption = None,
) -> None:
    """登记检查结果（检查表须逐项填写）。每个不合格项自动按第三十五条对应项下达整改通知（同一检查同一项只下达一次），并通知该省。

    对应关系：security、funding → 第五项；sharing → 第二项；frontend → 第四项；organisation、rules → 第一项；
    plans、training → 第六项；major_events → 第八项。

    示例：ggzy ops inspect result 3 --item security=pass --item plans=fail:未演练 … --follow-up 限期演练
    """
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
    for order in found["orders"]:
        out.print(
            f"已下达整改通知 #{order['id']}：第三十五条第{order['condition']}项 {order['condition_zh']}，期限 {order['deadline_date']}"
        )
    if found["orders"]:
        _deliver(db)


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
            i["status_zh"],
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
    publish: Annotated[
        bool, typer.Option("--publish", help="把考核结果通知到各省（每省每期一次，邮件/Webhook 与门户）")
    ] = False,
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
        return [assess_province(connection, p, chosen, settings.ops, clock=_now) for p in provinces]

    province = _scope(province)
    assessments = _read(db, load)
    if publish:
        from ggzy.hub.ops.notices import publish_assessments

        told = _write(db, lambda s: publish_assessments(s, assessments))
        out.print(f"已将考核结果通知 {len(told)} 个省份")
        _deliver(db)
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
    days: DaysOption = None,
    db: DbOption = None,
) -> None:
    """按考核结果检查第三十五条各项，对违反项下达责令限期改正通知（同期同项只下达一次）。

    期限为北京时间的自然日：下达当天起第 N 天的 24 时前（--days 0 即当天内）。

    示例：ggzy ops orders issue --period 2026-11 --days 15
    """
    from sqlalchemy import select

    from ggzy.hub.models import nodes
    from ggzy.hub.ops.assessment import assess_province
    from ggzy.hub.ops.periods import parse_period
    from ggzy.hub.ops.rectification import issue_orders

    chosen = parse_period(period)

    def issue(session: OpsSession) -> list[dict[str, Any]]:
        issued: list[dict[str, Any]] = []
        for p in sorted(set(session.connection.execute(select(nodes.c.province)).scalars())):
            assessment = assess_province(session.connection, p, chosen, session.settings, clock=session.clock)
            issued += issue_orders(session, assessment, deadline_days=days)
        return issued

    issued = _write(db, issue)
    rows = [[o["id"], o["province"], o["condition"], o["basis"], o["deadline_date"]] for o in issued]
    out.print(
        _table(f"新下达整改通知（{chosen.label}）", ["编号", "省份", "第三十五条", "依据", "期限"], rows)
    )
    _deliver(db)


@orders_app.command("add")
@cli_permission(Permission.OPS_ASSESS)
def orders_add(
    province: Annotated[str, typer.Option("--province", "-p")],
    condition: Annotated[int, typer.Option("--condition", min=1, max=8, help="第三十五条第几项（1–8）")],
    basis: Annotated[str, typer.Option("--basis", help="依据（检查发现的事实）")],
    days: DaysOption = None,
    db: DbOption = None,
) -> None:
    """检查人员下达整改通知（数据无法自动判断的项，如第五、八项）。"""
    from ggzy.hub.ops.rectification import issue_order

    order = _write(db, lambda s: issue_order(s, province, condition, basis, deadline_days=days))
    out.print(f"整改通知 #{order['id']} 已下达，期限 {order['deadline_date']}（北京时间，含），已通知该省")
    _deliver(db)


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
    orders = _read(db, lambda c, s: list_orders(c, _now(), province))
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
                o["deadline_date"],
                o["status_zh"],
                "是" if o["overdue"] else "",
            ]
            for o in orders
        ]
        out.print(_table("整改通知", ["编号", "省份", "第三十五条", "依据", "期限", "状态", "逾期"], rows))


@ops_app.command("notices")
@cli_permission(Permission.OPS_READ)
def notices(
    output_format: FormatOption = Format.TABLE,
    output: OutputOption = None,
    publish: Annotated[
        bool,
        typer.Option("--publish", help="把名单中尚未通知的逾期整改通知到相关省份（邮件/Webhook 与门户）"),
    ] = False,
    db: DbOption = None,
) -> None:
    """通报名单：整改通知逾期未改正（或逾期后才改正）的省份。

    示例：ggzy ops notices --format pdf -o 通报.pdf；ggzy ops notices --publish
    """
    from ggzy.hub.ops.exports import notice_report
    from ggzy.hub.ops.rectification import notice_list

    _national_only()
    if publish:
        from ggzy.hub.ops.notices import publish_notice_list

        told = _write(db, lambda s: publish_notice_list(s, s.now()))
        out.print(f"已通知 {len(told)} 条通报到相关省份")
        _deliver(db)
    listed = _read(db, lambda c, s: notice_list(c, _now()))
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
                o["deadline_date"],
                o["notice_zh"],
            ]
            for o in listed
        ]
        out.print(_table("通报名单", ["省份", "第三十五条", "依据", "期限", "情况"], rows))


# --- node versions (Art. 13) ---

ComponentArgument = Annotated[
    str, typer.Argument(help="software 交换软件 / os 操作系统 / python Python 运行环境 / database 数据库")
]


@versions_app.command("show")
@cli_permission(Permission.OPS_READ)
def versions_show(
    province: ProvinceOption = None, output_format: FormatOption = Format.TABLE, db: DbOption = None
) -> None:
    """各前置机当前版本，以及不在审批清单中的版本、无升级登记的版本变化。示例：ggzy ops versions show -p 35"""
    from ggzy.hub.ops.versions import current_versions, version_flags

    province = _scope(province)
    current, flags = _read(db, lambda c, s: (current_versions(c, province), version_flags(c, province)))
    if output_format is Format.JSON:
        _json({"data": current, "flags": flags})
        return
    rows = [
        [
            v["node_id"],
            v["province"],
            v["software"],
            v["os"],
            v["python"],
            v["database"],
            _beijing(v["seen_at"]),
        ]
        for v in current
    ]
    out.print(
        _table("前置机版本", ["节点", "省份", "交换软件", "操作系统", "Python", "数据库", "自何时起"], rows)
    )
    for flag in flags:
        out.print(f"[yellow]{flag['code']}[/] {flag['message_zh']}")
    if not flags:
        out.print("[green]所有前置机版本均已审批，版本变化均有升级登记[/]")


@versions_app.command("history")
@cli_permission(Permission.OPS_READ)
def versions_history(
    node_id: Annotated[str | None, typer.Option("--node", help="节点编号")] = None,
    province: ProvinceOption = None,
    db: DbOption = None,
) -> None:
    """前置机版本变化历史（心跳上报，每次变化一行）。"""
    from ggzy.hub.ops.versions import version_history

    province = _scope(province)
    found = _read(db, lambda c, s: version_history(c, node_id=node_id, province=province))
    rows = [
        [_beijing(v["seen_at"]), v["node_id"], v["software"], v["os"], v["python"], v["database"]]
        for v in found
    ]
    out.print(_table("版本变化历史", ["自何时起", "节点", "交换软件", "操作系统", "Python", "数据库"], rows))


@versions_app.command("approve")
@cli_permission(Permission.OPS_ASSESS)
def versions_approve(
    component: ComponentArgument,
    pattern: Annotated[str, typer.Argument(help='版本，或带 * 的通配，如 "PostgreSQL 16.*"')],
    note: Annotated[str, typer.Option("--note", help="审批说明（测试结论等）")] = "",
    db: DbOption = None,
) -> None:
    """把一个版本加入审批清单（国家平台）。示例：ggzy ops versions approve python "CPython 3.11.*" --note 已测试"""
    from ggzy.hub.ops.versions import approve_version

    found = _write(db, lambda s: approve_version(s, component, pattern, note))
    out.print(f"已审批 #{found['id']}：{found['component_zh']} {found['pattern']}")


@versions_app.command("withdraw")
@cli_permission(Permission.OPS_ASSESS)
def versions_withdraw(
    approval_id: Annotated[int, typer.Argument(help="审批编号")], db: DbOption = None
) -> None:
    """撤销一个版本审批。"""
    from ggzy.hub.ops.versions import withdraw_approval

    found = _write(db, lambda s: withdraw_approval(s, approval_id))
    out.print(f"已撤销审批 #{found['id']}：{found['component_zh']} {found['pattern']}")


@versions_app.command("upgrade")
@cli_permission(Permission.OPS_ASSESS)
def versions_upgrade(
    node_id: Annotated[str, typer.Argument(help="节点编号")],
    component: ComponentArgument,
    to_version: Annotated[str, typer.Argument(help="升级后版本（与心跳上报一致）")],
    from_version: Annotated[str, typer.Option("--from", help="升级前版本")] = "",
    change: Annotated[int | None, typer.Option("--change", help="所依据的已批准变更申请编号")] = None,
    note: Annotated[str, typer.Option("--note", help="说明")] = "",
    db: DbOption = None,
) -> None:
    """登记国家平台对前置机的一次升级（第十三条：硬件、操作系统、数据库和应用软件由国家平台管理）。

    示例：ggzy ops versions upgrade fj-01 database "PostgreSQL 16.4" --from "PostgreSQL 16.2" --change 7
    """
    from ggzy.hub.ops.versions import record_upgrade

    found = _write(
        db,
        lambda s: record_upgrade(
            s, node_id, component, to_version, from_version=from_version, note=note, change_id=change
        ),
    )
    out.print(
        f"已登记升级 #{found['id']}：{found['node_id']} {found['component_zh']} → {found['to_version']}"
    )


# --- security self-checks and the 信息安全通报 (Art. 20) ---

SELF_CHECK_ITEM_HELP = (
    "项目=结论[:说明]，结论 pass 合格 / fail 不合格 / na 不适用；项目：classified_protection 等级保护测评、"
    "accounts 账号与口令、patches 补丁与加固、antivirus 防病毒、access_policy 访问策略、"
    "vulnerability_scan 漏洞扫描、backup 备份与恢复验证、audit_log 审计日志留存"
)


def _items(entries: list[str]) -> dict[str, dict[str, str]]:
    results: dict[str, dict[str, str]] = {}
    for entry in entries:
        name, _, rest = entry.partition("=")
        verdict, _, note = rest.partition(":")
        results[name.strip()] = {"result": verdict.strip(), "note": note}
    return results


@selfcheck_app.command("schedule")
@cli_permission(Permission.OPS_WRITE)
def selfcheck_schedule(
    province: Annotated[str, typer.Option("--province", "-p", help="省份代码")],
    first_due: Annotated[str, typer.Option("--first", help="第一次自查日期 YYYY-MM-DD（北京时间）")],
    every: Annotated[int, typer.Option("--every-months", min=1, max=12, help="每隔几个月一次")] = 3,
    count: Annotated[int, typer.Option("--count", min=1, max=24, help="共计划几次")] = 4,
    db: DbOption = None,
) -> None:
    """制定安全自查计划。示例：ggzy ops selfcheck schedule -p 35 --first 2027-01-15 --every-months 3 --count 4"""
    from ggzy.hub.ops.selfchecks import schedule_self_checks

    try:
        first = dt.date.fromisoformat(first_due)
    except ValueError as exc:
        raise typer.BadParameter(f"日期“{first_due}”应为 YYYY-MM-DD") from exc
    planned = _write(db, lambda s: schedule_self_checks(s, province, first, every, count))
    out.print(f"已计划 {len(planned)} 次安全自查：{'、'.join(c['due_on'] for c in planned)}")


@selfcheck_app.command("result")
@cli_permission(Permission.OPS_WRITE)
def selfcheck_result(
    item: Annotated[list[str], typer.Option("--item", help=SELF_CHECK_ITEM_HELP)],
    check_id: Annotated[
        int | None, typer.Argument(help="计划内自查的编号；不定期自查不填并给 --province")
    ] = None,
    province: ProvinceOption = None,
    findings: Annotated[str, typer.Option("--findings", help="发现的问题")] = "",
    performed_on: Annotated[
        str | None, typer.Option("--date", help="自查日期 YYYY-MM-DD，默认今天（北京时间）")
    ] = None,
    db: DbOption = None,
) -> None:
    """登记安全自查结果（须逐项填写）。

    示例：ggzy ops selfcheck result 4 --item classified_protection=pass --item accounts=pass … --item backup=fail:恢复演练未做
    """
    from ggzy.hub.ops.selfchecks import record_self_check

    done = _write(
        db,
        lambda s: record_self_check(
            s, _items(item), findings, check_id=check_id, province=province, performed_on=performed_on
        ),
    )
    out.print(f"安全自查 #{done['id']} 已登记；不合格项：{'、'.join(done['failed_items']) or '无'}")


@selfcheck_app.command("list")
@cli_permission(Permission.OPS_READ)
def selfcheck_list(province: ProvinceOption = None, db: DbOption = None) -> None:
    """列出安全自查计划与结果（逾期标红）。"""
    from ggzy.hub.ops.periods import SHANGHAI
    from ggzy.hub.ops.selfchecks import list_self_checks

    province = _scope(province)
    today = _now().astimezone(SHANGHAI).date()
    found = _read(db, lambda c, s: list_self_checks(c, province, today))
    rows = [
        [
            c["id"],
            c["province"],
            c["kind_zh"],
            c["due_on"],
            c["performed_on"],
            "[red]逾期[/]" if c["overdue"] else c["status_zh"],
            "、".join(c["failed_items"]),
            c["findings"],
        ]
        for c in found
    ]
    out.print(
        _table("安全自查", ["编号", "省份", "类别", "计划日期", "完成日期", "状态", "不合格项", "发现"], rows)
    )


@selfcheck_app.command("bulletin")
@cli_permission(Permission.OPS_READ)
def selfcheck_bulletin(
    period: Annotated[str, typer.Option("--period", help="期间：YYYY-MM（月）、YYYY（年）")],
    province: ProvinceOption = None,
    output_format: FormatOption = Format.TABLE,
    output: OutputOption = None,
    publish: Annotated[
        bool, typer.Option("--publish", help="发布：把各省的部分通知到各省（国家平台）")
    ] = False,
    db: DbOption = None,
) -> None:
    """信息安全通报：期间内的安全事件、审计发现（检查发现的安全问题、国家平台审计日志中的拒绝与失败）和安全自查。

    示例：ggzy ops selfcheck bulletin --period 2026-12 --format pdf -o 信息安全通报.pdf；ggzy ops selfcheck bulletin --period 2026-12 --publish
    """
    from ggzy.hub.ops.periods import parse_period
    from ggzy.hub.ops.selfchecks import publish_security_bulletin, security_bulletin

    try:
        chosen = parse_period(period)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    province = _scope(province)
    report = _read(db, lambda c, s: security_bulletin(c, chosen, _now(), province))
    if publish:
        told = _write(db, lambda s: publish_security_bulletin(s, chosen))
        out.print(f"已将信息安全通报通知 {len(told)} 个省份")
        _deliver(db)
    if output_format is Format.JSON:
        _json(
            {
                "title": report.title,
                "sections": [
                    {"heading": x.heading, "headers": x.headers, "rows": x.rows} for x in report.sections
                ],
            }
        )
    elif output_format in (Format.XLSX, Format.PDF):
        _export(report, output_format, output, f"ggzy-security-bulletin-{chosen.label}")
    else:
        out.print(report.title)
        for section in report.sections:
            out.print(_table(section.heading, section.headers, section.rows))


# --- change requests and the pre-launch security check (Art. 22) ---


def _show_change(change: dict[str, Any]) -> None:
    out.print(
        f"变更申请 #{change['id']}（{change['kind_zh']}）{change['title']}：{change['status_zh']}"
        + (f"；安全检查不合格项：{'、'.join(change['check_failed'])}" if change["check_failed"] else "")
    )


@change_app.command("request")
@cli_permission(Permission.OPS_WRITE)
def change_request(
    province: Annotated[str, typer.Option("--province", "-p", help="省份代码")],
    kind: Annotated[str, typer.Option("--kind", help="launch 系统上线 / upgrade 系统升级")],
    title: Annotated[str, typer.Option("--title", help="变更名称")],
    description: Annotated[str, typer.Option("--description", help="变更内容、回退方案")] = "",
    node_id: Annotated[str | None, typer.Option("--node", help="升级前置机时填节点编号（国家平台）")] = None,
    component: Annotated[
        str | None, typer.Option("--component", help="前置机组件：software / os / python / database")
    ] = None,
    to_version: Annotated[str | None, typer.Option("--to", help="目标版本")] = None,
    db: DbOption = None,
) -> None:
    """提出系统上线或升级申请，等待另一人审核。

    示例：ggzy ops change request -p 35 --kind launch --title "电子交易系统 V3 上线" --description "回退：切回 V2"
    """
    from ggzy.hub.ops.changes import request_change

    _show_change(
        _write(
            db,
            lambda s: request_change(
                s,
                province,
                kind,
                title,
                description,
                node_id=node_id,
                component=component,
                to_version=to_version,
            ),
        )
    )


@change_app.command("check")
@cli_permission(Permission.OPS_WRITE)
def change_check(
    change_id: Annotated[int, typer.Argument(help="变更申请编号")],
    item: Annotated[
        list[str],
        typer.Option(
            "--item",
            help="项目=结论[:说明]，结论 pass/fail/na；项目：three_roles 三员分立、default_accounts 无默认账号与弱口令、"
            "patches 补丁与加固、antivirus 防病毒、access_policy 访问策略、vulnerability_scan 漏洞扫描、"
            "backup 备份与恢复、audit_log 审计日志",
        ),
    ],
    db: DbOption = None,
) -> None:
    """登记上线前安全检查（须逐项填写；有不合格项不能批准上线）。"""
    from ggzy.hub.ops.changes import record_prelaunch_check

    _show_change(_write(db, lambda s: record_prelaunch_check(s, change_id, _items(item))))


@change_app.command("approve")
@cli_permission(Permission.OPS_WRITE)
def change_approve(
    change_id: Annotated[int, typer.Argument(help="变更申请编号")],
    note: Annotated[str, typer.Option("--note", help="审核意见")] = "",
    db: DbOption = None,
) -> None:
    """审核通过（审核人须不是申请人）。示例：ggzy ops change approve 7 --note 同意"""
    from ggzy.hub.ops.changes import approve_change

    _show_change(_write(db, lambda s: approve_change(s, change_id, note)))


@change_app.command("reject")
@cli_permission(Permission.OPS_WRITE)
def change_reject(
    change_id: Annotated[int, typer.Argument(help="变更申请编号")],
    note: Annotated[str, typer.Option("--note", help="驳回理由")],
    db: DbOption = None,
) -> None:
    """驳回（审核人须不是申请人，写明理由）。"""
    from ggzy.hub.ops.changes import reject_change

    _show_change(_write(db, lambda s: reject_change(s, change_id, note)))


@change_app.command("result")
@cli_permission(Permission.OPS_WRITE)
def change_result(
    change_id: Annotated[int, typer.Argument(help="变更申请编号")],
    failed: Annotated[bool, typer.Option("--failed", help="实施失败（默认成功）")] = False,
    note: Annotated[str, typer.Option("--note", help="实施情况")] = "",
    db: DbOption = None,
) -> None:
    """登记已批准变更的实施结果；前置机升级成功即登记为国家平台的升级记录。"""
    from ggzy.hub.ops.changes import record_result

    _show_change(_write(db, lambda s: record_result(s, change_id, not failed, note)))


@change_app.command("list")
@cli_permission(Permission.OPS_READ)
def change_list(province: ProvinceOption = None, db: DbOption = None) -> None:
    """列出变更申请。"""
    from ggzy.hub.ops.changes import list_changes

    province = _scope(province)
    found = _read(db, lambda c, s: list_changes(c, province))
    rows = [
        [
            c["id"],
            c["province"],
            c["kind_zh"],
            c["title"],
            c["status_zh"],
            c["requested_by"],
            c["decided_by"],
            _beijing(c["requested_at"]),
        ]
        for c in found
    ]
    out.print(
        _table("变更申请", ["编号", "省份", "类别", "名称", "状态", "申请人", "审核人", "申请时间"], rows)
    )


# --- notices to provinces ---


@notify_app.command("send")
@cli_permission(Permission.OPS_ASSESS)
def notify_send(
    title: Annotated[str, typer.Option("--title", help="通知标题")],
    body: Annotated[str, typer.Option("--body", help="通知内容")] = "",
    province: Annotated[
        list[str] | None,
        typer.Option("--province", "-p", help="收件省份（可重复）；不填即发给所有已登记节点的省份"),
    ] = None,
    db: DbOption = None,
) -> None:
    """国家平台向一个或所有省份发通知：写入各省的通知（门户与 ggzy node doctor 可见），并邮件/Webhook 发送给人员备案中的负责人和值班人员。

    示例：ggzy ops notify send -p 35 --title 请核对十一月数据 --body "请于12月10日前完成对账"
    """
    from ggzy.hub.ops.notices import send_message

    sent = _write(db, lambda s: send_message(s, province or None, title, body))
    out.print(f"已发送 {len(sent)} 条通知：{'、'.join(n.province for n in sent)}")
    _deliver(db)


@notify_app.command("outage")
@cli_permission(Permission.OPS_ASSESS)
def notify_outage(
    start: Annotated[str, typer.Option("--start", help="开始时间 YYYY-MM-DDTHH:MM（北京时间）")],
    end: Annotated[str, typer.Option("--end", help="结束时间")],
    impact: Annotated[str, typer.Option("--impact", help="对省级平台对接的影响")],
    province: Annotated[
        list[str] | None, typer.Option("--province", "-p", help="只通知这些省份（可重复）")
    ] = None,
    db: DbOption = None,
) -> None:
    """国家平台计划停用（维护、割接等）：通知所有（或指定）省份。

    示例：ggzy ops notify outage --start 2026-12-12T22:00 --end 2026-12-13T02:00 --impact "国家平台升级，暂停接收数据"
    """
    from ggzy.hub.ops.notices import announce_national_outage

    sent = _write(
        db, lambda s: announce_national_outage(s, _time(start), _time(end), impact, province or None)
    )
    out.print(f"已通知 {len(sent)} 个省份国家平台计划停用")
    _deliver(db)


@notify_app.command("list")
@cli_permission(Permission.OPS_READ)
def notify_list(
    province: ProvinceOption = None,
    unread: Annotated[bool, typer.Option("--unread", help="只看未读")] = False,
    output_format: FormatOption = Format.TABLE,
    db: DbOption = None,
) -> None:
    """列出发给省份的通知（省级账号只看本省）。"""
    from ggzy.hub.ops.notices import list_notices

    province = _scope(province)
    found = _read(db, lambda c, s: list_notices(c, province, unread_only=unread))
    if output_format is Format.JSON:
        _json([n.to_dict() for n in found])
        return
    rows = [
        [
            n.id,
            n.province,
            n.to_dict()["kind_zh"],
            n.title,
            _beijing(n.created_at),
            "已读" if n.read_at else "[yellow]未读[/]",
            _beijing(n.delivered_at) if n.delivered_at else "待发送",
        ]
        for n in found
    ]
    out.print(
        _table("发给省份的通知", ["编号", "省份", "类别", "标题", "发送时间", "状态", "邮件/Webhook"], rows)
    )


@notify_app.command("read")
@cli_permission(Permission.OPS_WRITE)
def notify_read(
    notice_id: Annotated[int | None, typer.Argument(help="通知编号；不填并加 --all 则全部标为已读")] = None,
    everything: Annotated[bool, typer.Option("--all", help="本省全部通知标为已读")] = False,
    db: DbOption = None,
) -> None:
    """本省人员将通知标为已读（留痕）。示例：ggzy ops notify read 12"""
    from ggzy.hub.ops.notices import mark_all_read, mark_read

    if everything:
        count = _write(db, mark_all_read)
        out.print(f"已将 {count} 条通知标为已读")
        return
    if notice_id is None:
        raise typer.BadParameter("请给出通知编号，或用 --all")
    notice = _write(db, lambda s: mark_read(s, notice_id))
    out.print(f"通知 #{notice.id} 已读")


@notify_app.command("deliver")
@cli_permission(Permission.OPS_WRITE)
def notify_deliver(db: DbOption = None) -> None:
    """发送尚未发出的通知（ggzy ops watch 每轮也会发送）。"""
    _deliver(db)


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
        if report.notices:
            out.print(
                _table(
                    "国家平台通知（未读，请在运行监测门户“通知”页阅读并标为已读）",
                    ["编号", "类别", "标题", "内容", "发送时间"],
                    [[n.id, n.kind_zh, n.title_zh, n.detail_zh, _beijing(n.sent_at)] for n in report.notices],
                )
            )
    if report.findings:
        raise typer.Exit(1)


__all__ = ["drill_app", "ops_app"]
