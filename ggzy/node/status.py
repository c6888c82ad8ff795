"""What an operator sees of a running node: queues, rates, latency, last contact, disk, open alerts.

``snapshot(ctx)`` reads everything from the local store (so ``ggzy node status`` works beside a
running service, from another process); ``render(snapshot)`` draws it with Rich.
"""

from __future__ import annotations

import datetime as dt
import shutil
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine, and_, func, select

from ggzy.node.blocked import BlockedBy, blocked_by_held
from ggzy.node.models import OUTBOX_STATES, alerts, link_attempts, outbox

if TYPE_CHECKING:
    from ggzy.node.context import NodeContext

__all__ = [
    "AlertView",
    "DiskUsage",
    "Snapshot",
    "aware",
    "disk_usage",
    "open_alerts",
    "render",
    "snapshot",
]

SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
RATE_WINDOW = dt.timedelta(minutes=5)
LATENCY_WINDOW = dt.timedelta(hours=1)
LATE_BY_DESIGN = ("reupload", "reconcile", "correction")

STATE_ZH = {
    "held": "暂存待更正",
    "queued": "排队",
    "blocked": "等待暂存记录更正",
    "sent": "已发送待回执",
    "accepted": "已接收",
    "rejected": "被拒收",
    "superseded": "已被更正替代",
}
LEVEL_ZH = {"info": "提示", "warning": "警告", "critical": "严重"}


class DiskUsage(NamedTuple):
    """What ``shutil.disk_usage`` returns (bytes)."""

    total: int
    used: int
    free: int


UsageFunction = Callable[[Path], Any]  # shutil.disk_usage or anything returning (total, used, free)


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite returns stored UTC times without their zone; every time the node stores is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def disk_usage(path: Path, usage: UsageFunction = shutil.disk_usage) -> DiskUsage:
    """Usage of the volume holding ``path`` (its nearest existing parent, before first start)."""
    target = path
    while not target.exists() and target != target.parent:
        target = target.parent
    total, used, free = usage(target)[:3]
    return DiskUsage(int(total), int(used), int(free))


def used_ratio(usage: DiskUsage) -> float:
    return usage.used / usage.total if usage.total > 0 else 0.0


# --- alerts ---


@dataclass(frozen=True, slots=True)
class AlertView:
    id: int
    at: dt.datetime
    kind: str
    level: str
    message: str


def open_alerts(engine: Engine, limit: int = 20) -> list[AlertView]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(alerts)
            .where(alerts.c.resolved_at.is_(None))
            .order_by(alerts.c.at.desc(), alerts.c.id.desc())
            .limit(limit)
        )
        return [AlertView(r.id, aware(r.at) or r.at, r.kind, r.level, r.message) for r in rows]


# --- the snapshot ---


@dataclass(slots=True)
class Snapshot:
    at: dt.datetime
    node_id: str
    queues: dict[int, dict[str, int]]  # channel → state → records
    oldest_unsent: dict[int, float | None]  # channel → seconds since the oldest waiting record was acquired
    accepted_per_minute: float
    latency_p50: float | None  # seconds publish → accepted, realtime records decided in the last hour
    latency_p95: float | None
    latency_samples: int
    last_contact: dt.datetime | None  # latest successful link attempt
    disk_path: Path
    disk: DiskUsage | None
    alerts: list[AlertView] = field(default_factory=list)
    blocked: list[BlockedBy] = field(default_factory=list)  # held records others wait on

    @property
    def disk_ratio(self) -> float | None:
        return used_ratio(self.disk) if self.disk is not None else None


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    cut = statistics.quantiles(values, n=100, method="inclusive")
    return cut[max(0, min(98, round(fraction * 100) - 1))]


def _latencies(engine: Engine, since: dt.datetime) -> list[float]:
    o = outbox.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(o.published_at, o.decided_at).where(
                o.state == "accepted",
                o.channel == 1,
                o.decided_at >= since,
                o.published_at.is_not(None),
                # re-sent by request or by reconciliation: late by design, not a measure of the link
                o.source.not_in(LATE_BY_DESIGN),
            )
        )
        values = []
        for row in rows:
            published, decided = aware(row.published_at), aware(row.decided_at)
            if published is not None and decided is not None:
                values.append(max((decided - published).total_seconds(), 0.0))
        return sorted(values)


