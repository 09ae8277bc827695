"""Who a client is behind proxies: the rule for ``X-Forwarded-For``, free of I/O.

A proxy appends the address it received a connection from to
``X-Forwarded-For``; everything to the left of that was written by someone
else, the client included. So the client address is found by walking the
header from the right, past the proxies we trust, to the first address we do
not: the right-most untrusted entry. The left-most entry is never believed.
From a peer that is not a trusted proxy the header is ignored altogether.

Ticker applies this rule itself (uvicorn's proxy-headers handling is off, see
``ticker/server.py``): uvicorn would take the left-most entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

Network = IPv4Network | IPv6Network

FORWARDED_FOR = b"x-forwarded-for"


def parse_address(text: str) -> IPv4Address | IPv6Address | None:
    """An address from a header entry or a peer: ``1.2.3.4``, ``::1``, ``[::1]:80``, ``1.2.3.4:80``."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=8192)
def canonical(text: str) -> str | None:
    """The canonical text of an address (``::ffff:1.2.3.4`` is ``1.2.3.4``), or None for anything else.

    Cached: one process sees the same addresses over and over, and parsing is
    most of what resolving a client costs.
    """
    address = parse_address(text)
    return None if address is None else str(address)


def normalize(text: str) -> str:
    """:func:`canonical`, or the text as given when it is not an address."""
    return canonical(text) or text


@dataclass(frozen=True, slots=True)
class Networks:
    """A set of addresses and CIDR networks, e.g. ``127.0.0.1,10.0.0.0/8,::1``."""

    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Networks:
        """Raises ValueError naming the first entry that is neither an address nor a network."""
        networks = []
        for entry in entries:
            try:
                networks.append(ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR network") from None
        return cls(tuple(networks))

    def __contains__(self, address: object) -> bool:
        return isinstance(address, str) and _member(self.networks, address)


@lru_cache(maxsize=8192)
def _member(networks: tuple[Network, ...], address: str) -> bool:
    parsed = parse_address(address)
    return parsed is not None and any(parsed in network for network in networks)


def client_address(peer: str, forwarded_for: Iterable[str], proxies: Networks) -> str:
    """The client's address, given the connection's ``peer`` and its ``X-Forwarded-For`` values.

    Several header lines are one list, in order. If every entry is a trusted
    proxy, the left-most is the client (a client on a trusted address). An
    entry that is not an address ends the walk: the last trusted address seen
    is the client, so a proxy that passes on garbage pools it under its own.
    """
    client = normalize(peer)
    if client not in proxies:
        return client
    entries = [entry for value in forwarded_for for entry in value.split(",")]
    for entry in reversed(entries):
        address = canonical(entry.strip())
        if address is None:
            return client
        client = address
        if client not in proxies:
            return client
    return client


def scope_client(scope: Mapping[str, Any], proxies: Networks) -> str:
    """:func:`client_address` for an ASGI connection scope (HTTP or WebSocket)."""
    peer = scope.get("client")
    host = peer[0] if peer else ""
    forwarded = [value.decode("latin-1") for name, value in scope.get("headers", ()) if name == FORWARDED_FOR]
    return client_address(host, forwarded, proxies)
