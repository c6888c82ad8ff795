"""A node with a known history, its portal app and one signed-in person per role (module-scoped).

What the world holds is built through the node's own code paths — receipts applied to the outbox,
heartbeats sent with ``send_heartbeat`` to a stand-in hub, a reconciliation run by
``reconcile_day`` against a stand-in hub's answer — and ``Expected`` says what a page must show,
counted from how the world was built, not read back from the tables the pages read.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ggzy.node.breaker import CircuitBreaker
from ggzy.node.context import NodeContext, build_context
from ggzy.node.intake import Intake
from ggzy.node.intake.push_api import create_intake_app
from ggzy.node.models import api_tokens
from ggzy.node.outbox import NewRecord
from ggzy.node.reconcile import bucket_digest
from ggzy.node.status import DiskUsage
from ggzy.protocol import HubUnavailable
from ggzy.security.accounts import Caller, NewAccount
from ggzy.security.api_tokens import create_token
from ggzy.security.crypto import Digest
from ggzy.security.permissions import Principal, Role
from ggzy.settings import NodeSettings, SecuritySettings
from ggzy.store.database import writing

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "portal"))
from portal_world import postgres_database

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=SHANGHAI).astimezone(dt.UTC)  # the portal's clock
DAY = dt.date(2026, 11, 18)  # the day reconciled: no record but the three PROJECT ones was acquired on it
INSIDE = ("127.0.0.1", 50000)
RULE_A, RULE_B = "E-FIELD-REQUIRED", "E-CODE-LIST"
REJECTED_A = 55  # TENDER_PROJECT rows rejected for RULE_A: more than one page of 50
DISK = DiskUsage(1000, 850, 150)  # 85%: past the 80% warning, below the 90% clean threshold
BEATS = ((1, True), (10, True), (20, False), (70, True), (80, True), (90, True), (100, False))  # minutes ago
HUB_LACKS = "A3501002611010003"  # the one PROJECT key the stand-in hub does not hold


@dataclass
class Expected:
    rejected_a: int = REJECTED_A
    rejected_b_rows: int = 0  # rows with a RULE_B finding
    held: int = 0
    findings: int = 0  # one xlsx row per finding
    repaired: int = 0
    rejected_keys: int = 0
    late: int = 0
    beats: dict[str, tuple[int, int]] = field(default_factory=dict)  # hour label → (ok, failed)


@dataclass
class NodeWorld:
    app: FastAPI
    ctx: NodeContext
    now: dt.datetime
    day: dt.date  # the day reconciled
    expected: Expected
    tokens: dict[str, str] = field(default_factory=dict)  # role → session token
    intake_token: str = ""

    def client(self, who: str | None = None) -> TestClient:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return TestClient(self.app, client=INSIDE, headers=headers, raise_server_exceptions=False)

    def get(self, path: str, who: str = "operator", **params: Any) -> Any:
        return self.client(who).get(path, params=params or None)


def _finding(code: str, field_name: str) -> dict[str, Any]:
    return {
        "code": code,
        "severity": "error",
        "field": field_name,
        "value": "",
        "message_zh": f"{field_name} 不合格（{code}）",
        "message_en": f"{field_name} fails {code}",
    }


def _tender(ctx: NodeContext, n: int, channel: int = 2, **options: Any) -> NewRecord:
    spec = ctx.spec.tables["TENDER_PROJECT"]
    data = {"TENDER_PROJECT_CODE": f"A3501002611010001{n:03d}", "PROJECT_CODE": "A3501002611010001"}
    record = {"table": spec.name, "op": "insert", "category": "realtime" if channel == 1 else "history"}
    return NewRecord(spec, spec.key_of(data), record | {"data": data}, channel, **options)


def _project(ctx: NodeContext, code: str, acquired: dt.datetime) -> NewRecord:
    spec = ctx.spec.tables["PROJECT"]
    data = {"PROJECT_CODE": code}
    record = {"table": "PROJECT", "op": "insert", "category": "history", "data": data}
    record["acquired_at"] = acquired.isoformat()
    return NewRecord(spec, code, record, 2, acquired_at=acquired)


def _decide(
    ctx: NodeContext, channel: int, verdicts: Callable[[int], dict[str, Any]], at: dt.datetime
) -> None:
    batch = ctx.outbox.form_batch(channel, 500, now=at)
    assert batch is not None
    ctx.outbox.apply_receipt(batch, {"results": [verdicts(i) for i in range(len(batch.ids))]}, now=at)


class StandInHub:
    """Answers a heartbeat (or fails it) and one reconciliation: it holds two of the three PROJECT keys."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.fail = False

    def heartbeat(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self.fail:
            raise HubUnavailable("stand-in hub down")
        return {"server_time": dt.datetime.now(dt.UTC).isoformat()}

    def reconcile(self, day: dt.date, table: str | None = None, *, keys: bool = False) -> dict[str, Any]:
        pairs = [(key, 1) for key in self.keys]
        if keys:
            return {"keys": [f"{key}:{version}" for key, version in pairs]}
        summary = {"table": "PROJECT", "count": len(pairs), "digest": bucket_digest(pairs)}
        return {"algorithm": Digest.SHA256.value, "tables": [summary]}

    def report_mismatch(self, report: dict[str, Any]) -> dict[str, Any]:
        return {"report_id": 7}


def _seed(ctx: NodeContext, now: dt.datetime, day: dt.date) -> Expected:
    from ggzy.node.heartbeat import send_heartbeat
    from ggzy.node.reconcile import reconcile_day

    expected = Expected()
    yesterday = now - dt.timedelta(days=1)
    # 55 rows rejected for RULE_A yesterday; then 3 rows rejected today, each for RULE_B (one also RULE_A)
    ctx.outbox.enqueue([_tender(ctx, n) for n in range(REJECTED_A)], now=yesterday)
    _decide(
        ctx, 2, lambda _i: {"outcome": "rejected", "findings": [_finding(RULE_A, "TENDER_MODE")]}, yesterday
    )
    ctx.outbox.enqueue([_tender(ctx, n) for n in range(100, 103)], now=now - dt.timedelta(hours=1))

    def today(i: int) -> dict[str, Any]:
        both = [_finding(RULE_B, "TENDER_ORGANIZE_FORM"), _finding(RULE_A, "TENDER_MODE")]
        return {"outcome": "rejected", "findings": both if i == 0 else both[:1]}

    _decide(ctx, 2, today, now - dt.timedelta(minutes=50))
    expected.rejected_b_rows = 3
    # one held by pre-validation (never sent)
    ctx.outbox.enqueue(
        [_tender(ctx, 200, held=True, findings=[_finding(RULE_B, "TENDER_MODE")])],
        now=now - dt.timedelta(hours=2),
    )
    expected.held = 1
    expected.findings = REJECTED_A + 4 + 1
    # the first rejected key corrected and accepted: one repaired of 58 rejected keys
    ctx.outbox.enqueue([_tender(ctx, 0, source="correction")], now=now - dt.timedelta(minutes=40))
    _decide(
        ctx,
        2,
        lambda _i: {"outcome": "accepted", "version": 1, "findings": []},
        now - dt.timedelta(minutes=30),
    )
    expected.rejected_keys, expected.repaired = REJECTED_A + 3, 1
    # realtime: four accepted 10..40 s after publication; one published 9 minutes ago still queued
    decided = now - dt.timedelta(minutes=2)
    published = [decided - dt.timedelta(seconds=10 * (i + 1)) for i in range(4)]
    ctx.outbox.enqueue([_tender(ctx, 300 + i, 1, published_at=p) for i, p in enumerate(published)], now=now)
    _decide(ctx, 1, lambda _i: {"outcome": "accepted", "version": 1, "findings": []}, decided)
    ctx.outbox.enqueue([_tender(ctx, 400, 1, published_at=now - dt.timedelta(minutes=9))], now=now)
    expected.late = 1
    # three PROJECT records acquired on ``day`` and accepted; the stand-in hub lacks the third
    acquired = dt.datetime.combine(day, dt.time(10), SHANGHAI)
    codes = [f"A350100261101000{i}" for i in (1, 2, 3)]
    ctx.outbox.enqueue([_project(ctx, code, acquired) for code in codes], now=acquired)
    _decide(ctx, 2, lambda _i: {"outcome": "accepted", "version": 1, "findings": []}, acquired)
    hub = StandInHub(codes[:2])
    reconcile_day(ctx, hub, day, account="t-op")  # type: ignore[arg-type]
    # heartbeats: some sent, some failed, over the last two hours
    for minutes, ok in BEATS:
        hub.fail = not ok
        at = now - dt.timedelta(minutes=minutes)
        send_heartbeat(ctx, hub, now=at, usage=lambda _p: DISK)  # type: ignore[arg-type]
        label = at.astimezone(SHANGHAI).strftime("%m-%d %H:00")
        sent, failed = expected.beats.get(label, (0, 0))
        expected.beats[label] = (sent + ok, failed + (not ok))
    return expected


def _people(world: NodeWorld, first_sign_in: Callable[..., str]) -> None:
    service = world.app.state.people.service
    caller = Caller(source="127.0.0.1")
    passwords = service.bootstrap(
        NewAccount("t-admin", "节点管理员", Role.SYSADMIN, id_number=id_number(811)),
        NewAccount("t-audit", "节点审计员", Role.AUDITOR, id_number=id_number(812)),
        caller,
    )
    admin = Principal("t-admin", Role.SYSADMIN)
    operator = service.create(
        admin, NewAccount("t-op", "节点操作员", Role.OPERATOR, staff_number="N3"), caller
    )
    world.tokens["sysadmin"] = first_sign_in(service, "t-admin", passwords["t-admin"])
    world.tokens["auditor"] = first_sign_in(service, "t-audit", passwords["t-audit"])
    world.tokens["operator"] = first_sign_in(service, "t-op", operator)


def build_node_world(db_url: str, folder: Path, first_sign_in: Callable[..., str]) -> Iterator[NodeWorld]:
    settings = NodeSettings(
        node_id="fj-portal", db_url=db_url, key_file=folder / "node.key", disk_path=folder, drop_dir=None
    )
    ctx = build_context(settings, key=b"\x01" * 32)
    try:
        now, day = NOW, DAY
        expected = _seed(ctx, now, day)
        app = create_intake_app(ctx, Intake(ctx, pseudonym_key=b"\x11" * 32), security=SecuritySettings())
        app.state.portal_clock = lambda: now
        app.state.disk_usage = lambda _path: DISK
        open_breaker = CircuitBreaker(1, 3600)
        open_breaker.record_failure()
        app.state.node_service = SimpleNamespace(
            uploaders={
                1: SimpleNamespace(breaker=CircuitBreaker(5, 30)),
                2: SimpleNamespace(breaker=open_breaker),
            }
        )
        world = NodeWorld(app, ctx, now, day, expected)
        with writing(ctx.engine) as connection:
            world.intake_token = create_token(connection, api_tokens, "fj-trading", "t-admin", now)
        _people(world, first_sign_in)
        yield world
    finally:
        ctx.engine.dispose()


@pytest.fixture(
    name="node_world",
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def node_world_fixture(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    first_sign_in: Callable[..., str],
) -> Iterator[NodeWorld]:
    folder = tmp_path_factory.mktemp("node-portal")
    if request.param == "sqlite":
        yield from build_node_world(f"sqlite:///{folder / 'node.db'}", folder, first_sign_in)
        return
    for url in postgres_database():
        yield from build_node_world(url, folder, first_sign_in)


def id_number(n: int) -> str:
    """A well-formed resident ID number for test person ``n`` (privileged accounts need one)."""
    import datetime as _dt
    import random as _random

    from ggzy.identifiers.id_number import make_id_number

    return make_id_number(_random.Random(n), "110105", _dt.date(1980, 1, 1) + _dt.timedelta(days=n))
