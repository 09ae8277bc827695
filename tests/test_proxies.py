"""The client address behind proxies: the right-most untrusted entry of X-Forwarded-For."""

from __future__ import annotations

import pytest

from ticker.proxies import Networks, client_address, normalize, parse_address, scope_client

PROXIES = Networks.parse(["10.0.0.0/8", "127.0.0.1", "::1"])


def test_a_peer_that_is_not_a_trusted_proxy_is_the_client_whatever_it_claims() -> None:
    assert client_address("203.0.113.7", ["198.51.100.1"], PROXIES) == "203.0.113.7"
    assert client_address("203.0.113.7", [], PROXIES) == "203.0.113.7"


def test_through_one_trusted_proxy_the_right_most_entry_is_the_client() -> None:
    assert client_address("10.0.0.2", ["198.51.100.1"], PROXIES) == "198.51.100.1"
    # The client wrote the left-most entries itself: never believed.
    assert client_address("10.0.0.2", ["127.0.0.1, 1.2.3.4, 198.51.100.1"], PROXIES) == "198.51.100.1"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right() -> None:
    assert client_address("10.0.0.2", ["6.6.6.6, 198.51.100.1, 10.1.1.1, 10.2.2.2"], PROXIES) == "198.51.100.1"
    assert client_address("10.0.0.2", ["6.6.6.6, 198.51.100.1", "10.1.1.1"], PROXIES) == "198.51.100.1"


def test_a_client_claiming_to_be_a_trusted_proxy_is_still_itself() -> None:
    assert client_address("10.0.0.2", ["10.9.9.9, 198.51.100.1"], PROXIES) == "198.51.100.1"


def test_without_the_header_or_with_only_trusted_entries() -> None:
    assert client_address("10.0.0.2", [], PROXIES) == "10.0.0.2"
    assert client_address("10.0.0.2", ["10.3.3.3, 10.4.4.4"], PROXIES) == "10.3.3.3"


def test_garbage_ends_the_walk_at_the_last_trusted_address() -> None:
    assert client_address("10.0.0.2", ["198.51.100.1, unknown"], PROXIES) == "10.0.0.2"
    assert client_address("10.0.0.2", ["unknown, 10.1.1.1"], PROXIES) == "10.1.1.1"
    assert client_address("10.0.0.2", ["198.51.100.1, , 10.1.1.1"], PROXIES) == "10.1.1.1"


def test_ports_brackets_and_mapped_addresses() -> None:
    assert client_address("10.0.0.2", ["198.51.100.1:5555"], PROXIES) == "198.51.100.1"
    assert client_address("10.0.0.2", ["[2001:db8::1]:443"], PROXIES) == "2001:db8::1"
    assert client_address("::ffff:10.0.0.2", ["2001:DB8:0::1"], PROXIES) == "2001:db8::1"
    assert client_address("::1", ["198.51.100.1"], PROXIES) == "198.51.100.1"
    assert normalize("::ffff:203.0.113.7") == "203.0.113.7" and normalize("") == ""
    assert parse_address("not an address") is None


def test_nobody_is_trusted_by_an_empty_list() -> None:
    assert client_address("127.0.0.1", ["198.51.100.1"], Networks()) == "127.0.0.1"
    assert "127.0.0.1" not in Networks() and 42 not in PROXIES


def test_networks_parse_addresses_and_cidrs_and_name_a_bad_entry() -> None:
    networks = Networks.parse(["172.28.0.0/24", "2001:db8::/32", "192.0.2.1"])
    assert "172.28.0.200" in networks and "2001:db8::5" in networks and "192.0.2.1" in networks
    assert "172.28.1.1" not in networks and "garbage" not in networks
    with pytest.raises(ValueError, match=r"'proxy\.example'"):
        Networks.parse(["10.0.0.1", "proxy.example"])


def test_scope_client_reads_the_asgi_scope() -> None:
    scope = {
        "client": ("10.0.0.2", 40000),
        "headers": [(b"x-forwarded-for", b"6.6.6.6, 198.51.100.1"), (b"host", b"x")],
    }
    assert scope_client(scope, PROXIES) == "198.51.100.1"
    assert scope_client({**scope, "client": ("203.0.113.7", 1)}, PROXIES) == "203.0.113.7"
    assert scope_client({"headers": []}, PROXIES) == ""
