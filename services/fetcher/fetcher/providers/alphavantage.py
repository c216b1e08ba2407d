"""Alpha Vantage: GLOBAL_QUOTE for polling, TIME_SERIES_* for history.

This module is the whole provider: its settings (ALPHAVANTAGE_*), its client, and its
registration (`PLUGIN`, named in the `stocktrack.providers` entry-point group).

Quirks handled here:
- errors and limits arrive as HTTP 200 with a `Note`, `Information` or `Error Message` key
  instead of data, and are told apart by their text (see `classify`): the per-second burst
  limit, the daily quota, a premium-only endpoint or parameter, a rejected key, an unknown
  symbol. The burst text also mentions "25 requests per day" and "premium endpoints", so the
  order of the tests matters;
- a free key gets end-of-day GLOBAL_QUOTE data, `TIME_SERIES_DAILY` with `outputsize=compact`
  (the latest 100 sessions) and no adjusted series: `plan="free"` asks only for those;
- every number is a string ("225.9700");
- time-series timestamps are local to the zone named in the metadata (US/Eastern);
- GLOBAL_QUOTE carries no intraday time, only the latest trading day, so the identity of a
  quote is (day, price, volume). An end-of-day quote is stamped at that session's close from
  the exchange calendar (13:00 ET on early-close days); a live one at the moment it was
  observed, never later than its session's close.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from fetcher.clock import REAL_CLOCK, Clock
from fetcher.provider_http import ProviderHttp
from fetcher.providers.errors import (
    BurstLimited,
    InvalidCredentials,
    MalformedResponse,
    PremiumRequired,
    ProviderError,
    QuotaExhausted,
    RateLimitedError,
    SymbolNotFound,
)
from fetcher.providers.parsing import non_negative_int, positive_decimal, positive_ohlc, require_dict
from fetcher.providers.plugin import ProviderPlugin
from fetcher.quotes import MinuteBar, Quote
from stocktrack_common.daily_bars_csv import DailyBar

if TYPE_CHECKING:
    from fetcher.settings import FetcherSettings

NAME = "alphavantage"
KEY_SETTING = "ALPHAVANTAGE_API_KEY"
EASTERN = ZoneInfo("America/New_York")
REGULAR_CLOSE = time(16, 0)
COMPACT_SESSIONS = 100
OHLC_FIELDS = ("1. open", "2. high", "3. low", "4. close")

Plan = Literal["free", "premium"]
SessionClose = Callable[[date], datetime | None]

log = structlog.get_logger(__name__)


class AlphaVantageSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ALPHAVANTAGE_", extra="ignore", case_sensitive=False)

    api_key: SecretStr | None = None
    base_url: str = "https://www.alphavantage.co"
    requests_per_minute: float = Field(
        default=5.0,
        gt=0,
        description="token bucket; the free key also refuses more than 1 request per second",
    )
    requests_per_day: int = Field(
        default=25, ge=0, description="daily budget shared through Redis by every replica; 0 = no daily limit"
    )
    plan: Plan = Field(
        default="free",
        description="free: end-of-day GLOBAL_QUOTE, compact raw daily history; premium: live quotes, full adjusted history",
    )


def _regular_close(day: date) -> datetime:
    return datetime.combine(day, REGULAR_CLOSE, tzinfo=EASTERN)


def classify(body: dict[str, Any], redact: Callable[[str], str] = str) -> ProviderError | None:
    """The error an HTTP-200 answer stands for, or None when it carries data.

    The texts are Alpha Vantage's own (recorded in tests/fixtures/providers/alphavantage).
    """
    for key in ("Error Message", "Information", "Note"):
        if key not in body:
            continue
        text = redact(str(body[key]))
        lower = text.lower()
        short = f"{key}: {text[:200]}"
        if "apikey is invalid" in lower or "api key is valid" in lower or "demo purposes only" in lower:
            return InvalidCredentials(NAME, f"{key}: the API key was rejected", setting=KEY_SETTING)
        if key == "Error Message":
            return SymbolNotFound(NAME, short)
        if "1 request per second" in lower or "spreading out" in lower or "burst" in lower:
            return BurstLimited(NAME, short)
        if "requests per day" in lower or ("calls per day" in lower and "per minute" not in lower):
            return QuotaExhausted(NAME, short, resets_at=0.0)  # the daily budget knows when it resets
        if "premium feature" in lower or "premium endpoint" in lower:
            return PremiumRequired(NAME, short)
        return RateLimitedError(NAME, short)
    return None


class AlphaVantageClient:
    name = NAME

    def __init__(
        self,
        http: ProviderHttp,
        api_key: SecretStr,
        clock: Clock = REAL_CLOCK,
        *,
        plan: Plan = "free",
        session_close: SessionClose | None = None,
    ) -> None:
        self.http = http
        self._api_key = api_key
        self.clock = clock
        self.plan = plan
        self._session_close = session_close
        self._daily_cache: dict[str, list[DailyBar]] = {}
        self._actions: dict[str, list[date]] = {}

    @property
    def end_of_day(self) -> bool:
        """A free key's GLOBAL_QUOTE is the last session's close, not a live price."""
        return self.plan == "free"

    def _close_of(self, day: date) -> datetime:
        close = self._session_close(day) if self._session_close is not None else None
        return close or _regular_close(day)

    async def aclose(self) -> None:
        await self.http.aclose()

    def _params(self, function: str, **extra: str) -> dict[str, str]:
        return {"function": function, **extra, "datatype": "json", "apikey": self._api_key.get_secret_value()}

    def _redact(self, text: str) -> str:
        key = self._api_key.get_secret_value()
        return text.replace(key, "***") if key else text

    def _check(self, data: Any) -> None:
        error = classify(require_dict(NAME, data, "response"), self._redact)
        if error is not None:
            raise error

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
        close_ms = int(self._close_of(day).timestamp() * 1000)
        # End-of-day data, or a quote of an earlier session, happened at that session's close.
        ts_ms = close_ms if self.end_of_day else min(now_ms, close_ms)
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
        """TIME_SERIES_INTRADAY, raw (`adjusted=false`) like the live ticks it is stored next to.

        `month` (YYYY-MM) selects a historical month (with outputsize=full, a premium feature).
        """
        params = self._params(
            "TIME_SERIES_INTRADAY",
            symbol=symbol,
            interval=interval,
            outputsize=outputsize,
            extended_hours="true",
            adjusted="false",
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
            open_, high, low, close = positive_ohlc(NAME, fields, OHLC_FIELDS)
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

    async def daily(self, symbol: str, adjusted: bool = False, outputsize: str = "compact") -> list[DailyBar]:
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
            open_, high, low, close = positive_ohlc(NAME, fields, OHLC_FIELDS)
            adj: Decimal | None = None
            volume_key = "5. volume"
            if _is_corporate_action(fields):
                self._actions.setdefault(symbol, []).append(day)
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

    async def _daily_series(self, symbol: str) -> list[DailyBar]:
        """The whole series the plan allows, one request per symbol, cached for the run's chunks.

        Premium: the adjusted series in full. Free: the raw series, compact (latest 100 sessions),
        the only daily history a free key is served; asking for more only burns the quota.
        """
        if symbol not in self._daily_cache:
            if self.plan == "premium":
                series = await self.daily(symbol, adjusted=True, outputsize="full")
            else:
                series = await self.daily(symbol, adjusted=False, outputsize="compact")
            self._daily_cache = {symbol: series}
        return self._daily_cache[symbol]

    async def corporate_actions(self, symbol: str, since: date) -> list[date]:
        """Split and dividend days since `since`, from the adjusted series (premium only; a free
        key stores no adjusted closes, so there is nothing to refresh)."""
        if self.plan != "premium":
            return []
        await self._daily_series(symbol)
        return [day for day in self._actions.get(symbol, []) if day >= since]

    async def history_start(self, symbol: str, interval: str) -> date | None:
        """First day the plan can serve, when the plan (not the listing) limits history."""
        if self.plan == "premium":
            return None
        if interval != "1d":
            raise PremiumRequired(NAME, "intraday history (outputsize=full, month=) needs a premium key")
        series = await self._daily_series(symbol)
        if len(series) < COMPACT_SESSIONS:
            return None  # the whole listing fits in the compact window
        return series[0].day

    async def daily_bars(self, symbol: str, start: date, end: date) -> list[DailyBar]:
        """History between two days, cut from the cached series."""
        return [bar for bar in await self._daily_series(symbol) if start <= bar.day <= end]

    async def minute_bars(self, symbol: str, start: datetime, end: datetime) -> list[MinuteBar]:
        """One calendar month per request (the `month` parameter), then cut to [start, end)."""
        if self.plan != "premium":
            raise PremiumRequired(NAME, "intraday history (outputsize=full, month=) needs a premium key")
        bars: list[MinuteBar] = []
        month = date(start.year, start.month, 1)
        while datetime.combine(month, time(0), tzinfo=UTC) < end:
            chunk = await self.intraday(symbol, "1min", month=f"{month:%Y-%m}", outputsize="full")
            bars.extend(bar for bar in chunk if start <= bar.bucket < end)
            month = (month + timedelta(days=32)).replace(day=1)
        return bars


def _is_corporate_action(fields: dict[str, Any]) -> bool:
    """A dividend paid or a split effective that day (TIME_SERIES_DAILY_ADJUSTED columns 7 and 8)."""
    try:
        dividend = Decimal(str(fields.get("7. dividend amount", "0")))
        split = Decimal(str(fields.get("8. split coefficient", "1")))
    except ArithmeticError:
        return False
    return dividend != 0 or split != 1


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


def build(settings: FetcherSettings, own: AlphaVantageSettings) -> AlphaVantageClient:
    from fetcher.providers.factory import build_daily_quota, build_market_hours, provider_http, require

    key = require(own.api_key, KEY_SETTING, NAME)
    http = provider_http(
        settings,
        NAME,
        own.base_url,
        own.requests_per_minute,
        {},
        quota=build_daily_quota(settings, NAME, own.requests_per_day),
    )
    client = AlphaVantageClient(
        http,
        key,
        plan=own.plan,
        session_close=build_market_hours(settings).session_close,
    )
    if client.end_of_day:
        log.info(
            "alphavantage quotes are end-of-day on this plan: each is the last session's close",
            plan=own.plan,
            requests_per_day=own.requests_per_day,
        )
    return client


PLUGIN = ProviderPlugin(
    name=NAME,
    summary="polls GLOBAL_QUOTE (end-of-day on a free key); daily history for backfill",
    settings_model=AlphaVantageSettings,
    quote_client=build,
    history_client=build,
)
