"""The one way provider clients speak HTTP: rate limit, timeout, retry with backoff, metrics, safe logs.

Every attempt takes a token from the provider's bucket first, so retries count against the
quota like any other call. Failures are logged with the provider and the logical endpoint
name only: never the URL or its query string, because some providers (Alpha Vantage) take the
API key as a query parameter, and aiohttp's exception texts contain the full URL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import orjson
import structlog

from fetcher.clock import REAL_CLOCK, Clock
from fetcher.daily_quota import DailyQuota
from fetcher.provider_metrics import PROVIDER_REQUESTS, RETRIES
from fetcher.providers.errors import (
    BurstLimited,
    InvalidCredentials,
    MalformedResponse,
    ProviderError,
    QuotaExhausted,
    RateLimitedError,
    RequestRejected,
    RequestTimeout,
    ServerError,
    SymbolNotFound,
    Throttled,
    TransportError,
)
from fetcher.rate_limit import TokenBucket
from stocktrack_common.backoff import backoff_delay

log = structlog.get_logger(__name__)

BodyCheck = Callable[[Any], None]


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _reset_in_seconds(value: str | None, now: float) -> float | None:
    """`X-RateLimit-Reset` (Alpaca): the epoch second at which the minute's budget refills."""
    if not value:
        return None
    try:
        return max(0.0, float(value) - now)
    except ValueError:
        return None


class ProviderHttp:
    def __init__(
        self,
        provider: str,
        base_url: str,
        bucket: TokenBucket,
        *,
        timeout_seconds: float = 10.0,
        max_attempts: int = 3,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        headers: Mapping[str, str] | None = None,
        clock: Clock = REAL_CLOCK,
        quota: DailyQuota | None = None,
        key_setting: str | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.bucket = bucket
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._headers = dict(headers or {})
        self.clock = clock
        self.quota = quota
        # The variable holding the key: a 401/403 then names it and disables the provider.
        self.key_setting = key_setting
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout, headers=self._headers)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self.quota is not None:
            await self.quota.aclose()

    async def get_json(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        endpoint: str,
        check: BodyCheck | None = None,
        max_wait: float | None = None,
    ) -> Any:
        """GET and decode JSON, retrying retryable failures; raises a ProviderError subclass.

        `max_wait` bounds the wait for a rate-limit token and, when set, means another provider
        can serve instead: a rate-limited answer then fails over at once rather than retrying.
        """
        attempt = 0
        while True:
            try:
                return await self._attempt(path, params, endpoint, check, max_wait)
            except ProviderError as exc:
                last_attempt = attempt + 1 >= self.max_attempts
                fail_over = max_wait is not None and isinstance(exc, RateLimitedError)
                if not exc.retryable or last_attempt or fail_over:
                    raise
                delay = backoff_delay(attempt, self.backoff_base, self.backoff_cap)
                if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, self.backoff_cap))
                if isinstance(exc, BurstLimited) and exc.retry_after is not None:
                    # A per-second limit needs the second to pass, whatever the backoff cap says.
                    delay = max(delay, exc.retry_after)
                RETRIES.labels(self.provider, exc.outcome).inc()
                log.info(
                    "retrying provider request",
                    provider=self.provider,
                    endpoint=endpoint,
                    outcome=exc.outcome,
                    attempt=attempt + 1,
                    delay_s=round(delay, 3),
                )
                await self.clock.sleep(delay)
                attempt += 1

    async def _attempt(
        self,
        path: str,
        params: Mapping[str, str] | None,
        endpoint: str,
        check: BodyCheck | None,
        max_wait: float | None,
    ) -> Any:
        try:
            if self.quota is not None:
                self.quota.check()
            if not await self.bucket.acquire(max_wait):
                raise Throttled(self.provider, f"{endpoint}: no rate-limit token within {max_wait}s")
            if self.quota is not None:
                await self.quota.reserve()
        except (Throttled, QuotaExhausted) as exc:
            PROVIDER_REQUESTS.labels(self.provider, exc.outcome).inc()
            raise
        try:
            data = await self._fetch(path, params, endpoint)
            if check is not None:
                check(data)
        except ProviderError as exc:
            if isinstance(exc, QuotaExhausted) and self.quota is not None:
                exc.resets_at = await self.quota.exhaust()
            PROVIDER_REQUESTS.labels(self.provider, exc.outcome).inc()
            log.warning(
                "provider request failed",
                provider=self.provider,
                endpoint=endpoint,
                outcome=exc.outcome,
                error=exc.message,
            )
            raise
        PROVIDER_REQUESTS.labels(self.provider, "ok").inc()
        return data

    async def _fetch(self, path: str, params: Mapping[str, str] | None, endpoint: str) -> Any:
        url = f"{self.base_url}{path}"
        try:
            async with self._client().get(url, params=params, allow_redirects=False) as resp:
                status = resp.status
                retry_after = _retry_after_seconds(resp.headers.get("Retry-After"))
                if retry_after is None:
                    retry_after = _reset_in_seconds(resp.headers.get("X-RateLimit-Reset"), self.clock.wall())
                body = await resp.read()
        except TimeoutError:
            raise RequestTimeout(
                self.provider, f"{endpoint}: no answer within {self.timeout.total}s"
            ) from None
        except aiohttp.ClientError as exc:
            # str(exc) may hold the URL (and so a key): keep only the exception type.
            raise TransportError(self.provider, f"{endpoint}: {type(exc).__name__}") from None
        if status == 429:
            raise RateLimitedError(self.provider, f"{endpoint}: HTTP 429", retry_after=retry_after)
        if status >= 500:
            raise ServerError(self.provider, f"{endpoint}: HTTP {status}")
        if status in (401, 403) and self.key_setting is not None:
            raise InvalidCredentials(self.provider, f"{endpoint}: HTTP {status}", setting=self.key_setting)
        if status in (404, 422):
            raise SymbolNotFound(self.provider, f"{endpoint}: HTTP {status}")
        if status >= 300:
            raise RequestRejected(self.provider, f"{endpoint}: HTTP {status}")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise MalformedResponse(
                self.provider, f"{endpoint}: body is not JSON ({len(body)} bytes)"
            ) from None
