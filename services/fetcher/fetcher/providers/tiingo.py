"""Tiingo: IEX real-time quotes for polling, split- and dividend-adjusted daily history for backfill.

This module is the whole provider: its settings (TIINGO_*), its client, and its registration
(`PLUGIN`, named in the `stocktrack.providers` entry-point group).

- Key: `Authorization: Token KEY` header. A rejected key answers 401 `{"detail": "Invalid token."}`:
  the provider is disabled with an error naming TIINGO_API_KEY.
- Free plan: 50 requests per hour and 1,000 per day (plus 500 distinct symbols a month). Over the
  hourly limit: 429 `{"detail": "Error: You have run over your hourly request allocation."}`.
  The defaults space requests at 50/hour and count the 1,000/day in Redis like Alpha Vantage.
- Live: `/iex/{ticker}` answers a one-element list. `last`/`lastSaleTimestamp` are the last IEX
  trade (null outside the session or below IEX's display threshold); `tngoLast`/`timestamp`
  is Tiingo's own last price. `volume` is the day's cumulative IEX volume.
- History: `/tiingo/daily/{ticker}/prices?startDate=&endDate=` with raw OHLCV and `adjClose`
  (split- and dividend-adjusted), so backfill stores both. An unknown ticker answers 404
  `{"detail": "Error: Ticker 'XYZ' not found"}`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from fetcher.provider_http import ProviderHttp
from fetcher.providers.errors import MalformedResponse, PremiumRequired, SymbolNotFound
from fetcher.providers.parsing import (
    non_negative_int,
    positive_decimal,
    positive_ohlc,
    require_dict,
    rfc3339_ms,
)
from fetcher.providers.plugin import ProviderPlugin
from fetcher.quotes import MinuteBar, Quote
from stocktrack_common.daily_bars_csv import DailyBar

if TYPE_CHECKING:
    from fetcher.settings import FetcherSettings

NAME = "tiingo"
KEY_SETTING = "TIINGO_API_KEY"
EASTERN = ZoneInfo("America/New_York")
OHLC_FIELDS = ("open", "high", "low", "close")


class TiingoSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIINGO_", extra="ignore", case_sensitive=False)

    api_key: SecretStr | None = None
    base_url: str = "https://api.tiingo.com"
    requests_per_minute: float = Field(default=50 / 60, gt=0, description="free plan: 50 per hour")
    requests_per_day: int = Field(
        default=1000, ge=0, description="daily budget shared through Redis; 0 = none"
    )


def auth_headers(api_key: SecretStr) -> dict[str, str]:
    return {"Authorization": f"Token {api_key.get_secret_value()}"}


class TiingoClient:
    name = NAME

    def __init__(self, http: ProviderHttp) -> None:
        self.http = http

    async def aclose(self) -> None:
        await self.http.aclose()

    async def quote(self, symbol: str, max_wait: float | None = None) -> Quote:
        data = await self.http.get_json(f"/iex/{symbol.lower()}", endpoint="iex", max_wait=max_wait)
        if not isinstance(data, list):
            raise MalformedResponse(NAME, "iex: answer is not a list")
        if not data:
            raise SymbolNotFound(NAME, "iex: empty answer (unknown ticker or not on IEX)")
        row = require_dict(NAME, data[0], "iex row")
        if row.get("last") is not None and row.get("lastSaleTimestamp"):
            price = positive_decimal(NAME, row["last"], "last")
            ts_ms = rfc3339_ms(NAME, row["lastSaleTimestamp"], "lastSaleTimestamp")
        else:
            price = positive_decimal(NAME, row.get("tngoLast"), "tngoLast")
            ts_ms = rfc3339_ms(NAME, row.get("timestamp"), "timestamp")
        trading_day = datetime.fromtimestamp(ts_ms / 1000, tz=EASTERN).date()
        volume = row.get("volume")
        return Quote(
            symbol=symbol,
            ts_ms=ts_ms,
            price=price,
            source=NAME,
            stamp=f"{ts_ms}|{price}",
            day_volume=non_negative_int(NAME, volume, "volume") if volume is not None else None,
            trading_day=trading_day,
        )

    async def daily_bars(self, symbol: str, start: date, end: date) -> list[DailyBar]:
        data = await self._daily_prices(symbol, {"startDate": start.isoformat(), "endDate": end.isoformat()})
        bars = []
        for item in data:
            row = require_dict(NAME, item, "daily row")
            day = _row_day(row)
            if not start <= day <= end:
                continue
            open_, high, low, close = positive_ohlc(NAME, row, OHLC_FIELDS)
            bars.append(
                DailyBar(
                    symbol=symbol,
                    day=day,
                    open=open_,
                    high=high,
                    low=low,
                    close=close,
                    volume=non_negative_int(NAME, row.get("volume"), "volume"),
                    adj_close=positive_decimal(NAME, row.get("adjClose"), "adjClose"),
                    source=NAME,
                )
            )
        return bars

    async def corporate_actions(self, symbol: str, since: date) -> list[date]:
        """Days with a dividend (`divCash`) or a split (`splitFactor`) since `since`: one request."""
        data = await self._daily_prices(symbol, {"startDate": since.isoformat()})
        days = []
        for item in data:
            row = require_dict(NAME, item, "daily row")
            if row.get("divCash", 0) not in (0, None) or row.get("splitFactor", 1) not in (1, None):
                days.append(_row_day(row))
        return days

    async def _daily_prices(self, symbol: str, window: dict[str, str]) -> list[Any]:
        """The end-of-day rows of `window`, which both bars and corporate actions are read from."""
        data = await self.http.get_json(
            f"/tiingo/daily/{symbol.lower()}/prices", {**window, "format": "json"}, endpoint="daily"
        )
        if not isinstance(data, list):
            raise MalformedResponse(NAME, "daily: answer is not a list")
        return data

    async def minute_bars(self, symbol: str, start: datetime, end: datetime) -> list[MinuteBar]:
        raise PremiumRequired(NAME, "minute history is not served by this client; use alpaca")


def _row_day(row: dict[str, Any]) -> date:
    return datetime.fromtimestamp(rfc3339_ms(NAME, row.get("date"), "date") / 1000, tz=UTC).date()


def build(settings: FetcherSettings, own: TiingoSettings) -> TiingoClient:
    from fetcher.providers.factory import build_daily_quota, provider_http, require

    key = require(own.api_key, KEY_SETTING, NAME)
    http = provider_http(
        settings,
        NAME,
        own.base_url,
        own.requests_per_minute,
        auth_headers(key),
        quota=build_daily_quota(settings, NAME, own.requests_per_day),
        key_setting=KEY_SETTING,
    )
    return TiingoClient(http)


PLUGIN = ProviderPlugin(
    name=NAME,
    summary="polls IEX real-time quotes; split- and dividend-adjusted daily history for backfill",
    settings_model=TiingoSettings,
    quote_client=build,
    history_client=build,
)
