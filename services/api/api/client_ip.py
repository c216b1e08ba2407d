"""The client's address: the TCP peer, or X-Forwarded-For when the peer is a trusted proxy.

X-Forwarded-For is written by whoever sent the request, so it is believed only when the peer is
one of TRUSTED_PROXIES; then the rightmost address that is not itself a trusted proxy is the
client (entries further left could have been forged by the client).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from api.settings import IpNetwork


def _trusted(address: str, proxies: Sequence[IpNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_ip(peer: str | None, forwarded_for: str | None, proxies: Sequence[IpNetwork]) -> str:
    address = peer or "unknown"
    if not proxies or not forwarded_for or not _trusted(address, proxies):
        return address
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return address
    return hops[0] if hops else address
