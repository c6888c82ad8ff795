"""The node portal's query services: plain dicts read from the node's own store (testable without HTTP).

- :func:`overview` — what ``ggzy node status`` shows (:func:`ggzy.node.status.snapshot`), plus
  publish→sent/accepted latency p50/p99 of the last hour, realtime records near the 10-minute limit,
  the circuit breakers (when the uploaders run in this process) and the disk against its thresholds;
- :func:`history` — the last hours of heartbeat samples (``node_samples``) by hour, for the charts;
- :func:`recent_reconciliations` — the latest result of each table and day (``reconcile_results``).
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select

from ggzy.node.models import node_samples, reconcile_results
from ggzy.node.status import LATENCY_WINDOW, STATE_ZH, UsageFunction, aware, snapshot
from ggzy.node.uploader import late_realtime, latency_summary
from ggzy.web.portal import MARK_LABEL, SHANGHAI, base_option, percent

if TYPE_CHECKING:
    from ggzy.node.context import NodeContext

__all__ = [
    "disk_level",
    "history",
    "history_chart",
    "overview",
    "recent_reconciliations",
    "waiting_chart",
]

TEN_MINUTES = 600.0
CHANNEL_ZH = {1: "第一通道（实时）", 2: "第二通道（历史/测试）"}
DISK_LEVEL_ZH = {
    "ok": "正常",
    "warn": "超过告警阈值",
    "clean": "超过清理阈值，自动清理已接收数据",
    "refuse": "超过拒收阈值，暂停接收新数据",
}
BREAKER_ZH = {"closed": "闭合（正常发送）", "open": "断开（暂停发送）", "half_open": "半开（试探发送）"}


def disk_level(ratio: float, warn: float, clean: float, refuse: float) -> str:
    """The disk guard's level for a usage ratio (``ggzy.node.disk``: ok | warn | clean | refuse)."""
    if ratio >= refuse:
        return "refuse"
    if ratio >= clean:
        return "clean"
    if ratio >= warn:
        return "warn"
    return "ok"


def overview(
    ctx: NodeContext,
    now: dt.datetime,
    breakers: Mapping[int, str] | None = None,
    usage: UsageFunction = shutil.disk_usage,
) -> dict[str, Any]:
    settings = ctx.settings
    snap = snapshot(ctx, now, usage)
    latency = latency_summary(ctx.engine, 1, since=now - LATENCY_WINDOW)
    late, oldest_late = late_realtime(ctx.engine, now, settings.latency_alert_seconds)
    channels = []
    for channel in sorted(snap.queues):
        counts = snap.queues[channel]
        channels.append(
            {
                "channel": channel,
                "name_zh": CHANNEL_ZH.get(channel, str(channel)),
                "states": [(state, zh, counts.get(state, 0)) for state, zh in STATE_ZH.items()],
                "waiting": counts.get("queued", 0) + counts.get("sent", 0),
                "oldest_unsent_seconds": snap.oldest_unsent.get(channel),
                "breaker": (breakers or {}).get(channel),
            }
        )
    ratio = snap.disk_ratio
    return {
        "at": snap.at,
        "node_id": snap.node_id,
        "province": settings.province,
        "channels": channels,
        "breaker_known": breakers is not None,
        "accepted_per_minute": snap.accepted_per_minute,
        "latency": {
            "count": latency.count,
            "sent_p50": latency.sent_p50,
            "sent_p99": latency.sent_p99,
            "accepted_p50": latency.accepted_p50,
            "accepted_p99": latency.accepted_p99,
        },
        "late": {
            "count": late,
            "oldest_seconds": oldest_late,
            "threshold_seconds": settings.latency_alert_seconds,
            "over_limit": oldest_late is not None and oldest_late >= TEN_MINUTES,
        },
        "last_contact": snap.last_contact,
        "last_contact_seconds": (now - snap.last_contact).total_seconds() if snap.last_contact else None,
        "disk": {
            "path": str(snap.disk_path),
            "ratio": ratio,
            "free_bytes": snap.disk.free if snap.disk is not None else None,
            "level": None
            if ratio is None
            else disk_level(ratio, settings.disk_warn, settings.disk_clean, settings.disk_refuse),
            "warn": settings.disk_warn,
            "clean": settings.disk_clean,
            "refuse": settings.disk_refuse,
        },
        "alerts": [
            {"at": alert.at, "kind": alert.kind, "level": alert.level, "message": alert.message}
            for alert in snap.alerts
        ],
        "blocked": [
            {
                "held_id": item.held_id,
                "table": item.table,
                "key": item.key,
                "code": item.code,
                "message_zh": item.message_zh,
                "waiting": item.waiting,
                "realtime": item.realtime,
                "oldest_published": item.oldest_published,
            }
            for item in snap.blocked
        ],
    }


