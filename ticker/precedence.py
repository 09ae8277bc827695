"""HTTP answers before the fan-out: requests waiting for their answer pause it.

Under a fan-out overload the event loop is never idle; a publish needs several
turns of it (the request, the token, the publish script, the answer), and with
a slice of the fan-out in every turn staff would wait for the readers. This
pure-ASGI middleware holds the hub (:meth:`~ticker.hub.Hub.hold`) from the
moment a request reaches the application until its answer starts (so a
streaming answer such as SSE holds it only until its headers), and the hub
puts its next slice off for at most ``fanout_yield_ms``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticker.hub import Hub


class AnswersFirst:
    def __init__(self, app: ASGIApp, hub: Hub) -> None:
        self.app = app
        self.hub = hub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hub = self.hub
        held = True
        hub.hold()

        async def answer(message: Message) -> None:
            nonlocal held
            if held and message["type"] == "http.response.start":
                held = False
                hub.release()
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            if held:
                hub.release()
