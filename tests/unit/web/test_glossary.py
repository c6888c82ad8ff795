"""One glossary for every code a person sees: complete for the audit actions the code writes, and
the labels never leak Python or JSON literals."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import ggzy
from ggzy.web.glossary import AUDIT_ACTIONS, detail_text, label, labelled

PACKAGE = Path(ggzy.__file__).parent
FAMILIES = (
    "auth", "account", "accounts", "audit", "backup", "cli", "data", "status", "stats", "exchange", "node",
    "token", "feed", "feedback", "correction", "reconcile", "reupload", "intake", "disk", "portal", "ops",
    "settings",
)  # fmt: skip
ACTION = re.compile(rf"(?:{'|'.join(FAMILIES)})(?:\.[a-z0-9_-]+)+\Z")
NOT_ACTIONS = re.compile(
    r".*\.(html|xlsx|csv|pdf|json|key|toml|db|md|py|txt|svg|js|css)\Z|(node\.pull|backup\.verified_at|feedback\.cursor)\Z"
)


def written_actions() -> set[str]:
    """Every string constant in the package shaped like an audit action name."""
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and ACTION.match(text) and not NOT_ACTIONS.match(text):
                found.add(text)
    return found


def test_every_audit_action_the_code_writes_has_a_chinese_label() -> None:
    assert sorted(written_actions() - set(AUDIT_ACTIONS)) == []


def test_a_label_keeps_the_code_in_its_tooltip() -> None:
    assert label("outcome", "success") == "成功"
    assert str(labelled("role", "sysadmin")) == '<span class="code" title="sysadmin">系统管理员</span>'
    assert label("outcome", "unheard-of") == "unheard-of"  # a gap shows, and the browser test finds it
    assert str(labelled("outcome", None)) == "—"


def test_an_audit_detail_reads_as_chinese_not_as_a_python_literal() -> None:
    text = detail_text({"stage": "full", "verify": True, "filters": {"since": "2026-11-01"}, "rows": 3})
    assert text == "阶段 已登录；校验 是；条件 起始 2026-11-01；行数 3"
    for literal in ("{", "True", "False", "None", "'"):
        assert literal not in text
    assert detail_text({}) == "—" and detail_text(None) == "—"


def test_the_intake_detail_of_a_node_reads_as_chinese() -> None:
    """Found on the demo's node: every intake call's audit entry, keys and an empty count map."""
    text = detail_text({"records": 102, "stored": 101, "held": 1, "refused": {}, "secret_refused": 0})
    assert text == "记录 102；入队 101；暂存 1；拒收 无；涉密拒收 0"
    assert label("role", "intake") == "接收接口"
