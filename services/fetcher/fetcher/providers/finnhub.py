"""Finnhub REST quote (/quote): last price and its exchange time in epoch seconds.

The key travels in the X-Finnhub-Token header rather than the query string. An unknown symbol
answers 200 with every field 0. The quote has no volume, so its ticks carry size 0; the
free tier has no historical candles, so Finnhub serves live polling only (not backfill).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from fetcher.provider_http import ProviderHttp
from fetcher.providers.errors import MalformedResponse, RequestRejected, SymbolNotFound
from fetcher.providers.parsing import positive_decimal, require_dict
from fetcher.providers.plugin import ProviderPlugin
from fetcher.quotes import Quote

if TYPE_CHECKING:
    from fetcher.providers.base import TickSource
    from fetcher.settings import FetcherSettings

NAME = "finnhub"


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


def _quote_client(settings: FetcherSettings, _: None) -> FinnhubClient:
    from fetcher.providers.factory import build_finnhub

    return build_finnhub(settings)


def _trade_stream(settings: FetcherSettings, _: None) -> TickSource:
    from fetcher.providers.factory import build_finnhub, build_watchlist, require, stream_tuning
    from fetcher.providers.finnhub_stream import FinnhubTradeStream

    return FinnhubTradeStream(
        settings.finnhub_stream_url,
        require(settings.finnhub_api_key, "FINNHUB_API_KEY", "finnhub-stream"),
        build_finnhub(settings),
        build_watchlist(settings),
        **stream_tuning(settings, settings.finnhub_stream_max_symbols),
    )


PLUGIN = ProviderPlugin(
    name=NAME,
    summary="polls /quote; finnhub-stream: the trade WebSocket (free for US stocks)",
    quote_client=_quote_client,
    sources={"finnhub-stream": _trade_stream},
)
