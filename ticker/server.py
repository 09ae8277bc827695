"""The uvicorn seam: the one module that touches uvicorn's and ``websockets``' private internals.

Nothing else in Ticker imports uvicorn's protocols or the ``websockets``
parser; ``import ticker.app`` loads neither, and the app runs under any ASGI
server through the portable ``send`` path (the tests run it under Hypercorn).
What Ticker's own server adds, by subclassing uvicorn's ``httptools`` and
``websockets-sansio`` protocols:

- **Header and handshake deadline**: a connection that has not sent a
  complete request head within ``header_timeout`` seconds of connecting (or
  of its previous response) is closed, so trickled headers and half-open
  sockets do not pile up.
- **426 for other WebSocket versions**: a handshake with a
  ``Sec-WebSocket-Version`` other than 13 gets ``426 Upgrade Required`` with
  ``Sec-WebSocket-Version: 13`` (RFC 6455 §4.4).
- **``ticker.frames``** (the neutral interface :class:`ticker.sinks.Frames`):
  the live endpoint hands an accepted connection over; the hub then writes
  prepared frames straight to the transport's ``write``, the transport's flow
  control (``pause_writing``) reports a client that falls behind, and the
  endpoint's task ends, so an idle reader holds no task or coroutine frames.
- **Lighter idle connections**: the handshake's request and response are
  released once accepted and the frame parser is started afresh (the old one
  kept the request alive); the ASGI receive queue and "writable" event are
  slotted stand-ins (:class:`Inbox`, :class:`Flag`).
- **No permessage-deflate**: frames are prepared once for every client (see
  ``docs/performance.md``).
- **A quiet idle process**: uvicorn's main loop looks at the clock ten times
  a second; Ticker's looks once a second (the ``Date`` header needs no more)
  and a stop request (``should_exit``, from a signal or another thread) wakes
  it at once. Waking an idle process costs far more than the look itself.

Each of these reads or replaces attributes that uvicorn and ``websockets``
do not promise to keep, so :func:`check_versions` refuses, at start, versions
this module was not tested with, naming them (see ``docs/operations.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import socket
import struct
import termios
from asyncio import BaseTransport
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import Protocol, State
from websockets.server import ServerProtocol

from ticker.config import Settings
from ticker.errors import ConfigError
from ticker.protocol import CloseCode
from ticker.sinks import FRAMES_EXTENSION, Listener

TESTED_VERSIONS = {"uvicorn": ((0, 54), (0, 55)), "websockets": ((17, 0), (18, 0))}
"""Per library, the lowest tested release and the first untested one (as in ``pyproject.toml``)."""

CLOSE_TIMEOUT = 10.0
"""Seconds a closed connection may take to drain before it is dropped."""


def _release(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split("."):
        digits = "".join(c for c in part if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def check_versions(installed: dict[str, str] | None = None) -> None:
    """Refuse uvicorn or ``websockets`` releases this module was not tested with."""
    installed = installed or {name: version(name) for name in TESTED_VERSIONS}
    for name, (low, high) in TESTED_VERSIONS.items():
        if not low <= _release(installed[name]) < high:
            tested = f">={'.'.join(map(str, low))},<{'.'.join(map(str, high))}"
            raise ConfigError(
                f"{name} {installed[name]} is installed, but Ticker's server was tested with {name}{tested}; "
                f"install that (pip install '{name}{tested}'), or run ticker.app under another ASGI server"
            )


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


def _unread(transport: asyncio.BaseTransport) -> int:
    """Bytes the peer has sent that this process has not read yet."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        waiting = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except OSError:
        return 0
    return int(struct.unpack("i", waiting)[0])


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's ``httptools`` protocol (a C parser: about a quarter less CPU than ``h11`` per
    WebSocket handshake, a quarter of its CPU per small request; see ``docs/performance.md``)
    with a deadline for each request head."""

    header_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self.head_timer = self.loop.call_later(self.header_timeout, self._head_overdue)

    def _disarm(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_overdue(self) -> None:
        self.head_timer = None
        if self.transport.is_closing():
            return
        if _unread(self.transport):
            # The head waits in the kernel: this process is behind (a reconnect storm on a
            # busy core), not the peer. Cutting it would turn our own lag into lost clients.
            self._arm()
            return
        self.transport.abort()  # trickled or never sent: nothing is owed to this peer

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._disarm()  # the head is in (a WebSocket's too: the upgrade follows it)
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        waiting = bool(self.pipeline)  # a pipelined request whose head is in already
        super().on_response_complete()
        if not waiting and not self.transport.is_closing():
            self._arm()  # the next request's head has its own deadline

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        super().handle_websocket_upgrade()
        # The WebSocket protocol owns the transport now; the parser and this protocol
        # refer to each other, so let go of it rather than wait for the collector.
        self.parser = None  # type: ignore[assignment]


class FrameProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, without deflate, with ``ticker.frames``.

    The protocol object itself is the :class:`ticker.sinks.Frames` the scope
    extension offers.
    """

    send_buffer = 0
    """SO_SNDBUF for each connection; 0 leaves it to the kernel (see :func:`uvicorn_config`)."""
    offer_frames = True
    """Offer ``ticker.frames`` (``TICKER_DIRECT_FRAMES``); without it the endpoint uses ASGI ``send``."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        self.conn = ServerProtocol(
            extensions=[], max_size=config.ws_max_size, logger=logging.getLogger("uvicorn.error")
        )
        self.listener: Listener | None = None
        self.attached = False

    def connection_made(self, transport: BaseTransport) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if self.send_buffer and sock is not None:
            # A fixed kernel send buffer: what a stalled client can pin in the kernel,
            # and how soon our own bounded buffer notices it (0: the kernel's autotuning).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)

    def handle_connect(self, event: Request) -> None:
        offered = event.headers.get("Sec-WebSocket-Version")
        if offered is not None and offered.strip() != "13":
            response = self.conn.reject(426, "Upgrade Required: this server speaks WebSocket version 13\n")
            response.headers["Sec-WebSocket-Version"] = "13"
            self.handshake_initiated = self.handshake_complete = self.close_sent = True
            self.conn.send_response(response)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()
            return
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None and self.offer_frames:
            scope["extensions"][FRAMES_EXTENSION] = {"frames": self}

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

    async def run_asgi(self) -> None:
        """uvicorn's, except that a connection handed to ``ticker.frames`` stays open."""
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self.attached:
            self.scope = None  # type: ignore[assignment]
            return
        if self.close_timer is None:
            self.transport.close()

    # --- ticker.frames --------------------------------------------------------------

    def attach(self, listener: Listener, *, limit: int) -> Callable[[bytes], object]:
        self.listener = listener
        self.attached = True
        # Flow control finds the slow client: past ``limit`` bytes, pause_writing is called.
        self.transport.set_write_buffer_limits(high=limit)
        if self.close_sent or self.disconnected or self.transport.is_closing() or not self.queue.empty():
            # Gone or spoke before it was attached: tell the listener once it is registered.
            self.loop.call_soon(self._gone_before_attach)
        return self.transport.write

    def _gone_before_attach(self) -> None:
        if self.queue.empty() or self.close_sent or self.disconnected:
            self._stopped()
        else:
            self.close(CloseCode.UNSUPPORTED, "this socket takes no messages from clients")

    def close(self, code: int, reason: str = "") -> None:
        """Send a close frame now, past a full buffer; drop the connection if it does not drain."""
        if not (self.close_sent or self.disconnected or self.transport.is_closing()):
            self.conn.send_close(code, reason)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            if self.read_paused:
                self.read_paused = False
                self.transport.resume_reading()
            self.close_timer = self.loop.call_later(CLOSE_TIMEOUT, self.transport.abort)
        self._stopped()

    def _stopped(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.stopped()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.listener is not None:
            self.listener.stalled()

    def send_receive_event_to_app(self) -> None:
        if not self.attached:
            super().send_receive_event_to_app()
            return
        self.frames = []
        self.close(CloseCode.UNSUPPORTED, "this socket takes no messages from clients")

    # Every way a connection stops taking frames tells the listener at once.

    def handle_close(self, event: Any) -> None:
        super().handle_close(event)
        self._stopped()

    def handle_parser_exception(self) -> None:
        super().handle_parser_exception()
        self._stopped()

    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()
        self._stopped()

    def shutdown(self) -> None:
        if self.handshake_complete and not self.close_sent and self.conn.state is not State.OPEN:
            # The client's close came in this same turn of the loop: it was answered and the
            # transport is closing, but uvicorn would send a close of its own (InvalidState).
            self.stop_keepalive()
            self.transport.close()
        else:
            super().shutdown()
        self._stopped()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._stopped()


class Server(uvicorn.Server):
    """uvicorn's server, which first closes the live clients when it stops, and whose main
    loop ticks once a second instead of ten times.

    uvicorn closes WebSockets with 1012 on its own, but waits for streaming
    HTTP responses to end: the hub's ``close_all`` ends the SSE streams cleanly
    (and closes WebSockets with 1001) before uvicorn waits for connections.
    """

    tick = 1.0
    """Seconds between two looks at the clock (uvicorn: 0.1)."""
    _exit = False
    _stop: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    @property
    def should_exit(self) -> bool:
        return self._exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._exit = value
        if value and self._stop is not None:
            loop, stop = self._stop
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing waits
                loop.call_soon_threadsafe(stop.set)

    async def main_loop(self) -> None:
        self._stop = (asyncio.get_running_loop(), asyncio.Event())
        ticks = 0
        while not await self.on_tick(ticks):  # uvicorn refreshes its Date header every 10th tick
            ticks = (ticks + 10) % 864000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.tick):
                    await self._stop[1].wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        hub = getattr(getattr(self.config.app, "state", None), "hub", None)
        if hub is not None:
            hub.close_all(CloseCode.GOING_AWAY, "server shutting down")
        await super().shutdown(sockets)


def uvicorn_config(app: Any, settings: Settings, **kwargs: Any) -> uvicorn.Config:
    """The uvicorn configuration every Ticker server process runs with (checks the versions first)."""
    check_versions()
    return uvicorn.Config(
        app,
        http=type("TickerHttpProtocol", (HttpProtocol,), {"header_timeout": settings.header_timeout}),
        ws=type(
            "TickerFrameProtocol",
            (FrameProtocol,),
            {"send_buffer": settings.send_buffer_bytes, "offer_frames": settings.direct_frames},
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
