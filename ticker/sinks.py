"""Where the hub's prepared bytes go: one sink per connected client.

A sink is opened with a listener (the hub's subscriber) and gives back the
function that takes one delivery; that function never blocks. A client that
cannot keep up is reported through ``listener.stalled()`` and closed by the
hub with 1013; nobody else waits for it.

- :class:`FrameSink`: ready WebSocket frames written straight to the
  connection through the server's ``ticker.frames`` extension (:class:`Frames`;
  Ticker's own server provides it, see :mod:`ticker.server`). The transport's
  write buffer is the queue, bounded in bytes by its flow control.
- :class:`QueueSink`: the portable ASGI path for any other server: a bounded
  queue drained by one task calling ``send``.
- :class:`SseSink`: Server-Sent Events text for a streaming HTTP response.

This module speaks only ASGI and the neutral :class:`Frames` interface; it
never imports a server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, Protocol, TypeVar

from starlette.websockets import WebSocket

from ticker.protocol import SSE_HEARTBEAT, CloseCode

T = TypeVar("T")

FRAMES_EXTENSION = "ticker.frames"
"""The ASGI scope extension under which a server offers :class:`Frames` (``{"frames": Frames}``)."""

DEFAULT_QUEUE_DELIVERIES = 256
"""Deliveries a queued sink holds before its client counts as too slow."""


class Listener(Protocol):
    """Who hears about one client's connection: the hub's subscriber."""

    def stalled(self) -> None:
        """The client cannot keep up: more than the sink's bound waits for it."""

    def stopped(self) -> None:
        """The connection takes no more frames (closing, closed or lost)."""


class Frames(Protocol):
    """One accepted WebSocket connection that takes ready-made frames.

    After :meth:`attach` the connection belongs to the frame writer: the ASGI
    endpoint may return, and the server keeps the connection open, answers
    pings, closes it with 1003 on any client message, and tells the listener
    when it stops (``stopped``) or when more than ``limit`` bytes wait in its
    write buffer (``stalled``, found by the transport's flow control).
    """

    def attach(self, listener: Listener, *, limit: int) -> Callable[[bytes], object]:
        """Start taking frames; the function that writes one (it never blocks)."""

    def close(self, code: int, reason: str = "") -> None:
        """Send a close frame now, past a full buffer, and stop taking frames."""


def frames_of(scope: Any) -> Frames | None:
    """The connection's :class:`Frames`, when the server offers the extension."""
    extension = scope.get("extensions", {}).get(FRAMES_EXTENSION)
    return extension["frames"] if extension else None


class FrameSink:
    """Prepared frames through :class:`Frames`; ``on_stop`` runs once the connection stops."""

    __slots__ = ("frames", "limit", "listener", "on_stop")
    kind = "ws"

    def __init__(self, frames: Frames, *, limit: int, on_stop: Callable[[], None] | None = None) -> None:
        self.frames = frames
        self.limit = limit
        self.on_stop = on_stop
        self.listener: Listener | None = None

    def open(self, listener: Listener) -> Callable[[Any], object]:
        self.listener = listener
        return self.frames.attach(self, limit=self.limit)

    def stalled(self) -> None:
        if self.listener is not None:
            self.listener.stalled()

    def stopped(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.stopped()
        on_stop, self.on_stop = self.on_stop, None
        if on_stop is not None:
            on_stop()

    def close(self, code: int, reason: str = "") -> None:
        self.frames.close(code, reason)


class _Bounded(Generic[T]):
    """A bounded queue of deliveries; closing drops what waits and queues ``last`` in its place."""

    def __init__(self, limit: int) -> None:
        self.queue: asyncio.Queue[T] = asyncio.Queue(limit)
        self.listener: Listener | None = None

    def open(self, listener: Listener) -> Callable[[Any], object]:
        self.listener = listener
        return self.deliver

    def deliver(self, data: Any) -> None:
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            if self.listener is not None:
                self.listener.stalled()

    def finish(self, last: T) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(last)


class QueueSink(_Bounded[list[str] | tuple[int, str]]):
    kind = "text"

    def __init__(self, websocket: WebSocket, *, limit: int = DEFAULT_QUEUE_DELIVERIES) -> None:
        super().__init__(limit)
        self.websocket = websocket

    def close(self, code: int, reason: str = "") -> None:
        self.finish((code, reason))

    async def _pump(self) -> None:
        while True:
            data = await self.queue.get()
            if isinstance(data, tuple):
                await self.websocket.close(data[0], data[1])
                return
            for payload in data:
                await self.websocket.send_text(payload)

    async def serve(self) -> None:
        """Send what is queued until the client goes; any frame it sends is unexpected (1003)."""
        pump = asyncio.create_task(self._pump())
        try:
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                self.close(CloseCode.UNSUPPORTED, "this socket takes no messages from clients")
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump


class SseSink(_Bounded[bytes | None]):
    kind = "sse"

    def __init__(self, *, limit: int = DEFAULT_QUEUE_DELIVERIES) -> None:
        super().__init__(limit)

    def close(self, code: int, reason: str = "") -> None:
        self.finish(None)

    async def chunks(self, heartbeat: float) -> AsyncIterator[bytes]:
        """What the response streams: deliveries, and a comment after ``heartbeat`` idle seconds."""
        while True:
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can lose the
                # cancellation that ends this stream at shutdown (see ticker.tasks).
                async with asyncio.timeout(heartbeat):
                    data = await self.queue.get()
            except TimeoutError:
                yield SSE_HEARTBEAT
                continue
            if data is None:
                return
            yield data
