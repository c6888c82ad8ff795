"""Circuit breaker, jittered backoff and token bucket, driven by a fake clock."""

from __future__ import annotations

import pytest

from ggzy.node.breaker import Backoff, BreakerState, CircuitBreaker, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_breaker_opens_after_consecutive_failures_only() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=3, open_seconds=10, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # a success in between resets the count
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.seconds_until_trial() == pytest.approx(10)
    assert breaker.times_opened == 1


def test_breaker_half_open_lets_one_trial_through_and_closes_on_success() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=1, open_seconds=5, clock=clock)
    breaker.record_failure()
    clock.advance(4.9)
    assert not breaker.allow()
    clock.advance(0.1)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()  # only one trial at a time
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()


def test_breaker_failed_trial_opens_again_for_a_full_period() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=2, open_seconds=5, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(5)
    assert breaker.allow()
    breaker.record_failure()  # one failure in half-open state suffices
    assert breaker.state is BreakerState.OPEN
    assert breaker.seconds_until_trial() == pytest.approx(5)
    assert breaker.times_opened == 2


def test_backoff_grows_exponentially_up_to_the_cap_with_full_jitter() -> None:
    top = Backoff(base=1.0, cap=8.0, rand=lambda: 1.0)
    assert [top.next_delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    top.reset()
    assert top.next_delay() == 1.0
    half = Backoff(base=1.0, cap=8.0, rand=lambda: 0.5)
    assert [half.next_delay() for _ in range(4)] == [0.5, 1.0, 2.0, 4.0]


def test_backoff_never_drops_below_its_floor_so_it_cannot_spin() -> None:
    backoff = Backoff(base=2.0, cap=60.0, rand=lambda: 0.0)
    assert all(backoff.next_delay() == pytest.approx(0.2) for _ in range(10))


def test_backoff_survives_a_very_long_outage() -> None:
    backoff = Backoff(base=1.0, cap=60.0, rand=lambda: 1.0)
    backoff.attempt = 10_000
    assert backoff.next_delay() == 60.0


def test_token_bucket_holds_the_average_rate_whatever_the_batch_sizes() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=100, capacity=100, clock=clock)
    sent = 0
    start = clock.now
    while sent < 1000:
        wait = bucket.wait_seconds()
        if wait > 0:
            clock.advance(wait)
            continue
        bucket.spend(70)
        sent += 70
    # 1050 sent: 100 up front, the rest at 100/s
    assert clock.now - start == pytest.approx((sent - 70 - 100) / 100, abs=0.01)


def test_unlimited_bucket_never_waits() -> None:
    bucket = TokenBucket(rate=0, clock=FakeClock())
    bucket.spend(1_000_000)
    assert bucket.wait_seconds() == 0


def test_daily_tasks_run_at_beijing_wall_time() -> None:
    import datetime as dt

    from ggzy.node.service import seconds_until

    utc_1800 = dt.datetime(2026, 11, 27, 18, 0, tzinfo=dt.UTC)  # 02:00 the next morning in Beijing
    assert seconds_until(dt.time(2, 30), utc_1800) == 30 * 60
    assert seconds_until(dt.time(1, 0), utc_1800) == 23 * 3600  # already past today: tomorrow
