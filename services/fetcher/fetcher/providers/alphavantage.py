"""Alpha Vantage: GLOBAL_QUOTE for polling, TIME_SERIES_* for history.

Quirks handled here:
- errors and quota exhaustion arrive as HTTP 200 with a `Note`, `Information` or
  `Error Message` key instead of data;
- every number is a string ("225.9700");
- time-series timestamps are local to the zone named in the metadata (US/Eastern);
- GLOBAL_QUOTE carries no intraday time, only the latest trading day, so the identity of a
  quote is (day, price, volume) and its tick time is the moment it was observed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import SecretStr

from fetcher.clock import REAL_CLOCK, Clock
from fetcher.provider_http import ProviderHttp
from fetcher.providers.errors import MalformedResponse, RateLimitedError, RequestRejected, SymbolNotFound
from fetcher.providers.parsing import non_negative_int, positive_decimal, require_dict
from fetcher.quotes import MinuteBar, Quote
from stocktrack_common.daily_bars_csv import DailyBar

NAME = "alphavantage"
EASTERN = ZoneInfo("America/New_York")
REGULAR_CLOSE = time(16, 0)


class AlphaVantageClient:
    name = NAME

    def __init__(self, http: ProviderHttp, api_key: SecretStr, clock: Clock = REAL_CLOCK) -> None:
        self.http = http
        self._api_key = api_key
        self.clock = clock
        self._daily_cache: dict[tuple[str, bool], list[DailyBar]] = {}

    async def aclose(self) -> None:
        await self.http.aclose()

    def _params(self, function: str, **extra: str) -> dict[str, str]:
        return {"function": function, **extra, "datatype": "json", "apikey": self._api_key.get_secret_value()}

    def _redact(self, text: str) -> str:
        key = self._api_key.get_secret_value()
        return text.replace(key, "***") if key else text

    def _check(self, data: Any) -> None:
        body = require_dict(NAME, data, "response")
        if "Error Message" in body:
            raise SymbolNotFound(NAME, f"Error Message: {self._redact(str(body['Error Message']))[:160]}")
        if "Note" in body:
            raise RateLimitedError(NAME, f"Note: {self._redact(str(body['Note']))[:160]}")
        if "Information" in body:
            text = self._redact(str(body["Information"]))
            if "premium endpoint" in text.lower():
                raise RequestRejected(NAME, f"Information: {text[:160]}")
            raise RateLimitedError(NAME, f"Information: {text[:160]}")

    async def quote(self, symbol: str, max_wait: float | None = None) -> Quote:
        data = await self.http.get_json(
            "/query",
            self._params("GLOBAL_QUOTE", symbol=symbol),
            endpoint="GLOBAL_QUOTE",
            check=self._check,
            max_wait=max_wait,
        )
        fields = require_dict(NAME, data.get("Global Quote"), "Global Quote")
        if not fields:
            raise SymbolNotFound(NAME, "GLOBAL_QUOTE: empty quote (unknown symbol)")
        price = positive_decimal(NAME, fields.get("05. price"), "05. price")
        volume = non_negative_int(NAME, fields.get("06. volume"), "06. volume")
        try:
            day = date.fromisoformat(str(fields.get("07. latest trading day")))
        except ValueError:
            raise MalformedResponse(NAME, "07. latest trading day is not a date") from None
        now_ms = int(self.clock.wall() * 1000)
        today_eastern = datetime.fromtimestamp(now_ms / 1000, tz=EASTERN).date()
        if day < today_eastern:
            # Yesterday's (or last Friday's) quote: it happened at that session's close, not now.
            ts_ms = int(datetime.combine(day, REGULAR_CLOSE, tzinfo=EASTERN).timestamp() * 1000)
        else:
            ts_ms = now_ms
        return Quote(
            symbol=symbol,
            ts_ms=ts_ms,
            price=price,
            source=NAME,
            stamp=f"{day.isoformat()}|{price}|{volume}",
            day_volume=volume,
            trading_day=day,
        )

    async def intraday(
        self, symbol: str, interval: str = "1min", month: str | None = None, outputsize: str = "compact"
    ) -> list[MinuteBar]:
        """TIME_SERIES_INTRADAY; `month` (YYYY-MM) selects a historical month (with outputsize=full)."""
        params = self._params(
            "TIME_SERIES_INTRADAY",
            symbol=symbol,
            interval=interval,
            outputsize=outputsize,
            extended_hours="true",
        )
        if month is not None:
            params["month"] = month
        data = await self.http.get_json("/query", params, endpoint="TIME_SERIES_INTRADAY", check=self._check)
        zone = _series_zone(data)
        bars = []
        for stamp, row in _series(data).items():
            try:
                local = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
            except ValueError:
                raise MalformedResponse(NAME, "intraday timestamp is not 'YYYY-MM-DD HH:MM:SS'") from None
            fields = require_dict(NAME, row, "intraday bar")
            open_, high, low, close = _ohlc(fields)
            bars.append(
                MinuteBar(
                    symbol=symbol,
                    bucket=local.replace(tzinfo=zone).astimezone(UTC),
                    open=open_,
                    high=high,
                    low=low,
                    close=close,
                    volume=non_negative_int(NAME, fields.get("5. volume"), "5. volume"),
                    trades=0,
                    source=NAME,
                )
            )
        bars.sort(key=lambda bar: bar.bucket)
        return bars

    async def daily(self, symbol: str, adjusted: bool = True, outputsize: str = "full") -> list[DailyBar]:
        """TIME_SERIES_DAILY_ADJUSTED (split/dividend-adjusted close) or TIME_SERIES_DAILY."""
        function = "TIME_SERIES_DAILY_ADJUSTED" if adjusted else "TIME_SERIES_DAILY"
        data = await self.http.get_json(
            "/query",
            self._params(function, symbol=symbol, outputsize=outputsize),
            endpoint=function,
            check=self._check,
        )
        bars = []
        for stamp, row in _series(data).items():
            try:
                day = date.fromisoformat(stamp)
            except ValueError:
                raise MalformedResponse(NAME, "daily timestamp is not a date") from None
            fields = require_dict(NAME, row, "daily bar")
            open_, high, low, close = _ohlc(fields)
            adj: Decimal | None = None
            volume_key = "5. volume"
            if "5. adjusted close" in fields:
                adj = positive_decimal(NAME, fields["5. adjusted close"], "5. adjusted close")
                volume_key = "6. volume"
            bars.append(
                DailyBar(
                    symbol=symbol,
                    day=day,
                    open=open_,
                    high=high,
                    low=low,
                    close=close,
                    volume=non_negative_int(NAME, fields.get(volume_key), volume_key),
                    adj_close=adj,
                    source=NAME,
                )
            )
        bars.sort(key=lambda bar: bar.day)
        return bars

    async def daily_bars(self, symbol: str, start: date, end: date) -> list[DailyBar]:
        """History between two days; the full series is one request, cached for the run's chunks."""
        key = (symbol, True)
        if key not in self._daily_cache:
            try:
                self._daily_cache = {key: await self.daily(symbol, adjusted=True)}
            except RequestRejected as exc:
                if isinstance(exc, SymbolNotFound):
                    raise
                # The adjusted series is premium on some keys: fall back to the free unadjusted one.
                self._daily_cache = {key: await self.daily(symbol, adjusted=False)}
        return [bar for bar in self._daily_cache[key] if start <= bar.day <= end]

    async def minute_bars(self, symbol: str, start: datetime, end: datetime) -> list[MinuteBar]:
        """One calendar month per request (the `month` parameter), then cut to [start, end)."""
        bars: list[MinuteBar] = []
        month = date(start.year, start.month, 1)
        while datetime.combine(month, time(0), tzinfo=UTC) < end:
            chunk = await self.intraday(symbol, "1min", month=f"{month:%Y-%m}", outputsize="full")
            bars.extend(bar for bar in chunk if start <= bar.bucket < end)
            month = (month + timedelta(days=32)).replace(day=1)
        return bars


def _series(data: dict[str, Any]) -> dict[str, Any]:
    for key, value in data.items():
        if key.startswith("Time Series"):
            return require_dict(NAME, value, key)
    raise MalformedResponse(NAME, "no 'Time Series' object in response")


def _series_zone(data: dict[str, Any]) -> ZoneInfo:
    meta = data.get("Meta Data")
    if isinstance(meta, dict):
        for key, value in meta.items():
            if key.endswith("Time Zone"):
                try:
                    return ZoneInfo(str(value))
                except (ZoneInfoNotFoundError, ValueError):
                    raise MalformedResponse(NAME, "unknown time zone in Meta Data") from None
    return EASTERN


def _ohlc(fields: dict[str, Any]) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    return (
        positive_decimal(NAME, fields.get("1. open"), "1. open"),
        positive_decimal(NAME, fields.get("2. high"), "2. high"),
        positive_decimal(NAME, fields.get("3. low"), "3. low"),
        positive_decimal(NAME, fields.get("4. close"), "4. close"),
    )
