"""Provider clients pointed at the loopback fake, with fast retries and generous rate limits."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from fetcher.clock import REAL_CLOCK, Clock
from fetcher.daily_quota import DailyQuota
from fetcher.market_hours import MarketHours
from fetcher.provider_http import ProviderHttp
from fetcher.providers.alpaca import AlpacaClient
from fetcher.providers.alpaca import auth_headers as alpaca_headers
from fetcher.providers.alphavantage import AlphaVantageClient
from fetcher.providers.finnhub import FinnhubClient
from fetcher.providers.finnhub import auth_headers as finnhub_headers
from fetcher.rate_limit import TokenBucket

AV_KEY = "AVKEY-7f3a9c1e5b"
FINNHUB_KEY = "FHKEY-2d8e6b4a0c"
ALPACA_KEY_ID = "PKALPACA-91c5e7"
ALPACA_SECRET = "ALPSECRET-4b2f8d6a"


def http(
    provider: str,
    url: str,
    *,
    rpm: float = 60_000,
    attempts: int = 3,
    timeout: float = 2.0,
    headers: dict[str, str] | None = None,
    clock: Clock = REAL_CLOCK,
    quota: DailyQuota | None = None,
) -> ProviderHttp:
    return ProviderHttp(
        provider,
        url,
        TokenBucket(provider, rpm, clock=clock),
        timeout_seconds=timeout,
        max_attempts=attempts,
        backoff_base=0.01,
        backoff_cap=0.05,
        headers=headers,
        clock=clock,
        quota=quota,
    )


def alphavantage(
    url: str,
    *,
    rpm: float = 60_000,
    attempts: int = 3,
    timeout: float = 2.0,
    clock: Clock = REAL_CLOCK,
    plan: Literal["free", "premium"] = "free",
    quota: DailyQuota | None = None,
) -> AlphaVantageClient:
    transport = http(
        "alphavantage", url, rpm=rpm, attempts=attempts, timeout=timeout, clock=clock, quota=quota
    )
    return AlphaVantageClient(
        transport, SecretStr(AV_KEY), clock=clock, plan=plan, session_close=MarketHours().session_close
    )


def finnhub(url: str, *, rpm: float = 60_000, attempts: int = 3, timeout: float = 2.0) -> FinnhubClient:
    headers = finnhub_headers(SecretStr(FINNHUB_KEY))
    return FinnhubClient(http("finnhub", url, rpm=rpm, attempts=attempts, timeout=timeout, headers=headers))


def alpaca(url: str, *, rpm: float = 60_000, attempts: int = 3, timeout: float = 2.0) -> AlpacaClient:
    headers = alpaca_headers(SecretStr(ALPACA_KEY_ID), SecretStr(ALPACA_SECRET))
    return AlpacaClient(http("alpaca", url, rpm=rpm, attempts=attempts, timeout=timeout, headers=headers))
