"""Resilience primitives for talking to the hub: a circuit breaker, jittered backoff, a token bucket.

All three take their clock (and the backoff its random source) as arguments, so that tests can
drive them deterministically; the uploader (``ggzy.node.uploader``) combines them.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from enum import StrEnum

__all__ = ["Backoff", "BreakerState", "CircuitBreaker", "TokenBucket"]

Clock = Callable[[], float]


class BreakerState(StrEnum):
    CLOSED = "closed"  # requests flow
    OPEN = "open"  # the hub is considered down: no request until the open period has passed
    HALF_OPEN = "half_open"  # one trial request decides between closed and open


class CircuitBreaker:
    """Closed → open after ``failures`` consecutive failures → half-open after ``open_seconds``.

    In half-open state one caller gets a trial (``allow`` returns True once); its success closes
    the breaker, its failure opens it again for another ``open_seconds``. Thread-safe, so several
    senders may share one breaker.
    """

    def __init__(self, failures: int, open_seconds: float, clock: Clock = time.monotonic) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        self.failures = failures
        self.open_seconds = open_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._trial_out = False
        self.times_opened = 0

    @property
    def state(self) -> BreakerState:
        with self._lock:
            self._advance()
            return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive

    def _advance(self) -> None:
        if self._state is BreakerState.OPEN and self.clock() >= self._opened_at + self.open_seconds:
            self._state = BreakerState.HALF_OPEN
            self._trial_out = False

    def allow(self) -> bool:
        """May a request be made now? In half-open state only the first caller gets a yes."""
        with self._lock:
            self._advance()
            if self._state is BreakerState.CLOSED:
                return True
            if self._state is BreakerState.HALF_OPEN and not self._trial_out:
                self._trial_out = True
                return True
            return False

    def seconds_until_trial(self) -> float:
        """How long until the breaker lets a trial through (0 when it would now)."""
        with self._lock:
            self._advance()
            if self._state is BreakerState.OPEN:
                return max(0.0, self._opened_at + self.open_seconds - self.clock())
            return 0.0

    def record_success(self) -> None:
        with self._lock:
            self._state = BreakerState.CLOSED
            self._consecutive = 0
            self._trial_out = False

    def record_failure(self) -> None:
        with self._lock:
            self._advance()
            self._consecutive += 1
            if self._state is BreakerState.HALF_OPEN or (
                self._state is BreakerState.CLOSED and self._consecutive >= self.failures
            ):
                self._state = BreakerState.OPEN
                self._opened_at = self.clock()
                self._trial_out = False
                self.times_opened += 1


class Backoff:
    """Exponential backoff with full jitter: attempt n waits uniform(floor, min(cap, base·2ⁿ)).

    Full jitter spreads the retries of many nodes after a hub outage. The floor (a tenth of
    ``base``) keeps a run of unlucky draws from turning into a tight retry loop.
    """

    def __init__(self, base: float, cap: float, rand: Callable[[], float] = random.random) -> None:
        if base <= 0 or cap < base:
            raise ValueError("need 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.rand = rand
        self.attempt = 0

    @property
    def floor(self) -> float:
        return self.base / 10

    def ceiling(self, attempt: int) -> float:
        # min() before the power would overflow for a long outage; 2**64 is already far above any cap
        return min(self.cap, self.base * 2.0 ** min(attempt, 64))

    def next_delay(self) -> float:
        ceiling = self.ceiling(self.attempt)
        self.attempt += 1
        return max(self.floor, self.rand() * ceiling)

    def reset(self) -> None:
        self.attempt = 0


class TokenBucket:
    """Limits a sender to ``rate`` items per second on average, with bursts up to ``capacity``.

    The sender first asks how long to wait (``wait_seconds``), then sends and ``spend``s what it sent;
    the balance may go negative after a large batch, which lengthens the next wait accordingly, so
    the long-run rate holds whatever the batch sizes. A rate of 0 or less means no limit.
    """

    def __init__(self, rate: float, capacity: float | None = None, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(rate, 1.0)
        self.clock = clock
        self._tokens = self.capacity
        self._at = clock()

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def wait_seconds(self) -> float:
        """Seconds until the balance is non-negative again (0: send now)."""
        if self.unlimited:
            return 0.0
        self._refill()
        # a rounding residue must not turn into a wait too small for the clock to notice
        return 0.0 if self._tokens > -1e-6 else -self._tokens / self.rate

    def spend(self, items: int) -> None:
        if self.unlimited:
            return
        self._refill()
        self._tokens -= items
