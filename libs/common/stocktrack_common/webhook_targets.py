"""Keeps webhook deliveries off private networks (server-side request forgery).

Shared by the api, which refuses such a target when a rule is created (so a rule that can never
deliver is never accepted), and the alerts worker, which checks again at every delivery.

A rule's URL is chosen by an API client; without this guard the worker would POST, from
inside the cluster, to anything that URL names: the metadata service, Redis, the database.
Host names are checked where it matters, at connection time, by a resolver that drops every
address that is not globally routable, so a name that re-resolves to a private address later
is caught too. IP literals, which skip resolvers, are checked before the request.
ALERTS_ALLOW_PRIVATE_TARGETS=true lifts the guard (a receiver on the same host or network).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver


class PrivateTargetError(OSError):
    """The target resolves only to addresses the worker must not call."""


def is_public(address: str) -> bool:
    return ipaddress.ip_address(address.split("%", 1)[0]).is_global


def literal_target_refused(url: str) -> str | None:
    """Why an IP-literal URL may not be called, or None (host names go through the resolver)."""
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return None if is_public(host) else f"target {host} is not a public address"


class PublicOnlyResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, minus every non-public address."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = [r for r in await self._inner.resolve(host, port, family) if is_public(r["host"])]
        if not results:
            raise PrivateTargetError(f"{host} resolves only to non-public addresses")
        return results

    async def close(self) -> None:
        await self._inner.close()


def connector_kwargs(allow_private: bool) -> dict[str, Any]:
    return {} if allow_private else {"resolver": PublicOnlyResolver()}


async def creation_refusal(url: str) -> str | None:
    """Why a rule with this target must not be created, or None.

    IP literals are judged directly; a host name that resolves only to non-public addresses
    (localhost, an internal name) is refused too. A name that does not resolve right now is
    accepted: DNS may be briefly down, and the worker's resolver judges it again at delivery.
    """
    refused = literal_target_refused(url)
    if refused is not None:
        return refused
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        return None  # a public literal
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return None
    addresses = {str(info[4][0]) for info in infos}
    if addresses and not any(is_public(a) for a in addresses):
        return f"target {host} resolves only to non-public addresses"
    return None
