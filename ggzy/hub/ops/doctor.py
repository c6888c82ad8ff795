"""What the hub holds against a province right now, each item with how to fix it (for ``ggzy node doctor``).

The province's month-to-date assessment (every indicator that misses its target), its automatic
incidents still without a fault report, its open rectification orders and the ones already on the
通报 list; beside them, the notices the national side sent the province that nobody there has read
yet (``ggzy.hub.ops.notices``). The node shows these beside its own local checks, so a province sees before an inspection
every condition it currently fails.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection

from ggzy.hub.ops.assessment import assess_province
from ggzy.hub.ops.incidents import unreported_incidents
from ggzy.hub.ops.periods import SHANGHAI, month_period
from ggzy.hub.ops.rectification import list_orders
from ggzy.settings import OpsSettings

__all__ = ["FIXES", "hub_findings"]

FIXES = {
    "pass_rate": "按国家平台反馈（ggzy node status、反馈明细）更正错误数据并重新上传，上传前做好核对",
    "timely_rate": "实时数据发布后10分钟内上传；主体、专家、信用、监管信息当天上传；检查抽取间隔与上传积压",
    "repair_rate": "逐条处理被拒收的数据：ggzy node rejects export 导出，更正后 ggzy node corrections import 重传",
    "node_availability": "保持前置服务常驻运行（ggzy node run，配置开机自启）；计划停用须提前通知（ggzy ops outage add）",
    "network_availability": "检查政务外网链路、防火墙策略与访问端口；链路中断时联系国家平台值班人员并提交故障报告",
    "system_availability": "配置 node.platform_health_url 探测省级平台；平台故障须提交故障报告并尽快恢复",
    "system_probe": "在前置机配置 node.platform_health_url（省级平台健康检查地址），心跳将上报探测结果；未配置时省级平台系统可用率无数据",
    "backups_verified": "定期做备份恢复验证，并由备份工具记录验证时间（节点心跳上报 backup_verified_at）",
    "drill_held": "每年至少组织一次应急演练（可用 ggzy drill hub-outage 实测），并登记预案与演练记录",
    "roster_complete": "补齐人员备案：运行负责人、技术负责人、值班人员及五个关键岗位主备人员的电话、手机、邮箱",
    "incidents_reported": "为每起自动发现的故障及时提交故障报告（原因、处置、教训、整改措施）",
    "frontend_deployed": "按统一要求部署交换前置系统，确保节点已登记且持续发送心跳",
}


def hub_findings(
    connection: Connection, province: str, settings: OpsSettings, now: dt.datetime
) -> dict[str, Any]:
    local = now.astimezone(SHANGHAI)
    period = month_period(local.year, local.month)
    assessment = assess_province(connection, province, period, settings, clock=lambda: now)
    findings: list[dict[str, Any]] = []
    for indicator in assessment.indicators:
        if indicator.met is False:
            findings.append(
                {
                    "code": f"OPS-{indicator.key.upper()}",
                    "title_zh": f"{indicator.name_zh}未达标",
                    "detail_zh": f"当前 {_show(indicator.value)}，目标 {_show(indicator.target)}。{indicator.note}".strip(),
                    "fix_zh": FIXES[indicator.key],
                    "evidence": indicator.evidence,
                }
            )
    for incident, overdue in unreported_incidents(connection, now, settings.report_due_hours, province):
        findings.append(
            {
                "code": "OPS-INCIDENT-UNREPORTED",
                "title_zh": f"事件 #{incident.id} 未提交故障报告" + ("（已逾期）" if overdue else ""),
                "detail_zh": incident.title,
                "fix_zh": f"提交故障报告：POST /api/v1/ops/incidents（incident_id={incident.id}）或 ggzy ops incident report",
                "evidence": f"/api/v1/ops/incidents?province={province}&unreported=true",
            }
        )
    for order in list_orders(connection, now, province, open_only=True):
        findings.append(
            {
                "code": "OPS-RECTIFICATION-OVERDUE" if order["overdue"] else "OPS-RECTIFICATION-OPEN",
                "title_zh": f"整改通知 #{order['id']}：{order['condition_zh']}"
                + ("（已逾期，列入通报）" if order["overdue"] else ""),
                "detail_zh": order["basis"],
                "fix_zh": f"于 {order['deadline_date']}（含，北京时间）前完成整改并报国家平台确认",
                "evidence": f"/api/v1/ops/rectifications?province={province}",
            }
        )
    from ggzy.hub.ops.notices import list_notices
    from ggzy.hub.ops.roster import roster_gaps
    from ggzy.hub.ops.selfchecks import list_self_checks
    from ggzy.hub.ops.versions import version_flags

    for check in list_self_checks(connection, province, local.date()):
        if check["overdue"]:
            findings.append(
                {
                    "code": "OPS-SELFCHECK-OVERDUE",
                    "title_zh": f"安全自查 #{check['id']}（计划 {check['due_on']}）逾期未登记结果",
                    "detail_zh": "",
                    "fix_zh": f"完成安全自查并逐项登记结果：ggzy ops selfcheck result {check['id']} --item …",
                    "evidence": f"/api/v1/ops/self-checks?province={province}",
                }
            )
    for gap in roster_gaps(connection, province, at=now):
        if gap.code == "E-ROSTER-ABSENT":
            findings.append(
                {
                    "code": "OPS-ROSTER-ABSENT",
                    "title_zh": gap.message_zh,
                    "detail_zh": "",
                    "fix_zh": "安排备岗人员在岗并更新人员备案，或缩短外出（第三十条：关键人员主备制）",
                    "evidence": f"/api/v1/ops/roster/{province}/gaps",
                }
            )

    for flag in version_flags(connection, province):
        findings.append(
            {
                "code": flag["code"],
                "title_zh": flag["message_zh"],
                "detail_zh": "",
                "fix_zh": "前置机的操作系统、数据库和交换软件由国家平台管理：请联系国家平台按审批版本升级并登记，"
                "禁止自行安装或升级（第十三条、第十五条）",
                "evidence": f"/api/v1/ops/versions?province={province}",
            }
        )

    unread = [
        {
            "id": n.id,
            "kind_zh": n.to_dict()["kind_zh"],
            "title_zh": n.title,
            "detail_zh": n.body,
            "sent_at": n.created_at.isoformat(),
        }
        for n in list_notices(connection, province, unread_only=True, limit=50)
    ]
    return {"period": period.label, "score": assessment.score, "findings": findings, "notices": unread}


def _show(value: Any) -> str:
    if isinstance(value, float) and 0 <= value <= 1:
        return f"{value:.2%}"
    return "无" if value is None else str(value)
