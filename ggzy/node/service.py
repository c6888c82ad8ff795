"""The long-running node service: uploader threads, the feedback poller and pluggable parts.

:class:`NodeService` owns the threads of one node process:

- ``upload-1`` and ``upload-2``: a :class:`ChannelUploader` per channel, each with its own HTTP
  connection and circuit breaker, so a channel-2 backlog or failure never holds channel 1;
- ``feedback``: the :class:`FeedbackPoller` every ``feedback_interval_seconds``;
- ``latency``: the realtime latency alert (:class:`LatencyWatch`) every few seconds;
- whatever other parts plug in, without editing this file:

  ``add_task(name, interval_seconds, fn)``      call ``fn()`` periodically in its own thread
  ``add_daily_task(name, "HH:MM", fn)``         call ``fn()`` once a day (Asia/Shanghai time)
  ``add_server(name, server)``                  a uvicorn ``Server`` (``run()``, ``should_exit``)
  ``add_part(name, start, stop)``               anything else with its own start and stop
  ``hub_client()``                              a new signed client, closed when the service stops
  ``notify(channel)``                           intake calls this after enqueueing: upload now
  ``components``                                a dict where parts publish things for one another

``stop()`` (or SIGINT/SIGTERM in :meth:`run_forever`) stops servers first (no new intake), then the
periodic tasks, then the uploaders, each finishing its request in flight and its commit; anything
still unsent is simply resent by the next start (the outbox is durable, batch ids idempotent).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import httpx

from ggzy.node.breaker import CircuitBreaker
from ggzy.node.context import NodeContext
from ggzy.node.feedback import FeedbackPoller
from ggzy.node.uploader import ChannelUploader, LatencyWatch, Priority
from ggzy.protocol import HubClient, HubRefused, HubUnavailable

__all__ = ["NodeService", "Server", "TaskState"]

log = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
LATENCY_CHECK_SECONDS = 5.0
STOP_TIMEOUT_SECONDS = 40.0  # longer than one request's read timeout, so the request in flight finishes


class Server(Protocol):
    """What ``add_server`` needs: uvicorn's ``Server`` has exactly this."""

    should_exit: bool

    def run(self) -> None: ...


@dataclass
class TaskState:
    """A periodic task and what it has done, for the status view and the tests."""

    name: str
    interval: float
    fn: Callable[[], object]
    run_at_start: bool = True
    runs: int = 0
    failures: int = 0
    last_error: str | None = None
    last_run: dt.datetime | None = None
    thread: threading.Thread | None = None


@dataclass
class _Part:
    name: str
    start: Callable[[], object]
    stop: Callable[[], object] | None
    thread: threading.Thread | None = None


