"""Production logging: structlog events and standard-library records as one JSON object per line."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import orjson
import pytest
import structlog

from stocktrack_common.json_logging import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_structlog_and_stdlib_lines_share_one_json_shape(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("api", "INFO", "json")
    log = structlog.get_logger("access")
    structlog.contextvars.bind_contextvars(request_id="req-1")
    log.info("request", route="/v1/quotes/{symbol}/latest", status=200, duration_ms=0.5)
    log.debug("below the level")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("handler failed")
    logging.getLogger("aiohttp.server").error("from the standard library")
    logging.getLogger("aiohttp.access").info("quieted below WARNING")

    lines = [orjson.loads(line) for line in capfd.readouterr().out.splitlines()]
    assert [line["event"] for line in lines] == ["request", "handler failed", "from the standard library"]
    for line in lines:
        assert line["service"] == "api" and line["request_id"] == "req-1"
        assert line["timestamp"].endswith("Z")
    access, failure, stdlib = lines
    assert access["level"] == "info" and access["route"] == "/v1/quotes/{symbol}/latest"
    assert access["status"] == 200 and access["duration_ms"] == 0.5
    assert failure["level"] == "error" and "RuntimeError: boom" in failure["exception"]
    assert stdlib["level"] == "error"


@pytest.mark.usefixtures("restore_logging")
def test_the_level_is_the_configured_one(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("writer", "WARNING", "json")
    log = structlog.get_logger("writer")
    log.info("access lines are off at WARNING")
    log.warning("kept", batch=3)
    lines = [orjson.loads(line) for line in capfd.readouterr().out.splitlines()]
    assert [(line["event"], line["level"], line["batch"]) for line in lines] == [("kept", "warning", 3)]


@pytest.mark.usefixtures("restore_logging")
def test_a_logger_cached_earlier_follows_the_latest_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tests and CLIs configure logging more than once in a process; no line goes to a stale stream,
    and a stream that cannot be written is reported on stderr, not raised into the caller."""
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", first)
    configure_logging("janitor", "INFO", "json")
    log = structlog.get_logger("janitor")
    log.info("one")
    monkeypatch.setattr(sys, "stdout", second)
    configure_logging("janitor", "INFO", "json")
    log.info("two")
    assert [orjson.loads(line)["event"] for line in first.getvalue().splitlines()] == ["one"]
    assert [orjson.loads(line)["event"] for line in second.getvalue().splitlines()] == ["two"]
    second.close()
    log.info("three")  # must not raise
    assert "--- Logging error ---" in capsys.readouterr().err
