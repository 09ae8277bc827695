"""The live WebSocket and SSE endpoints on a real server with real clients."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.clients import LiveReader, lines, wait_async
from tests.support import HypercornThread, ServerThread, units, wait_for
from ticker.config import Settings
from ticker.protocol import cursor_key


@pytest.fixture(params=["uvicorn", "hypercorn"])
def server(request: pytest.FixtureRequest, settings: Settings) -> Iterator[ServerThread | HypercornThread]:
    """Ticker's own server, and the same app under another ASGI server (the portable path)."""
    running = (ServerThread if request.param == "uvicorn" else HypercornThread)(settings).start()
    yield running
    running.stop()


@pytest.fixture
def http(server: ServerThread, admin_token: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=server.url, timeout=10, headers=headers) as client:
        yield client


def publish(http: httpx.Client, headline: str, **fields: Any) -> str:
    answer = http.post("/api/items", json={"headline": headline, **fields})
    assert answer.status_code == 201, answer.text
    cursor: str = answer.json()["cursor"]
    return cursor


async def first_messages(url: str, count: int, **kwargs: Any) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    async with websockets.connect(url, **kwargs) as ws:
        while len(got) < count:
            got += lines(await asyncio.wait_for(ws.recv(), units(10)))
    return got


async def close_code(url: str, send: str | bytes | None = None, **kwargs: Any) -> int | None:
    async with websockets.connect(url, **kwargs) as ws:
        if send is not None:
            await ws.send(send)
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), units(10))
        return ws.close_code


def test_snapshot_then_live_events_with_server_time(server: ServerThread, http: httpx.Client) -> None:
    publish(http, "Quake hits", id="q1")
    publish(http, "Pinned", id="p1", pinned=True)

    async def run() -> None:
        reader = LiveReader(server.ws_url)
        await reader.connect()
        await reader.wait_started()
        cursor = await asyncio.to_thread(publish, http, "Aftershock", id="q2")
        # p1 may come live too: the snapshot is as of whatever the server had read when it was taken.
        await wait_async(lambda: cursor in reader.cursors(), what="the live event")
        assert reader.start is not None and all(cursor_key(c) > cursor_key(reader.start) for c in reader.cursors())
        assert len(set(reader.cursors())) == len(reader.cursors()), "nothing twice"
        event = reader.events[reader.cursors().index(cursor)]
        assert event["op"] == "publish" and event["item"]["id"] == "q2" and isinstance(event["ts"], int)
        await reader.close()

    asyncio.run(run())
    snapshot = asyncio.run(first_messages(f"{server.ws_url}/ws", 1))[0]
    assert snapshot["type"] == "snapshot"
    assert [i["id"] for i in snapshot["items"]][:2] == ["q2", "p1"] and [i["id"] for i in snapshot["pinned"]] == ["p1"]
    older = http.get("/api/items", params={"before": snapshot["next"]})
    assert older.status_code == 200 and [i["id"] for i in older.json()["items"]] == []


def test_replay_after_cursor_then_live(server: ServerThread, http: httpx.Client) -> None:
    first = publish(http, "one")
    cursors = [publish(http, f"n{i}") for i in range(3)]
    got = asyncio.run(first_messages(f"{server.ws_url}/ws?cursor={first}", 3))
    assert [m["cursor"] for m in got] == cursors and all(m["type"] == "event" for m in got)


def test_edits_and_retractions_are_events(server: ServerThread, http: httpx.Client) -> None:
    start = publish(http, "one", id="e1")
    http.patch("/api/items/e1", json={"headline": "one, updated"})
    http.delete("/api/items/e1")
    got = asyncio.run(first_messages(f"{server.ws_url}/ws?cursor={start}", 2))
    assert [(m["op"], m["item"]["version"]) for m in got] == [("update", 2), ("retract", 3)]


@pytest.mark.parametrize("cursor", ["garbage", "1-0", "99999999999999-0"])
def test_bad_unknown_and_expired_cursors_reset_then_snapshot(
    server: ServerThread, http: httpx.Client, cursor: str
) -> None:
    publish(http, "one")
    got = asyncio.run(first_messages(f"{server.ws_url}/ws?cursor={cursor}", 2))
    assert [m["type"] for m in got] == ["reset", "snapshot"] and got[0]["reason"]


def test_cursor_older_than_history_resets(settings: Settings, admin_token: str) -> None:
    running = ServerThread(dataclasses.replace(settings, history_size=2)).start()
    try:
        with httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {admin_token}"}) as http:
            old = publish(http, "old")
            for i in range(6):
                publish(http, f"n{i}")
            applied = b"ticker_changes_total 7.0"
            wait_for(lambda: applied in http.get("/metrics").content, what="all applied")
            got = asyncio.run(first_messages(f"{running.ws_url}/ws?cursor={old}", 2))
            assert got[0] == {"type": "reset", "reason": "cursor too old"} and got[1]["type"] == "snapshot"
    finally:
        running.stop()


