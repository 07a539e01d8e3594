"""Who is asking, and over what: the connection's peer, or what a trusted reverse proxy saw.

`X-Forwarded-For` and `X-Forwarded-Proto` are believed only when the peer is one of the
networks in TRUSTED_PROXIES (comma-separated addresses or CIDR networks, e.g.
`127.0.0.1,10.0.0.0/8`; empty by default: no proxy is trusted). From anyone else anybody could
write them, so they are ignored.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable

from aiohttp import web

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str) -> tuple[Network, ...]:
    networks = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise SystemExit(f"TRUSTED_PROXIES: {part!r} is not an IP address or network") from None
    return tuple(networks)


def _address(text: str | None) -> Address | None:
    if not text:
        return None
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address | None, networks: Iterable[Network]) -> bool:
    return address is not None and any(address in network for network in networks)


def _values(request: web.Request, header: str) -> list[str]:
    return [v.strip() for value in request.headers.getall(header, []) for v in value.split(",")]


def client_address(request: web.Request, networks: Iterable[Network] = ()) -> str:
    """The client's IP address: the peer's, or, when the peer is a trusted proxy, the nearest
    address in X-Forwarded-For that is not itself a trusted proxy (read from the right: the
    left part is whatever the client wrote)."""
    networks = tuple(networks)
    peer = _address(request.remote)
    if peer is None:
        return request.remote or "unknown"
    address = peer
    if _trusted(peer, networks):
        for hop in reversed(_values(request, "X-Forwarded-For")):
            hop_address = _address(hop)
            if hop_address is None:
                break  # garbage: keep the last address a trusted hop vouched for
            address = hop_address
            if not _trusted(hop_address, networks):
                break
    return str(address)


def client_key(address: str) -> str:
    """What throttling counts per client: the address, for IPv6 its /64 (one household or server)."""
    parsed = _address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed) if parsed is not None else address


def is_https(request: web.Request, networks: Iterable[Network] = ()) -> bool:
    """TLS on this connection, or a trusted proxy saying (X-Forwarded-Proto) it received https."""
    if request.secure:
        return True
    if not _trusted(_address(request.remote), tuple(networks)):
        return False
    values = _values(request, "X-Forwarded-Proto")
    return bool(values) and values[-1].lower() == "https"
