"""The benchmark's WebSocket client, fed bytes directly: frames, checks and latency."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bench.loadgen import Client, Shared, percentile


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def frame(payload: bytes, *, opcode: int = 1, fin: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    if len(payload) < 126:
        return head + bytes([len(payload)]) + payload
    if len(payload) < 1 << 16:
        return head + bytes([126]) + len(payload).to_bytes(2, "big") + payload
    return head + bytes([127]) + len(payload).to_bytes(8, "big") + payload


def event(seq: int, ts: int) -> bytes:
    item = {"id": f"e{seq}", "headline": f"bench {seq} something happened"}
    message = {"type": "event", "cursor": f"{ts}-{seq}", "op": "publish", "ts": ts, "item": item}
    return json.dumps(message).encode()


def run(feed: list[bytes]) -> tuple[Client, Shared, FakeTransport]:
    async def go() -> tuple[Client, Shared, FakeTransport]:
        shared = Shared()
        client = Client(shared)
        transport = FakeTransport()
        client.connection_made(transport)
        for chunk in feed:
            client.data_received(chunk)
        return client, shared, transport

    return asyncio.run(go())


HANDSHAKE = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


def test_events_are_checked_for_order_gaps_and_duplicates() -> None:
    now = int(time.time() * 1000)
    snapshot = json.dumps({"type": "snapshot", "cursor": "0-0", "items": []}).encode()
    packed = b"\n".join([event(1, now), event(2, now)])
    data = HANDSHAKE + frame(snapshot) + frame(packed) + frame(event(2, now)) + frame(event(5, now))
    # Split mid-frame: the client must reassemble across reads.
    client, shared, _ = run([data[:100], data[100:101], data[101:]])
    stats = shared.stats
    assert client.handshake.result() == ""
    assert stats.snapshots == 1
    assert stats.delivered == 3
    assert stats.duplicates == 1
    assert stats.gaps == 2
    assert client.last_seq == 5
    assert client.cursor == f"{now}-5"
    assert stats.frames == 4


def test_fragmented_and_long_frames_are_read_whole() -> None:
    now = int(time.time() * 1000)
    big = b"\n".join(event(seq, now) for seq in range(1, 600))
    assert len(big) > 1 << 16
    first, second = event(600, now)[:30], event(600, now)[30:]
    data = HANDSHAKE + frame(big) + frame(first, fin=False) + frame(second, opcode=0)
    client, shared, _ = run([data])
    assert shared.stats.delivered == 600
    assert shared.stats.gaps == shared.stats.duplicates == 0
    assert client.last_seq == 600


def test_pings_are_answered_and_closes_recorded() -> None:
    data = HANDSHAKE + frame(b"hi", opcode=9) + frame((1013).to_bytes(2, "big") + b"slow", opcode=8)
    _, shared, transport = run([data])
    pong, close = transport.written[-2:]
    assert pong[0] == 0x8A and pong[1] == 0x80 | 2
    mask = pong[2:6]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(pong[6:])) == b"hi"
    assert close[0] == 0x88
    assert shared.closes == {"1013": 1}
    assert transport.closed


def test_a_refused_handshake_is_reported() -> None:
    client, _, transport = run([b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n"])
    assert client.handshake.result() == "HTTP/1.1 403 Forbidden"
    assert transport.closed


def test_percentiles_from_the_histogram() -> None:
    hist = [0] * 10
    hist[1], hist[5], hist[9] = 50, 49, 1
    assert percentile(hist, 100, 0.5) == 1
    assert percentile(hist, 100, 0.99) == 5
    assert percentile(hist, 100, 1.0) == 9
    assert percentile(hist, 0, 0.5) is None


def test_permessage_deflate_with_context_takeover_is_inflated() -> None:
    import zlib

    now = int(time.time() * 1000)
    deflater = zlib.compressobj(wbits=-15)
    frames = b""
    for seq in (1, 2):
        data = deflater.compress(event(seq, now)) + deflater.flush(zlib.Z_SYNC_FLUSH)
        assert data.endswith(b"\x00\x00\xff\xff")
        frames += bytes([0xC1]) + frame(data[:-4])[1:]
    accepted = HANDSHAKE.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
    client, shared, _ = run([accepted + frames])
    assert shared.deflated == 1
    assert shared.stats.delivered == 2
    assert client.last_seq == 2