def test_channel_filter(server: ServerThread, http: httpx.Client) -> None:
    start = publish(http, "news item")
    publish(http, "sport item", channel="sport")
    last = publish(http, "sport two", channel="sport")
    got = asyncio.run(first_messages(f"{server.ws_url}/ws?channel=sport&cursor={start}", 2))
    assert [m["item"]["channel"] for m in got] == ["sport", "sport"] and got[-1]["cursor"] == last
    assert asyncio.run(close_code(f"{server.ws_url}/ws?channel=Not%20A%20Slug")) == 4400
    assert asyncio.run(close_code(f"{server.ws_url}/ws?channel=news%0A")) == 4400


def test_foreign_origin_is_refused_and_own_origin_allowed(server: ServerThread) -> None:
    url = f"{server.ws_url}/ws"
    assert asyncio.run(close_code(url, origin="https://evil.example")) == 1008  # type: ignore[arg-type]
    own = server.url.replace("http://", "")
    assert asyncio.run(first_messages(url, 1, origin=f"http://{own}"))[0]["type"] == "snapshot"  # type: ignore[arg-type]


def raw_handshake_close_code(url: str, host: str, origin: str) -> int:
    """A hand-written handshake (any Host header) and the close code the server answers it with."""
    address = httpx.URL(url)
    with socket.create_connection((address.host, address.port or 80), timeout=units(10)) as sock:
        request = (
            f"GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        sock.sendall(request.encode())
        data = b""
        while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 8:
            chunk = sock.recv(4096)
            assert chunk, f"closed after {data!r}"
            data += chunk
    head, _, frame = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    assert frame[0] == 0x88, frame  # a close frame: the refusal carries its code
    return int.from_bytes(frame[2:4], "big")


def test_origin_is_checked_against_the_public_url(settings: Settings) -> None:
    public = ServerThread(dataclasses.replace(settings, public_url="https://news.example")).start()
    try:
        assert raw_handshake_close_code(public.url, "evil.example", "https://evil.example") == 1008
        url = f"{public.ws_url}/ws"
        assert asyncio.run(first_messages(url, 1, origin="https://news.example"))[0]["type"] == "snapshot"  # type: ignore[arg-type]
    finally:
        public.stop()


def test_unexpected_and_oversized_client_frames(server: ServerThread) -> None:
    url = f"{server.ws_url}/ws"
    assert asyncio.run(close_code(url, "hello")) == 1003
    assert asyncio.run(close_code(url, b"\x00\x01")) == 1003
    assert asyncio.run(close_code(url, "x" * 100_000)) == 1009


def test_per_address_cap_and_trusted_addresses(settings: Settings) -> None:
    capped = dataclasses.replace(settings, max_connections_per_address=2, trusted_addresses=())
    running = ServerThread(capped).start()

    async def run() -> None:
        url = f"{running.ws_url}/ws"
        async with websockets.connect(url), websockets.connect(url):
            assert await close_code(url) == 4429

    try:
        asyncio.run(run())
    finally:
        running.stop()
    trusted = ServerThread(dataclasses.replace(settings, max_connections_per_address=1)).start()

    async def many() -> None:
        url = f"{trusted.ws_url}/ws"
        async with websockets.connect(url), websockets.connect(url):
            assert (await first_messages(url, 1))[0]["type"] == "snapshot"

    try:
        asyncio.run(many())
    finally:
        trusted.stop()


def test_global_cap_says_try_again(settings: Settings) -> None:
    running = ServerThread(dataclasses.replace(settings, max_connections=1)).start()

    async def run() -> None:
        url = f"{running.ws_url}/ws"
        async with websockets.connect(url):
            assert await close_code(url) == 1013

    try:
        asyncio.run(run())
    finally:
        running.stop()


def stalled_client(url: str) -> socket.socket:
    """A WebSocket client with a tiny receive buffer that stops reading after the handshake."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.connect((host, int(port)))
    sock.sendall(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    return sock


def close_frame_code(data: bytes) -> int | None:
    """The code of the close frame among the server's frames after the handshake, if it came."""
    body = data[data.index(b"\r\n\r\n") + 4 :] if b"\r\n\r\n" in data else b""
    while len(body) >= 2:
        opcode, size, at = body[0] & 0x0F, body[1] & 0x7F, 2
        if size == 126:
            size, at = int.from_bytes(body[2:4]), 4
        elif size == 127:
            size, at = int.from_bytes(body[2:10]), 10
        if len(body) < at + size:
            return None
        if opcode == 0x8:
            return int.from_bytes(body[at : at + 2])
        body = body[at + size :]
    return None


def read_close_code(sock: socket.socket) -> int | None:
    """Read what the server sent until its close frame (or until it hung up)."""
    sock.settimeout(units(10))
    data = bytearray()
    while (code := close_frame_code(data)) is None and (chunk := sock.recv(65536)):
        data += chunk
    sock.close()
    return code


def test_client_that_never_reads_is_closed_while_100_others_get_everything(
    settings: Settings, admin_token: str
) -> None:
    running = ServerThread(
        dataclasses.replace(settings, client_buffer_bytes=32 * 1024, send_buffer_bytes=16 * 1024)
    ).start()
    http = httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=10)

    def slow_closes() -> float:
        for line in http.get("/metrics").text.splitlines():
            if line.startswith("ticker_slow_client_closes_total"):
                return float(line.split()[1])
        return 0.0

    async def run() -> None:
        stalled = stalled_client(running.url)
        readers = [LiveReader(running.ws_url) for _ in range(100)]
        await asyncio.gather(*(r.connect() for r in readers))
        await asyncio.gather(*(r.wait_started() for r in readers))
        cursors: list[str] = []
        headline = "A long headline to fill the buffers quickly " * 6
        while not slow_closes():
            assert len(cursors) < 3000, "the stalled client was never closed"
            cursors += await asyncio.gather(*(asyncio.to_thread(publish, http, headline) for _ in range(20)))
        cursors += [await asyncio.to_thread(publish, http, "after")]
        cursors.sort(key=lambda c: tuple(map(int, c.split("-"))))
        await wait_async(lambda: all(r.cursors() == cursors for r in readers), what="every event everywhere")
        assert await asyncio.to_thread(read_close_code, stalled) == 1013
        await asyncio.gather(*(r.close() for r in readers))

    try:
        asyncio.run(run())
    finally:
        http.close()
        running.stop()


