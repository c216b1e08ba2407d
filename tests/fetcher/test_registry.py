"""PROVIDER and its settings select and configure the source; missing keys fail at start, clearly.

A provider's own variables (ALPACA_*, FINNHUB_*, ...) are read by its module's settings model
from the environment, so they are set there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from fetcher.providers.alpaca_stream import AlpacaTradeStream
from fetcher.providers.alphavantage import AlphaVantageSettings
from fetcher.providers.polling import PollingSource
from fetcher.providers.registry import build_source
from fetcher.providers.replay import ReplaySource
from fetcher.settings import FetcherSettings


def settings(**values: object) -> FetcherSettings:
    return FetcherSettings(watchlist_from_db=False, symbols=["AAPL"], **values)  # type: ignore[arg-type]


ALPACA_KEYS = {"ALPACA_API_KEY_ID": "i", "ALPACA_API_SECRET_KEY": "s"}


def provider_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_failover_chain_and_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    provider_env(monkeypatch, FINNHUB_API_KEY="f", ALPHAVANTAGE_API_KEY="a", **ALPACA_KEYS)
    source = build_source(
        settings(provider="failover", provider_chain="finnhub,alphavantage", provider_routes="MSFT=alpaca")
    )
    assert isinstance(source, PollingSource)
    assert source.router.chain_for("AAPL") == ["finnhub", "alphavantage"]
    assert source.router.chain_for("MSFT") == ["alpaca"]
    assert source.router.providers["alphavantage"].http.bucket.rate_per_second == pytest.approx(5 / 60)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("provider", "message"),
    [
        ("alphavantage", "ALPHAVANTAGE_API_KEY"),
        ("finnhub", "FINNHUB_API_KEY"),
        ("alpaca", "ALPACA_API_KEY_ID"),
        ("alpaca-stream", "ALPACA_API_KEY_ID"),
        ("failover", "PROVIDER_CHAIN"),
        ("replay", "REPLAY_PATH"),
        ("nope", "unknown provider"),
    ],
)
def test_missing_configuration_is_named(provider: str, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ALPHAVANTAGE_API_KEY", "FINNHUB_API_KEY", *ALPACA_KEYS):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match=message):
        build_source(settings(provider=provider))


def test_stream_and_replay_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recording = tmp_path / "t.csv"
    recording.write_text("symbol,ts,price\nAAPL,1715350000000,1\n")
    assert isinstance(build_source(settings(provider="replay", replay_path=recording)), ReplaySource)
    provider_env(monkeypatch, ALPACA_STREAM_MAX_SYMBOLS="7", **ALPACA_KEYS)
    stream = build_source(settings(provider="alpaca-stream"))
    assert isinstance(stream, AlpacaTradeStream) and stream.cap == 7


def test_keys_are_secret_in_settings_repr() -> None:
    configured = AlphaVantageSettings(api_key="av-secret-123")  # type: ignore[arg-type]
    assert isinstance(configured.api_key, SecretStr)
    assert "av-secret-123" not in repr(configured) and "av-secret-123" not in str(configured.model_dump())