def history(engine: Engine, now: dt.datetime, hours: int = 24) -> list[dict[str, Any]]:
    """Hour by hour (Beijing time, oldest first, empty hours included): beats sent and failed,
    the highest disk usage and the most records waiting per channel."""
    local_now = now.astimezone(SHANGHAI).replace(minute=0, second=0, microsecond=0)
    first = local_now - dt.timedelta(hours=hours - 1)
    buckets: dict[dt.datetime, dict[str, Any]] = {
        first + dt.timedelta(hours=i): {
            "hour": (first + dt.timedelta(hours=i)).strftime("%m-%d %H:00"),
            "beats_ok": 0,
            "beats_failed": 0,
            "disk_used_ratio": None,
            "waiting_1": None,
            "waiting_2": None,
        }
        for i in range(hours)
    }
    s = node_samples.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(s.at, s.beat_ok, s.disk_used_ratio, s.waiting_1, s.waiting_2)
            .where(s.at >= first.astimezone(dt.UTC), s.at <= now)
            .order_by(s.at)
        )
        for row in rows:
            at = aware(row.at)
            assert at is not None
            hour = at.astimezone(SHANGHAI).replace(minute=0, second=0, microsecond=0)
            bucket = buckets.get(hour)
            if bucket is None:
                continue
            bucket["beats_ok" if row.beat_ok else "beats_failed"] += 1
            for name in ("disk_used_ratio", "waiting_1", "waiting_2"):
                value = getattr(row, name)
                if value is not None and (bucket[name] is None or value > bucket[name]):
                    bucket[name] = value
    return list(buckets.values())


def history_chart(hours: Sequence[Mapping[str, Any]], thresholds: Mapping[str, float]) -> dict[str, Any]:
    """Beats per hour (sent, failed) as bars and the highest disk usage as a line against 80/90/95%."""
    marks = [
        {"yAxis": round(thresholds[name] * 100, 2), "name": label}
        for name, label in (("warn", "告警"), ("clean", "清理"), ("refuse", "拒收"))
    ]
    option = base_option("心跳与磁盘（按小时）")
    option["grid"] = {**option["grid"], "right": 48}  # the second axis's name on the right
    option |= {
        "xAxis": {"type": "category", "data": [h["hour"] for h in hours]},
        "yAxis": [
            {"type": "value", "name": "心跳次数", "minInterval": 1},
            {"type": "value", "name": "磁盘使用率 %", "min": 0, "max": 100},
        ],
        "series": [
            {"name": "心跳成功", "type": "bar", "stack": "beats", "data": [h["beats_ok"] for h in hours]},
            {
                "name": "心跳失败",
                "type": "bar",
                "stack": "beats",
                "itemStyle": {"color": "#c0392b"},
                "data": [h["beats_failed"] for h in hours],
            },
            {
                "name": "磁盘使用率",
                "type": "line",
                "yAxisIndex": 1,
                "connectNulls": False,
                "data": [percent(h["disk_used_ratio"]) for h in hours],
                "markLine": {
                    "silent": True,
                    "symbol": "none",
                    "lineStyle": {"type": "dashed"},
                    "data": marks,
                    "label": {**MARK_LABEL, "formatter": "{b} {c}%"},
                },
            },
        ],
    }
    return option


def waiting_chart(hours: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    option = base_option("待上传记录（每小时最多）")
    option |= {
        "xAxis": {"type": "category", "data": [h["hour"] for h in hours]},
        "yAxis": {"type": "value", "name": "条", "minInterval": 1},
        "series": [
            {"name": CHANNEL_ZH[channel], "type": "line", "data": [h[f"waiting_{channel}"] for h in hours]}
            for channel in (1, 2)
        ],
    }
    return option


def recent_reconciliations(engine: Engine, today: dt.date, days: int = 31) -> list[dict[str, Any]]:
    """The latest result of each (day, table) reconciled in the last ``days`` days, newest day first."""
    r = reconcile_results.c
    latest: dict[tuple[dt.date, str], dict[str, Any]] = {}
    with engine.connect() as connection:
        rows = connection.execute(
            select(reconcile_results)
            .where(r.day >= today - dt.timedelta(days=days - 1))
            .order_by(r.day.desc(), r.table_name, r.id.desc())
        )
        for row in rows.mappings():
            pair = (row["day"], row["table_name"])
            if pair in latest:
                latest[pair]["runs"] += 1
                continue
            latest[pair] = dict(row) | {"run_at": aware(row["run_at"]), "runs": 1}
    return list(latest.values())
