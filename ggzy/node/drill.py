"""``ggzy drill hub-outage``: a real emergency drill of the link between a node and the hub (Art. 28).

The drill cuts the running node's link (``ggzy.node.link_control``) for ``seconds`` while intake
goes on, restores it, and measures what the plan cares about: how large the backlog grew, how long
it took to drain after the link came back, and whether anything was lost. "Nothing lost" is checked
twice: no record is left undecided in the outbox, and the reconciliation of every Shanghai day the
drill touched finds the hub holding exactly what the node's receipts say it accepted. The result is
reported to the hub (``POST /api/v1/ops/node/drills``) as a drill of the node's province.

Records held for correction, and records set aside because they wait on one (state ``blocked``),
are not backlog the link can drain: the drill is complete when nothing else waits, and reports
them beside its figures.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from ggzy.node.link_control import cut_link, restore_link
from ggzy.node.models import link_attempts
from ggzy.node.reconcile import SHANGHAI, reconcile_day
from ggzy.protocol import HubClient, HubRefused, HubUnavailable

if TYPE_CHECKING:
    from ggzy.node.context import NodeContext

__all__ = ["DrillResult", "run_hub_outage"]

SCENARIO = "国家平台链路中断（交换前置系统与国家平台之间断开）"


@dataclass
class DrillResult:
    started_at: dt.datetime
    restored_at: dt.datetime
    drained_at: dt.datetime | None
    waiting_before: int
    peak_backlog: int
    backlog_at_restore: int
    waiting_after: int
    failed_attempts: int
    missing_at_hub: int
    held: int = 0  # records held for correction at the end (not sendable: not backlog)
    blocked: int = 0  # records waiting on a held one at the end
    days_checked: list[dt.date] = field(default_factory=list)
    reported: dict[str, Any] | None = None
    report_error: str | None = None

    @property
    def outage_seconds(self) -> float:
        return (self.restored_at - self.started_at).total_seconds()

    @property
    def drain_seconds(self) -> float | None:
        return (self.drained_at - self.restored_at).total_seconds() if self.drained_at else None

    @property
    def recovery_seconds(self) -> float | None:
        """From the cut to an empty backlog: the service's recovery time in this drill."""
        return (self.drained_at - self.started_at).total_seconds() if self.drained_at else None

    @property
    def data_loss_records(self) -> int:
        return self.missing_at_hub + self.waiting_after

    @property
    def passed(self) -> bool:
        return self.drained_at is not None and self.data_loss_records == 0

    def findings_zh(self) -> str:
        parts = [
            f"链路中断 {self.outage_seconds:.1f} 秒，期间失败连接 {self.failed_attempts} 次",
            f"积压峰值 {self.peak_backlog} 条，恢复时积压 {self.backlog_at_restore} 条",
        ]
        if self.drain_seconds is not None:
            parts.append(f"恢复后 {self.drain_seconds:.1f} 秒积压清空")
        else:
            parts.append(f"限时内积压未清空，尚余 {self.waiting_after} 条")
        if self.held or self.blocked:
            parts.append(f"另有暂存待更正 {self.held} 条、等待其更正 {self.blocked} 条（不属链路积压）")
        parts.append(
            "对账一致，无数据丢失"
            if self.missing_at_hub == 0
            else f"对账发现国家平台缺少 {self.missing_at_hub} 条"
        )
        return "；".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "restored_at": self.restored_at.isoformat(),
            "drained_at": self.drained_at.isoformat() if self.drained_at else None,
            "outage_seconds": self.outage_seconds,
            "drain_seconds": self.drain_seconds,
            "recovery_seconds": self.recovery_seconds,
            "waiting_before": self.waiting_before,
            "peak_backlog": self.peak_backlog,
            "backlog_at_restore": self.backlog_at_restore,
            "waiting_after": self.waiting_after,
            "failed_attempts": self.failed_attempts,
            "missing_at_hub": self.missing_at_hub,
            "held": self.held,
            "blocked": self.blocked,
            "data_loss_records": self.data_loss_records,
            "days_checked": [d.isoformat() for d in self.days_checked],
            "passed": self.passed,
            "findings": self.findings_zh(),
        }


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _waiting(ctx: NodeContext) -> int:
    """Records the link can drain: queued or sent (not held, not set aside waiting on a held one)."""
    depths = ctx.outbox.depths()
    return depths.waiting(1) + depths.waiting(2)


def _state_count(ctx: NodeContext, state: str) -> int:
    depths = ctx.outbox.depths()
    return sum(n for (_, found), n in depths.by_channel_state.items() if found == state)


def _failed_attempts(ctx: NodeContext, start: dt.datetime, end: dt.datetime) -> int:
    a = link_attempts.c
    with ctx.engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).where(a.ok.is_(False), a.at >= start, a.at <= end)
            ).scalar_one()
        )


def run_hub_outage(
    ctx: NodeContext,
    client: HubClient,
    *,
    seconds: float,
    drain_timeout: float = 600.0,
    participants: list[str] | None = None,
    report: bool = True,
    poll_seconds: float = 0.25,
    progress: Callable[[str], object] | None = None,
) -> DrillResult:
    """Cut the link for ``seconds``, restore it, wait for the backlog to drain, check, report.

    ``client`` must not go through the link switch (it checks and reports after the cut); the
    command builds it with a plain transport.
    """
    say = progress or (lambda _message: None)
    waiting_before = _waiting(ctx)
    started = now()
    cut_link(ctx.engine, started + dt.timedelta(seconds=seconds))
    say(f"已断开前置机与国家平台的链路 {seconds:g} 秒（当前待上传 {waiting_before} 条）")
    peak = waiting_before
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(min(poll_seconds, max(0.0, deadline - time.monotonic())))
            peak = max(peak, _waiting(ctx))
    finally:
        restore_link(ctx.engine)
    restored = now()
    backlog = _waiting(ctx)
    peak = max(peak, backlog)
    say(f"链路已恢复，积压 {backlog} 条，等待清空……")
    drained: dt.datetime | None = None
    deadline = time.monotonic() + drain_timeout
    while time.monotonic() < deadline:
        if _waiting(ctx) == 0:
            drained = now()
            break
        time.sleep(poll_seconds)
    waiting_after = _waiting(ctx)
    first_day = started.astimezone(SHANGHAI).date()
    last_day = now().astimezone(SHANGHAI).date()
    days = [first_day + dt.timedelta(days=n) for n in range((last_day - first_day).days + 1)]
    missing = 0
    for day in days:
        outcome = reconcile_day(ctx, client, day, resend=False, account="drill")
        missing += sum(len(t.missing_at_hub) + len(t.hub_behind) for t in outcome.tables)
    result = DrillResult(
        started_at=started,
        restored_at=restored,
        drained_at=drained,
        waiting_before=waiting_before,
        peak_backlog=peak,
        backlog_at_restore=backlog,
        waiting_after=waiting_after,
        failed_attempts=_failed_attempts(ctx, started, restored),
        missing_at_hub=missing,
        held=_state_count(ctx, "held"),
        blocked=_state_count(ctx, "blocked"),
        days_checked=days,
    )
    if report:
        try:
            result.reported = client.report_drill(
                {
                    "held_on": started.astimezone(SHANGHAI).date().isoformat(),
                    "scenario": SCENARIO,
                    "participants": participants or [],
                    "recovery_seconds": result.recovery_seconds,
                    "data_loss_records": result.data_loss_records,
                    "findings": result.findings_zh(),
                    "detail": result.to_dict(),
                }
            )
        except (HubUnavailable, HubRefused) as exc:
            result.report_error = str(exc)
    return result