def test_sse_from_now_and_resume_with_last_event_id(server: ServerThread, http: httpx.Client) -> None:
    def read_events(client: httpx.Client, count: int, **headers: str) -> list[tuple[str | None, dict[str, Any]]]:
        got: list[tuple[str | None, dict[str, Any]]] = []
        with client.stream("GET", "/api/events", headers=headers) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            event_id = None
            for line in response.iter_lines():
                if line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("data: "):
                    got.append((event_id, json.loads(line[6:])))
                    event_id = None
                    if len(got) == count:
                        return got
        return got

    first = publish(http, "before")

    async def live() -> list[tuple[str | None, dict[str, Any]]]:
        task = asyncio.create_task(asyncio.to_thread(read_events, http, 1))
        await wait_async(lambda: b'ticker_connections{transport="sse"} 1.0' in http.get("/metrics").content)
        await asyncio.to_thread(publish, http, "live one")
        return await task

    got = asyncio.run(live())
    assert got[0][1]["item"]["headline"] == "live one" and got[0][0] == got[0][1]["cursor"]
    missed = [publish(http, f"missed {i}") for i in range(3)]
    resumed = read_events(http, 4, **{"Last-Event-ID": first})
    assert [i for i, _ in resumed] == [got[0][0], *missed]
    assert [m["type"] for _, m in read_events(http, 2, **{"Last-Event-ID": "1-0"})] == [
        "reset",
        "snapshot",
    ]


def sse_first_event(http: httpx.Client, url: str, **headers: str) -> dict[str, Any]:
    with http.stream("GET", url, headers=headers) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                message: dict[str, Any] = json.loads(line[6:])
                return message
    raise AssertionError("the stream ended without an event")


def test_sse_last_event_id_wins_over_the_cursor_parameter(server: ServerThread, http: httpx.Client) -> None:
    """A browser's EventSource reconnects to its first URL, ?cursor= included, and adds Last-Event-ID."""
    first = publish(http, "one")
    second = publish(http, "two")
    publish(http, "three")
    message = sse_first_event(http, f"/api/events?cursor={first}", **{"Last-Event-ID": second})
    assert message["item"]["headline"] == "three"
    assert sse_first_event(http, f"/api/events?cursor={first}")["item"]["headline"] == "two"


def opens(http: httpx.Client, **headers: str) -> bool:
    with http.stream("GET", "/api/events", headers=headers) as response:
        return response.status_code == 200


