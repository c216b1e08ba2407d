"""Structured logging: one JSON object per line on stdout, which Fluent Bit ships as is.

Every event carries service, level and an ISO timestamp; request and message ids travel in
structlog's contextvars so handlers bind them once and every line below inherits them.

structlog's own events (the services' logs, the api's access log: one per request) are rendered
by structlog and written straight to stdout; going through the standard library's `logging`
instead (a LogRecord, caller lookup, handler dispatch) cost three times as much per line. The
standard library's records (aiohttp, psycopg, asyncio) still go through `logging`, rendered by
the same processors, and both kinds of line are written under the one handler lock so they never
interleave. The level is fixed when logging is configured (LOG_LEVEL at start).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog


def _orjson_dumps(obj: Any, default: Any = None) -> str:
    return orjson.dumps(obj, default=default or str).decode()


class _LineWriter:
    """structlog's logger: writes each rendered event as one line on the stdlib handler's stream.

    One instance, pointed at the handler of the latest configure_logging, so loggers cached under
    an earlier configuration follow it, as they did when every event went through `logging`. A
    failed write is reported as `logging` reports one (on stderr), never raised into the caller.
    """

    def __init__(self, handler: logging.StreamHandler[Any]) -> None:
        self.handler = handler

    def msg(self, message: str) -> None:
        handler = self.handler
        handler.acquire()
        try:
            handler.stream.write(message + "\n")
            handler.stream.flush()
        except Exception:
            handler.handleError(logging.makeLogRecord({"msg": message}))
        finally:
            handler.release()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


_WRITER = _LineWriter(logging.StreamHandler(sys.stdout))


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Route structlog and the standard library through one renderer on stdout."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    handler = logging.StreamHandler(sys.stdout)
    _WRITER.handler = handler
    structlog.configure(
        processors=[*shared, _add_service(service), renderer],
        # Events below the level are methods that return at once: a disabled access log costs a call.
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=lambda *_: _WRITER,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _add_service(service),
            renderer,
        ],
    )
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's own access log duplicates ours; quiet chatty libraries below WARNING.
    for noisy in ("aiohttp.access", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _add_service(service: str) -> Any:
    def processor(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("service", service)
        return event

    return processor
