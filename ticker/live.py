"""``/ws``: the live WebSocket. Parse, check, join the hub, wait for the client to go.

Where the server offers the ``ticker.frames`` extension (Ticker's own, see
:mod:`ticker.server`), the connection is handed to it once joined and the
endpoint returns: an idle reader then costs no task and no coroutine frames.
Under any other ASGI server the endpoint stays and sends through ASGI.
"""

from __future__ import annotations

import asyncio
import functools

from starlette.datastructures import Headers
from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from ticker.config import Settings
from ticker.hub import Hub
from ticker.limits import ConnectionCounter
from ticker.metrics import Metrics
from ticker.models import CHANNEL_PATTERN, is_channel
from ticker.protocol import CloseCode, origin_allowed
from ticker.sinks import FrameSink, QueueSink, frames_of

LOAD_WAIT = 10.0
"""Seconds a client waits for a starting process to load its snapshot before 1013."""


async def refuse(websocket: WebSocket, metrics: Metrics, code: int, reason: str) -> None:
    """Accept only to close with a documented code a client can act on."""
    metrics.refused.labels(reason.split(":")[0]).inc()
    await websocket.accept()
    await websocket.close(code, reason)


def check(websocket: WebSocket, settings: Settings, counter: ConnectionCounter, address: str) -> tuple[int, str] | None:
    """The close code and reason for a connection that may not proceed, else None."""
    headers = Headers(scope=websocket.scope)  # not cached on the socket: see live()
    if not origin_allowed(headers.get("origin"), headers.get("host"), settings.allowed_origins):
        return CloseCode.POLICY, "origin: not allowed"
    channel = websocket.query_params.get("channel") or None
    if channel is not None and not is_channel(channel):
        return CloseCode.BAD_REQUEST, f"channel: must match {CHANNEL_PATTERN}"
    over = counter.refuse(address)
    if over == "full":
        return CloseCode.TRY_AGAIN, "full: too many connections; try again later"
    if over == "address":
        return CloseCode.TOO_MANY, "address: too many connections from this address"
    return None


async def loaded(hub: Hub) -> bool:
    """Wait (up to :data:`LOAD_WAIT` seconds) for a starting process to load its snapshot."""
    if hub.loaded.is_set():
        return True
    try:
        await asyncio.wait_for(hub.loaded.wait(), LOAD_WAIT)
    except TimeoutError:
        return False
    return True


async def live(websocket: WebSocket) -> None:
    state = websocket.app.state
    hub: Hub = state.hub
    settings: Settings = state.settings
    counter: ConnectionCounter = state.connections
    address = websocket.client.host if websocket.client else ""
    refusal = check(websocket, settings, counter, address)
    if refusal is not None:
        await refuse(websocket, hub.metrics, *refusal)
        return
    counter.add(address)
    handed_over = False
    try:
        if not await loaded(hub):
            await refuse(websocket, hub.metrics, CloseCode.TRY_AGAIN, "loading: the server is starting")
            return
        await websocket.accept()
        channel = websocket.query_params.get("channel") or None
        cursor = websocket.query_params.get("cursor") or None
        # Nothing reads the handshake headers from here on; an idle connection need not keep them.
        websocket.scope["headers"] = []
        frames = frames_of(websocket.scope)
        if frames is not None:
            release = functools.partial(counter.remove, address)
            sink = FrameSink(frames, limit=settings.client_buffer_bytes, on_stop=release)
            hub.join(sink, channel=channel, cursor=cursor)
            handed_over = True
            return
        queue = QueueSink(websocket)
        subscriber = hub.join(queue, channel=channel, cursor=cursor)
        try:
            await queue.serve()
        finally:
            hub.leave(subscriber)
    finally:
        if not handed_over:
            counter.remove(address)


class Endpoint:
    """:func:`live` as a plain ASGI app, so Starlette mounts it without its per-route
    wrapper coroutines, which would otherwise stay on every idle connection's stack."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await live(WebSocket(scope, receive=receive, send=send))


routes = [WebSocketRoute("/ws", Endpoint())]
