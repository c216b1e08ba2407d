"""Alpaca market data v2 over REST: snapshots for polling, trades for gap backfill, bars for history.

Keys travel in the APCA-API-KEY-ID / APCA-API-SECRET-KEY headers. Feeds: the free plan's live
data is IEX only (about 3% of US volume), but its *history* may come from the consolidated SIP
tape as long as it ends at least 15 minutes ago; so live requests use `feed` (iex) and history
uses `history_feed` (sip) with the end clamped to now - 15 min. A trade id is unique per
exchange only, so a trade's identity is (exchange, id). List endpoints page with
`next_page_token`. Daily bar times are midnight US/Eastern expressed in UTC, so the trading day
is taken in US/Eastern.

This module is the whole provider: its settings (ALPACA_*), its REST client, and its
registration (`PLUGIN`, named in the `stocktrack.providers` entry-point group); the trade
WebSocket is `alpaca_stream.py`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from fetcher.clock import REAL_CLOCK, Clock
from fetcher.provider_http import ProviderHttp
from fetcher.providers.errors import MalformedResponse, SymbolNotFound
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
from stocktrack_common.messages import TRADE_ID_PATTERN

if TYPE_CHECKING:
    from fetcher.providers.base import TickSource
    from fetcher.settings import FetcherSettings

NAME = "alpaca"
TRADE_ID = re.compile(TRADE_ID_PATTERN.removeprefix("^").removesuffix("$"))
EASTERN = ZoneInfo("America/New_York")
PAGE_LIMIT = 10000
SNAPSHOT_BATCH = 100
SIP_DELAY = timedelta(minutes=15)
OHLC_FIELDS = ("o", "h", "l", "c")
KEY_SETTING = "ALPACA_API_KEY_ID / ALPACA_API_SECRET_KEY"


class AlpacaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALPACA_", extra="ignore", case_sensitive=False)

    api_key_id: SecretStr | None = None
    api_secret_key: SecretStr | None = None
    data_url: str = "https://data.alpaca.markets"
    stream_url: str = "wss://stream.data.alpaca.markets/v2/iex"
    feed: str = Field(
        default="iex", pattern=r"^(iex|sip|delayed_sip)$", description="live feed; the free plan has iex only"
    )
    history_feed: str = Field(
        default="sip",
        pattern=r"^(iex|sip)$",
        description="feed of backfilled bars; free plans get SIP history ending 15 minutes ago",
    )
    stream_max_symbols: int = Field(
        default=30,
        ge=1,
        description="symbols streamed at most (free plan: 30); the rest is polled via snapshots",
    )
    requests_per_minute: float = Field(default=200.0, gt=0)


def auth_headers(key_id: SecretStr, secret_key: SecretStr) -> dict[str, str]:
    return {
        "APCA-API-KEY-ID": key_id.get_secret_value(),
        "APCA-API-SECRET-KEY": secret_key.get_secret_value(),
    }


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def trade_id(exchange: Any, number: Any) -> str | None:
    """The stored id of a trade, `<exchange>:<id>` (ids are unique per exchange only); None without one."""
    if not isinstance(exchange, str) or isinstance(number, bool) or not isinstance(number, int):
        return None
    text = f"{exchange}:{number}"
    return text if TRADE_ID.fullmatch(text) else None


def trade_stamp(trade: dict[str, Any]) -> str:
    """A trade's identity: its id is unique only per exchange (`x`), so both make the key."""
    trade_id = trade.get("i")
    if trade_id is None:
        return f"{trade.get('x')}|{trade.get('t')}|{trade.get('p')}|{trade.get('s')}"
    return f"{trade.get('x')}|{trade_id}"


def trade_to_quote(symbol: str, trade: dict[str, Any]) -> Quote:
    """An Alpaca trade object ({t, x, p, s, i, ...}) from REST or the stream, as a single-trade Quote."""
    ts_ms = rfc3339_ms(NAME, trade.get("t"), "t")
    price = positive_decimal(NAME, trade.get("p"), "p")
    size = non_negative_int(NAME, trade.get("s"), "s")
    return Quote(
        symbol=symbol,
        ts_ms=ts_ms,
        price=price,
        source=NAME,
        stamp=trade_stamp(trade),
        trade_size=size,
        trade_id=trade_id(trade.get("x"), trade.get("i")),
    )


def snapshot_to_quote(symbol: str, data: Any) -> Quote:
    """A snapshot's latest trade, with the day's cumulative volume from its daily bar."""
    body = require_dict(NAME, data, "snapshot")
    trade = body.get("latestTrade")
    if not trade:
        raise SymbolNotFound(NAME, "snapshot: no latestTrade (unknown symbol)")
    trade = require_dict(NAME, trade, "latestTrade")
    ts_ms = rfc3339_ms(NAME, trade.get("t"), "latestTrade.t")
    price = positive_decimal(NAME, trade.get("p"), "latestTrade.p")
    day_volume: int | None = None
    trading_day: date | None = None
    daily = body.get("dailyBar")
    if daily:
        daily = require_dict(NAME, daily, "dailyBar")
        trading_day = _eastern_day(daily.get("t"))
        day_volume = non_negative_int(NAME, daily.get("v"), "dailyBar.v")
    return Quote(
        symbol=symbol,
        ts_ms=ts_ms,
        price=price,
        source=NAME,
        stamp=trade_stamp(trade),
        day_volume=day_volume,
        trading_day=trading_day,
    )


