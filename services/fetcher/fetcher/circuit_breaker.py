"""Per-provider circuit breaker: after repeated failures stop calling a provider for a while.

Closed: requests flow and consecutive failures are counted. Open: requests are refused until
`reset_seconds` have passed. Half-open: one trial request decides between closing again and
another open period. This keeps a dead provider from eating the poll budget of every symbol.
Disabled: a failure no retry can mend (the provider rejected the key) keeps it open until the
process restarts with a new setting; `disabled_reason` says why, for logs and /readyz.
"""

from __future__ import annotations

import structlog

from fetcher.clock import REAL_CLOCK, Clock
from fetcher.provider_metrics import CIRCUIT_OPEN

log = structlog.get_logger(__name__)


class CircuitBreaker:
    def __init__(
        self,
        provider: str,
        failure_threshold: int = 5,
        reset_seconds: float = 60.0,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.provider = provider
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self._trial_in_flight = False
        self.disabled_reason: str | None = None
        CIRCUIT_OPEN.labels(provider).set(0)

    @property
    def state(self) -> str:
        if self.disabled_reason is not None:
            return "disabled"
        if self.opened_at is None:
            return "closed"
        if self.clock.monotonic() - self.opened_at >= self.reset_seconds:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        if self.opened_at is not None:
            log.info("circuit closed", provider=self.provider)
        self.failures = 0
        self.opened_at = None
        self._trial_in_flight = False
        CIRCUIT_OPEN.labels(self.provider).set(0)

    def record_failure(self) -> None:
        self.failures += 1
        was_trial = self._trial_in_flight
        self._trial_in_flight = False
        if was_trial or self.failures >= self.failure_threshold:
            if self.opened_at is None or was_trial:
                log.warning(
                    "circuit opened",
                    provider=self.provider,
                    failures=self.failures,
                    reset_s=self.reset_seconds,
                )
            self.opened_at = self.clock.monotonic()
            CIRCUIT_OPEN.labels(self.provider).set(1)

    def disable(self, reason: str) -> None:
        """Open for good: nothing but a restart with a fixed setting can help."""
        if self.disabled_reason is None:
            log.error("provider disabled", provider=self.provider, reason=reason)
        self.disabled_reason = reason
        self._trial_in_flight = False
        if self.opened_at is None:
            self.opened_at = self.clock.monotonic()
        CIRCUIT_OPEN.labels(self.provider).set(1)

    def release_trial(self) -> None:
        """A half-open trial that ended without a verdict (e.g. unknown symbol) frees the slot."""
        self._trial_in_flight = False