def test_sse_is_admitted_like_the_websocket(settings: Settings) -> None:
    """Origin allow-list, the per-address cap shared with /ws, the global cap; JSON errors with Retry-After."""
    running = ServerThread(
        dataclasses.replace(settings, max_connections=2, max_connections_per_address=1, trusted_addresses=())
    ).start()
    http = httpx.Client(base_url=running.url, timeout=units(10))

    def refused(status: int, code: str, **headers: str) -> httpx.Response:
        answer = http.get("/api/events", headers=headers)
        assert answer.status_code == status, answer.text
        assert answer.json()["error"]["code"] == code
        return answer

    try:
        refused(403, "forbidden", Origin="http://evil.example")
        with http.stream("GET", "/api/events", headers={"Origin": running.url}) as held:
            assert held.status_code == 200
            assert int(refused(429, "rate_limited").headers["retry-after"]) >= 1
            assert asyncio.run(close_code(f"{running.ws_url}/ws")) == 4429
            # The loopback peer is a trusted proxy by default: its X-Forwarded-For names the client.
            with http.stream("GET", "/api/events", headers={"X-Forwarded-For": "127.0.9.1"}) as other:
                assert other.status_code == 200
                full = refused(503, "unavailable", **{"X-Forwarded-For": "127.0.9.2"})
                assert int(full.headers["retry-after"]) >= 1
        # Both streams ended: their places are given back.
        wait_for(lambda: opens(http), what="a stream admitted again")
    finally:
        http.close()
        running.stop()


def test_metrics_and_readiness(server: ServerThread, http: httpx.Client) -> None:
    assert http.get("/readyz").json() == {"status": "ready"}
    publish(http, "counted")
    text = http.get("/metrics").text
    for name in [
        "ticker_connections",
        "ticker_deliveries_total",
        "ticker_frames_total",
        "ticker_slow_client_closes_total",
        "ticker_reader_lag_seconds",
        "ticker_publish_to_send_seconds_bucket",
        "ticker_redis_errors_total",
    ]:
        assert name in text, name


def test_heartbeats_drop_a_dead_peer(settings: Settings) -> None:
    running = ServerThread(dataclasses.replace(settings, ping_interval=0.2, ping_timeout=0.3)).start()
    gauge = b'ticker_connections{transport="ws"} '
    try:
        with httpx.Client(base_url=running.url) as http:
            dead = stalled_client(running.url)  # answers no ping
            assert read_close_code(dead) == 1011
            wait_for(lambda: gauge + b"0.0" in http.get("/metrics").content, what="the dead peer dropped")
    finally:
        running.stop()


def test_portable_asgi_send_path_gives_the_same_protocol(settings: Settings, admin_token: str) -> None:
    running = ServerThread(dataclasses.replace(settings, direct_frames=False)).start()
    try:
        with httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {admin_token}"}) as http:
            start = publish(http, "one")
            later = [publish(http, f"n{i}") for i in range(3)]
            got = asyncio.run(first_messages(f"{running.ws_url}/ws?cursor={start}", 3))
            assert [m["cursor"] for m in got] == later
            assert asyncio.run(close_code(f"{running.ws_url}/ws", "hello")) == 1003
    finally:
        running.stop()


def test_permessage_deflate_is_not_negotiated(settings: Settings) -> None:
    running = ServerThread(settings).start()

    async def run() -> str | None:
        async with websockets.connect(f"{running.ws_url}/ws", compression="deflate") as ws:
            await ws.recv()
            assert ws.response is not None
            return ws.response.headers.get("Sec-WebSocket-Extensions")

    try:
        assert asyncio.run(run()) is None  # offered by the client, declined: frames are shared as they are
    finally:
        running.stop()


def test_a_live_peer_answers_heartbeats_and_stays(settings: Settings, admin_token: str) -> None:
    running = ServerThread(dataclasses.replace(settings, ping_interval=0.05, ping_timeout=units(5))).start()
    headers = {"Authorization": f"Bearer {admin_token}"}

    async def run() -> None:
        reader = LiveReader(running.ws_url)
        await reader.connect()
        await reader.wait_started()
        async with httpx.AsyncClient(base_url=running.url, headers=headers) as http:
            pings = b'ticker_connections{transport="ws"} 1.0'
            for _ in range(10):  # several ping/pong rounds, with the parser started afresh
                await asyncio.sleep(0.05)
                assert pings in (await http.get("/metrics")).content
            cursor = (await http.post("/api/items", json={"headline": "still here"})).json()["cursor"]
        await wait_async(lambda: reader.cursors() == [cursor], what="the event after the pings")
        assert reader.close_code is None
        await reader.close()

    try:
        asyncio.run(run())
    finally:
        running.stop()
