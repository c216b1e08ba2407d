"""Who is calling, what they may do, and how often: the auth and rate-limit middleware.

A request may present a key (`Authorization: Bearer <key>` or `X-API-Key: <key>`); a wrong,
malformed or revoked key is refused with 401 on any endpoint rather than silently treated as
anonymous. Each endpoint declares the scope it needs (api.http.endpoints); `write` includes `read`.
Rate limits count per key when one is presented, otherwise per client address.

The client's address is the TCP peer, or X-Forwarded-For when the peer is a trusted proxy.
X-Forwarded-For is written by whoever sent the request, so it is believed only when the peer is
one of TRUSTED_PROXIES; then the rightmost address that is not itself a trusted proxy is the
client (entries further left could have been forged by the client).

An endpoint answered from one Redis hash field (the latest quote) names that field with a
`HashRead`; the middleware then has it read with the rate-limit check and the handler takes it
from there (`read_hash_field`) instead of asking Redis a second time.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Sequence
from typing import NamedTuple, cast

import structlog
from aiohttp import web
from prometheus_client import Counter

from api.access.request_limits import Decision, RateLimiter
from api.settings import REDIS, SETTINGS, IpAddress, IpNetwork
from stocktrack_common.api_keys import KeyRefused, KeyVerifier, Principal, presented_key
from stocktrack_common.http_errors import ApiError, Handler
from stocktrack_common.http_observability import CLIENT_IP
from stocktrack_common.settings import split_list

log = structlog.get_logger(__name__)

RATE_LIMITED = Counter("stocktrack_api_rate_limited_total", "Requests refused with 429", ["bucket"])
RATE_LIMIT_ERRORS = Counter(
    "stocktrack_api_rate_limit_errors_total", "Rate-limit checks that failed (request let through)"
)
AUTH_FAILURES = Counter("stocktrack_api_auth_failures_total", "Requests refused for their key", ["reason"])

LIMITER: web.AppKey[RateLimiter] = web.AppKey("rate_limiter", RateLimiter)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="stocktrack"'}


PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", Principal)
KEYS: web.AppKey[KeyVerifier] = web.AppKey("key_verifier", KeyVerifier)

HashRead = Callable[[web.Request], tuple[str, str]]
"""The (key, field) of the Redis hash field a route answers from, given its unvalidated request."""
# Route handler -> the field it answers from, for the routes that declare one.
HASH_READS: web.AppKey[dict[Handler, HashRead]] = web.AppKey("hash_reads", dict)


class _FieldRead(NamedTuple):  # a tuple: built on every latest-quote request
    key: str
    field: str
    value: bytes | None


_FIELD_READ: web.RequestKey[_FieldRead] = web.RequestKey("field_read", _FieldRead)


async def read_hash_field(request: web.Request, key: str, field: str) -> bytes | None:
    """HGET `key` `field`: what the rate-limit check read for this request, else a round trip now."""
    done = request.get(_FIELD_READ)
    if done is not None and done.key == key and done.field == field:
        return done.value
    # The client is built with decode_responses=False: values are bytes.
    return cast(bytes | None, await request.app[REDIS].hget(key, field))


@functools.lru_cache(maxsize=4096)
def _parsed(address: str) -> IpAddress | None:
    """`address` as an IP address, None if it is not one.

    Cached: parsing costs more than the rest of a proxied request's check, and a client's
    requests repeat the same addresses. The longest textual address, scope id included, is
    far below 64 characters; anything longer is refused unparsed, which bounds the cache.
    """
    if len(address) > 64:
        return None
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def _trusted(address: str, proxies: Sequence[IpNetwork]) -> bool:
    ip = _parsed(address)
    return ip is not None and any(ip in net for net in proxies)


def client_ip(peer: str | None, forwarded_for: str | None, proxies: Sequence[IpNetwork]) -> str:
    address = peer or "unknown"
    if not proxies or not forwarded_for or not _trusted(address, proxies):
        return address
    hops = split_list(forwarded_for)
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            ip = _parsed(hop)
            return address if ip is None else str(ip)
    return hops[0] if hops else address


class ClientAddresses:
    """`client_ip` behind one set of trusted proxies, remembered per (peer, X-Forwarded-For).

    A client's requests repeat the same pair, and working it out (splitting the header, parsing
    and printing addresses) costs more than the rest of a proxied request's check. Headers longer
    than any honest chain of proxies are worked out every time, which bounds the cache.
    """

    def __init__(self, proxies: Sequence[IpNetwork], cache_size: int = 4096) -> None:
        self.proxies = proxies
        self._cached = functools.lru_cache(maxsize=cache_size)(self._resolve)

    def _resolve(self, peer: str | None, forwarded_for: str | None) -> str:
        return client_ip(peer, forwarded_for, self.proxies)

    def __call__(self, peer: str | None, forwarded_for: str | None) -> str:
        if forwarded_for is not None and len(forwarded_for) > 256:
            return self._resolve(peer, forwarded_for)
        return self._cached(peer, forwarded_for)


CLIENT_ADDRESSES: web.AppKey[ClientAddresses] = web.AppKey("client_addresses", ClientAddresses)


def request_key(request: web.Request) -> str | None:
    try:
        return presented_key(request.headers)
    except KeyRefused as refused:
        AUTH_FAILURES.labels(refused.reason).inc()
        raise ApiError(401, refused.message, headers=_CHALLENGE) from None


async def authenticate(request: web.Request, key: str) -> Principal:
    try:
        return await request.app[KEYS].verify(key)
    except KeyRefused as refused:
        AUTH_FAILURES.labels(refused.reason).inc()
        raise ApiError(401, refused.message, headers=_CHALLENGE) from None


def require_scope(request: web.Request, scope: str) -> None:
    """401 without a key where one is needed, 403 with a key that lacks the scope."""
    principal = request.get(PRINCIPAL)
    if principal is None:
        if scope == "read" and not request.app[SETTINGS].api_read_requires_key:
            return
        raise ApiError(401, f"an API key with the {scope!r} scope is required", headers=_CHALLENGE)
    if not principal.allows(scope):
        AUTH_FAILURES.labels("scope").inc()
        raise ApiError(403, f"this API key lacks the {scope!r} scope")


def _hash_read(request: web.Request) -> HashRead | None:
    reads = request.app.get(HASH_READS)
    return None if reads is None else reads.get(request.match_info.handler)


async def _rate_limit(
    request: web.Request, bucket: str, limit: int, read: HashRead | None = None
) -> Decision | None:
    """Count the request against `bucket`; raise 429 when it does not fit. None when limits are off.

    With `read`, the route's hash field is fetched with the check (for read_hash_field).
    """
    if limit <= 0:
        return None
    target = None if read is None else read(request)
    try:
        if target is None:
            decision = await request.app[LIMITER].hit(bucket, limit)
        else:
            decision, value = await request.app[LIMITER].hit_reading(bucket, limit, *target)
            request[_FIELD_READ] = _FieldRead(*target, value)
    except Exception as exc:  # Redis trouble must not take the api down with it: fail open, loudly
        RATE_LIMIT_ERRORS.inc()
        log.warning("rate limit check failed", error=f"{type(exc).__name__}: {exc}")
        return None
    if not decision.allowed:
        RATE_LIMITED.labels(bucket.split(":", 1)[0]).inc()
        raise ApiError(
            429,
            "rate limit exceeded",
            headers=decision.headers(),
            details={"limit_per_minute": limit, "retry_after_seconds": decision.retry_after},
        )
    return decision


async def _answer(request: web.Request, handler: Handler, decision: Decision | None) -> web.StreamResponse:
    """Run the handler; every answer, errors included, tells the client where it stands."""
    if decision is None:
        return await handler(request)
    headers = decision.headers()
    try:
        response = await handler(request)
    except ApiError as exc:
        exc.headers = {**headers, **exc.headers}
        raise
    except web.HTTPException as exc:
        exc.headers.update(headers)
        raise
    if not response.prepared:
        response.headers.update(headers)
    return response


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the caller and apply its rate limit; only /v1 routes are subject to either."""
    if not request.path.startswith("/v1/") or request.method == "OPTIONS":
        return await handler(request)
    settings = request.app[SETTINGS]
    ip = request.app[CLIENT_ADDRESSES](request.remote, request.headers.get("X-Forwarded-For"))
    request[CLIENT_IP] = ip
    try:
        key = request_key(request)
        principal = None if key is None else await authenticate(request, key)
    except ApiError as refused:
        # Failed keys count against the address, so guessing keys is rate limited too.
        decision = await _rate_limit(request, f"ip:{ip}", settings.rate_limit_ip_per_minute)
        if decision is not None:
            refused.headers = {**decision.headers(), **refused.headers}
        raise
    read = _hash_read(request)
    if principal is None:
        decision = await _rate_limit(request, f"ip:{ip}", settings.rate_limit_ip_per_minute, read)
        return await _answer(request, handler, decision)
    request[PRINCIPAL] = principal
    structlog.contextvars.bind_contextvars(api_key_id=principal.key_id)
    try:
        decision = await _rate_limit(
            request, f"key:{principal.key_id}", settings.rate_limit_key_per_minute, read
        )
        return await _answer(request, handler, decision)
    finally:
        structlog.contextvars.unbind_contextvars("api_key_id")