def snapshot(
    ctx: NodeContext, now: dt.datetime | None = None, usage: UsageFunction = shutil.disk_usage
) -> Snapshot:
    """Everything ``ggzy node status`` shows, read from the node's store."""
    moment = now or dt.datetime.now(dt.UTC)
    engine: Engine = ctx.engine
    depths = ctx.outbox.depths()
    queues: dict[int, dict[str, int]] = {1: {}, 2: {}}
    for (channel, state), count in depths.by_channel_state.items():
        queues.setdefault(channel, {})[state] = count
    oldest = {
        channel: (moment - when).total_seconds() if when is not None else None
        for channel, when in depths.oldest_unsent.items()
    }
    with engine.connect() as connection:
        recent = connection.execute(
            select(func.count()).where(
                and_(outbox.c.state == "accepted", outbox.c.decided_at >= moment - RATE_WINDOW)
            )
        ).scalar_one()
        contact = connection.execute(
            select(func.max(link_attempts.c.at)).where(link_attempts.c.ok.is_(True))
        ).scalar()
    latencies = _latencies(engine, moment - LATENCY_WINDOW)
    try:
        disk: DiskUsage | None = disk_usage(ctx.settings.disk_path, usage)
    except OSError:
        disk = None
    return Snapshot(
        at=moment,
        node_id=ctx.settings.node_id,
        queues=queues,
        oldest_unsent=oldest,
        accepted_per_minute=recent / (RATE_WINDOW.total_seconds() / 60),
        latency_p50=_percentile(latencies, 0.50),
        latency_p95=_percentile(latencies, 0.95),
        latency_samples=len(latencies),
        last_contact=aware(contact),
        disk_path=ctx.settings.disk_path,
        disk=disk,
        alerts=open_alerts(engine),
        blocked=blocked_by_held(engine),
    )


# --- rendering ---


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 120:
        return f"{value:.1f} 秒"
    if value < 7200:
        return f"{value / 60:.1f} 分钟"
    return f"{value / 3600:.1f} 小时"


def _local(moment: dt.datetime | None) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") if moment is not None else "—"


def _queue_table(snap: Snapshot) -> Table:
    table = Table(title="队列 (queues)", title_justify="left")
    table.add_column("通道 channel")
    for state in OUTBOX_STATES:
        table.add_column(f"{STATE_ZH[state]}\n{state}", justify="right")
    table.add_column("最早未发送\noldest unsent", justify="right")
    for channel in sorted(snap.queues):
        label = "第一通道（实时）" if channel == 1 else "第二通道（历史/测试）"
        counts = snap.queues[channel]
        table.add_row(
            f"{label} {channel}",
            *(str(counts.get(state, 0)) for state in OUTBOX_STATES),
            _seconds(snap.oldest_unsent.get(channel)),
        )
    return table


def _health_table(snap: Snapshot) -> Table:
    table = Table(title="运行情况 (health)", title_justify="left", show_header=False)
    table.add_column("项目")
    table.add_column("值")
    table.add_row("接收速率 accepted/min（近5分钟）", f"{snap.accepted_per_minute:.1f} 条/分钟")
    table.add_row(
        "实时数据时延 p50 / p95（近1小时，发布→接收）",
        f"{_seconds(snap.latency_p50)} / {_seconds(snap.latency_p95)}（{snap.latency_samples} 条）",
    )
    contact = _local(snap.last_contact)
    if snap.last_contact is not None:
        contact += f"（{_seconds((snap.at - snap.last_contact).total_seconds())}前）"
    table.add_row("最近一次连通国家平台 last contact", contact)
    if snap.disk is not None and snap.disk_ratio is not None:
        disk = f"{snap.disk_ratio:.1%}（可用 {snap.disk.free / 2**30:.1f} GiB）{snap.disk_path}"
    else:
        disk = f"无法读取 {snap.disk_path}"
    table.add_row("磁盘使用率 disk", disk)
    return table


def _alert_table(snap: Snapshot) -> RenderableType:
    if not snap.alerts:
        return Text("未处理告警 open alerts：无", style="green")
    table = Table(title="未处理告警 (open alerts)", title_justify="left")
    for title in ("时间", "类别 kind", "级别 level", "内容"):
        table.add_column(title)
    for alert in snap.alerts:
        style = "red" if alert.level == "critical" else "yellow" if alert.level == "warning" else ""
        table.add_row(
            _local(alert.at),
            alert.kind,
            LEVEL_ZH.get(alert.level, alert.level),
            Text(alert.message, style=style),
        )
    return table


def _blocked_table(snap: Snapshot) -> RenderableType:
    if not snap.blocked:
        return Text("等待暂存记录更正的数据 blocked：无", style="green")
    table = Table(title="等待暂存记录更正的数据 (blocked, E-NODE-BLOCKED)", title_justify="left")
    for title in ("暂存记录 held", "数据表", "记录标识", "原因", "等待条数", "其中实时", "最早发布"):
        table.add_column(title)
    for item in snap.blocked:
        table.add_row(
            str(item.held_id),
            item.table,
            item.key,
            f"{item.code}：{item.message_zh}" if item.code else "—",
            str(item.waiting),
            Text(str(item.realtime), style="red" if item.realtime else ""),
            _local(item.oldest_published),
        )
    return table


def render(snap: Snapshot) -> RenderableType:
    header = Text(f"交换前置系统 {snap.node_id} 状态 · {_local(snap.at)}（北京时间）", style="bold")
    return Group(header, _queue_table(snap), _blocked_table(snap), _health_table(snap), _alert_table(snap))
