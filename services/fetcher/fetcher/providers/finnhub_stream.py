"""Finnhub's trade WebSocket (free tier: US stock trades, one connection, 50 symbols) on the shared base.

Protocol (https://finnhub.io/docs/api/websocket-trades): connect to `wss://ws.finnhub.io?token=KEY`
(a bad key is refused at the upgrade), send `{"type":"subscribe","symbol":"AAPL"}` per symbol (no
confirmation follows), then receive
`{"type":"trade","data":[{"s":"AAPL","p":261.74,"t":1715371200123,"v":100,"c":["1"]}]}` with `t`
in epoch milliseconds, `{"type":"ping"}` while nothing trades, and
`{"type":"error","msg":"Subscribing to too many symbols"}` past the plan's limit.

Finnhub trades carry no id, so a trade's identity is (time, price, size) plus its position among
identical trades of the same message. The free tier keeps no trade history, so a gap after a
drop cannot be filled (it is logged and counted, never hidden); symbols beyond the cap and every
symbol while the stream is down are polled through `/quote`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Unpack

from pydantic import SecretStr

from fetcher.providers.errors import MalformedResponse, ProviderError
from fetcher.providers.finnhub import NAME, FinnhubClient
from fetcher.providers.parsing import non_negative_int, positive_decimal
from fetcher.providers.streaming import StreamConnection, StreamingSource, StreamTuning
from fetcher.quotes import Quote
from fetcher.watchlist import WatchList

SOURCE_NAME = "finnhub-stream"


def trades_to_quotes(data: Any) -> list[Quote]:
    if not isinstance(data, list):
        raise MalformedResponse(NAME, "trade message without a data list")
    quotes = []
    seen: Counter[tuple[Any, ...]] = Counter()
    for row in data:
        if not isinstance(row, dict) or not isinstance(row.get("s"), str):
            raise MalformedResponse(NAME, "trade without a symbol")
        ts = row.get("t")
        if not isinstance(ts, int) or isinstance(ts, bool) or ts <= 0:
            raise MalformedResponse(NAME, "trade t is not epoch milliseconds")
        price = positive_decimal(NAME, row.get("p"), "p")
        size = non_negative_int(NAME, row.get("v"), "v")
        key = (row["s"], ts, str(price), size)
        seen[key] += 1
        quotes.append(
            Quote(
                symbol=row["s"],
                ts_ms=ts,
                price=price,
                source=NAME,
                stamp=f"{ts}|{price}|{size}|{seen[key]}",
                trade_size=size,
            )
        )
    return quotes


class FinnhubTradeStream(StreamingSource):
    name = SOURCE_NAME
    provider = NAME
    key_setting = "FINNHUB_API_KEY"
    default_max_symbols = 50

    def __init__(
        self,
        url: str,
        api_key: SecretStr,
        rest: FinnhubClient,
        watchlist: WatchList,
        **tuning: Unpack[StreamTuning],
    ) -> None:
        super().__init__(watchlist, **tuning)
        self._url = url
        self._key = api_key
        self.rest = rest

    def url(self) -> str:
        return f"{self._url}?token={self._key.get_secret_value()}"

    async def subscribe(self, conn: StreamConnection, symbols: list[str]) -> None:
        for symbol in symbols:
            await conn.send({"type": "subscribe", "symbol": symbol})
        # Finnhub confirms nothing; an over-limit subscribe is answered with an error instead.
        self.confirm([*self.streamed, *[s for s in symbols if s not in self.streamed]])

    async def unsubscribe(self, conn: StreamConnection, symbols: list[str]) -> None:
        for symbol in symbols:
            await conn.send({"type": "unsubscribe", "symbol": symbol})
        self.confirm([s for s in self.streamed if s not in symbols])

    def handle(self, item: dict[str, Any]) -> list[Quote]:
        kind = item.get("type")
        if kind == "trade":
            return trades_to_quotes(item.get("data"))
        if kind == "error" and "too many symbols" in str(item.get("msg", "")).lower():
            # One error per refused subscribe, answered in order: the latest subscribed is refused.
            if self.streamed:
                refused = self.streamed[-1]
                self.confirm(self.streamed[:-1])
                self._pending = {refused}
            self.limit_reached()
        return []

    async def poll(self, symbols: list[str]) -> list[Quote]:
        quotes = []
        for symbol in symbols:
            try:
                quotes.append(await self.rest.quote(symbol))
            except ProviderError:
                continue
        return quotes

    async def close_rest(self) -> None:
        await self.rest.aclose()
