"""schemathesis hooks for the api's fuzz test: the three refusals no schema can state.

Every other rule a request must meet is in the OpenAPI document, so schemathesis' check that
schema-valid requests are accepted (ST202) runs in full. Three answers depend on state outside
the request, which JSON Schema cannot express; each is documented in the document's
descriptions and in docs/api.md, and each is excused here only after the hook has confirmed, on
its own, that the refusal was right:

- a `cursor` this server never issued for this very query (cursors are HMAC-signed and bound to
  the path and filters they page: a generated string is a forgery, and the stateful phase's
  `next_page` links may send a real cursor with other filters) is a 400 at `query.cursor`;
- an alert rule for a symbol neither seeded by the test nor added through POST /v1/symbols is a
  422 at `body.symbol`;
- an alert rule whose target host is, or resolves only to, a non-public address is a 422 at
  `body.target.url` (server-side request forgery).

Loaded with SCHEMATHESIS_HOOKS=tests.api.schemathesis_hooks; the test passes the symbols it
seeded in FUZZ_KNOWN_SYMBOLS. Every other 400 or 422 on schema-valid data still fails the run.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import socket
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import schemathesis
from schemathesis import Case, Response
from schemathesis.hooks import HookContext

ISSUED_CURSORS: dict[str, tuple[Any, ...]] = {}  # cursor -> the query that it pages
KNOWN_SYMBOLS: set[str] = {s for s in os.environ.get("FUZZ_KNOWN_SYMBOLS", "").split(",") if s}
REJECTED_POSITIVE_DATA = "ST202"
EXCUSED: Counter[str] = Counter()


@atexit.register
def _report() -> None:
    """One line under the run's summary: how often each of the three refusals was met."""
    print("refusals beyond the schema, checked and excused:", dict(EXCUSED) or "none")


def _query_identity(case: Case) -> tuple[Any, ...]:
    """What a cursor is bound to, as the request spelled it: operation, path and filters (the
    page size may change between pages). Symbols in paths are case-insensitive."""
    path = {k: str(v).upper() for k, v in (case.path_parameters or {}).items()}
    query = {k: str(v) for k, v in (case.query or {}).items() if k not in ("cursor", "limit")}
    return (case.method, case.path, sorted(path.items()), sorted(query.items()))


def _json(response: Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


@schemathesis.hook
def after_call(context: HookContext, case: Case, response: Response) -> None:
    """Remember what the server handed out: cursors, and symbols it now knows."""
    body = _json(response)
    if not isinstance(body, dict) or response.status_code >= 300:
        return
    if isinstance(body.get("next_cursor"), str):
        ISSUED_CURSORS[body["next_cursor"]] = _query_identity(case)
    if case.method == "POST" and case.path == "/v1/symbols" and isinstance(body.get("symbol"), str):
        KNOWN_SYMBOLS.add(body["symbol"].upper())


def _refused_at(response: Response) -> list[Any] | None:
    body = _json(response)
    try:
        details = body["error"]["details"]
        return list(details[0]["loc"]) if len(details) == 1 else None
    except (TypeError, KeyError, IndexError):
        return None


def _public(address: str) -> bool:
    return ipaddress.ip_address(address.split("%", 1)[0]).is_global


def _non_public_host(url: str) -> bool:
    """Whether the host is a non-public address, or a name resolving to non-public ones only."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        return not _public(host)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    addresses = {str(info[4][0]) for info in infos}
    return bool(addresses) and not any(_public(a) for a in addresses)


def _refusal_is_right(case: Case, response: Response) -> str | None:
    """Which of the three stateful refusals this is, if the hook confirms it was right."""
    where = _refused_at(response)
    if response.status_code == 400 and where == ["query", "cursor"]:
        cursor = (case.query or {}).get("cursor")
        return "cursor" if ISSUED_CURSORS.get(str(cursor)) != _query_identity(case) else None
    if response.status_code == 422 and case.method == "POST" and case.path == "/v1/alerts":
        body = case.body if isinstance(case.body, dict) else {}
        if where == ["body", "symbol"]:
            return "unknown symbol" if str(body.get("symbol", "")).upper() not in KNOWN_SYMBOLS else None
        if where == ["body", "target", "url"]:
            target = body.get("target")
            url = str(target.get("url", "")) if isinstance(target, dict) else ""
            return "non-public target" if _non_public_host(url) else None
    return None


@schemathesis.hook
def filter_failure(context: HookContext, failure: Any, case: Case, response: Response) -> bool:
    """Keep every failure except a schema-valid request refused for one of the three reasons."""
    if getattr(failure, "code", None) != REJECTED_POSITIVE_DATA:
        return True
    reason = _refusal_is_right(case, response)
    if reason is None:
        return True
    EXCUSED[reason] += 1
    return False
