"""``/ws``: the live WebSocket. Parse, check, join the hub, wait for the client to go."""

from __future__ import annotations

import asyncio

from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from ticker.admission import Admission, Refusal
from ticker.config import Settings
from ticker.hub import Hub
from ticker.metrics import Metrics
from ticker.models import CHANNEL_PATTERN, is_channel
from ticker.protocol import CloseCode
from ticker.sinks import FrameSink, QueueSink, frames_of

LOAD_WAIT = 10.0
"""Seconds a client waits for a starting process to load its snapshot before 1013."""


async def refuse(websocket: WebSocket, metrics: Metrics, code: int, reason: str) -> None:
    """Accept only to close with a documented code a client can act on."""
    metrics.refused.labels(reason.split(":")[0]).inc()
    await websocket.accept()
    await websocket.close(code, reason)


REFUSALS = {
    Refusal.ORIGIN: (CloseCode.POLICY, "origin: not allowed"),
    Refusal.FULL: (CloseCode.TRY_AGAIN, "full: too many connections; try again later"),
    Refusal.ADDRESS: (CloseCode.TOO_MANY, "address: too many connections from this address"),
}
"""The close code and reason for each way :mod:`ticker.admission` refuses a stream."""


async def loaded(hub: Hub) -> bool:
    """Wait (up to :data:`LOAD_WAIT` seconds) for a starting process to load its snapshot."""
    if hub.loaded.is_set():
        return True
    try:
        async with asyncio.timeout(LOAD_WAIT):  # not wait_for, which can lose a cancellation on 3.11
            await hub.loaded.wait()
    except TimeoutError:
        return False
    return True


async def live(websocket: WebSocket) -> None:
    state = websocket.app.state
    hub: Hub = state.hub
    settings: Settings = state.settings
    admission: Admission = state.admission
    channel = websocket.query_params.get("channel") or None
    if channel is not None and not is_channel(channel):
        await refuse(websocket, hub.metrics, CloseCode.BAD_REQUEST, f"channel: must match {CHANNEL_PATTERN}")
        return
    ticket = admission.admit(websocket.scope, admission.client(websocket.scope))
    if isinstance(ticket, Refusal):
        await refuse(websocket, hub.metrics, *REFUSALS[ticket])
        return
    handed_over = False
    try:
        if not await loaded(hub):
            await refuse(websocket, hub.metrics, CloseCode.TRY_AGAIN, "loading: the server is starting")
            return
        await websocket.accept()
        cursor = websocket.query_params.get("cursor") or None
        # Nothing reads the handshake headers from here on; an idle connection need not keep them.
        websocket.scope["headers"] = []
        frames = frames_of(websocket.scope)
        if frames is not None:
            # The connection's own protocol holds the sink from here on and releases the
            # ticket when it closes: no coroutine stays on an idle connection.
            sink = FrameSink(frames, limit=settings.client_buffer_bytes, on_stop=ticket.release)
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
            ticket.release()


class Endpoint:
    """:func:`live` as a plain ASGI app, so Starlette mounts it without its per-route
    wrapper coroutines, which would otherwise stay on every idle connection's stack."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await live(WebSocket(scope, receive=receive, send=send))


routes = [WebSocketRoute("/ws", Endpoint())]
