"""The roster (Art. 29–30): one person is never both primary and backup of a post, contacts are real
numbers and addresses, absences (外出) open gaps at the time they cover, training is recorded."""

from __future__ import annotations

import datetime as dt

import pytest
from opsdb import OpsDb, shanghai

from ggzy.hub.ops.roster import (
    cancel_absence,
    list_trainings,
    record_absence,
    record_training,
    roster_gaps,
    set_entry,
)
from ggzy.hub.ops.session import Actor, OpsError

FUJIAN = Actor("fj-op", "operator", "35")


def _file(db: OpsDb, post: str, rank: str, name: str, mobile: str) -> None:
    db.run(
        lambda s: set_entry(
            s, "35", post, rank, name=name, phone="0591-87654321", mobile=mobile, email=f"{mobile}@fj.example"
        ),
        FUJIAN,
    )


def test_one_person_is_never_primary_and_backup_of_one_post(ops_db: OpsDb) -> None:
    _file(ops_db, "security", "primary", "张三", "13812345678")
    for name, mobile in (("张三", "13900000001"), ("张三丰", "13812345678")):  # same name; same mobile
        with pytest.raises(OpsError) as refused:
            _file(ops_db, "security", "backup", name, mobile)
        assert refused.value.code == "E-OPS-ROSTER-SAME-PERSON" and "主备制" in refused.value.message_zh
    _file(ops_db, "security", "backup", "李四", "13900000002")
    with pytest.raises(OpsError) as swapped:  # the backup cannot be made primary while still backup
        _file(ops_db, "security", "primary", "李四", "13900000002")
    assert swapped.value.code == "E-OPS-ROSTER-SAME-PERSON"
    _file(ops_db, "network", "backup", "张三", "13812345678")  # another post is fine


def test_contacts_are_checked(ops_db: OpsDb) -> None:
    with pytest.raises(OpsError) as refused:
        ops_db.run(
            lambda s: set_entry(s, "35", "duty", "primary", name="张三", phone="1", mobile="138", email="x"),
            FUJIAN,
        )
    assert [p["code"] for p in refused.value.problems] == [
        "E-OPS-FIELD-PHONE",
        "E-OPS-FIELD-MOBILE",
        "E-OPS-FIELD-EMAIL",
    ]


def test_an_absent_primary_without_a_present_backup_is_a_gap_at_that_time(ops_db: OpsDb) -> None:
    _file(ops_db, "security", "primary", "张三", "13812345678")
    _file(ops_db, "security", "backup", "李四", "13900000002")
    _file(ops_db, "duty", "primary", "王五", "13700000003")
    ops_db.run(
        lambda s: record_absence(s, "35", "张三", dt.date(2026, 12, 8), dt.date(2026, 12, 10), "出差"), FUJIAN
    )

    def absent(at: dt.datetime) -> list[str]:
        with ops_db.engine.connect() as connection:
            return [g.message_zh for g in roster_gaps(connection, "35", at=at) if g.code == "E-ROSTER-ABSENT"]

    assert absent(shanghai(2026, 12, 9, 12)) == []  # the backup is there
    ops_db.run(lambda s: record_absence(s, "35", "李四", dt.date(2026, 12, 9), dt.date(2026, 12, 9)), FUJIAN)
    assert absent(shanghai(2026, 12, 8, 12)) == []
    (gap,) = absent(shanghai(2026, 12, 9, 0, 30))  # Beijing's 9th, UTC's 8th
    assert "安全主岗“张三”外出（2026-12-08 至 2026-12-10），备岗“李四”也外出" in gap
    assert absent(shanghai(2026, 12, 10, 23, 59)) == []  # 李四 is back
    duty = ops_db.run(
        lambda s: record_absence(s, "35", "王五", dt.date(2026, 12, 11), dt.date(2026, 12, 11)), FUJIAN
    )
    assert absent(shanghai(2026, 12, 11, 8)) == [
        "值班人员主岗“王五”外出（2026-12-11 至 2026-12-11），未备案备岗，岗位无人在岗"
    ]
    ops_db.run(lambda s: cancel_absence(s, duty["id"]), FUJIAN)
    assert absent(shanghai(2026, 12, 11, 8)) == []
    with pytest.raises(OpsError) as unknown:
        ops_db.run(
            lambda s: record_absence(s, "35", "赵六", dt.date(2026, 12, 8), dt.date(2026, 12, 8)), FUJIAN
        )
    assert unknown.value.code == "E-OPS-ROSTER-UNKNOWN-PERSON"
    with pytest.raises(OpsError) as backwards:
        ops_db.run(
            lambda s: record_absence(s, "35", "张三", dt.date(2026, 12, 8), dt.date(2026, 12, 1)), FUJIAN
        )
    assert backwards.value.code == "E-OPS-FIELD-ORDER"


def test_training_is_recorded_with_date_subject_and_participants(ops_db: OpsDb) -> None:
    ops_db.clock.now = shanghai(2026, 12, 8, 0, 30)
    ops_db.run(
        lambda s: record_training(s, "35", "2026-12-08", "等级保护与口令管理", "security", "张三,李四", 2),
        FUJIAN,
    )
    with ops_db.engine.connect() as connection:
        (training,) = list_trainings(connection, "35")
    assert training["participants"] == ["张三", "李四"] and training["topic_zh"] == "运行安全"
    for args, code in (
        (("2026-12-09", "x", "security", ["张三"]), "E-OPS-FIELD-FUTURE"),
        (("2026-12-01", "x", "cooking", ["张三"]), "E-OPS-FIELD-CHOICE"),
        (("2026-12-01", "x", "security", []), "E-OPS-FIELD-REQUIRED"),
    ):
        with pytest.raises(OpsError) as refused:
            ops_db.run(lambda s, a=args: record_training(s, "35", *a), FUJIAN)
        assert refused.value.code == code
