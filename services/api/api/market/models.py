"""Request parameters and response bodies of the market endpoints, as pydantic models.

They validate requests and produce the OpenAPI document's schemas. Prices are decimal strings
(exact, as stored); times are epoch milliseconds UTC.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from api.http.params import SYMBOL_PARAM_PATTERN, Cursor, Limit, Printable, QueryModel, TimeRange

MAX_SYMBOLS_PER_REQUEST = 100
SYMBOL_LIST_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,14}(,[A-Za-z0-9][A-Za-z0-9.\-]{0,14})*$"


def parse_symbol_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.upper() for item in value.split(",")]
    return value


SymbolCsv = Annotated[
    list[Annotated[str, Field(pattern=SYMBOL_PARAM_PATTERN)]],
    BeforeValidator(parse_symbol_csv),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": SYMBOL_LIST_PATTERN,
            "description": f"comma separated, at most {MAX_SYMBOLS_PER_REQUEST}",
            "examples": ["AAPL,MSFT"],
        }
    ),
]
Interval = Literal["1m", "5m", "15m", "1h", "1d"]


class SymbolPath(QueryModel):
    symbol: str = Field(pattern=SYMBOL_PARAM_PATTERN, description="ticker, any case")


class SymbolsQuery(QueryModel):
    include_inactive: bool = Field(default=False, description="also list removed symbols")


class LatestQuotesQuery(QueryModel):
    symbols: SymbolCsv = Field(min_length=1, max_length=MAX_SYMBOLS_PER_REQUEST)


class TicksQuery(TimeRange):
    limit: Limit = None
    cursor: Cursor = None


DEFAULT_INTERVAL = "1m"


class BarsQuery(TimeRange):
    interval: Interval | None = Field(
        default=None,
        description="bar width; coarser bars are rolled up from 1m bars. Default: 1m, or 1d for a symbol "
        "with daily history only",
    )
    limit: Limit = None
    cursor: Cursor = None


_MACD_ORDER = (
    "MACD EMA period; of macd_fast and macd_slow the shorter is the fast EMA whichever name it is "
    "given under (as in TA-Lib; `params` in the answer shows them ordered), equal periods give a zero line"
)


class IndicatorsQuery(BarsQuery):
    sma_period: int = Field(default=20, ge=2, le=500)
    ema_period: int = Field(default=20, ge=2, le=500)
    rsi_period: int = Field(default=14, ge=2, le=500)
    macd_fast: int = Field(default=12, ge=2, le=500, description=_MACD_ORDER)
    macd_slow: int = Field(default=26, ge=3, le=500, description=_MACD_ORDER)
    macd_signal: int = Field(default=9, ge=1, le=500)

    @model_validator(mode="after")
    def _macd_order(self) -> IndicatorsQuery:
        """Periods in either order are one request, as in TA-Lib's MACD: the shorter is the fast
        EMA. A relation between two parameters has no spelling in their schemas, so rather than
        refuse pairs the document allows, every pair it allows is answered."""
        if self.macd_fast > self.macd_slow:
            self.macd_fast, self.macd_slow = self.macd_slow, self.macd_fast
        return self


class SignalsQuery(TimeRange):
    symbol: str | None = Field(default=None, pattern=SYMBOL_PARAM_PATTERN)
    action: Literal["buy", "sell", "hold"] | None = None
    limit: Limit = None
    cursor: Cursor = None


class SymbolCreate(BaseModel):
    """Body of POST /v1/symbols: add (or re-activate) a symbol on the watch list."""

    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(pattern=SYMBOL_PARAM_PATTERN)
    name: Printable | None = Field(default=None, max_length=200)
    exchange: Printable | None = Field(default=None, max_length=32)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")


EpochMs = int
DecimalString = str


class Quote(BaseModel):
    symbol: str
    ts: EpochMs
    price: DecimalString
    size: int
    source: str


class QuoteMap(BaseModel):
    quotes: dict[str, Quote] = Field(description="symbol -> newest quote")
    missing: list[str] = Field(description="requested symbols without any quote")


class TickPage(BaseModel):
    symbol: str
    items: list[Quote]
    next_cursor: str | None = Field(description="pass as cursor for the next page; null on the last page")


class Bar(BaseModel):
    ts: EpochMs = Field(description="start of the bar")
    open: DecimalString
    high: DecimalString
    low: DecimalString
    close: DecimalString
    volume: int
    trades: int | None = Field(description="null for daily bars from the daily history")


class BarSeries(BaseModel):
    symbol: str
    interval: str
    items: list[Bar]
    next_cursor: str | None = Field(description="the page of older bars; null on the last page")


class IndicatorPoint(BaseModel):
    ts: EpochMs
    close: float
    sma: float | None
    ema: float | None
    rsi: float | None
    macd: float | None
    macd_signal: float | None
    macd_hist: float | None


class IndicatorSeries(BaseModel):
    symbol: str
    interval: str
    params: dict[str, int]
    items: list[IndicatorPoint]
    next_cursor: str | None = Field(description="the page of older points; null on the last page")


class SignalOut(BaseModel):
    symbol: str
    ts: EpochMs
    source: str
    action: Literal["buy", "sell", "hold"]
    confidence: float
    price: DecimalString
    reasons: dict[str, Any]


class SignalPage(BaseModel):
    items: list[SignalOut]
    next_cursor: str | None


class SymbolOut(BaseModel):
    symbol: str
    name: str | None
    exchange: str | None
    currency: str
    active: bool
    added_at: EpochMs | None = Field(
        description="when added through the API; null for a configured-only symbol"
    )
    origin: Literal["config", "api"] = Field(
        description="config: listed in SYMBOLS (always tracked); api: added through POST /v1/symbols"
    )


class SymbolList(BaseModel):
    items: list[SymbolOut]
