"""ECharts options as plain dicts, built from the query services' answers (testable without a browser).

A page embeds each option as JSON; ``static/portal.js`` hands it to ``echarts.init(...).setOption``.
Only data and layout go in: no functions, so the options survive JSON and the page's CSP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ggzy.web.portal import MARK_LABEL, beijing_hour
from ggzy.web.portal import base_option as _base
from ggzy.web.portal import percent as _percent

__all__ = ["delay_histogram", "heartbeat_history", "rate_trend", "rules_bar", "volumes_by_channel"]

_CHANNELS = {1: "第一通道（实时）", 2: "第二通道（历史）"}


def volumes_by_channel(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    days = sorted({row["day"] for row in rows})
    series = []
    for channel, name in _CHANNELS.items():
        counts = {row["day"]: row["received"] for row in rows if row["channel"] == channel}
        series.append(
            {"name": name, "type": "bar", "stack": "received", "data": [counts.get(d, 0) for d in days]}
        )
    option = _base("每日上传量（按通道）")
    option |= {
        "xAxis": {"type": "category", "data": days},
        "yAxis": {"type": "value", "name": "条"},
        "series": series,
    }
    return option


def rate_trend(days: Sequence[Mapping[str, Any]], targets: Mapping[str, float], title: str) -> dict[str, Any]:
    labels = {"pass": "数据合格率", "timely": "及时报送率", "repair": "修复成功率"}
    series = []
    for name, label in labels.items():
        series.append(
            {
                "name": label,
                "type": "line",
                "connectNulls": False,
                "data": [_percent(day["rates"][name]["value"]) for day in days],
                "markLine": {
                    "silent": True,
                    "symbol": "none",
                    "lineStyle": {"type": "dashed"},
                    "data": [{"yAxis": round(targets[name] * 100, 2), "name": f"{label}目标"}],
                    "label": {**MARK_LABEL, "formatter": f"{label}目标 {targets[name] * 100:g}%"},
                },
            }
        )
    option = _base(title)
    option |= {
        "xAxis": {"type": "category", "data": [day["day"] for day in days]},
        "yAxis": {"type": "value", "name": "%", "min": 0, "max": 100},
        "series": series,
    }
    return option


def delay_histogram(buckets: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    option = _base("实时数据报送时延分布（发布→国家平台接收）")
    option |= {
        "xAxis": {"type": "category", "data": [b["label"] for b in buckets]},
        "yAxis": {"type": "value", "name": "条"},
        "series": [
            {
                "name": "记录数",
                "type": "bar",
                "data": [
                    {
                        "value": b["count"],
                        "itemStyle": {
                            "color": "#3a9d5d" if (b["upper_seconds"] or 10**9) <= 600 else "#c0392b"
                        },
                    }
                    for b in buckets
                ],
            }
        ],
    }
    return option


def rules_bar(rules: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    ordered = list(reversed(rules))
    option = _base("主要不合格规则")
    option |= {
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "xAxis": {"type": "value", "name": "次"},
        "yAxis": {"type": "category", "data": [r["code"] for r in ordered]},
        "series": [{"name": "触发次数", "type": "bar", "data": [r["count"] for r in ordered]}],
    }
    return option


def heartbeat_history(node: Mapping[str, Any]) -> dict[str, Any]:
    history = node.get("history", [])
    option = _base(f"节点 {node['node_id']} 心跳与磁盘（按小时）")
    option["grid"] = {**option["grid"], "right": 48}  # the second axis's name on the right
    option |= {
        "xAxis": {"type": "category", "data": [beijing_hour(h["hour"]) for h in history]},
        "yAxis": [
            {"type": "value", "name": "心跳次数"},
            {"type": "value", "name": "磁盘使用率 %", "min": 0, "max": 100},
        ],
        "series": [
            {"name": "心跳次数", "type": "bar", "data": [h["beats"] for h in history]},
            {
                "name": "磁盘使用率",
                "type": "line",
                "yAxisIndex": 1,
                "data": [_percent(h["disk_used_ratio"]) for h in history],
            },
        ],
    }
    return option
