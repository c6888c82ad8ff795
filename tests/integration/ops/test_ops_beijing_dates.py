"""Every date of the operations layer is a Beijing date, also in the eight hours after Beijing's midnight
when the UTC date is still the day before."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from opsdb import OpsDb, shanghai
from typer.testing import CliRunner

from ggzy.cli import app
from ggzy.hub.ops import session as ops_session
from ggzy.hub.ops.doctor import hub_findings
from ggzy.hub.ops.exports import orders_report
from ggzy.hub.ops.rectification import issue_order, list_orders
from ggzy.hub.ops.session import OpsError

AFTER_MIDNIGHT = shanghai(2026, 12, 8, 0, 30)  # 2026-12-07 16:30 UTC


def test_a_same_day_deadline_is_the_end_of_the_beijing_day(ops_db: OpsDb) -> None:
    ops_db.add_node("fj-01", "35", shanghai(2026, 1, 1))
    ops_db.clock.now = AFTER_MIDNIGHT
    order = ops_db.run(lambda s: issue_order(s, "35", 5, "资金不足致安全事件", deadline_days=0))
    with ops_db.engine.connect() as connection:
        findings = hub_findings(connection, "35", ops_db.settings, AFTER_MIDNIGHT)["findings"]
        fix = next(f["fix_zh"] for f in findings if f["code"] == "OPS-RECTIFICATION-OPEN")
        assert "2026-12-08" in fix and "2026-12-07" not in fix
    assert (order["issued_on"], order["deadline_date"]) == ("2026-12-08", "2026-12-08")
    assert dt.datetime.fromisoformat(order["deadline"]) == shanghai(2026, 12, 9)
    with ops_db.engine.connect() as connection:
        row = orders_report(list_orders(connection, AFTER_MIDNIGHT)).sections[0].rows[0]
        assert row[5:7] == ["2026-12-08", "2026-12-08"]  # issued, deadline
        late = shanghai(2026, 12, 8, 23, 59, 59)
        assert not list_orders(connection, late)[0]["overdue"]
        assert list_orders(connection, shanghai(2026, 12, 9))[0]["overdue"]
    with pytest.raises(OpsError) as refused:
        ops_db.run(lambda s: issue_order(s, "35", 5, "x", deadline_days=-1))
    assert refused.value.code == "E-OPS-DEADLINE"


def test_the_command_line_shows_the_beijing_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_session: Callable[..., str]
) -> None:
    monkeypatch.setenv("GGZY_HUB__KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setattr(ops_session, "system_clock", lambda: AFTER_MIDNIGHT)
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    cli_session("operator", db=url)
    runner = CliRunner()
    added = runner.invoke(
        app,
        [
            "ops",
            "orders",
            "add",
            "-p",
            "35",
            "--condition",
            "5",
            "--basis",
            "安全事件",
            "--days",
            "0",
            "--db",
            url,
        ],
    )
    assert added.exit_code == 0, added.output
    assert "期限 2026-12-08" in added.output
    listed = runner.invoke(app, ["ops", "orders", "list", "--db", url])
    assert "2026-12-08" in listed.output and "2026-12-07" not in listed.output
    # the next Beijing day the order is overdue: one round of ``ggzy ops watch`` tells the province
    monkeypatch.setattr(ops_session, "system_clock", lambda: shanghai(2026, 12, 9, 0, 0, 1))
    watched = runner.invoke(app, ["ops", "watch", "--once", "--db", url])
    assert watched.exit_code == 0, watched.output
    assert "通报" in watched.output and "逾期未改正" in watched.output
    told = runner.invoke(app, ["ops", "notify", "list", "-f", "json", "--db", url])
    assert [n["kind_zh"] for n in json.loads(told.output)] == ["通报", "整改通知"]
