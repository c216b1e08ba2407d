"""What a client asks for: symbols (any by default) and event types (all by default)."""

from __future__ import annotations

from typing import Any

from stocktrack_common.http_errors import ApiError
from stocktrack_common.settings import parse_symbol_list, split_list
from streamer.events import EVENT_TYPES

MAX_SYMBOLS = 500


def parse_symbols(value: Any) -> list[str] | None:
    """None means every symbol."""
    if value is None:
        return None
    try:
        symbols = parse_symbol_list(value)
    except ValueError as exc:
        raise ApiError(422, str(exc), details=[{"loc": ["symbols"], "msg": str(exc)}]) from exc
    if len(symbols) > MAX_SYMBOLS:
        raise ApiError(422, f"at most {MAX_SYMBOLS} symbols")
    return symbols or None


def parse_types(value: Any) -> set[str]:
    if value is None:
        return set(EVENT_TYPES.values())
    names = [name.lower() for name in split_list(value)]
    unknown = [n for n in names if n not in EVENT_TYPES]
    if unknown or not names:
        raise ApiError(
            422,
            f"types must be a list of {', '.join(EVENT_TYPES)}",
            details=[{"loc": ["types"], "msg": f"unknown: {unknown}"}],
        )
    return {EVENT_TYPES[n] for n in names}
