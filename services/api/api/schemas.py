"""Response bodies as pydantic models; the OpenAPI document's response schemas come from these.

Prices are decimal strings (exact, as stored); times are epoch milliseconds UTC.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

EpochMs = int
DecimalString = str


class ErrorDetail(BaseModel):
    code: str = Field(description="machine readable, e.g. validation_error, not_found, rate_limited")
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail


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
    added_at: EpochMs


class SymbolList(BaseModel):
    items: list[SymbolOut]
