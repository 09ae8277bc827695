"""Abusive peers against a real server: trickled headers, half-open and handshake floods, old versions.

Each test has a deadline: the server must close what it owes nothing to,
and keep serving real clients meanwhile.
"""

from __future__ import annotations

import asyncio
import dataclasses
import resource
import selectors
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.clients import LiveReader
from tests.support import ServerThread, units
from ticker.config import Settings

HEADER_TIMEOUT = 1.0
"""The server's deadline for a request head in these tests, in units."""

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
)


@pytest.fixture(scope="module", autouse=True)
def enough_descriptors() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 <= hard or hard == resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))


@pytest.fixture
def strict(settings: Settings) -> Iterator[ServerThread]:
    running = ServerThread(dataclasses.replace(settings, header_timeout=units(HEADER_TIMEOUT))).start()
    yield running
    running.stop()


def connect(server: ServerThread) -> socket.socket:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=units(10))


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the server has closed (or reset) the connection, reading what is pending."""
    sock.setblocking(False)
    try:
        while chunk := sock.recv(65536):
            del chunk
        return True
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def wait_all_closed(socks: list[socket.socket], within: float) -> list[socket.socket]:
    """Wait until the server closed every socket; the ones still open at the deadline."""
    open_ = set(socks)
    deadline = time.monotonic() + units(within)
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        while open_ and time.monotonic() < deadline:
            for key, _ in selector.select(0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if closed_by_peer(sock):
                    open_.discard(sock)
                    selector.unregister(sock)
    return list(open_)


def still_serves(server: ServerThread) -> None:
    assert httpx.get(f"{server.url}/healthz", timeout=units(10)).status_code == 200

    async def snapshot() -> None:
        reader = LiveReader(server.ws_url)
        await reader.connect()
        await reader.wait_started()
        await reader.close()

    asyncio.run(snapshot())


def test_slowloris_is_closed_although_it_keeps_sending(strict: ServerThread) -> None:
    sock = connect(strict)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    deadline = time.monotonic() + units(HEADER_TIMEOUT + 10)
    sent = 0
    while not closed_by_peer(sock):
        assert time.monotonic() < deadline, "a trickled request head was never cut off"
        try:
            sock.sendall(f"X-Trickle-{sent}: a\r\n".encode())
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += 1
        time.sleep(0.1 * units(HEADER_TIMEOUT))
    assert sent >= 5  # it was sending all along
    sock.close()
    still_serves(strict)


def test_half_open_flood_is_closed_after_the_deadline_and_the_server_still_serves(strict: ServerThread) -> None:
    flood = [connect(strict) for _ in range(500)]
    try:
        still_serves(strict)  # while 500 sockets say nothing
        assert wait_all_closed(flood, HEADER_TIMEOUT + 15) == []
        still_serves(strict)
    finally:
        for sock in flood:
            sock.close()


def test_handshake_flood_half_sent_closed_whole_served(strict: ServerThread) -> None:
    half = [connect(strict) for _ in range(200)]
    whole = [connect(strict) for _ in range(200)]
    try:
        for sock in half:
            sock.sendall(UPGRADE)  # the head never ends
        for sock in whole:
            sock.sendall(UPGRADE + b"Sec-WebSocket-Version: 13\r\n\r\n")
        still_serves(strict)
        assert wait_all_closed(half, HEADER_TIMEOUT + 15) == []
        for sock in whole:
            sock.setblocking(True)
            sock.settimeout(units(10))
            assert sock.recv(12) == b"HTTP/1.1 101"  # accepted, and not cut by the deadline
        assert not any(closed_by_peer(sock) for sock in whole)
        still_serves(strict)
    finally:
        for sock in half + whole:
            sock.close()


def test_unsupported_websocket_version_gets_426_naming_13(strict: ServerThread) -> None:
    sock = connect(strict)
    sock.sendall(UPGRADE + b"Sec-WebSocket-Version: 8\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer and (chunk := sock.recv(4096)):
        answer += chunk
    sock.close()
    head = answer.split(b"\r\n\r\n")[0].decode().split("\r\n")
    assert head[0].startswith("HTTP/1.1 426")
    assert "sec-websocket-version: 13" in [line.lower() for line in head[1:]]
