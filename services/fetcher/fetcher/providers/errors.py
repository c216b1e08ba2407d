"""Provider failures, classified by what the scheduler should do about them.

Messages are written here, never copied from aiohttp exceptions: those embed the request URL,
and for Alpha Vantage the URL carries the API key.
"""

from __future__ import annotations


class ProviderError(Exception):
    """A request that produced no usable data. `outcome` is the metrics label."""

    outcome = "error"
    retryable = False
    counts_against_circuit = True

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message


class RateLimitedError(ProviderError):
    """HTTP 429, or a 200 whose body says the quota is spent (Alpha Vantage's Note/Information)."""

    outcome = "rate_limited"
    retryable = True

    def __init__(self, provider: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(provider, message)
        self.retry_after = retry_after


class ServerError(ProviderError):
    outcome = "server_error"
    retryable = True


class RequestTimeout(ProviderError):
    outcome = "timeout"
    retryable = True


class TransportError(ProviderError):
    outcome = "transport_error"
    retryable = True


class MalformedResponse(ProviderError):
    """Not JSON, or JSON without the documented fields: nothing in it may be published."""

    outcome = "malformed"


class RequestRejected(ProviderError):
    """A 4xx or an API error message: retrying the same request cannot help."""

    outcome = "rejected"


class SymbolNotFound(RequestRejected):
    """The provider does not know the symbol; says nothing about the provider's health."""

    outcome = "not_found"
    counts_against_circuit = False


class Throttled(ProviderError):
    """Our own token bucket had no token soon enough; the next provider in the chain may serve."""

    outcome = "throttled"
    counts_against_circuit = False


class CircuitOpen(ProviderError):
    outcome = "circuit_open"
    counts_against_circuit = False
