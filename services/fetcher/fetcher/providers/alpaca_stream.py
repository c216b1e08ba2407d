"""Alpaca's trade WebSocket on the shared streaming base, with REST snapshots for what it cannot carry.

Protocol (https://docs.alpaca.markets/docs/real-time-stock-pricing-data): the server greets with
`[{"T":"success","msg":"connected"}]`; the client sends `auth`, then `subscribe` with trade
symbols; every subscribe or unsubscribe is answered with the full current subscription
(`{"T":"subscription","trades":[...],...}`), which is taken as the truth about what is streamed.
Trades arrive as `{"T":"t",...}`.

Errors, as documented:
- 405 "symbol limit exceeded": the subscribe was refused and the previous subscriptions stay;
  the refused symbols are polled through the multi-symbol snapshots endpoint instead.
- 402 "auth failed" and 409 "insufficient subscription" (the plan lacks this feed; sent in reply
  to auth): no reconnect helps, so the stream stops with an error naming the setting and every
  symbol is polled through snapshots.
- anything else (406 connection limit, 407 slow client, 500): reconnect with backoff.
Plans limit the symbols one connection may stream (free: 30), so at most
`ALPACA_STREAM_MAX_SYMBOLS` are subscribed and the rest is polled from the start.

Corrections and cancels of trades arrive on the trade channel (subscribing to trades subscribes
to them; the confirmation lists them as `corrections` and `cancelErrors`). Their fields, as
alpaca-py maps them (alpaca/data/mappings.py, TRADE_CORRECTION_MAPPING and TRADE_CANCEL_MAPPING):
correction `{"T":"c","S","x","oi","op","os","oc","ci","cp","cs","cc","z","t"}` (original and
corrected id, price, size, conditions); cancel or error `{"T":"x","S","i","x","p","s","a","z","t"}`
with action `a` "C" (cancel) or "E" (error), both of which void the trade. Each becomes a
TradeAmendment naming the trade by the id its tick was stored with (`<x>:<i>`), published in
order with the trades on the amendments stream; the writer corrects or removes the stored tick
and rebuilds its minute's bar. One that cannot be read is dropped with a log, like any
malformed message.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Unpack

from pydantic import SecretStr, ValidationError

from fetcher.provider_metrics import TRADE_AMENDMENTS
from fetcher.providers.alpaca import NAME, AlpacaClient, trade_id, trade_to_quote
from fetcher.providers.errors import MalformedResponse
from fetcher.providers.parsing import non_negative_int, positive_decimal, rfc3339_ms
from fetcher.providers.streaming import (
    StreamConnection,
    StreamFatal,
    StreamingSource,
    StreamRejected,
    StreamTuning,
)
from fetcher.quotes import Quote
from fetcher.watchlist import WatchList
from stocktrack_common.messages import TradeAmendment, describe_validation_error

SOURCE_NAME = "alpaca-stream"
SYMBOL_LIMIT = 405
FATAL = {
    402: "ALPACA_API_KEY_ID / ALPACA_API_SECRET_KEY",
    409: "ALPACA_STREAM_URL (the plan does not include this feed; free plans stream /v2/iex)",
}


class AlpacaTradeStream(StreamingSource):
    name = SOURCE_NAME
    provider = NAME
    default_max_symbols = 30

    def __init__(
        self,
        url: str,
        key_id: SecretStr,
        secret_key: SecretStr,
        rest: AlpacaClient,
        watchlist: WatchList,
        **tuning: Unpack[StreamTuning],
    ) -> None:
        super().__init__(watchlist, **tuning)
        self._url = url
        self._key_id = key_id
        self._secret = secret_key
        self.rest = rest

    def url(self) -> str:
        return self._url

    def _error(self, item: dict[str, Any]) -> StreamRejected:
        code = item.get("code")
        message = str(item.get("msg", ""))
        if isinstance(code, int) and code in FATAL:
            return StreamFatal(code, message, FATAL[code])
        return StreamRejected(code, message)

    def _control(self, kind: str, msg: str | None = None) -> Any:
        def accept(item: dict[str, Any]) -> bool:
            if item.get("T") == "error":
                raise self._error(item)
            return item.get("T") == kind and (msg is None or item.get("msg") == msg)

        return accept

    async def handshake(self, conn: StreamConnection) -> None:
        await conn.expect(self._control("success", "connected"))
        await conn.send(
            {
                "action": "auth",
                "key": self._key_id.get_secret_value(),
                "secret": self._secret.get_secret_value(),
            }
        )
        await conn.expect(self._control("success", "authenticated"))

    async def subscribe(self, conn: StreamConnection, symbols: list[str]) -> None:
        if symbols:
            await conn.send({"action": "subscribe", "trades": symbols})

    async def unsubscribe(self, conn: StreamConnection, symbols: list[str]) -> None:
        await conn.send({"action": "unsubscribe", "trades": symbols})

    async def await_subscription(self, conn: StreamConnection, symbols: list[str]) -> None:
        """The first confirmation; a 405 halves the request on the same socket until one fits."""
        confirmation = self._control("subscription")

        def accept(item: dict[str, Any]) -> bool:
            if item.get("T") == "error" and item.get("code") == SYMBOL_LIMIT:
                return True
            return bool(confirmation(item))

        while symbols:
            reply = await conn.expect(accept)
            if reply.get("T") == "subscription":
                self.confirm(list(reply.get("trades") or []))
                return
            self.limit_reached()
            symbols = self.stream_targets()
            self._pending = set(symbols)
            await self.subscribe(conn, symbols)

    def handle(self, item: dict[str, Any]) -> Sequence[Quote | TradeAmendment]:
        kind = item.get("T")
        if kind == "t":
            symbol = item.get("S")
            if not isinstance(symbol, str):
                raise MalformedResponse(NAME, "trade without a symbol")
            return [trade_to_quote(symbol, item)]
        if kind in ("c", "x"):
            amendment = amendment_of(item)
            TRADE_AMENDMENTS.labels(NAME, amendment.kind).inc()
            return [amendment]
        if kind == "subscription":
            self.confirm(list(item.get("trades") or []))
        elif kind == "error":
            if item.get("code") == SYMBOL_LIMIT:
                self.limit_reached()
            else:
                raise self._error(item)
        return []

    async def gap_trades(self, symbol: str, start: datetime, end: datetime) -> list[Quote] | None:
        return await self.rest.trades(symbol, start, end)

    async def poll(self, symbols: list[str]) -> list[Quote]:
        return list((await self.rest.snapshots(symbols)).values())

    async def close_rest(self) -> None:
        await self.rest.aclose()


def amendment_of(item: dict[str, Any]) -> TradeAmendment:
    """A correction (`T: "c"`) or cancel/error (`T: "x"`) as the TradeAmendment of the trade it names."""
    symbol = item.get("S")
    if not isinstance(symbol, str):
        raise MalformedResponse(NAME, "trade amendment without a symbol")
    exchange = item.get("x")
    ts = rfc3339_ms(NAME, item.get("t"), "t")
    if item.get("T") == "c":
        original, corrected = trade_id(exchange, item.get("oi")), trade_id(exchange, item.get("ci"))
        if original is None or corrected is None:
            raise MalformedResponse(NAME, "correction without x, oi and ci")
        price = positive_decimal(NAME, item.get("cp"), "cp")
        size = non_negative_int(NAME, item.get("cs"), "cs")
        fields: dict[str, Any] = {"kind": "correction", "trade": original, "corrected_trade": corrected}
    else:
        cancelled = trade_id(exchange, item.get("i"))
        if cancelled is None:
            raise MalformedResponse(NAME, "cancel without x and i")
        if item.get("a") not in ("C", "E"):
            raise MalformedResponse(NAME, f"cancel action {item.get('a')!r} is neither C nor E")
        price = positive_decimal(NAME, item.get("p"), "p")
        size = non_negative_int(NAME, item.get("s"), "s")
        fields = {"kind": "cancel", "trade": cancelled}
    try:
        return TradeAmendment(symbol=symbol, ts=ts, price=price, size=size, source=NAME, **fields)
    except ValidationError as exc:
        raise MalformedResponse(NAME, f"trade amendment: {describe_validation_error(exc)}") from None
