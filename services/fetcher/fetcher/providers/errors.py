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
    # Nothing this process can do makes the provider answer (a rejected key): stop calling it.
    fatal = False

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


class BurstLimited(RateLimitedError):
    """Too many requests in the last second: the provider is healthy and answers again shortly."""

    outcome = "burst_limited"
    counts_against_circuit = False

    def __init__(self, provider: str, message: str, retry_after: float = 1.0) -> None:
        super().__init__(provider, message, retry_after=retry_after)


class QuotaExhausted(ProviderError):
    """The day's request quota is spent: no request to this provider helps until `resets_at`.

    Not a sign of ill health (the circuit stays closed), and never retried: the caller moves on
    to the next provider, and the shared daily budget stops every replica from asking again.
    """

    outcome = "quota_exhausted"
    counts_against_circuit = False

    def __init__(self, provider: str, message: str, resets_at: float) -> None:
        super().__init__(provider, message)
        self.resets_at = resets_at


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


class PremiumRequired(RequestRejected):
    """The endpoint or parameter is not on this key's plan: the free variant must be asked instead."""

    outcome = "premium_required"
    counts_against_circuit = False


class InvalidCredentials(RequestRejected):
    """The provider rejected the key itself; `setting` names the variable to fix."""

    outcome = "invalid_credentials"
    fatal = True

    def __init__(self, provider: str, message: str, setting: str) -> None:
        super().__init__(provider, message)
        self.setting = setting


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
