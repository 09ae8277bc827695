"""Micro-benchmark: the cost of writing one message to many WebSocket connections.

Compares, on real connected sockets in one process (the other ends are drained
between rounds, outside the timing):

- ``asgi-task``: a task and a bounded queue per client, each awaiting a send
  that encodes the frame (what uvicorn's ``send`` does per client);
- ``broadcast``: ``websockets.broadcast()``'s way: no await, but the frame is
  encoded per client by its protocol object;
- ``prepared``: Ticker's way: the frame is built once and the same bytes are
  written to every transport;
- ``deflate-per-client``: permessage-deflate as servers negotiate it by
  default: compressed per client, with context takeover;
- ``deflate-once``: compressed once without context, the same frame to all.

Prints microseconds of sending per delivery (median of the rounds) and bytes
on the wire per delivery. Usage: ``python bench/sendpath.py [--clients N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import struct
import time
import zlib
from typing import Any

from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.protocol import OPEN
from websockets.server import ServerProtocol


def text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented, uncompressed server-to-client text frame (RFC 6455 §5.2)."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x81, n) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


ITEM = {
    "id": "01jd0c5m8f3v6q2k9x7w4r1t0y",
    "version": 1,
    "headline": "Storm closes the coastal road between the two harbour towns until Monday",
    "url": "https://news.example/storm",
    "labels": ["breaking"],
    "channel": "news",
    "published_at": "2024-11-17T16:22:00.000Z",
    "updated_at": None,
    "correction": None,
    "pinned": False,
    "lang": "en",
    "author": "Desk",
}


WORDS = ("storm", "road", "harbour", "council", "vote", "budget", "strike", "rail", "court")


def message(n: int) -> bytes:
    words = [WORDS[(n * 7 + i * 3) % len(WORDS)] for i in range(10)]
    headline = f"{n}: " + " ".join(words).capitalize()
    item = json.dumps({**ITEM, "id": f"01jd0c5m8f3v6q2k9x7w{n:06d}", "headline": headline}, separators=(",", ":"))
    head = f'{{"type":"event","cursor":"1732000000000-{n}","op":"publish","ts":1732000000000,"item":'
    return (head + item + "}").encode()


class Drain(asyncio.Protocol):
    received = 0

    def data_received(self, data: bytes) -> None:
        Drain.received += len(data)


class Quiet(asyncio.Protocol):
    pass


async def pairs(n: int) -> list[asyncio.Transport]:
    loop = asyncio.get_running_loop()
    out = []
    for _ in range(n):
        a, b = socket.socketpair()
        transport, _ = await loop.connect_accepted_socket(Quiet, a)
        await loop.connect_accepted_socket(Drain, b)
        out.append(transport)
    return out


def protocol(deflate: bool) -> ServerProtocol:
    proto = ServerProtocol(state=OPEN)
    if deflate:
        proto.extensions = [PerMessageDeflate(False, False, 12, 12, {"memLevel": 5})]
    return proto


async def run(variant: str, transports: list[Any], rounds: int) -> float:
    protos = [protocol(variant == "deflate-per-client") for _ in transports]
    timings = []
    queues: list[asyncio.Queue[bytes]] = []
    tasks = []
    if variant == "asgi-task":
        for proto, transport in zip(protos, transports, strict=True):
            queue: asyncio.Queue[bytes] = asyncio.Queue(256)
            queues.append(queue)
            tasks.append(asyncio.create_task(asgi_client(queue, proto, transport)))
    for n in range(rounds):
        data = message(n)
        Drain.received = 0
        start = time.perf_counter()
        if variant == "asgi-task":
            for queue in queues:
                queue.put_nowait(data)
            while any(q.qsize() for q in queues):  # noqa: ASYNC110 (polling the clients' queues is the point)
                await asyncio.sleep(0)
        elif variant in ("broadcast", "deflate-per-client"):
            text = data.decode()
            for proto, transport in zip(protos, transports, strict=True):
                proto.send_text(text.encode())
                transport.write(b"".join(proto.data_to_send()))
        elif variant == "prepared":
            frame = text_frame(data)
            for transport in transports:
                transport.write(frame)
        elif variant == "deflate-once":
            compressor = zlib.compressobj(6, zlib.DEFLATED, -12, 5)
            body = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
            frame = b"\xc1" + text_frame(body[:-4])[1:]  # FIN, RSV1 (compressed), text
            for transport in transports:
                transport.write(frame)
        timings.append((time.perf_counter() - start) / len(transports))
        while any(t.get_write_buffer_size() for t in transports) or not Drain.received:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.005)
        wire[variant] = Drain.received / len(transports)
    for task in tasks:
        task.cancel()
    return statistics.median(timings) * 1e6


async def asgi_client(queue: asyncio.Queue[bytes], proto: ServerProtocol, transport: Any) -> None:
    writable = asyncio.Event()
    writable.set()

    async def send(event: dict[str, Any]) -> None:
        await writable.wait()
        proto.send_text(event["text"].encode())
        transport.write(b"".join(proto.data_to_send()))

    while True:
        data = await queue.get()
        await send({"type": "websocket.send", "text": data.decode()})


wire: dict[str, float] = {}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    names = ["asgi-task", "broadcast", "prepared", "deflate-per-client", "deflate-once"]
    print(f"{args.clients} connections, {args.rounds} messages of {len(message(0))} bytes, median per delivery")
    for name in names:
        transports = await pairs(args.clients)
        micros = await run(name, transports, args.rounds)
        for transport in transports:
            transport.close()
        print(f"{name:20s} {micros:7.2f} µs   {wire[name]:6.0f} bytes on the wire")


if __name__ == "__main__":
    asyncio.run(main())