class AlpacaClient:
    name = NAME

    def __init__(
        self, http: ProviderHttp, feed: str = "iex", history_feed: str = "sip", clock: Clock = REAL_CLOCK
    ) -> None:
        self.http = http
        self.feed = feed
        self.history_feed = history_feed
        self.clock = clock
        self._prefetched: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}

    async def aclose(self) -> None:
        await self.http.aclose()

    async def quote(self, symbol: str, max_wait: float | None = None) -> Quote:
        data = await self.http.get_json(
            f"/v2/stocks/{symbol}/snapshot", {"feed": self.feed}, endpoint="snapshot", max_wait=max_wait
        )
        return snapshot_to_quote(symbol, data)

    async def snapshots(self, symbols: list[str]) -> dict[str, Quote]:
        """Latest trades of many symbols, one request per SNAPSHOT_BATCH symbols (unknown ones are absent)."""
        quotes: dict[str, Quote] = {}
        for i in range(0, len(symbols), SNAPSHOT_BATCH):
            batch = symbols[i : i + SNAPSHOT_BATCH]
            data = require_dict(
                NAME,
                await self.http.get_json(
                    "/v2/stocks/snapshots",
                    {"symbols": ",".join(batch), "feed": self.feed},
                    endpoint="snapshots",
                ),
                "snapshots",
            )
            for symbol in batch:
                if data.get(symbol):
                    try:
                        quotes[symbol] = snapshot_to_quote(symbol, data[symbol])
                    except SymbolNotFound:
                        continue
        return quotes

    def _history_end(self, end: datetime) -> datetime:
        """SIP history is free only up to 15 minutes ago; IEX history has no such delay."""
        if self.history_feed == "iex":
            return end
        latest = datetime.fromtimestamp(self.clock.wall(), tz=UTC) - SIP_DELAY
        return min(end, latest)

    async def _pages(
        self, path: str, params: dict[str, str], endpoint: str, key: str, feed: str
    ) -> AsyncIterator[Any]:
        token: str | None = None
        while True:
            query = dict(params, limit=str(PAGE_LIMIT), feed=feed)
            if token:
                query["page_token"] = token
            data = require_dict(NAME, await self.http.get_json(path, query, endpoint=endpoint), endpoint)
            items = data.get(key) or []
            if not isinstance(items, list):
                raise MalformedResponse(NAME, f"{endpoint}: {key} is not a list")
            for item in items:
                yield require_dict(NAME, item, key)
            token = data.get("next_page_token")
            if not token:
                return

    async def trades(self, symbol: str, start: datetime, end: datetime) -> list[Quote]:
        """Historical trades in [start, end), oldest first, from the live feed: fills a streaming gap exactly."""
        params = {"start": rfc3339(start), "end": rfc3339(end), "sort": "asc"}
        return [
            trade_to_quote(symbol, t)
            async for t in self._pages(f"/v2/stocks/{symbol}/trades", params, "trades", "trades", self.feed)
        ]

    async def _bars(
        self, symbol: str, timeframe: str, start: datetime, end: datetime, adjustment: str
    ) -> list[dict[str, Any]]:
        """History from `history_feed` (SIP: the whole consolidated tape), ending 15 minutes ago at the latest."""
        end = self._history_end(end)
        if end <= start:
            return []
        params = {
            "timeframe": timeframe,
            "start": rfc3339(start),
            "end": rfc3339(end),
            "adjustment": adjustment,
        }
        path = f"/v2/stocks/{symbol}/bars"
        return [bar async for bar in self._pages(path, params, "bars", "bars", self.history_feed)]

    async def minute_bars(self, symbol: str, start: datetime, end: datetime) -> list[MinuteBar]:
        bars = []
        for row in await self._bars(symbol, "1Min", start, end, "raw"):
            bucket = datetime.fromtimestamp(rfc3339_ms(NAME, row.get("t"), "t") / 1000, tz=UTC)
            if not start <= bucket < end:
                continue
            open_, high, low, close = positive_ohlc(NAME, row, OHLC_FIELDS)
            bars.append(
                MinuteBar(
                    symbol=symbol,
                    bucket=bucket,
                    open=open_,
                    high=high,
                    low=low,
                    close=close,
                    volume=non_negative_int(NAME, row.get("v"), "v"),
                    trades=non_negative_int(NAME, row.get("n", 0), "n"),
                    source=NAME,
                )
            )
        return bars

    async def _multi_bars(
        self, symbols: list[str], start: datetime, end: datetime, adjustment: str
    ) -> dict[str, list[dict[str, Any]]]:
        """Daily bars of many symbols in one paged series (`/v2/stocks/bars?symbols=`)."""
        end = self._history_end(end)
        found: dict[str, list[dict[str, Any]]] = {symbol: [] for symbol in symbols}
        if end <= start:
            return found
        token: str | None = None
        while True:
            query = {
                "symbols": ",".join(symbols),
                "timeframe": "1Day",
                "start": rfc3339(start),
                "end": rfc3339(end),
                "adjustment": adjustment,
                "limit": str(PAGE_LIMIT),
                "feed": self.history_feed,
            }
            if token:
                query["page_token"] = token
            data = require_dict(
                NAME, await self.http.get_json("/v2/stocks/bars", query, endpoint="bars"), "bars"
            )
            by_symbol = require_dict(NAME, data.get("bars") or {}, "bars")
            for symbol, rows in by_symbol.items():
                if not isinstance(rows, list):
                    raise MalformedResponse(NAME, "bars: a symbol's bars are not a list")
                found.setdefault(symbol, []).extend(require_dict(NAME, row, "bar") for row in rows)
            token = data.get("next_page_token")
            if not token:
                return found

    async def prefetch(self, symbols: list[str], start: date, end: date, interval: str) -> None:
        """Daily history of every symbol of a backfill run in one paged series per adjustment,
        instead of two requests per symbol and chunk: inside 200 calls a minute on a free plan."""
        if interval != "1d" or len(symbols) < 2:
            return
        begin = datetime.combine(start, time(0), tzinfo=EASTERN)
        finish = datetime.combine(end + timedelta(days=1), time(0), tzinfo=EASTERN)
        adjusted = await self._multi_bars(symbols, begin, finish, "all")
        raw = await self._multi_bars(symbols, begin, finish, "raw")
        self._prefetched = {symbol: (raw.get(symbol, []), adjusted.get(symbol, [])) for symbol in symbols}

    async def daily_bars(self, symbol: str, start: date, end: date) -> list[DailyBar]:
        """Raw OHLCV, with the close of the split- and dividend-adjusted series as adj_close."""
        if symbol in self._prefetched:
            raw_rows, adjusted_rows = self._prefetched[symbol]
        else:
            begin = datetime.combine(start, time(0), tzinfo=EASTERN)
            finish = datetime.combine(end + timedelta(days=1), time(0), tzinfo=EASTERN)
            adjusted_rows = await self._bars(symbol, "1Day", begin, finish, "all")
            raw_rows = await self._bars(symbol, "1Day", begin, finish, "raw")
        adjusted: dict[date, Decimal] = {}
        for row in adjusted_rows:
            adjusted[_eastern_day(row.get("t"))] = positive_decimal(NAME, row.get("c"), "c")
        bars = []
        for row in raw_rows:
            day = _eastern_day(row.get("t"))
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
                    volume=non_negative_int(NAME, row.get("v"), "v"),
                    adj_close=adjusted.get(day),
                    source=NAME,
                )
            )
        return bars


