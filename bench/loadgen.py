"""The load generator: N WebSocket readers in one process, driven over stdin/stdout.

A minimal WebSocket client on raw asyncio protocols (no per-connection task,
no stream objects): it sends the handshake, parses unmasked server frames,
answers pings and closes, splits each text frame on newlines and checks every
event it carries. Messages are identical across clients (the server
serializes each event once), so each distinct line is parsed once and the
result looked up by its bytes afterwards.

Every client checks its own sequence: the producer numbers its headlines
``bench <seq>`` from 1, so an event below the last one seen is a duplicate
and a jump is a gap. Latency is the receive time minus the event's ``ts``
(the server append time, milliseconds), kept in a 1 ms histogram.

Commands are JSON lines on stdin, answers JSON lines on stdout::

    {"cmd": "connect", "host": H, "port": P, "n": N, "timeout": S, "sources": K}
                                      K > 1: from 127.0.0.2 ... 127.0.0.(K+1), past
                                      the ~28,000 ports of one address pair
    {"cmd": "reset"}                  start a measured window
    {"cmd": "wait", "seq": S, "timeout": T}
    {"cmd": "stats", "published": P}
    {"cmd": "drop"}                   cut every connection (TCP reset)
    {"cmd": "reconnect", "timeout": S} every client at once, with its last cursor
    {"cmd": "quit"}
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import resource
import socket
import struct
import sys
import time
import zlib
from typing import Any
from urllib.parse import quote

HIST_MS = 120_000
"""Latency histogram range; anything slower counts in the last bucket."""
CACHE_LIMIT = 100_000
STORM_CONCURRENCY = 2048
"""Reconnects in flight at once in a storm (the servers' listen backlog)."""
CONNECT_CONCURRENCY = 256
DEFLATE_OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
"""What browsers offer by default."""
LAG_TICK = 0.01
"""The loop-lag probe's period: how late it fires says how busy this process is."""


class Stats:
    """Counters shared by every client, reset at the start of a measured window."""

    def __init__(self) -> None:
        self.hist = [0] * (HIST_MS + 1)
        self.delivered = 0
        self.frames = 0
        self.duplicates = 0
        self.gaps = 0
        self.out_of_order = 0
        self.resets = 0
        self.snapshots = 0
        self.first_recv = 0.0
        self.last_recv = 0.0
        self.lag_max = 0.0
        self.cpu0 = time.process_time()
        self.wall0 = time.monotonic()


class Shared:
    def __init__(self, deflate: bool = False) -> None:
        self.deflate = deflate
        """Offer permessage-deflate as browsers do."""
        self.deflated = 0
        """Connections on which the server accepted it."""
        self.stats = Stats()
        self.cache: dict[bytes, tuple[int, int, int, str]] = {}
        self.closes: dict[str, int] = {}


KIND_EVENT, KIND_SNAPSHOT, KIND_RESET, KIND_OTHER = 0, 1, 2, 3


def parse_line(line: bytes) -> tuple[int, int, int, str]:
    """(kind, seq, ts, cursor) of one message line."""
    obj = json.loads(line)
    kind = obj.get("type")
    if kind == "event":
        headline = obj["item"]["headline"]
        seq = int(headline.split()[1]) if headline.startswith("bench ") else 0
        return KIND_EVENT, seq, int(obj["ts"]), obj["cursor"]
    if kind == "snapshot":
        return KIND_SNAPSHOT, 0, 0, obj.get("cursor") or ""
    if kind == "reset":
        return KIND_RESET, 0, 0, ""
    return KIND_OTHER, 0, 0, ""


class Client(asyncio.Protocol):
    """One WebSocket reader."""

    __slots__ = (
        "buf",
        "closed",
        "connected",
        "cursor",
        "first",
        "fragments",
        "handshake",
        "inflater",
        "inflater_per_message",
        "last_seq",
        "rsv1",
        "shared",
        "transport",
        "upgraded",
    )

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.fragments: list[bytes] | None = None
        self.upgraded = False
        self.closed = True  # until connected, and again once the connection is lost
        self.last_seq = 0
        self.cursor = ""
        loop = asyncio.get_running_loop()
        self.handshake: asyncio.Future[str] = loop.create_future()
        self.first: asyncio.Future[None] = loop.create_future()
        self.connected = False
        self.inflater: Any = None
        """A zlib decompressor when permessage-deflate was negotiated."""
        self.inflater_per_message = False
        self.rsv1 = False

    # --- connection ------------------------------------------------------------

    def request(self, host: str, port: int, path: str) -> bytes:
        key = base64.b64encode(os.urandom(16)).decode()
        return (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            + (DEFLATE_OFFER if self.shared.deflate else "")
            + "\r\n"
        ).encode()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.connected = True
        self.closed = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.connected = False
        if not self.handshake.done():
            self.handshake.set_result("connection lost before the handshake")
        if not self.first.done():
            self.first.set_result(None)

    def abort(self) -> None:
        """Cut the connection with a TCP reset: no TIME_WAIT left behind on either side."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    # --- frames ------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.buf:
            data = self.buf + data
            self.buf = b""
        if not self.upgraded:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buf = data
                return
            status = data[: data.find(b"\r\n")]
            if b" 101 " not in status + b" ":
                self.handshake.set_result(status.decode(errors="replace"))
                self.abort()
                return
            self.upgraded = True
            headers = data[:end].lower()
            if b"permessage-deflate" in headers:
                self.inflater = zlib.decompressobj(-15)
                self.inflater_per_message = b"server_no_context_takeover" in headers
                self.shared.deflated += 1
            self.handshake.set_result("")
            data = data[end + 4 :]
            if not data:
                return
        pos = 0
        size = len(data)
        now_ms = time.time() * 1000.0
        while size - pos >= 2:
            b0 = data[pos]
            length = data[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                head = 10
            end = pos + head + length
            if end > size:
                break
            payload = data[pos + head : end]
            pos = end
            opcode = b0 & 0x0F
            if opcode == 1 and b0 & 0xC0 == 0x80:
                self.text(payload, now_ms)
            elif opcode == 1 or (opcode == 0 and self.fragments is not None):
                # A compressed or fragmented message: keep the pieces until the final one.
                if opcode == 1:
                    self.fragments, self.rsv1 = [payload], bool(b0 & 0x40)
                else:
                    self.fragments = [*(self.fragments or []), payload]
                if b0 & 0x80:
                    message = b"".join(self.fragments)
                    self.fragments = None
                    self.text(self.inflate(message) if self.rsv1 else message, now_ms)
            elif opcode == 9:
                self.send(0xA, payload)
            elif opcode == 8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                closes = self.shared.closes
                closes[str(code)] = closes.get(str(code), 0) + 1
                self.send(0x8, payload[:2])
                if self.transport is not None:
                    self.transport.close()
                return
        if pos < size:
            self.buf = data[pos:]

    def inflate(self, payload: bytes) -> bytes:
        if self.inflater is None:
            return payload
        if self.inflater_per_message:
            self.inflater = zlib.decompressobj(-15)
        return bytes(self.inflater.decompress(payload + b"\x00\x00\xff\xff"))

    def send(self, opcode: int, payload: bytes) -> None:
        """A masked client frame (pongs and close replies only; they are rare)."""
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def text(self, payload: bytes, now_ms: float) -> None:
        shared = self.shared
        stats = shared.stats
        cache = shared.cache
        stats.frames += 1
        hist = stats.hist
        for line in payload.split(b"\n") if b"\n" in payload else (payload,):
            if not line:
                continue
            info = cache.get(line)
            if info is None:
                info = parse_line(line)
                if len(cache) >= CACHE_LIMIT:
                    cache.clear()
                cache[line] = info
            kind, seq, ts, cursor = info
            if kind == KIND_EVENT:
                last = self.last_seq
                if seq == last + 1:
                    self.last_seq = seq
                elif seq <= last:
                    stats.duplicates += 1
                    continue
                else:
                    stats.gaps += seq - last - 1
                    self.last_seq = seq
                self.cursor = cursor
                stats.delivered += 1
                lat = int(now_ms - ts)
                hist[lat if 0 <= lat < HIST_MS else (0 if lat < 0 else HIST_MS)] += 1
            elif kind == KIND_SNAPSHOT:
                stats.snapshots += 1
                self.cursor = cursor
            elif kind == KIND_RESET:
                stats.resets += 1
        if stats.first_recv == 0.0:
            stats.first_recv = now_ms
        stats.last_recv = now_ms
        if not self.first.done():
            self.first.set_result(None)


def percentile(hist: list[int], total: int, q: float) -> int | None:
    if total == 0:
        return None
    rank = max(1, int(total * q + 0.999999))
    seen = 0
    for ms, count in enumerate(hist):
        seen += count
        if seen >= rank:
            return ms
    return HIST_MS


class LoadGen:
    def __init__(self) -> None:
        self.shared = Shared()
        self.clients: list[Client] = []
        self.host = "127.0.0.1"
        self.port = 0
        self.sources = 1
        self.path = "/ws"

    def source(self, index: int) -> tuple[str, int] | None:
        return (f"127.0.0.{2 + index % self.sources}", 0) if self.sources > 1 else None

    async def open_one(
        self, client: Client | None, path: str, sem: asyncio.Semaphore, deadline: float, index: int
    ) -> str:
        loop = asyncio.get_running_loop()
        async with sem:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            try:
                _, proto = await asyncio.wait_for(
                    loop.create_connection(
                        lambda: client or Client(self.shared), self.host, self.port, local_addr=self.source(index)
                    ),
                    remaining,
                )
            except (OSError, TimeoutError) as exc:
                return type(exc).__name__
            assert isinstance(proto, Client)
            if client is None:
                self.clients.append(proto)
            transport = proto.transport
            assert transport is not None
            transport.write(proto.request(self.host, self.port, path))
            try:
                error = await asyncio.wait_for(asyncio.shield(proto.handshake), deadline - time.monotonic())
            except TimeoutError:
                return "handshake timeout"
            return error

    async def connect(
        self, host: str, port: int, n: int, within: float, deflate: bool = False, sources: int = 1
    ) -> dict[str, Any]:
        self.host, self.port, self.sources = host, port, sources
        self.shared.deflate = deflate
        before = len(self.clients)
        start = time.monotonic()
        deadline = start + within
        sem = asyncio.Semaphore(CONNECT_CONCURRENCY)
        jobs = (self.open_one(None, self.path, sem, deadline, before + i) for i in range(n))
        results = await asyncio.gather(*jobs)
        errors = count_errors(results)
        new = self.clients[before:]
        waiting = [c.first for c in new if c.upgraded]
        if waiting:
            await asyncio.wait(waiting, timeout=max(0.1, deadline - time.monotonic()))
        first = sum(1 for c in new if c.first.done() and not c.closed)
        return {
            "connected": first,
            "errors": errors,
            "secs": time.monotonic() - start,
            "deflated": self.shared.deflated,
        }

    def drop(self) -> dict[str, Any]:
        for client in self.clients:
            client.abort()
        return {"dropped": len(self.clients)}

    async def reconnect(self, within: float) -> dict[str, Any]:
        start = time.monotonic()
        deadline = start + within
        # A real storm's clients each send their request head at once; this one process,
        # holding them all, would hold heads back past the server's header deadline if it
        # opened every connection before writing any: as many in flight as the listen backlog.
        sem = asyncio.Semaphore(STORM_CONCURRENCY)
        fresh = []
        for old in self.clients:
            client = Client(self.shared)
            client.last_seq, client.cursor = old.last_seq, old.cursor
            fresh.append(client)
        self.clients = fresh
        paths = [self.path + (f"?cursor={quote(c.cursor)}" if c.cursor else "") for c in fresh]
        jobs = [self.open_one(c, path, sem, deadline, i) for i, (c, path) in enumerate(zip(fresh, paths, strict=True))]
        errors = count_errors(await asyncio.gather(*jobs))
        upgraded = sum(1 for c in fresh if c.upgraded and not c.closed)
        return {"connected": upgraded, "errors": errors, "secs": time.monotonic() - start}

    async def wait(self, seq: int, within: float) -> dict[str, Any]:
        """Until every open client has seen ``seq`` (or the time is up)."""
        start = time.monotonic()
        deadline = start + within
        times: list[float] = []
        pending = [c for c in self.clients if not c.closed]
        while pending and time.monotonic() < deadline:
            now = time.monotonic()
            still = []
            for c in pending:
                if c.last_seq >= seq:
                    times.append(now - start)
                elif not c.closed:
                    still.append(c)
            pending = still
            if pending:
                await asyncio.sleep(0.005)
        times.sort()
        return {
            "caught_up": len(times),
            "behind": len(pending),
            "closed": sum(1 for c in self.clients if c.closed and c.last_seq < seq),
            "secs": time.monotonic() - start,
            "p50": times[len(times) // 2] if times else None,
            "max": times[-1] if times else None,
        }

    def stats(self, published: int) -> dict[str, Any]:
        s = self.shared.stats
        cpu = time.process_time() - s.cpu0
        wall = time.monotonic() - s.wall0
        tail = sum(max(0, published - c.last_seq) for c in self.clients)
        total = sum(s.hist)
        return {
            "delivered": s.delivered,
            "frames": s.frames,
            "duplicates": s.duplicates,
            "lost": s.gaps + tail,
            "resets": s.resets,
            "snapshots": s.snapshots,
            "open": sum(1 for c in self.clients if not c.closed),
            "clients": len(self.clients),
            "closes": dict(self.shared.closes),
            "p50": percentile(s.hist, total, 0.50),
            "p99": percentile(s.hist, total, 0.99),
            "max": max((ms for ms, n in enumerate(s.hist) if n), default=None),
            "first_recv": s.first_recv / 1000.0,
            "last_recv": s.last_recv / 1000.0,
            "cpu": cpu,
            "wall": wall,
            "lag_max": s.lag_max,
        }

    def reset(self) -> dict[str, Any]:
        # Everything alive now (the clients) stays: keep the collector from walking it again and again.
        gc.collect()
        gc.freeze()
        self.shared.stats = Stats()
        self.shared.closes = {}
        return {}


def count_errors(results: list[str]) -> dict[str, int]:
    errors: dict[str, int] = {}
    for result in results:
        if result:
            errors[result] = errors.get(result, 0) + 1
    return errors


async def lag_probe(gen: LoadGen) -> None:
    """How late a 10 ms timer fires: a busy load generator shows here first."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(LAG_TICK)
        late = loop.time() - before - LAG_TICK
        stats = gen.shared.stats
        stats.lag_max = max(stats.lag_max, late)


async def serve_commands() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    gen = LoadGen()
    probe = asyncio.create_task(lag_probe(gen))
    try:
        while line := await reader.readline():
            cmd = json.loads(line)
            name = cmd.pop("cmd")
            answer: dict[str, Any]
            if name == "connect":
                answer = await gen.connect(
                    cmd["host"], cmd["port"], cmd["n"], cmd["timeout"], cmd.get("deflate", False), cmd.get("sources", 1)
                )
            elif name == "reset":
                answer = gen.reset()
            elif name == "wait":
                answer = await gen.wait(cmd["seq"], cmd["timeout"])
            elif name == "stats":
                answer = gen.stats(cmd["published"])
            elif name == "drop":
                answer = gen.drop()
            elif name == "reconnect":
                answer = await gen.reconnect(cmd["timeout"])
            elif name == "quit":
                break
            else:
                answer = {"error": f"unknown command {name}"}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
    finally:
        probe.cancel()
        gen.drop()


def main() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # Thousands of connections make many small objects; the default young threshold (700) would have
    # the collector walk them over and over during a reconnect storm.
    gc.set_threshold(20_000)
    asyncio.run(serve_commands())


if __name__ == "__main__":
    main()
