"""The client address behind proxies: the right-most untrusted entry of X-Forwarded-For."""

from __future__ import annotations

import pytest

from ticker.proxies import Networks, client_address, normalize, parse_address, scope_client

PROXIES = Networks.parse(["127.0.2.0/24", "127.0.0.1", "::1"])


def test_a_peer_that_is_not_a_trusted_proxy_is_the_client_whatever_it_claims() -> None:
    assert client_address("127.0.6.7", ["127.0.9.1"], PROXIES) == "127.0.6.7"
    assert client_address("127.0.6.7", [], PROXIES) == "127.0.6.7"


def test_through_one_trusted_proxy_the_right_most_entry_is_the_client() -> None:
    assert client_address("127.0.2.2", ["127.0.9.1"], PROXIES) == "127.0.9.1"
    # The client wrote the left-most entries itself: never believed.
    assert client_address("127.0.2.2", ["127.0.0.1, 127.0.7.4, 127.0.9.1"], PROXIES) == "127.0.9.1"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right() -> None:
    assert client_address("127.0.2.2", ["127.0.7.6, 127.0.9.1, 127.0.2.11, 127.0.2.12"], PROXIES) == "127.0.9.1"
    assert client_address("127.0.2.2", ["127.0.7.6, 127.0.9.1", "127.0.2.11"], PROXIES) == "127.0.9.1"


def test_a_client_claiming_to_be_a_trusted_proxy_is_still_itself() -> None:
    assert client_address("127.0.2.2", ["127.0.2.99, 127.0.9.1"], PROXIES) == "127.0.9.1"


def test_without_the_header_or_with_only_trusted_entries() -> None:
    assert client_address("127.0.2.2", [], PROXIES) == "127.0.2.2"
    assert client_address("127.0.2.2", ["127.0.2.33, 127.0.2.44"], PROXIES) == "127.0.2.33"


def test_garbage_ends_the_walk_at_the_last_trusted_address() -> None:
    assert client_address("127.0.2.2", ["127.0.9.1, unknown"], PROXIES) == "127.0.2.2"
    assert client_address("127.0.2.2", ["unknown, 127.0.2.11"], PROXIES) == "127.0.2.11"
    assert client_address("127.0.2.2", ["127.0.9.1, , 127.0.2.11"], PROXIES) == "127.0.2.11"


def test_ports_brackets_and_mapped_addresses() -> None:
    assert client_address("127.0.2.2", ["127.0.9.1:5555"], PROXIES) == "127.0.9.1"
    v4_proxies = Networks.parse(["127.0.2.0/24"])
    assert client_address("127.0.2.2", ["[::1]:443"], v4_proxies) == "::1"
    assert client_address("::ffff:127.0.2.2", ["0:0:0:0:0:0:0:1"], v4_proxies) == "::1"
    assert client_address("::1", ["127.0.9.1"], PROXIES) == "127.0.9.1"
    assert normalize("::ffff:127.0.6.7") == "127.0.6.7" and normalize("") == ""
    assert parse_address("not an address") is None


def test_nobody_is_trusted_by_an_empty_list() -> None:
    assert client_address("127.0.0.1", ["127.0.9.1"], Networks()) == "127.0.0.1"
    assert "127.0.0.1" not in Networks() and 42 not in PROXIES


def test_networks_parse_addresses_and_cidrs_and_name_a_bad_entry() -> None:
    networks = Networks.parse(["127.0.3.0/24", "::1/128", "127.0.8.1"])
    assert "127.0.3.200" in networks and "::1" in networks and "127.0.8.1" in networks
    assert "127.0.4.1" not in networks and "garbage" not in networks
    with pytest.raises(ValueError, match=r"'proxy\.example'"):
        Networks.parse(["127.0.2.1", "proxy.example"])


def test_scope_client_reads_the_asgi_scope() -> None:
    scope = {
        "client": ("127.0.2.2", 40000),
        "headers": [(b"x-forwarded-for", b"127.0.7.6, 127.0.9.1"), (b"host", b"x")],
    }
    assert scope_client(scope, PROXIES) == "127.0.9.1"
    assert scope_client({**scope, "client": ("127.0.6.7", 1)}, PROXIES) == "127.0.6.7"
    assert scope_client({"headers": []}, PROXIES) == ""
