"""Who may open a live stream: one path for ``/ws`` and ``/api/events``.

Both endpoints resolve the client address the same way (``ticker.proxies``),
check the browser ``Origin`` against the allow-list (``protocol.origin_allowed``)
and count the stream against the global and per-address caps for as long as it
stays open. Each endpoint only turns a :class:`Refusal` into its own answer: a
close code on the WebSocket, a JSON error on SSE.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from starlette.datastructures import Headers

from ticker.config import Settings
from ticker.limits import ConnectionCounter
from ticker.protocol import origin_allowed
from ticker.proxies import Networks, scope_client


class Refusal(StrEnum):
    """Why a stream may not open; the value is the ``refused`` metric's reason label."""

    ORIGIN = "origin"
    """A browser ``Origin`` that is not on the allow-list."""
    FULL = "full"
    """The process holds as many streams as it may."""
    ADDRESS = "address"
    """The client address holds as many streams as it may."""


@dataclass(slots=True)
class Ticket:
    """One admitted stream's place under the caps; :meth:`release` gives it back (once)."""

    counter: ConnectionCounter
    address: str
    held: bool = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.counter.remove(self.address)


class Admission:
    """The caps and rules every live stream of one process passes."""

    def __init__(self, settings: Settings) -> None:
        self.allowed_origins = settings.allowed_origins
        self.public_url = settings.public_url
        self.proxies = Networks.parse(settings.trusted_proxies)
        self.connections = ConnectionCounter(
            settings.max_connections,
            settings.max_connections_per_address,
            Networks.parse(settings.trusted_addresses),
        )

    def client(self, scope: Mapping[str, Any]) -> str:
        """The client address of a connection, through trusted proxies."""
        return scope_client(scope, self.proxies)

    def origin_refused(self, scope: MutableMapping[str, Any]) -> bool:
        headers = Headers(scope=scope)
        return not origin_allowed(
            headers.get("origin"), headers.get("host"), self.allowed_origins, public_url=self.public_url
        )

    def admit(self, scope: MutableMapping[str, Any], address: str) -> Ticket | Refusal:
        """A ticket for a stream from ``address``, counted at once, or why not."""
        if self.origin_refused(scope):
            return Refusal.ORIGIN
        over = self.connections.refuse(address)
        if over is not None:
            return Refusal(over)
        self.connections.add(address)
        return Ticket(self.connections, address)
