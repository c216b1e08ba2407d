"""The shared CSV daily-bar parser: header aliases, validation errors, idempotent upsert."""

from __future__ import annotations

import gzip
import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from stocktrack_common.daily_bars_csv import (
    DailyBarsCSVError,
    load_daily_bars_csv,
    parse_daily_bars,
    read_daily_bars_file,
)

YAHOO = "Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,10,11,9.5,10.5,10.25,1000\n2024-01-03,10.5,12,10,11,10.75,2000\n"
BOKEH = "Ticker,Date,Open,High,Low,Close,Volume,Adj Close\nibm,2001-05-01 00:00:00,100,101,99,100.5,50,70.1\n"


def test_yahoo_style_header_with_symbol_argument() -> None:
    bars = list(parse_daily_bars(io.StringIO(YAHOO), symbol="msft", source="yahoo"))
    assert [b.day for b in bars] == [date(2024, 1, 2), date(2024, 1, 3)]
    assert bars[0].symbol == "MSFT" and bars[0].adj_close == Decimal("10.25") and bars[0].source == "yahoo"


def test_bokeh_style_header_with_ticker_column_and_filter() -> None:
    bars = list(parse_daily_bars(io.StringIO(BOKEH)))
    assert bars[0].symbol == "IBM" and bars[0].day == date(2001, 5, 1) and bars[0].volume == 50
    assert list(parse_daily_bars(io.StringIO(BOKEH), symbols=["AAPL"])) == []


def test_snake_case_header_without_adj_close() -> None:
    text = "date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n"
    bar = next(parse_daily_bars(io.StringIO(text), symbol="X"))
    assert bar.adj_close is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("Date,Open,High,Low,Close\n", "missing column"),
        (YAHOO.replace("10.5,12", "10.5,abc"), "line 3: high is not a number"),
        (YAHOO.replace("2024-01-03", "03/01/2024"), "line 3: date"),
        (YAHOO.replace("11,9.5", "9,9.5"), "high/low"),
        (YAHOO.replace(",1000", ",-5"), "volume must be >= 0"),
        ("", "empty file"),
    ],
)
def test_bad_files_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(DailyBarsCSVError, match=message):
        list(parse_daily_bars(io.StringIO(text), symbol="X"))


def test_symbol_required_when_file_has_none() -> None:
    with pytest.raises(DailyBarsCSVError, match="no symbol column"):
        list(parse_daily_bars(io.StringIO(YAHOO)))


def test_gzip_files_and_idempotent_upsert(tmp_path: Path, db_url: str) -> None:
    path = tmp_path / "bars.csv.gz"
    path.write_bytes(gzip.compress(YAHOO.encode()))
    assert len(read_daily_bars_file(path, symbol="ABC")) == 2
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert load_daily_bars_csv(conn, path, symbol="ABC") == 2
        assert load_daily_bars_csv(conn, path, symbol="ABC") == 0
        path.write_bytes(gzip.compress(YAHOO.replace(",2000", ",2500").encode()))
        assert load_daily_bars_csv(conn, path, symbol="ABC") == 1
        rows = conn.execute(
            "SELECT day, close, volume FROM daily_bars WHERE symbol = 'ABC' ORDER BY day"
        ).fetchall()
    assert rows == [(date(2024, 1, 2), Decimal("10.5"), 1000), (date(2024, 1, 3), Decimal("11"), 2500)]
