"""How Ticker runs under uvicorn: its WebSocket protocol with a direct frame writer.

The ASGI ``send`` path costs a coroutine, a frame encoding and a write per
client per message; for a fan-out of one prepared frame to thousands of
clients that is most of the server's CPU. :class:`TickerWebSocketProtocol`
is uvicorn's ``websockets-sansio`` protocol plus one ASGI scope extension,
``ticker.frames``, through which the live endpoint writes ready-made frames
straight to the connection's transport (see ``docs/performance.md``). Under
any other server the extension is absent and the endpoint falls back to the
ASGI ``send`` path.

A few small changes keep idle connections light (measured in
``docs/performance.md``): once the socket is accepted, the handshake's
request and response are released and the frame parser is started afresh
(the old one kept the request alive), and the per-connection ASGI receive
queue and "writable" event are slotted stand-ins (:class:`Inbox`,
:class:`Flag`) for ``asyncio.Queue`` and ``asyncio.Event``.

Permessage-deflate is off for the live socket: the frames are prepared once
for every client, and a compressed frame would have to be prepared per
negotiated window size (see ``docs/performance.md`` for the measurement).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from asyncio import BaseTransport
from typing import Any

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import Protocol
from websockets.server import ServerProtocol

from ticker.config import Settings
from ticker.protocol import CloseCode

FRAMES_EXTENSION = "ticker.frames"
CLOSE_TIMEOUT = 10.0
"""Seconds a closed connection may take to drain before it is dropped."""


class FrameWriter:
    """Writes prepared frames to one connection; what the live endpoint's sink holds."""

    def __init__(self, protocol: TickerWebSocketProtocol) -> None:
        self._protocol = protocol

    def open(self) -> bool:
        p = self._protocol
        return p.handshake_complete and not p.close_sent and not p.disconnected and not p.transport.is_closing()

    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        return self._protocol.transport.get_write_buffer_size()

    def write(self, frames: bytes) -> None:
        self._protocol.transport.write(frames)

    def close(self, code: int, reason: str = "") -> None:
        self._protocol.close_now(code, reason)


class Inbox:
    """One connection's ASGI receive queue: one consumer, no bound.

    It stands in for uvicorn's ``asyncio.Queue``, whose four deques cost
    about 3 KiB on every idle connection.
    """

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


class Flag:
    """``asyncio.Event``'s set/clear/wait without a deque per connection until someone waits."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] = []

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    async def wait(self) -> bool:
        if not self._set:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        return True


class TickerWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, without deflate, with ``ticker.frames``."""

    send_buffer = 0
    """SO_SNDBUF for each connection; 0 leaves it to the kernel (see :func:`uvicorn_config`)."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        self.conn = ServerProtocol(
            extensions=[], max_size=config.ws_max_size, logger=logging.getLogger("uvicorn.error")
        )

    def connection_made(self, transport: BaseTransport) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if self.send_buffer and sock is not None:
            # A fixed kernel send buffer: what a stalled client can pin in the kernel,
            # and how soon our own bounded buffer notices it (0: the kernel's autotuning).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][FRAMES_EXTENSION] = {"writer": FrameWriter(self)}

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # The handshake is done: its request and response would be kept per connection,
            # and so would the parser's suspended generator, which still holds the request.
            # A client sends no frame before it has our answer (RFC 6455 §4.1), so a fresh
            # frame parser starts exactly where the old one stands.
            self.request = self.response = None  # type: ignore[assignment]
            self.conn.parser = Protocol.parse(self.conn)
            next(self.conn.parser)

    def close_now(self, code: int, reason: str = "") -> None:
        """Send a close frame now, past a full buffer; drop the connection if it does not drain."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(CLOSE_TIMEOUT, self.transport.abort)


class Server(uvicorn.Server):
    """uvicorn's server, which first closes the live clients when it stops.

    uvicorn closes WebSockets with 1012 on its own, but waits for streaming
    HTTP responses to end: the hub's ``close_all`` ends the SSE streams cleanly
    (and closes WebSockets with 1001) before uvicorn waits for connections.
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        hub = getattr(getattr(self.config.app, "state", None), "hub", None)
        if hub is not None:
            hub.close_all(CloseCode.GOING_AWAY, "server shutting down")
        await super().shutdown(sockets)


def uvicorn_config(app: Any, settings: Settings, **kwargs: Any) -> uvicorn.Config:
    """The uvicorn configuration every Ticker server process runs with."""
    return uvicorn.Config(
        app,
        ws=type(
            "TickerWebSocketProtocol",
            (TickerWebSocketProtocol,),
            {"send_buffer": settings.send_buffer_bytes},
        ),
        ws_max_size=settings.max_client_frame,
        ws_ping_interval=settings.ping_interval,
        ws_ping_timeout=settings.ping_timeout,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=settings.shutdown_grace,
        lifespan="on",
        proxy_headers=False,  # ticker.proxies resolves X-Forwarded-For (uvicorn would believe the left-most entry)
        **kwargs,
    )
