"""``ggzy node doctor``: every condition a province currently fails, and how to fix it.

Local checks of the node (platform probe configured and answering, disk, outbox held, rejected and
late records, open alerts, link failures, backup verification, a drill's link cut left in force)
and what the hub holds against the province (``GET /api/v1/ops/node/conditions``: assessment
indicators under target, unreported incidents, open rectification orders), side by side, so the
province sees before an inspection what an inspector would see. The hub's unread notices to the
province (orders, 通报, national outages, assessment results, messages) are listed after them.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select

from ggzy.node.blocked import blocked_by_held
from ggzy.node.heartbeat import BACKUP_VERIFIED_AT, PlatformHealth, probe_platform
from ggzy.node.link_control import link_cut_until
from ggzy.node.models import alerts, link_attempts, outbox, state
from ggzy.node.status import UsageFunction, disk_usage, used_ratio
from ggzy.protocol import HubClient, HubRefused, HubUnavailable

if TYPE_CHECKING:
    from ggzy.node.context import NodeContext

__all__ = ["DoctorReport", "Finding", "HubNotice", "diagnose", "local_findings"]

BACKUP_MAX_AGE_DAYS = 7
REALTIME_LIMIT_SECONDS = 600.0
LINK_FAILURE_SHARE = 0.01  # the network target is 99 %


@dataclass(frozen=True, slots=True)
class Finding:
    source: str  # local | hub
    code: str
    title_zh: str
    fix_zh: str
    detail_zh: str = ""
    evidence: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "code": self.code,
            "title_zh": self.title_zh,
            "detail_zh": self.detail_zh,
            "fix_zh": self.fix_zh,
            "evidence": self.evidence,
        }


@dataclass(frozen=True, slots=True)
class HubNotice:
    """A notice the national side sent the province that nobody there has read yet."""

    id: int
    kind_zh: str
    title_zh: str
    detail_zh: str
    sent_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind_zh": self.kind_zh,
            "title_zh": self.title_zh,
            "detail_zh": self.detail_zh,
            "sent_at": self.sent_at,
        }


@dataclass
class DoctorReport:
    findings: list[Finding] = field(default_factory=list)
    hub_reached: bool = False
    hub_period: str | None = None
    hub_score: float | None = None
    notices: list[HubNotice] = field(default_factory=list)  # shown beside the findings, not failures

    @property
    def healthy(self) -> bool:
        return not self.findings and self.hub_reached

    def to_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "hub_reached": self.hub_reached,
            "hub_period": self.hub_period,
            "hub_score": self.hub_score,
            "findings": [f.to_dict() for f in self.findings],
            "notices": [n.to_dict() for n in self.notices],
        }


def local_findings(
    ctx: NodeContext,
    now: dt.datetime,
    *,
    usage: UsageFunction = shutil.disk_usage,
    probe: Callable[[str], PlatformHealth] = probe_platform,
) -> list[Finding]:
    settings = ctx.settings
    found: list[Finding] = []

    def add(code: str, title: str, fix: str, detail: str = "") -> None:
        found.append(Finding("local", code, title, fix, detail))

    if not settings.platform_health_url:
        add(
            "NODE-PLATFORM-PROBE",
            "未配置省级平台健康检查地址，国家平台无法计算省级平台系统可用率",
            "在 node.toml 的 [node] 段设置 platform_health_url（省级平台的健康检查 URL）",
        )
    else:
        health = probe(settings.platform_health_url)
        if not health.ok:
            add(
                "NODE-PLATFORM-DOWN",
                "省级平台健康检查失败",
                "检查省级平台服务及前置机到平台的网络；故障影响对接时提交故障报告",
                health.error or "",
            )
    try:
        ratio = used_ratio(disk_usage(settings.disk_path, usage))
        if ratio >= settings.disk_warn:
            add(
                "NODE-DISK",
                f"前置机磁盘使用率 {ratio:.0%}，超过告警线 {settings.disk_warn:.0%}",
                "缩短 node.retention_days 让磁盘守护清理已接收的数据，或扩容数据卷",
            )
    except OSError as exc:
        add("NODE-DISK-UNKNOWN", "无法读取磁盘容量", "检查 node.disk_path 配置", str(exc))

    o = outbox.c
    with ctx.engine.connect() as connection:
        counts: dict[str, int] = dict(
            connection.execute(
                select(o.state, func.count()).where(o.state.in_(("held", "rejected"))).group_by(o.state)
            ).all()
        )
        oldest = connection.execute(
            select(func.min(o.published_at)).where(
                o.channel == 1, o.state.in_(("queued", "sent")), o.source != "reupload"
            )
        ).scalar()
        open_alerts = list(
            connection.execute(
                select(alerts.c.kind, alerts.c.level, alerts.c.message).where(
                    alerts.c.resolved_at.is_(None), alerts.c.level.in_(("warning", "critical"))
                )
            )
        )
        a = link_attempts.c
        total, failed = connection.execute(
            select(func.count(), func.coalesce(func.sum(case((a.ok.is_(False), 1), else_=0)), 0)).where(
                a.at >= now - dt.timedelta(days=1)
            )
        ).one()
        verified = connection.execute(
            select(state.c.value).where(state.c.name == BACKUP_VERIFIED_AT)
        ).scalar()
    if counts.get("held"):
        add(
            "NODE-HELD",
            f"{counts['held']} 条数据预校验不通过，暂存待更正",
            "导出待更正数据（ggzy node rejects export），更正后导入（ggzy node corrections import）",
        )
    for item in blocked_by_held(ctx.engine, limit=5):
        add(
            "NODE-BLOCKED",
            f"{item.waiting} 条数据（其中实时数据 {item.realtime} 条）等待暂存待更正的记录 {item.table} {item.key}",
            "更正该记录后导入（ggzy node rejects export → ggzy node corrections import），"
            "或由源系统提交该记录完整的新版本（取代暂存版本）；等待的数据随后自动上传",
            item.line_zh(),
        )
    if counts.get("rejected"):
        add(
            "NODE-REJECTED",
            f"{counts['rejected']} 条数据被国家平台拒收，尚未更正",
            "导出被拒收数据（ggzy node rejects export），更正后导入重传（ggzy node corrections import）；修复成功率须不低于90%",
        )
    if oldest is not None:
        published = oldest.replace(tzinfo=dt.UTC) if oldest.tzinfo is None else oldest
        age = (now - published).total_seconds()
        if age > REALTIME_LIMIT_SECONDS:
            add(
                "NODE-REALTIME-LATE",
                f"有实时数据发布已 {age / 60:.0f} 分钟仍未被国家平台接收（规定10分钟内）",
                "检查与国家平台的链路和上传日志（ggzy node status）",
            )
    for alert in open_alerts:
        add(
            f"NODE-ALERT-{alert.kind.upper()}",
            f"未解除的{'严重' if alert.level == 'critical' else ''}告警",
            "按告警提示处理",
            alert.message,
        )
    if total and int(failed) / int(total) > LINK_FAILURE_SHARE:
        add(
            "NODE-LINK",
            f"近24小时与国家平台的连接失败 {int(failed)}/{int(total)} 次，超过1%",
            "检查政务外网链路与防火墙策略；链路中断影响对接时联系国家平台值班人员并提交故障报告",
        )
    fresh = False
    if verified:
        try:
            moment = dt.datetime.fromisoformat(str(verified))
            fresh = now - moment <= dt.timedelta(days=BACKUP_MAX_AGE_DAYS)
        except ValueError:
            fresh = False
    if not fresh:
        add(
            "NODE-BACKUP",
            f"近 {BACKUP_MAX_AGE_DAYS} 天没有备份恢复验证记录",
            "执行备份并验证可恢复，由备份工具记录验证时间（node_state: backup.verified_at）",
        )
    cut = link_cut_until(ctx.engine, now)
    if cut is not None:
        add(
            "NODE-LINK-CUT",
            f"应急演练断开的链路尚未恢复（至 {cut.isoformat()}）",
            "演练结束后执行 ggzy drill restore",
        )
    return found


def diagnose(
    ctx: NodeContext,
    client: HubClient,
    *,
    now: dt.datetime | None = None,
    usage: UsageFunction = shutil.disk_usage,
    probe: Callable[[str], PlatformHealth] = probe_platform,
) -> DoctorReport:
    moment = now or dt.datetime.now(dt.UTC)
    report = DoctorReport(local_findings(ctx, moment, usage=usage, probe=probe))
    try:
        answer = client.ops_conditions()
    except (HubUnavailable, HubRefused) as exc:
        report.findings.append(
            Finding(
                "hub",
                "NODE-HUB-UNREACHABLE",
                "无法从国家平台取得本省运行管理情况",
                "检查 node.hub_url、签名密钥和链路；国家平台拒绝时按错误码处理",
                str(exc),
            )
        )
        return report
    report.hub_reached = True
    report.hub_period = answer.get("period")
    report.hub_score = answer.get("score")
    for item in answer.get("notices", []) or []:
        if isinstance(item, dict):
            report.notices.append(
                HubNotice(
                    int(item.get("id", 0)),
                    str(item.get("kind_zh", "")),
                    str(item.get("title_zh", "")),
                    str(item.get("detail_zh", "")),
                    str(item.get("sent_at", "")),
                )
            )
    for item in answer.get("findings", []):
        report.findings.append(
            Finding(
                "hub",
                str(item.get("code", "OPS")),
                str(item.get("title_zh", "")),
                str(item.get("fix_zh", "")),
                str(item.get("detail_zh", "")),
                str(item.get("evidence", "")),
            )
        )
    return report
