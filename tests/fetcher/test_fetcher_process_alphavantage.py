"""The fetcher process against a loopback Alpha Vantage serving each of its current limit answers.

Every case runs `python -m fetcher` as a real process with a 600/min token bucket (far above the
free key's limits), so only the classification of the answers keeps it inside them. Finnhub
stands in as the next provider of the chain.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import redis

from stocktrack_common.stream_names import tick_streams
from tests.fetcher import clients
from tests.fetcher.conftest import FakeProvider, Reply, fixture_text
from tests.fetcher.standin import threaded
from tests.support.processes import ServiceProcess, Services
from tests.support.waiting import wait_until

SHARDS = 2


def _fetcher(services: Services, url: str, chain: str) -> ServiceProcess:
    return services.start(
        "fetcher",
        PROVIDER="failover" if "," in chain else chain,
        PROVIDER_CHAIN=chain,
        SYMBOLS="IBM",
        TICK_SHARDS=str(SHARDS),
        WATCHLIST_FROM_DB="false",
        MARKET_SESSION="always",
        POLL_INTERVAL_SECONDS="0.2",
        HTTP_MAX_ATTEMPTS="3",
        BACKOFF_BASE_SECONDS="0.05",
        BACKOFF_MAX_SECONDS="0.2",
        ALPHAVANTAGE_API_KEY=clients.AV_KEY,
        ALPHAVANTAGE_BASE_URL=url,
        ALPHAVANTAGE_REQUESTS_PER_MINUTE="600",
        FINNHUB_API_KEY=clients.FINNHUB_KEY,
        FINNHUB_BASE_URL=url,
        FINNHUB_REQUESTS_PER_MINUTE="600",
    )


def _sources(redis_url: str, prefix: str) -> list[str]:
    with redis.Redis.from_url(redis_url) as client:
        found = []
        for stream in tick_streams(prefix, SHARDS):
            for _, fields in client.xrange(stream):
                found.append(json.dumps({k.decode(): v.decode() for k, v in fields.items()}))
        return found


def _calls(provider: FakeProvider, path: str) -> int:
    return sum(1 for r in provider.requests if r.path == path)


def _readyz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_burst_answer_is_retried_and_quotes_flow(services: Services, redis_url: str, prefix: str) -> None:
    provider = FakeProvider()
    provider.script(
        "/query?function=GLOBAL_QUOTE",
        Reply(fixture_text("alphavantage/information_burst.json")),
        Reply(fixture_text("alphavantage/global_quote.json")),
    )
    with threaded(provider):
        fetcher = _fetcher(services, provider.url, "alphavantage")
        wait_until(lambda: any("alphavantage" in t for t in _sources(redis_url, prefix)), 30, "a tick")
        assert fetcher.proc is not None and fetcher.proc.poll() is None
    assert "burst_limited" in fetcher.output()


def test_daily_quota_stops_alphavantage_and_finnhub_takes_over(
    services: Services, redis_url: str, prefix: str
) -> None:
    provider = FakeProvider()
    provider.script(
        "/query?function=GLOBAL_QUOTE", Reply(fixture_text("alphavantage/information_daily_quota.json"))
    )
    provider.script("/quote", Reply(fixture_text("finnhub/quote.json")))
    with threaded(provider):
        fetcher = _fetcher(services, provider.url, "alphavantage,finnhub")
        wait_until(lambda: _calls(provider, "/quote") >= 10, 30, "ten polls served by finnhub")
        assert any("finnhub" in t for t in _sources(redis_url, prefix))
        assert _calls(provider, "/query") == 1  # not one request after the quota answer
    output = fetcher.output()
    assert "daily request quota spent" in output
    assert clients.AV_KEY not in output  # the quota answer echoes the key


def test_rejected_key_disables_alphavantage_with_a_named_error(
    services: Services, redis_url: str, prefix: str
) -> None:
    provider = FakeProvider()
    provider.script(
        "/query?function=GLOBAL_QUOTE", Reply(fixture_text("alphavantage/error_invalid_apikey.json"))
    )
    provider.script("/quote", Reply(fixture_text("finnhub/quote.json")))
    with threaded(provider):
        fetcher = _fetcher(services, provider.url, "alphavantage,finnhub")
        fetcher.wait_healthy()
        wait_until(lambda: _readyz(fetcher.port)[0] == 503, 30, "/readyz to report the disabled provider")
        _, body = _readyz(fetcher.port)
        wait_until(lambda: _calls(provider, "/quote") >= 10, 30, "ten polls served by finnhub")
        assert _calls(provider, "/query") <= 3  # a handful at most, never a stream of requests
    assert "ALPHAVANTAGE_API_KEY" in json.loads(body)["checks"]["providers"]
    output = fetcher.output()
    assert "provider disabled" in output and "ALPHAVANTAGE_API_KEY" in output
    assert "not_found" not in output and "unknown symbol" not in output


def test_tiingo_from_its_entry_point_serves_and_a_rejected_token_fails_over(
    services: Services, redis_url: str, prefix: str
) -> None:
    provider = FakeProvider()
    provider.script("/iex/ibm", Reply(fixture_text("tiingo/invalid_token.json"), status=401))
    provider.script("/quote", Reply(fixture_text("finnhub/quote.json")))
    with threaded(provider):
        fetcher = services.start(
            "fetcher",
            PROVIDER="failover",
            PROVIDER_CHAIN="tiingo,finnhub",
            SYMBOLS="IBM",
            TICK_SHARDS=str(SHARDS),
            WATCHLIST_FROM_DB="false",
            MARKET_SESSION="always",
            POLL_INTERVAL_SECONDS="0.2",
            TIINGO_API_KEY="TIINGOKEY-5e1c",
            TIINGO_BASE_URL=provider.url,
            TIINGO_REQUESTS_PER_MINUTE="600",
            FINNHUB_API_KEY=clients.FINNHUB_KEY,
            FINNHUB_BASE_URL=provider.url,
            FINNHUB_REQUESTS_PER_MINUTE="600",
        )
        fetcher.wait_healthy()
        wait_until(lambda: _calls(provider, "/quote") >= 5, 30, "finnhub taking over")
        wait_until(lambda: _readyz(fetcher.port)[0] == 503, 10, "/readyz to name the token")
        assert _calls(provider, "/iex/ibm") == 1
    assert "TIINGO_API_KEY" in fetcher.output()
