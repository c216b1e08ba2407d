"""Failover between providers: each symbol has an ordered provider list; the first healthy one serves.

A provider is skipped when its circuit is open, when its token bucket cannot give a token
within `throttle_wait` (and another provider is left to try), or when its request fails. The
tick's `source` is the provider that actually answered, so failover is visible downstream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import structlog

from fetcher.circuit_breaker import CircuitBreaker
from fetcher.provider_metrics import FAILOVERS, PROVIDER_REQUESTS
from fetcher.providers.errors import InvalidCredentials, ProviderError
from fetcher.quotes import Quote

log = structlog.get_logger(__name__)


class QuoteClient(Protocol):
    name: str

    async def quote(self, symbol: str, max_wait: float | None = None) -> Quote: ...

    async def aclose(self) -> None: ...


class QuoteRouter:
    def __init__(
        self,
        providers: Mapping[str, QuoteClient],
        default_chain: Sequence[str],
        breakers: Mapping[str, CircuitBreaker],
        routes: Mapping[str, Sequence[str]] | None = None,
        throttle_wait: float = 1.0,
    ) -> None:
        routes = dict(routes or {})
        for chain in [default_chain, *routes.values()]:
            unknown = [name for name in chain if name not in providers]
            if unknown:
                raise ValueError(f"provider chain names unconfigured providers: {unknown}")
        if not default_chain:
            raise ValueError("the provider chain is empty")
        self.providers = providers
        self.default_chain = list(default_chain)
        self.breakers = breakers
        self.routes = {symbol: list(chain) for symbol, chain in routes.items()}
        self.throttle_wait = throttle_wait

    def chain_for(self, symbol: str) -> list[str]:
        return self.routes.get(symbol, self.default_chain)

    async def quote(self, symbol: str) -> Quote | None:
        """The first answer along the symbol's chain, or None when every provider failed."""
        chain = self.chain_for(symbol)
        for index, name in enumerate(chain):
            breaker = self.breakers[name]
            if not breaker.allow():
                PROVIDER_REQUESTS.labels(name, "circuit_open").inc()
                continue
            has_next = index + 1 < len(chain)
            try:
                quote = await self.providers[name].quote(
                    symbol, max_wait=self.throttle_wait if has_next else None
                )
            except ProviderError as exc:
                if isinstance(exc, InvalidCredentials):
                    breaker.disable(f"{exc.message}; set {exc.setting} to a valid key and restart")
                elif exc.counts_against_circuit:
                    breaker.record_failure()
                else:
                    breaker.release_trial()
                log.info("provider could not serve", provider=name, symbol=symbol, outcome=exc.outcome)
                continue
            except Exception as exc:  # an unforeseen payload must not stop this symbol's polling
                breaker.record_failure()
                PROVIDER_REQUESTS.labels(name, "malformed").inc()
                log.error(
                    "unexpected provider answer", provider=name, symbol=symbol, error=type(exc).__name__
                )
                continue
            breaker.record_success()
            if index > 0:
                FAILOVERS.labels(name).inc()
            return quote
        log.warning("no provider served the symbol", symbol=symbol, chain=chain)
        return None

    def disabled(self) -> dict[str, str]:
        """Providers switched off for good (a rejected key), with the reason."""
        return {
            name: breaker.disabled_reason
            for name, breaker in self.breakers.items()
            if breaker.disabled_reason is not None
        }

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
