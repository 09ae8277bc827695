"""Where the hub's prepared bytes go: one sink per connected client.

Each sink takes a delivery without waiting and bounds what it holds; a full
sink answers False and the hub closes it as too slow.

- :class:`FrameSink`: ready WebSocket frames written straight to the
  connection's transport (under Ticker's uvicorn protocol); the transport's
  write buffer is the queue, bounded in bytes.
- :class:`QueueSink`: the portable ASGI path for any other server: a bounded
  queue drained by one task calling ``send``.
- :class:`SseSink`: Server-Sent Events text for a streaming HTTP response.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.websockets import WebSocket

from ticker.protocol import SSE_HEARTBEAT, CloseCode
from ticker.server import FrameWriter

DEFAULT_QUEUE_DELIVERIES = 256
"""Deliveries a queued sink holds before its client counts as too slow."""


async def _serve_receive(websocket: WebSocket, sink: FrameSink | QueueSink) -> None:
    """Wait for the client to go; any frame it sends is unexpected (1003)."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        sink.close(CloseCode.UNSUPPORTED, "this socket takes no messages from clients")


class FrameSink:
    kind = "ws"

    def __init__(self, writer: FrameWriter, *, limit: int) -> None:
        self.writer = writer
        self.limit = limit

    def deliver(self, data: Any) -> bool:
        if not self.writer.open():
            return True  # closing already: the endpoint leaves the hub when the disconnect arrives
        if self.writer.buffered() > self.limit:
            return False
        self.writer.write(data)
        return True

    def close(self, code: int, reason: str = "") -> None:
        self.writer.close(code, reason)

    async def serve(self, websocket: WebSocket) -> None:
        await _serve_receive(websocket, self)


class QueueSink:
    kind = "text"

    def __init__(self, websocket: WebSocket, *, limit: int = DEFAULT_QUEUE_DELIVERIES) -> None:
        self.websocket = websocket
        self.queue: asyncio.Queue[list[str] | tuple[int, str]] = asyncio.Queue(limit)

    def deliver(self, data: Any) -> bool:
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            return False
        return True

    def close(self, code: int, reason: str = "") -> None:
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait((code, reason))

    async def _pump(self) -> None:
        while True:
            data = await self.queue.get()
            if isinstance(data, tuple):
                await self.websocket.close(data[0], data[1])
                return
            for payload in data:
                await self.websocket.send_text(payload)

    async def serve(self, websocket: WebSocket) -> None:
        pump = asyncio.create_task(self._pump())
        try:
            await _serve_receive(websocket, self)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump


class SseSink:
    kind = "sse"

    def __init__(self, *, limit: int = DEFAULT_QUEUE_DELIVERIES) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(limit)

    def deliver(self, data: Any) -> bool:
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            return False
        return True

    def close(self, code: int, reason: str = "") -> None:
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    async def chunks(self, heartbeat: float) -> AsyncIterator[bytes]:
        """What the response streams: deliveries, and a comment after ``heartbeat`` idle seconds."""
        while True:
            try:
                data = await asyncio.wait_for(self.queue.get(), heartbeat)
            except TimeoutError:
                yield SSE_HEARTBEAT
                continue
            if data is None:
                return
            yield data
