"""Process start-up without a server: the listening socket, URLs fit to print, the Redis failure line."""

from __future__ import annotations

import socket

import pytest

from ticker.errors import ConfigError
from ticker.process import base_url, bind, redis_unreachable


@pytest.mark.parametrize(
    ("url", "printed"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("unix:///run/redis.sock", "unix:///run/redis.sock"),
        ("redis://:hunter2@db:6379/0", "redis://:***@db:6379/0"),
        ("rediss://ticker:hunter2@db:6380", "rediss://ticker:***@db:6380"),
        ("redis+sentinel://app:p%40ss@s1:26379,s2:26379/main", "redis+sentinel://app:***@s1:26379,s2:26379/main"),
        ("redis://user@db:6379", "redis://user@db:6379"),
    ],
)
def test_a_password_never_reaches_the_terminal(url: str, printed: str) -> None:
    assert f"cannot reach Redis at {printed}: " in redis_unreachable(url).message
    assert "hunter2" not in redis_unreachable(url).message


def test_the_failure_line_says_what_to_check() -> None:
    message = redis_unreachable("redis://127.0.0.1:9/0").message
    assert "redis://127.0.0.1:9/0" in message and "TICKER_REDIS_URL" in message and "--redis-url" in message


def test_bind_hands_children_a_listening_socket_and_refuses_a_busy_port() -> None:
    sock = bind("127.0.0.1", 0)
    try:
        assert sock.get_inheritable() and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        port = sock.getsockname()[1]
        assert base_url(sock) == f"http://127.0.0.1:{port}"
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            bind("127.0.0.1", port)
    finally:
        sock.close()
