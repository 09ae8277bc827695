"""``GET /api/events``: the live changes as Server-Sent Events, resumed by ``Last-Event-ID``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ticker.config import Settings
from ticker.errors import Unavailable
from ticker.http import channel_param
from ticker.hub import Hub
from ticker.live import loaded
from ticker.sinks import SseSink

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def events(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    settings: Settings = request.app.state.settings
    channel = channel_param(request)
    cursor = request.query_params.get("cursor") or request.headers.get("last-event-id") or None
    if not await loaded(hub):
        raise Unavailable("the server is starting; retry shortly")

    async def stream() -> AsyncIterator[bytes]:
        sink = SseSink()
        # Without a cursor SSE starts from now (docs/protocol.md): the hub's head is the cursor.
        subscriber = hub.join(sink, channel=channel, cursor=cursor or hub.cursor)
        try:
            yield b"retry: 1000\n\n"
            async for chunk in sink.chunks(settings.sse_heartbeat):
                yield chunk
        finally:
            hub.leave(subscriber)

    return StreamingResponse(stream(), media_type="text/event-stream", headers=HEADERS)


routes = [Route("/api/events", events, methods=["GET"])]
