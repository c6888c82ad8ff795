"""The disk guard (Art. 16): warn, then clean what the hub already holds, then refuse new intake.

Thresholds are ratios of the watched volume (``disk_path``) in use:

- below ``disk_warn``: nothing to do (and any disk alert is closed);
- from ``disk_warn``: a warning alert;
- from ``disk_clean``: records the hub accepted more than ``retention_days`` ago are removed from
  the local store (``Outbox.purge_accepted``: never a record the hub has not accepted), audited;
- from ``disk_refuse``: intake refuses new records with ``E-NODE-DISK-FULL`` until usage falls.

``DiskGuard.check()`` is what the service schedules (every few seconds); the guard itself, called,
answers intake's question "may I store more?" (``Intake(ctx, disk_guard=guard)``), and
``allows_intake()`` gives the answer with the Chinese message and usage for those who show it.
Keep one guard per process: it remembers the level of its previous check to raise each alert once.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ggzy.node.status import UsageFunction, disk_usage, used_ratio
from ggzy.node.uploader import raise_alert, resolve_alerts
from ggzy.security.audit import AuditEntry
from ggzy.store.database import writing

if TYPE_CHECKING:
    from ggzy.node.context import NodeContext

__all__ = ["DISK_FULL", "DiskCheck", "DiskGuard"]

DISK_FULL = "E-NODE-DISK-FULL"
LEVELS = ("ok", "warn", "clean", "refuse")
# Intake may ask many times a second; the volume's usage is read at most this often.
_FRESH_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class DiskCheck:
    ratio: float
    level: str  # ok | warn | clean | refuse
    purged: int = 0  # records removed by this check

    @property
    def percent(self) -> str:
        return f"{self.ratio:.1%}"


class DiskGuard:
    def __init__(
        self,
        ctx: NodeContext,
        usage: UsageFunction = shutil.disk_usage,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.usage = usage
        self.clock = clock
        self._cached: tuple[float, float] | None = None  # (read at, ratio)
        self._level: str | None = None  # level of the previous check

    # --- measuring ---

    def ratio(self) -> float:
        """The share of the volume in use, read now."""
        value = used_ratio(disk_usage(self.settings.disk_path, self.usage))
        self._cached = (self.clock(), value)
        return value

    def _recent_ratio(self) -> float:
        if self._cached is not None and self.clock() - self._cached[0] < _FRESH_SECONDS:
            return self._cached[1]
        return self.ratio()

    def level_of(self, ratio: float) -> str:
        if ratio >= self.settings.disk_refuse:
            return "refuse"
        if ratio >= self.settings.disk_clean:
            return "clean"
        if ratio >= self.settings.disk_warn:
            return "warn"
        return "ok"

    # --- what intake asks ---

    def allows_intake(self) -> tuple[bool, str]:
        """(True, "") while there is room; else (False, a Chinese message with the code and the usage)."""
        try:
            ratio = self._recent_ratio()
        except OSError as exc:
            # Not knowing is not a reason to stop taking data; the scheduled check reports it.
            return True, f"磁盘使用率无法读取：{exc}"
        if ratio < self.settings.disk_refuse:
            return True, ""
        return False, (
            f"{DISK_FULL} 本地数据卷 {self.settings.disk_path} 使用率 {ratio:.1%}，"
            f"已达拒收阈值 {self.settings.disk_refuse:.0%}，暂停接收新数据；"
            "请扩容或清理磁盘后重试 (disk full: intake refused)"
        )

    def __call__(self) -> bool:
        """What ``Intake(disk_guard=...)`` asks: True while new records may be stored."""
        return self.allows_intake()[0]

    # --- the scheduled check ---

    def check(self, now: dt.datetime | None = None) -> DiskCheck:
        """Measure, alert, and clean when needed; returns what it found and did."""
        moment = now or dt.datetime.now(dt.UTC)
        ratio = self.ratio()
        level = self.level_of(ratio)
        engine = self.ctx.engine
        changed = level != self._level
        self._level = level
        purged = self._clean(moment, ratio) if level in ("clean", "refuse") else 0
        if changed:
            # One open alert says where the disk stands now; a new level replaces the previous one.
            resolve_alerts(engine, "disk", at=moment)
            if level != "ok":
                alert_level = "warning" if level == "warn" else "critical"
                raise_alert(engine, "disk", alert_level, self._message(level, ratio, purged), at=moment)
        return DiskCheck(ratio, level, purged)

    def _clean(self, now: dt.datetime, ratio: float) -> int:
        cutoff = now - dt.timedelta(days=self.settings.retention_days)
        purged = self.ctx.outbox.purge_accepted(cutoff)
        if purged:
            with writing(self.ctx.engine) as connection:
                self.ctx.audit.append(
                    connection,
                    AuditEntry(
                        action="disk.purge",
                        object=f"outbox/accepted<{cutoff.isoformat()}",
                        outcome="success",
                        account=f"node:{self.settings.node_id}",
                        role="node",
                        detail={
                            "purged": purged,
                            "ratio": round(ratio, 4),
                            "retention_days": self.settings.retention_days,
                        },
                        at=now,
                    ),
                )
        return purged

    def _message(self, level: str, ratio: float, purged: int) -> str:
        s = self.settings
        if level == "warn":
            return f"磁盘使用率 {ratio:.1%}，已超过告警阈值 {s.disk_warn:.0%}（{s.disk_path}）"
        cleaned = f"已自动清理 {purged} 条国家平台已接收且超过 {s.retention_days} 天的记录"
        if level == "clean":
            return f"磁盘使用率 {ratio:.1%}，已超过清理阈值 {s.disk_clean:.0%}；{cleaned}"
        return (
            f"{DISK_FULL} 磁盘使用率 {ratio:.1%}，已达拒收阈值 {s.disk_refuse:.0%}，暂停接收新数据；{cleaned}"
        )
