"""Finnhub REST quote (/quote): last price and its exchange time in epoch seconds.

The key travels in the X-Finnhub-Token header rather than the query string. An unknown symbol
answers 200 with every field 0. The quote has no volume, so its ticks carry size 0; the
free tier has no historical candles, so Finnhub serves live polling only (not backfill).

This module is the whole provider: its settings (FINNHUB_*), its client, and its registration
(`PLUGIN`, named in the `stocktrack.providers` entry-point group); the trade WebSocket is
`finnhub_stream.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from fetcher.provider_http import ProviderHttp
from fetcher.providers.errors import MalformedResponse, RequestRejected, SymbolNotFound
from fetcher.providers.parsing import positive_decimal, require_dict
from fetcher.providers.plugin import ProviderPlugin
from fetcher.quotes import Quote

if TYPE_CHECKING:
    from fetcher.providers.base import TickSource
    from fetcher.settings import FetcherSettings

NAME = "finnhub"
KEY_SETTING = "FINNHUB_API_KEY"


class FinnhubSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FINNHUB_", extra="ignore", case_sensitive=False)

    api_key: SecretStr | None = None
    base_url: str = "https://finnhub.io/api/v1"
    requests_per_minute: float = Field(default=60.0, gt=0)
    stream_url: str = "wss://ws.finnhub.io"
    stream_max_symbols: int = Field(
        default=50, ge=1, description="symbols streamed at most (free: 50); the rest is polled via /quote"
    )


def auth_headers(api_key: SecretStr) -> dict[str, str]:
    return {"X-Finnhub-Token": api_key.get_secret_value()}


class FinnhubClient:
    name = NAME

    def __init__(self, http: ProviderHttp) -> None:
        self.http = http

    async def aclose(self) -> None:
        await self.http.aclose()

    @staticmethod
    def _check(data: Any) -> None:
        body = require_dict(NAME, data, "response")
        if "error" in body:
            raise RequestRejected(NAME, f"error: {str(body['error'])[:160]}")

    async def quote(self, symbol: str, max_wait: float | None = None) -> Quote:
        data = await self.http.get_json(
            "/quote", {"symbol": symbol}, endpoint="quote", check=self._check, max_wait=max_wait
        )
        seconds = data.get("t")
        if data.get("c") in (0, None) and seconds in (0, None):
            raise SymbolNotFound(NAME, "quote: all fields zero (unknown symbol)")
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0:
            raise MalformedResponse(NAME, "t is not positive epoch seconds")
        price = positive_decimal(NAME, data.get("c"), "c")
        return Quote(symbol=symbol, ts_ms=seconds * 1000, price=price, source=NAME, stamp=str(seconds))


def build(settings: FetcherSettings, own: FinnhubSettings) -> FinnhubClient:
    from fetcher.providers.factory import provider_http, require

    key = require(own.api_key, KEY_SETTING, NAME)
    return FinnhubClient(
        provider_http(
            settings, NAME, own.base_url, own.requests_per_minute, auth_headers(key), key_setting=KEY_SETTING
        )
    )


def _trade_stream(settings: FetcherSettings, own: FinnhubSettings) -> TickSource:
    from fetcher.providers.factory import build_watchlist, require, stream_tuning
    from fetcher.providers.finnhub_stream import FinnhubTradeStream

    return FinnhubTradeStream(
        own.stream_url,
        require(own.api_key, KEY_SETTING, "finnhub-stream"),
        build(settings, own),
        build_watchlist(settings),
        **stream_tuning(settings, own.stream_max_symbols),
    )


PLUGIN = ProviderPlugin(
    name=NAME,
    summary="polls /quote; finnhub-stream: the trade WebSocket (free for US stocks)",
    settings_model=FinnhubSettings,
    quote_client=build,
    sources={"finnhub-stream": _trade_stream},
)