class NodeService:
    def __init__(
        self,
        ctx: NodeContext,
        *,
        client_factory: Callable[[], HubClient] | None = None,
        feedback: bool = True,
        latency_watch: bool = True,
    ) -> None:
        self.ctx = ctx
        self._client_factory = client_factory or self._default_client
        self._clients: list[HubClient] = []
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self.started = False
        self.tasks: dict[str, TaskState] = {}
        self._parts: list[_Part] = []
        self._servers: list[tuple[str, Server]] = []
        # what parts publish for one another, e.g. "disk_guard" for intake to ask before acknowledging
        self.components: dict[str, Any] = {}
        settings = ctx.settings
        priority = Priority()  # shared: channel 2 lets channel 1's requests pass first
        self.uploaders: dict[int, ChannelUploader] = {
            channel: ChannelUploader(
                ctx,
                channel,
                self.hub_client(),
                CircuitBreaker(settings.breaker_failures, settings.breaker_open_seconds),
                priority=priority,
            )
            for channel in (1, 2)
        }
        self._upload_threads: list[threading.Thread] = []
        self.feedback: FeedbackPoller | None = None
        if feedback:
            self.feedback = FeedbackPoller(ctx, self.hub_client())
            self.add_task("feedback", settings.feedback_interval_seconds, self._poll_feedback)
        if latency_watch:
            watch = LatencyWatch(ctx.engine, settings.latency_alert_seconds)
            self.add_task(
                "latency", min(LATENCY_CHECK_SECONDS, settings.latency_alert_seconds / 4), watch.check
            )

    # --- clients ---

    def _default_client(self) -> HubClient:
        timeout = self.ctx.settings.hub_timeout_seconds
        return self.ctx.hub_client(timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)))

    def hub_client(self) -> HubClient:
        """A new signed client (its own connection pool), closed when the service stops."""
        client = self._client_factory()
        with self._lock:
            self._clients.append(client)
        return client

    # --- hooks for the other parts ---

    def notify(self, channel: int = 1) -> None:
        """Records were queued on ``channel``: its uploader looks now instead of at its next poll."""
        uploader = self.uploaders.get(channel)
        if uploader is not None:
            uploader.notify()

    def add_task(
        self, name: str, interval_seconds: float, fn: Callable[[], object], *, run_at_start: bool = True
    ) -> TaskState:
        """Call ``fn()`` every ``interval_seconds`` (from the end of one run to the start of the next)."""
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        task = TaskState(name, interval_seconds, fn, run_at_start)
        with self._lock:
            if name in self.tasks:
                raise ValueError(f"task {name!r} already added")
            self.tasks[name] = task
            if self.started:
                self._start_task(task)
        return task

    def add_daily_task(self, name: str, at: str, fn: Callable[[], object]) -> TaskState:
        """Call ``fn()`` once a day at ``at`` ("HH:MM", Asia/Shanghai), e.g. the reconciliation."""
        hour, minute = (int(part) for part in at.split(":"))
        when = dt.time(hour, minute)
        task = TaskState(name, 24 * 3600.0, fn, run_at_start=False)
        with self._lock:
            if name in self.tasks:
                raise ValueError(f"task {name!r} already added")
            self.tasks[name] = task
            thread = threading.Thread(
                target=self._daily_loop, args=(task, when), name=f"task-{name}", daemon=True
            )
            task.thread = thread
            if self.started:
                thread.start()
        return task

    def add_server(self, name: str, server: Server) -> None:
        """Run ``server.run()`` in a thread; stopping sets ``server.should_exit`` (uvicorn's way)."""

        def stop() -> None:
            server.should_exit = True

        self._servers.append((name, server))
        self.add_part(name, server.run, stop, thread=True)

    def add_part(
        self,
        name: str,
        start: Callable[[], object],
        stop: Callable[[], object] | None = None,
        *,
        thread: bool = False,
    ) -> None:
        """A part with its own life: ``start()`` when the service starts (in a thread of its own
        when ``thread`` — for a blocking loop), ``stop()`` first thing when the service stops."""
        part = _Part(name, start, stop)
        if thread:
            part.thread = threading.Thread(
                target=self._guarded(name, start), name=f"part-{name}", daemon=True
            )
        with self._lock:
            self._parts.append(part)
            if self.started:
                self._start_part(part)

    # --- life cycle ---

    def start(self) -> None:
        with self._lock:
            if self.started:
                return
            self.started = True
            for channel, uploader in self.uploaders.items():
                upload_thread = threading.Thread(target=uploader.run, name=f"upload-{channel}", daemon=True)
                self._upload_threads.append(upload_thread)
                upload_thread.start()
            for task in self.tasks.values():
                if task.thread is not None and not task.thread.is_alive():
                    task.thread.start()  # a daily task, created with its thread
                elif task.thread is None:
                    self._start_task(task)
            for part in self._parts:
                self._start_part(part)
        log.info("node service started")

    def _start_part(self, part: _Part) -> None:
        if part.thread is not None:
            part.thread.start()
        else:
            part.start()

    def _start_task(self, task: TaskState) -> None:
        task.thread = threading.Thread(
            target=self._task_loop, args=(task,), name=f"task-{task.name}", daemon=True
        )
        task.thread.start()

    def request_stop(self) -> None:
        """Ask the service to stop (safe from a signal handler); :meth:`run_forever` then stops it."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
        """Stop everything in order; True when every thread ended within ``timeout``."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for part in reversed(self._parts):  # servers and intake first: nothing new is acknowledged
            if part.stop is not None:
                try:
                    part.stop()
                except Exception:
                    log.exception("stopping %s failed", part.name)
        for uploader in self.uploaders.values():
            uploader.stop()
        threads = (
            [p.thread for p in self._parts] + [t.thread for t in self.tasks.values()] + self._upload_threads
        )
        clean = True
        for thread in threads:
            if thread is not None and thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    log.error("thread %s did not stop in time", thread.name)
                    clean = False
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()
        self._stopped.set()
        log.info("node service stopped (%s)", "clean" if clean else "threads left running")
        return clean

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a stop is requested; True when it was."""
        return self._stop.wait(timeout)

    def run_forever(self, *, install_signals: bool = True, ready: Callable[[], object] | None = None) -> bool:
        """Start, serve until SIGINT/SIGTERM (or ``request_stop``), stop gracefully.

        A second signal while stopping exits at once: the outbox is durable and batch ids are
        idempotent, so even that loses nothing.
        """
        if install_signals:
            self._install_signals()
        self.start()
        if ready is not None:
            ready()
        while not self._stop.wait(0.5):
            pass
        return self.stop()

    def _install_signals(self) -> None:
        def handle(signum: int, _frame: FrameType | None) -> None:
            if self._stop.is_set():
                log.warning("second signal %s: exiting immediately", signum)
                os._exit(128 + signum)
            log.info("signal %s: stopping", signum)
            self._stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, handle)

    # --- loops ---

    def _guarded(self, name: str, fn: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except Exception:
                log.exception("part %s failed", name)

        return run

    def _run_task(self, task: TaskState) -> None:
        try:
            task.fn()
            task.last_error = None
        except HubUnavailable as exc:  # expected during an outage: the next interval retries
            task.failures += 1
            task.last_error = str(exc)
            log.warning("task %s: hub unavailable: %s", task.name, exc)
        except HubRefused as exc:
            # Expected too (node suspended, address not registered, key rotated): a person must act at
            # the hub, and repeating it with a traceback every few seconds only buries the log. One
            # line when the refusal starts or changes; the task's status keeps it for `node status`.
            task.failures += 1
            error = f"{exc.code} {exc.message_zh}"
            if error != task.last_error:
                log.warning("task %s: the hub refused (HTTP %s): %s", task.name, exc.status, error)
            task.last_error = error
        except Exception as exc:
            task.failures += 1
            task.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("task %s failed", task.name)
        finally:
            task.runs += 1
            task.last_run = dt.datetime.now(dt.UTC)

    def _task_loop(self, task: TaskState) -> None:
        if task.run_at_start and not self._stop.is_set():
            self._run_task(task)
        while not self._stop.wait(task.interval):
            self._run_task(task)

    def _daily_loop(self, task: TaskState, when: dt.time) -> None:
        while not self._stop.wait(seconds_until(when)):
            self._run_task(task)

    def _poll_feedback(self) -> None:
        assert self.feedback is not None
        result = self.feedback.poll_once()
        if result.items:
            log.info(
                "feedback: %d items, %d lost receipts applied, %d records re-queued, %d notices",
                result.items,
                result.receipts_applied,
                result.reupload_rows,
                result.notices,
            )
            if result.reupload_rows:
                for channel in (1, 2):
                    self.notify(channel)

    # --- what the status view and the heartbeat may read ---

    def status(self) -> dict[str, Any]:
        return {
            "channels": {
                channel: {
                    "breaker": uploader.breaker.state.value,
                    "batches": uploader.stats.batches,
                    "accepted": uploader.stats.accepted,
                    "rejected": uploader.stats.rejected,
                    "failures": uploader.stats.failures,
                    "last_error": uploader.stats.last_error,
                    "last_success": uploader.stats.last_success,
                }
                for channel, uploader in self.uploaders.items()
            },
            "tasks": {
                name: {"runs": t.runs, "failures": t.failures, "last_error": t.last_error}
                for name, t in self.tasks.items()
            },
        }


def seconds_until(when: dt.time, now: dt.datetime | None = None) -> float:
    """Seconds from ``now`` to the next ``when`` (Asia/Shanghai wall time)."""
    local = (now or dt.datetime.now(dt.UTC)).astimezone(SHANGHAI)
    target = local.replace(hour=when.hour, minute=when.minute, second=0, microsecond=0)
    if target <= local:
        target += dt.timedelta(days=1)
    return (target - local).total_seconds()
