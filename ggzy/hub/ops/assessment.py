"""The assessment of a province for a month or a year (Art. 34): every indicator, its evidence, a score.

Each indicator has a value, a target, a verdict (met, missed, or None without data) and the API
path that shows the figures behind it. The score is the weighted share of met indicators among
those with a verdict; the weights come from ``hub.ops.weights`` and are 1 each unless configured
(equal weights are an assumption of ours: the regulation names the indicators but not their weights).

Indicators: 数据合格率, 及时报送率, 修复成功率 (from ``stats_daily``; the timely rate's note counts the
realtime records without a publication time, the pass rate's the 统一交易标识码 conflicts), node,
network and provincial system availability (``ggzy.hub.ops.availability``, time-based; each note
gives the resolution and what the down time consisted of), the provincial platform's health probe
(without one the system figure has no value, and the missing probe is a finding: not met), backups
verified within ``backup_max_age_days`` of
the period's end, a drill within ``drill_max_age_days`` of it, the roster complete as it stood at the
period's end (replayed from its history), every automatic incident of the period covered by a fault
report, and the front-end deployed and heartbeating during the period.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select

from ggzy.hub.models import nodes
from ggzy.hub.ops.availability import ProvinceAvailability, province_availability
from ggzy.hub.ops.backups import BackupSource, HeartbeatBackupSource
from ggzy.hub.ops.incidents import list_incidents
from ggzy.hub.ops.periods import Period
from ggzy.hub.ops.preparedness import last_drill, list_plans
from ggzy.hub.ops.roster import list_trainings, roster_at, roster_gaps
from ggzy.hub.ops.session import Clock, system_clock
from ggzy.hub.ops.uptime import beat_totals
from ggzy.hub.stats import province_summary, publication_missing
from ggzy.settings import OpsSettings
from ggzy.spec import load_regions

__all__ = ["INDICATORS", "Assessment", "Indicator", "assess_province"]

INDICATORS = {
    "pass_rate": "数据合格率",
    "timely_rate": "及时报送率",
    "repair_rate": "修复成功率",
    "node_availability": "前置机系统可用率",
    "network_availability": "网络可用率",
    "system_availability": "省级平台系统可用率",
    "system_probe": "省级平台健康探测",
    "backups_verified": "备份已验证",
    "drill_held": "应急演练",
    "roster_complete": "人员备案完整",
    "incidents_reported": "故障如实上报",
    "frontend_deployed": "前置机部署并在线",
}


@dataclass(frozen=True, slots=True)
class Indicator:
    key: str
    value: float | str | None
    target: float | str
    met: bool | None
    evidence: str
    note: str = ""

    @property
    def name_zh(self) -> str:
        return INDICATORS[self.key]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name_zh": self.name_zh,
            "value": self.value,
            "target": self.target,
            "met": self.met,
            "evidence": self.evidence,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Assessment:
    province: str
    name_zh: str | None
    period: Period
    indicators: list[Indicator]
    weights: dict[str, float]
    availability: ProvinceAvailability = field(repr=False)
    facts: dict[str, Any] = field(default_factory=dict)  # what the Art. 35 checks read

    @property
    def score(self) -> float | None:
        judged = [i for i in self.indicators if i.met is not None]
        total = sum(self.weights[i.key] for i in judged)
        if not total:
            return None
        return sum(self.weights[i.key] for i in judged if i.met) / total

    def indicator(self, key: str) -> Indicator:
        return next(i for i in self.indicators if i.key == key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "province": self.province,
            "name_zh": self.name_zh,
            "period": self.period.label,
            "from": self.period.first_day.isoformat(),
            "to": self.period.last_day.isoformat(),
            "score": self.score,
            "weights": self.weights,
            "indicators": [i.to_dict() for i in self.indicators],
        }


def assess_province(
    connection: Connection,
    province: str,
    period: Period,
    settings: OpsSettings | None = None,
    *,
    clock: Clock = system_clock,
    backups: BackupSource | None = None,
) -> Assessment:
    settings = settings or OpsSettings()
    backups = backups or HeartbeatBackupSource()
    now = clock()
    end = min(period.end, now)
    first, last = period.first_day, period.last_day
    stats_path = f"/api/v1/ops/stats?province={province}&from={first}&to={last}"
    summary = province_summary(connection, province, first, last, top_rules=None)
    rates = summary.overall
    missing = publication_missing(summary.tables)
    conflicts = {row.code: row.count for row in summary.rules if row.code in _DEAL_CODE_RULES}
    indicators = [
        _rate(
            "pass_rate",
            rates.pass_rate.value,
            rates.pass_rate.target,
            rates.pass_rate.met,
            stats_path,
            f"统一交易标识码冲突 {sum(conflicts.values())} 条（"
            + "，".join(f"{code} {conflicts.get(code, 0)}" for code in _DEAL_CODE_RULES)
            + "）",
        ),
        _rate(
            "timely_rate",
            rates.timely_rate.value,
            rates.timely_rate.target,
            rates.timely_rate.met,
            stats_path,
            f"及时 {rates.timely_rate.numerator}/{rates.timely_rate.denominator}；缺少发布时间 {missing['untimed']} 条"
            f"（实时交易信息拒收 {missing['refused']} 条，其他信息计为不及时 {missing['counted_late']} 条）",
        ),
        _rate(
            "repair_rate",
            rates.repair_rate.value,
            rates.repair_rate.target,
            rates.repair_rate.met,
            stats_path,
        ),
    ]
    availability = province_availability(connection, province, period, settings, clock)
    for key, figure in (
        ("node_availability", availability.node),
        ("network_availability", availability.network),
        ("system_availability", availability.system),
    ):
        note = _availability_note(key, availability)
        indicators.append(_rate(key, figure.value, figure.target, figure.met, availability.evidence, note))
    probed = availability.probe_configured
    indicators.append(
        Indicator(
            "system_probe",
            "已配置" if probed else "未配置",
            "节点配置省级平台健康检查地址并上报探测结果",
            probed if availability.measured is not None else None,
            availability.evidence,
            "期内有探测结果"
            if probed
            else "未配置省级平台健康检查地址（node.platform_health_url），期内无探测结果："
            "省级平台系统可用率无法计算（无数据），按未达标计",
        )
    )

    verified = backups.verified_at(connection, province, end)
    age_days = (end - verified).total_seconds() / 86400 if verified is not None else None
    indicators.append(
        Indicator(
            "backups_verified",
            verified.isoformat() if verified else None,
            f"≤{settings.backup_max_age_days}天",
            verified is not None and age_days is not None and age_days <= settings.backup_max_age_days,
            f"/api/v1/ops/backups?province={province}",
            f"最近验证距期末 {age_days:.1f} 天" if age_days is not None else "未见备份验证记录",
        )
    )
    drilled = last_drill(connection, province, last)
    plans = list_plans(connection, province)
    drill_ok = drilled is not None and (last - drilled).days <= settings.drill_max_age_days
    indicators.append(
        Indicator(
            "drill_held",
            drilled.isoformat() if drilled else None,
            f"{settings.drill_max_age_days}天内至少一次",
            drill_ok,
            f"/api/v1/ops/drills?province={province}",
            f"预案 {len(plans)} 版" if plans else "未备案应急预案",
        )
    )
    gaps = roster_gaps(connection, province, roster_at(connection, province, end))
    indicators.append(
        Indicator(
            "roster_complete",
            len(gaps),
            0,
            not gaps,
            f"/api/v1/ops/roster/{province}/gaps",
            "；".join(g.message_zh for g in gaps[:5]),
        )
    )
    incidents = [
        i
        for i in list_incidents(connection, province, (period.start, end))
        if i.origin == "auto" and period.start <= i.started_at < end
    ]
    due = dt.timedelta(hours=settings.report_due_hours)
    late = [i for i in incidents if i.fault_reported_at is None and now - i.reported_at > due]
    indicators.append(
        Indicator(
            "incidents_reported",
            (len(incidents) - len(late)) / len(incidents) if incidents else None,
            1.0,
            not late,
            f"/api/v1/ops/incidents?province={province}&unreported=true",
            f"自动发现 {len(incidents)} 起，逾期未报 {len(late)} 起",
        )
    )
    registered = connection.execute(
        select(func.count()).where(nodes.c.province == province, nodes.c.created_at < end)
    ).scalar_one()
    beats = beat_totals(connection, province, (period.start, end)).beats if period.start < end else 0
    indicators.append(
        Indicator(
            "frontend_deployed",
            int(beats),
            "已登记且有心跳",
            bool(registered) and bool(beats),
            f"/api/v1/ops/availability?province={province}&period={period.label}",
            f"登记节点 {registered} 个，期内心跳 {beats} 次",
        )
    )
    weights = {key: float(settings.weights.get(key, 1.0)) for key in INDICATORS}
    return Assessment(
        province=province,
        name_zh=load_regions().provinces().get(province),
        period=period,
        indicators=indicators,
        weights=weights,
        availability=availability,
        facts={
            "plans": len(plans),
            "late_incidents": [i.id for i in late],
            "roster_gaps": [g.to_dict() for g in gaps],
            "registered_nodes": int(registered),
            # Art. 35 (6): safety and information-sharing training within the drill interval
            "trainings": [
                t["id"]
                for t in list_trainings(
                    connection, province, last - dt.timedelta(days=settings.drill_max_age_days)
                )
                if t["topic"] in ("security", "sharing") and t["held_on"] <= last.isoformat()
            ],
        },
    )


_DEAL_CODE_RULES = ("E-XR-DEAL-CODE-REUSED", "E-XR-DEAL-CODE-MISMATCH")


def _rate(
    key: str, value: float | None, target: float, met: bool | None, evidence: str, note: str = ""
) -> Indicator:
    if met is None:
        note = "期内无数据" + (f"；{note}" if note else "")
    return Indicator(key, value, target, met, evidence, note)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} 分钟"


def _availability_note(key: str, availability: ProvinceAvailability) -> str:
    """What the down time of one figure consisted of, and the resolution it is exact to."""
    resolution = f"精度：一次心跳 {availability.resolution_seconds:g} 秒"
    if key == "node_availability":
        return (
            f"{resolution}；中断 {_minutes(availability.unnotified_down_seconds)} 未通知、"
            f"{_minutes(availability.late_notice_down_seconds)} 迟报；已扣除计划停用 "
            f"{_minutes(availability.maintenance_seconds)}"
        )
    evidence = (availability.network if key == "network_availability" else availability.system).evidence
    if key == "network_availability":
        probes = "" if availability.node_probes else "（国家平台未探测本省节点，国家平台→节点方向未计量）"
        return (
            f"{resolution}；无心跳 {_minutes(evidence.get('no_heartbeat_seconds', 0))}，"
            f"节点→国家平台中断 {_minutes(evidence.get('node_to_hub_down_seconds', 0))}，"
            f"国家平台→节点探测失败 {_minutes(evidence.get('hub_to_node_down_seconds', 0))}{probes}"
        )
    if not availability.probe_configured:
        return "未配置省级平台健康探测，无数据（省级自报故障不能代替探测）"
    return (
        f"{resolution}；健康检查失败 {_minutes(evidence.get('failing_seconds', 0))}，"
        f"无探测结果 {_minutes(evidence.get('unverified_seconds', 0))}，"
        f"无心跳 {_minutes(evidence.get('no_heartbeat_seconds', 0))}，"
        f"故障报告 {_minutes(evidence.get('reported_fault_seconds', 0))}"
    )
