"""The Chinese label of every code value a person sees on a page: one place to look them up.

Pages never show a stored code (``active``, ``success``, ``sysadmin``, ``latency``) as the text a person
reads. They show its label here, with the code kept in the tooltip (:func:`labelled`) so an operator
can still quote it to a developer. Codes with a label owned elsewhere (the hub's roster posts, the
node's outbox states) are added by the deployable that owns them with :func:`register`, so both
portals still look every label up here.

A code with no label comes back as itself; the browser test (``tests/browser``) fails on any English
code left visible on a page, so a new value without its label is found before a person sees it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from markupsafe import Markup

__all__ = ["AUDIT_ACTIONS", "GLOSSARY", "detail_text", "install", "label", "labelled", "register"]

# What a person did or the system recorded, by the audit log's action name (``ggzy audit search
# --action NAME``; a name ending in ``*`` or ``.`` matches every action it begins).
AUDIT_ACTIONS: dict[str, str] = {
    "auth.sign-in": "登录",
    "auth.sign-out": "退出登录",
    "auth.totp": "动态口令验证",
    "auth.totp-enrol": "绑定动态口令",
    "auth.password-change": "修改口令",
    "account.bootstrap": "初始化首批账号",
    "account.create": "创建账号",
    "account.disable": "停用账号",
    "account.enable": "启用账号",
    "account.role": "更改角色",
    "account.reset-password": "重置口令",
    "account.reset-totp": "重置动态口令",
    "account.unlock": "解锁账号",
    "account.locked": "账号被锁定",
    "accounts.list": "查看账号列表",
    "audit.search": "查询审计日志",
    "audit.export": "导出审计日志",
    "audit.verify": "校验审计链",
    "audit.archive": "归档审计日志",
    "backup.create": "创建备份",
    "backup.verify": "恢复校验备份",
    "backup.restore": "恢复备份",
    "backup.prune": "清理过期备份",
    "cli.run": "执行命令",
    "cli.refused": "命令被拒绝",
    "data.read.trade": "查询交易",
    "data.read.feedback": "查询拒收反馈",
    "data.read.rejects": "查看退回记录",
    "data.read.reconcile": "查看对账结果",
    "data.export.feedback": "导出拒收反馈",
    "data.export.rejects": "导出退回记录",
    "status.read": "查看运行状态",
    "stats.read": "查看统计",
    "reconcile.read": "查看对账结果",
    "feedback.read": "查看节点反馈",
    "settings.read": "查看系统配置",
    "exchange.refused": "拒绝节点请求",
    "exchange.out-of-scope": "拒绝越权上报",
    "node.add": "登记节点",
    "node.suspend": "暂停节点",
    "node.activate": "恢复节点",
    "node.rotate-key": "更换节点密钥",
    "node.networks": "变更节点网段",
    "token.add": "创建接收接口令牌",
    "token.revoke": "吊销接收接口令牌",
    "feed.notice": "向节点发送通知",
    "feed.reupload": "要求节点补传",
    "correction.import": "导入更正数据",
    "reconcile.run": "对账",
    "reconcile.mismatch": "报告对账差异",
    "reupload.execute": "执行补传",
    "intake.redact": "脱敏处理",
    "disk.purge": "磁盘清理",
    "portal.catch_up": "门户数据刷新",
    "ops.outage.notify": "提交计划停用通知",
    "ops.outage.withdraw": "撤回计划停用通知",
    "ops.fault.report": "提交故障报告",
    "ops.incident": "运行事件",
    "ops.incident.open": "自动立案",
    "ops.incident.recover": "事件自动恢复",
    "ops.incident.status": "事件流程推进",
    "ops.incident.notify": "事件通知",
    "ops.plan.file": "备案应急预案",
    "ops.plan.activate": "启动应急预案",
    "ops.plan.close": "关闭应急预案",
    "ops.drill.record": "登记应急演练",
    "ops.roster.set": "备案人员",
    "ops.roster.remove": "撤销人员备案",
    "ops.register.record": "信息上报登记",
    "ops.inspection.plan": "安排检查",
    "ops.inspection.perform": "登记检查结果",
    "ops.inspection.follow_up": "登记整改跟踪",
    "ops.rectification.issue": "下达整改通知",
    "ops.rectification.answer": "答复整改通知",
    "ops.rectification.close": "关闭整改通知",
    "account.approval-request": "申请第二人批准",
    "account.approve": "批准账号变更",
    "account.notice": "账号安全通知",
    "account.notices-read": "确认账号安全通知",
    "account.recover": "离线恢复账号",
    "account.term": "设置任期",
    "audit.anchor-conflict": "审计锚点冲突",
    "intake.refused": "拒绝接收请求",
    "ops.change.request": "提交变更申请",
    "ops.change.check": "登记上线前安全检查",
    "ops.change.approve": "批准变更申请",
    "ops.change.reject": "驳回变更申请",
    "ops.change.result": "登记变更结果",
    "ops.notice": "通知省级平台",
    "ops.notice.deliver": "投递通知",
    "ops.notice.post": "发布通知",
    "ops.notice.read": "阅读通知",
    "ops.roster.absence": "登记外出",
    "ops.roster.absence_cancel": "撤销外出登记",
    "ops.selfcheck.record": "登记安全自查结果",
    "ops.selfcheck.schedule": "安排安全自查",
    "ops.training.record": "登记培训",
    "ops.version.approve": "批准软件版本",
    "ops.version.upgrade": "登记节点升级",
    "ops.version.withdraw": "撤销版本批准",
}

GLOSSARY: dict[str, dict[str, str]] = {
    "role": {
        "sysadmin": "系统管理员",
        "operator": "系统操作员",
        "auditor": "安全审计员",
        "node": "交换前置节点",
        "intake": "接收接口",
        "cli": "命令行",
    },
    "account_status": {"active": "正常", "disabled": "已停用"},
    "node_status": {"active": "正常", "suspended": "已暂停"},
    "token_status": {"active": "有效", "revoked": "已吊销"},
    "outcome": {"success": "成功", "failure": "失败", "refused": "拒绝"},
    "audit_action": AUDIT_ACTIONS,
    "session_stage": {
        "totp": "待验证动态口令",
        "password": "待修改口令",
        "enrol": "待绑定动态口令",
        "full": "已登录",
    },
    "permission": {
        "accounts:manage": "账号管理",
        "config:manage": "配置管理",
        "nodes:manage": "节点管理",
        "backup:manage": "备份管理",
        "data:read": "查看业务数据",
        "data:correct": "更正与补传",
        "stats:read": "查看统计",
        "reports:export": "导出报表",
        "ops:read": "查看运行管理",
        "ops:write": "办理运行管理事项",
        "ops:assess": "检查与考核",
        "audit:read": "查看审计日志",
        "audit:export": "导出审计日志",
        "audit:archive": "归档审计日志",
        "self:service": "本人账号",
    },
    "channel": {"1": "第一通道（实时）", "2": "第二通道（历史/测试）"},
    "category": {"realtime": "实时数据", "history": "历史数据", "test": "测试数据"},
    "op": {"insert": "新增", "update": "更新", "delete": "删除"},
    "severity": {"error": "错误", "warning": "警告"},
    "alert_kind": {
        "latency": "实时时延",
        "hub": "国家平台连接",
        "disk": "磁盘空间",
        "reconcile": "对账",
        "reupload": "补传",
        "notice": "国家平台通知",
        "clock": "时钟偏差",
    },
    "alert_level": {"info": "提示", "warning": "警告", "critical": "严重"},
    "breaker": {"closed": "闭合（正常发送）", "open": "断开（暂停发送）", "half_open": "半开（试探发送）"},
    "incident_origin": {"auto": "自动发现", "report": "省级报告"},
    "order_status": {"open": "整改中", "closed": "已关闭"},
    "order_source": {"auto": "考核自动下达", "inspector": "检查人员下达"},
    "inspection_kind": {"scheduled": "定期检查", "spot": "抽检"},
    "inspection_result": {"pass": "符合", "fail": "不符合", "na": "不适用"},
    "inspection_status": {"planned": "已安排", "done": "已检查", "followed_up": "已跟踪整改"},
    "outage_status": {"active": "有效", "withdrawn": "已撤回"},
    "drill_origin": {"tool": "工具实测", "manual": "人工登记"},
    "rank": {"primary": "主", "backup": "备"},
    "backup_kind": {"scheduled": "定时备份", "manual": "手工备份", "safety": "恢复前安全快照"},
    "boolean": {"True": "是", "False": "否", "true": "是", "false": "否"},
}

# Keys of an audit entry's detail, as a person reads them.
DETAIL_KEYS: dict[str, str] = {
    "page": "页面",
    "format": "格式",
    "rows": "行数",
    "from": "起始",
    "to": "截止",
    "since": "起始",
    "until": "截止",
    "province": "省份",
    "table": "数据表",
    "rule": "规则",
    "key": "主键",
    "found": "找到",
    "verify": "校验",
    "status": "状态",
    "stage": "阶段",
    "role": "角色",
    "permission": "权限",
    "reason": "原因",
    "condition": "条款",
    "period": "期间",
    "late": "逾期",
    "account": "账号",
    "outcome": "结果",
    "days": "天数",
    "before": "翻页",
    "action": "操作",
    "kind": "类别",
    "networks": "网段",
    "networks_before": "原网段",
    "networks_after": "新网段",
    "node": "节点",
    "filters": "条件",
    "new_role": "角色",
    "from_role": "原角色",
    "to_role": "新角色",
    "disabled": "停用",
    "answer": "答复",
    "rectification": "整改通知",
    "evidence": "证明材料",
    "size": "字节",
    "sha256": "SHA-256",
    "failed": "不符合项",
    "classification": "分类",
    "version": "版本",
    "records": "记录",
    "stored": "入队",
    "held": "暂存",
    "refused": "拒收",
    "secret_refused": "涉密拒收",
    "redacted": "脱敏",
}
_DETAIL_VALUES = ("role", "stage", "status", "outcome", "permission", "kind")


def register(kind: str, labels: Mapping[Any, str]) -> None:
    """Add the labels a deployable owns (``register("post", POSTS)``): codes as text, labels as given."""
    GLOSSARY.setdefault(kind, {}).update({str(code): text for code, text in labels.items()})


def label(kind: str, code: Any) -> str:
    """The Chinese label of ``code``; "—" for nothing; the code itself when it has none (a gap)."""
    if code is None or code == "":
        return "—"
    return GLOSSARY.get(kind, {}).get(str(code), str(code))


def labelled(kind: str, code: Any) -> Markup:
    """``label`` for a page: the Chinese text, the code in the tooltip (``title``) for reference."""
    if code is None or code == "":
        return Markup("—")
    return Markup('<span class="code" title="{}">{}</span>').format(str(code), label(kind, code))


def _detail_value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "是" if value else "否"
    if value is None:
        return "—"
    if isinstance(value, Mapping):
        shown = (f"{DETAIL_KEYS.get(str(k), str(k))} {_detail_value(str(k), v)}" for k, v in value.items())
        return "，".join(shown) or "无"
    if isinstance(value, list | tuple):
        return "、".join(_detail_value(key, v) for v in value) or "—"
    if key in _DETAIL_VALUES or key.endswith("role"):
        for kind in (key, "role", "session_stage", "outcome", "permission"):
            if str(value) in GLOSSARY.get(kind, {}):
                return label(kind, value)
    return str(value)


def detail_text(detail: Mapping[str, Any] | None) -> str:
    """An audit entry's detail for a page: ``页面 总览；行数 12``, never a Python or JSON literal."""
    if not detail:
        return "—"
    return "；".join(
        f"{DETAIL_KEYS.get(str(k), str(k))} {_detail_value(str(k), v)}" for k, v in detail.items()
    )


def install(env: Any) -> None:
    """``{{ zh("outcome", row.outcome) }}`` (label + tooltip) and ``{{ code|label("role") }}`` in templates."""
    env.globals["zh"] = labelled
    env.filters["label"] = lambda code, kind: label(kind, code)
    env.filters["detail_text"] = detail_text