def _eastern_day(value: Any) -> date:
    ms = rfc3339_ms(NAME, value, "t")
    return datetime.fromtimestamp(ms / 1000, tz=EASTERN).date()


def build(settings: FetcherSettings, own: AlpacaSettings) -> AlpacaClient:
    from fetcher.providers.factory import provider_http, require

    key_id = require(own.api_key_id, "ALPACA_API_KEY_ID", NAME)
    secret = require(own.api_secret_key, "ALPACA_API_SECRET_KEY", NAME)
    http = provider_http(
        settings,
        NAME,
        own.data_url,
        own.requests_per_minute,
        auth_headers(key_id, secret),
        key_setting=KEY_SETTING,
    )
    return AlpacaClient(http, feed=own.feed, history_feed=own.history_feed)


def _trade_stream(settings: FetcherSettings, own: AlpacaSettings) -> TickSource:
    from fetcher.providers.alpaca_stream import AlpacaTradeStream
    from fetcher.providers.factory import build_watchlist, require, stream_tuning

    return AlpacaTradeStream(
        own.stream_url,
        require(own.api_key_id, "ALPACA_API_KEY_ID", "alpaca-stream"),
        require(own.api_secret_key, "ALPACA_API_SECRET_KEY", "alpaca-stream"),
        build(settings, own),
        build_watchlist(settings),
        **stream_tuning(settings, own.stream_max_symbols),
    )


PLUGIN = ProviderPlugin(
    name=NAME,
    summary="polls snapshots; alpaca-stream: the trade WebSocket; SIP bars for backfill",
    settings_model=AlpacaSettings,
    quote_client=build,
    history_client=build,
    sources={"alpaca-stream": _trade_stream},
)
