from __future__ import annotations

from fetcher.circuit_breaker import CircuitBreaker
from tests.fetcher.conftest import metric
from tests.fetcher.fakes import FakeClock


def test_opens_after_threshold_then_half_opens_and_closes() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("cb-test", failure_threshold=3, reset_seconds=30, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open"
    assert not breaker.allow()
    assert metric("stocktrack_fetcher_circuit_open", provider="cb-test") == 1
    clock.now += 30
    assert breaker.state == "half_open"
    assert breaker.allow()  # one trial
    assert not breaker.allow()  # and only one
    breaker.record_success()
    assert breaker.state == "closed"
    assert metric("stocktrack_fetcher_circuit_open", provider="cb-test") == 0


def test_failed_trial_reopens_for_a_full_period() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("cb-test2", failure_threshold=1, reset_seconds=10, clock=clock)
    breaker.record_failure()
    clock.now += 10
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open"
    clock.now += 9
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()
