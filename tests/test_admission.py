"""One admission path for /ws and /api/events: Origin, then the caps, held by a ticket."""

from __future__ import annotations

from typing import Any

from ticker.admission import Admission, Refusal, Ticket
from ticker.config import Settings


def scope(peer: str, *headers: tuple[str, str]) -> dict[str, Any]:
    raw = [(b"host", b"ticker.example"), *((k.encode(), v.encode()) for k, v in headers)]
    return {"type": "http", "client": (peer, 50000), "headers": raw}


def admission(**overrides: Any) -> Admission:
    base = {
        "trusted_proxies": ("127.0.2.2",),
        "trusted_addresses": ("127.0.0.1",),
        "max_connections_per_address": 2,
        "max_connections": 5,
        "allowed_origins": ("https://partner.example",),
    }
    return Admission(Settings(**{**base, **overrides}))


def test_the_client_is_resolved_through_trusted_proxies_only() -> None:
    gate = admission()
    assert gate.client(scope("127.0.2.2", ("x-forwarded-for", "127.0.7.1, 127.0.9.4"))) == "127.0.9.4"
    assert gate.client(scope("127.0.2.3", ("x-forwarded-for", "127.0.9.4"))) == "127.0.2.3"


def test_origin_allow_list_and_no_origin() -> None:
    gate = admission()
    assert gate.admit(scope("127.0.8.1", ("origin", "https://evil.example")), "127.0.8.1") is Refusal.ORIGIN
    for origin in ("https://partner.example", "https://ticker.example"):
        assert isinstance(gate.admit(scope("127.0.8.1", ("origin", origin)), "127.0.8.1"), Ticket)
    assert isinstance(gate.admit(scope("127.0.8.2"), "127.0.8.2"), Ticket)


def test_tickets_count_until_released_once() -> None:
    gate = admission()
    tickets = [gate.admit(scope("127.0.8.1"), "127.0.8.1") for _ in range(2)]
    assert gate.admit(scope("127.0.8.1"), "127.0.8.1") is Refusal.ADDRESS
    assert isinstance(tickets[0], Ticket)
    tickets[0].release()
    tickets[0].release()
    assert gate.connections.by_address == {"127.0.8.1": 1}
    assert isinstance(gate.admit(scope("127.0.8.1"), "127.0.8.1"), Ticket)


def test_trusted_addresses_skip_the_address_cap_but_not_the_total() -> None:
    gate = admission()
    held = [gate.admit(scope("127.0.0.1"), "127.0.0.1") for _ in range(5)]
    assert all(isinstance(t, Ticket) for t in held)
    assert gate.admit(scope("127.0.8.9"), "127.0.8.9") is Refusal.FULL
