"""``/ws``: the live WebSocket. Parse, check, join the hub, wait for the client to go."""

from __future__ import annotations

import asyncio

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
from ticker.server import FRAMES_EXTENSION
from ticker.sinks import FrameSink, QueueSink

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
    if not origin_allowed(
        headers.get("origin"), headers.get("host"), settings.allowed_origins, public_url=settings.public_url
    ):
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
    try:
        if not await loaded(hub):
            await refuse(websocket, hub.metrics, CloseCode.TRY_AGAIN, "loading: the server is starting")
            return
        await websocket.accept()
        frames = settings.direct_frames and websocket.scope.get("extensions", {}).get(FRAMES_EXTENSION)
        sink = FrameSink(frames["writer"], limit=settings.client_buffer_bytes) if frames else QueueSink(websocket)
        channel = websocket.query_params.get("channel") or None
        subscriber = hub.join(sink, channel=channel, cursor=websocket.query_params.get("cursor") or None)
        # Nothing reads the handshake headers from here on; an idle connection need not keep them.
        websocket.scope["headers"] = []
        try:
            await sink.serve(websocket)
        finally:
            hub.leave(subscriber)
    finally:
        counter.remove(address)


class Endpoint:
    """:func:`live` as a plain ASGI app, so Starlette mounts it without its per-route
    wrapper coroutines, which would otherwise stay on every idle connection's stack."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await live(WebSocket(scope, receive=receive, send=send))


routes = [WebSocketRoute("/ws", Endpoint())]
