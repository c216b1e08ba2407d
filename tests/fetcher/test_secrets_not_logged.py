"""No log line ever carries an API key: not on success, not on any failure path.

Alpha Vantage takes its key as a query parameter, so a logged URL (or an aiohttp exception
text, which embeds the URL) would leak it; this drives every failure shape with known keys
through the production JSON logging and searches everything written.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import pytest
import structlog

from fetcher.providers.errors import ProviderError
from stocktrack_common.json_logging import configure_logging
from tests.fetcher import clients
from tests.fetcher.conftest import FakeProvider, Reply, fixture_text

KEYS = (clients.AV_KEY, clients.FINNHUB_KEY, clients.ALPACA_KEY_ID, clients.ALPACA_SECRET)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


async def test_keys_never_reach_the_logs(
    fake_provider: FakeProvider, capfd: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    # Production logging, configured here so that its stdout handler writes into capfd's capture.
    configure_logging("fetcher", "DEBUG", "json")
    shapes = [
        Reply(fixture_text("alphavantage/global_quote.json")),
        Reply(fixture_text("alphavantage/note_rate_limit.json")),
        Reply(fixture_text("alphavantage/information_premium.json")),
        Reply(fixture_text("alphavantage/error_message.json")),
        # A provider echoing the key back in an error message must be redacted too.
        Reply({"Error Message": f"the parameter apikey={clients.AV_KEY} is invalid"}),
        Reply("not json {"),
        Reply("boom", status=500),
        Reply("{}", delay=1.0),
        Reply("denied", status=401),
    ]
    for reply in shapes:
        for route in ("/query?function=GLOBAL_QUOTE", "/quote", "/v2/stocks/AAPL/snapshot"):
            fake_provider.script(route, reply)
        for make in (clients.alphavantage, clients.finnhub, clients.alpaca):
            client = make(fake_provider.url, attempts=2, timeout=0.2)
            try:
                await client.quote("AAPL")
            except ProviderError:
                pass
            finally:
                await client.aclose()
    # A connection refused: aiohttp's exception text holds the whole URL.
    client = clients.alphavantage("http://127.0.0.1:9", attempts=1)
    with contextlib.suppress(ProviderError):
        await client.quote("AAPL")
    await client.aclose()

    written = capfd.readouterr()
    everything = written.out + written.err
    failures = [line for line in written.out.splitlines() if '"event":"provider request failed"' in line]
    assert len(failures) > 20  # every failure was logged, as JSON...
    for key in KEYS:
        assert key not in everything  # ...without any key
    assert len(fake_provider.requests) > 20
