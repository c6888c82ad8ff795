"""Art. 13: the hub keeps each node's software, OS, Python and database versions as they change,
flags versions outside the approved list and changes no upgrade record explains."""

from __future__ import annotations

import pytest
from opsdb import OpsDb, shanghai

from ggzy.hub.ops.doctor import hub_findings
from ggzy.hub.ops.session import Actor, OpsError
from ggzy.hub.ops.versions import (
    approve_version,
    current_versions,
    record_upgrade,
    version_flags,
    version_history,
    withdraw_approval,
)

V1 = {
    "software": "ggzy-exchange 0.1.0",
    "os": "Debian GNU/Linux 12",
    "python": "CPython 3.11.7",
    "database": "SQLite 3.40.1",
}


def _beat(db: OpsDb, hour: int, **versions: str) -> None:
    db.beat("fj-01", "35", shanghai(2026, 12, 8, hour), extra={"versions": {**V1, **versions}})


def _codes(db: OpsDb) -> list[tuple[str, str]]:
    with db.engine.connect() as connection:
        return sorted((f["code"], f["component"]) for f in version_flags(connection, "35"))


def test_versions_are_kept_per_change_and_checked_against_the_approved_list(ops_db: OpsDb) -> None:
    ops_db.add_node("fj-01", "35", shanghai(2026, 1, 1))
    ops_db.clock.now = shanghai(2026, 12, 8, 12)
    for hour in (8, 9, 10):
        _beat(ops_db, hour)
    with ops_db.engine.connect() as connection:
        assert len(version_history(connection, node_id="fj-01")) == 1  # unchanged beats add nothing
    assert _codes(ops_db) == [("OPS-VERSION-UNAPPROVED", c) for c in ("database", "os", "python", "software")]
    for component, pattern in (
        ("software", "ggzy-exchange 0.1.*"),
        ("os", "Debian GNU/Linux 12*"),
        ("python", "CPython 3.11.*"),
        ("database", "SQLite 3.40.1"),
    ):
        ops_db.run(lambda s, c=component, p=pattern: approve_version(s, c, p, "经测试"))
    assert _codes(ops_db) == []

    _beat(ops_db, 11, database="SQLite 3.45.0")  # changed on the node, nobody recorded an upgrade
    assert _codes(ops_db) == [("OPS-VERSION-UNAPPROVED", "database"), ("OPS-VERSION-UNRECORDED", "database")]
    with ops_db.engine.connect() as connection:
        findings = hub_findings(connection, "35", ops_db.settings, ops_db.clock.now)["findings"]
        unrecorded = next(f for f in findings if f["code"] == "OPS-VERSION-UNRECORDED")
        assert "2026-12-08 11:00" in unrecorded["title_zh"] and "国家平台" in unrecorded["fix_zh"]
        assert current_versions(connection, "35")[0]["database"] == "SQLite 3.45.0"
    approval = ops_db.run(lambda s: approve_version(s, "database", "SQLite 3.45.*"))
    upgrade = ops_db.run(
        lambda s: record_upgrade(s, "fj-01", "database", "SQLite 3.45.0", from_version="SQLite 3.40.1")
    )
    assert upgrade["province"] == "35" and upgrade["performed_by"] == "national-op"
    assert _codes(ops_db) == []
    ops_db.run(lambda s: withdraw_approval(s, approval["id"]))
    assert _codes(ops_db) == [("OPS-VERSION-UNAPPROVED", "database")]


def test_only_the_national_side_approves_and_records_upgrades(ops_db: OpsDb) -> None:
    ops_db.add_node("fj-01", "35", shanghai(2026, 1, 1))
    fujian = Actor("fj-op", "operator", "35")
    with pytest.raises(OpsError) as approving:
        ops_db.run(lambda s: approve_version(s, "os", "*"), fujian)
    assert approving.value.code == "E-OPS-NATIONAL"
    with pytest.raises(OpsError) as upgrading:
        ops_db.run(lambda s: record_upgrade(s, "fj-01", "os", "Debian 13"), fujian)
    assert upgrading.value.code == "E-OPS-NATIONAL"
    with pytest.raises(OpsError) as unknown:
        ops_db.run(lambda s: record_upgrade(s, "fj-01", "kernel", "6.1"))
    assert unknown.value.code == "E-OPS-FIELD-CHOICE"
    with pytest.raises(OpsError) as nowhere:
        ops_db.run(lambda s: record_upgrade(s, "zz-99", "os", "Debian 13"))
    assert nowhere.value.code == "E-OPS-NOT-FOUND"
