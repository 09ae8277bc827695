"""``GET /api/events``: the live changes as Server-Sent Events, resumed by ``Last-Event-ID``.

Admitted as ``/ws`` is (``ticker.admission``): a refused stream gets a JSON
error, 403 for a browser ``Origin`` not on the allow-list, 429 or 503 with
``Retry-After`` past the per-address or the global cap.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ticker.admission import Admission, Refusal, Ticket
from ticker.config import Settings
from ticker.errors import Forbidden, RateLimited, TickerError, Unavailable
from ticker.http import channel_param
from ticker.hub import Hub
from ticker.live import loaded
from ticker.sinks import SseSink

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
RETRY_AFTER = 5
"""Seconds a refused SSE client is asked to wait (``Retry-After``)."""


def refusal_error(refusal: Refusal) -> TickerError:
    if refusal is Refusal.ORIGIN:
        return Forbidden("this origin may not open the event stream; see TICKER_ALLOWED_ORIGINS")
    if refusal is Refusal.ADDRESS:
        return RateLimited("too many event streams from this address; try again later", retry_after=RETRY_AFTER)
    return Unavailable("the server holds as many streams as it may; try again later", retry_after=RETRY_AFTER)


class EventStream(StreamingResponse):
    """A streaming response that gives its admission ticket back however the stream ends."""

    def __init__(self, body: AsyncIterator[bytes], ticket: Ticket) -> None:
        super().__init__(body, media_type="text/event-stream", headers=HEADERS)
        self.ticket = ticket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.ticket.release()


async def events(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    settings: Settings = request.app.state.settings
    admission: Admission = request.app.state.admission
    channel = channel_param(request)
    # A browser's EventSource reconnects to its first URL and adds Last-Event-ID: the header wins.
    cursor = request.headers.get("last-event-id") or request.query_params.get("cursor") or None
    address = admission.client(request.scope)
    if admission.origin_refused(request.scope):
        hub.metrics.refused.labels(Refusal.ORIGIN.value).inc()
        raise refusal_error(Refusal.ORIGIN)
    if not await loaded(hub):
        hub.metrics.refused.labels("loading").inc()
        raise Unavailable("the server is starting; retry shortly")
    ticket = admission.admit(request.scope, address)
    if isinstance(ticket, Refusal):
        hub.metrics.refused.labels(ticket.value).inc()
        raise refusal_error(ticket)

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

    return EventStream(stream(), ticket)


routes = [Route("/api/events", events, methods=["GET"])]
