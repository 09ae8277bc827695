"""``create_app(settings)``: routes, error handling, headers and the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticker import api, feeds, live, openapi, pages, sse
from ticker.config import Settings
from ticker.errors import ConfigError, TickerError
from ticker.hub import Hub
from ticker.limits import ConnectionCounter, KeyedBuckets
from ticker.metrics import Metrics
from ticker.protocol import CloseCode
from ticker.reader import Reader
from ticker.store import Store, connect, unavailable

log = logging.getLogger("ticker")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds hardening headers to every HTTP response (pure ASGI: streaming stays streaming)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def ticker_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TickerError)
    return api.json_response(exc.to_json(), exc.status, exc.headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    error = TickerError(exc.detail or "error")
    body = {"error": {"code": codes.get(exc.status_code, "bad_request"), "message": error.message, "fields": []}}
    return api.json_response(body, exc.status_code, dict(exc.headers or {}))


async def redis_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RedisError)
    error = unavailable(exc)
    return api.json_response(error.to_json(), error.status, error.headers)


def create_app(settings: Settings) -> Starlette:
    """The ASGI application for one server process, talking to ``settings.redis_url``."""
    if settings.redis_url is None:
        raise ConfigError("create_app needs a Redis URL; the CLI starts the embedded Redis and passes its URL")
    redis_url = settings.redis_url

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.gc_threshold:
            # Each connection holds ~100 objects; with Python's default threshold the
            # collector runs so often in a reconnect storm that it costs ~40 % of the CPU.
            gc.set_threshold(settings.gc_threshold, *gc.get_threshold()[1:])
        client = connect(redis_url, health_check_interval=10, socket_connect_timeout=5, socket_timeout=10)
        app.state.store = Store(client, prefix=settings.prefix, stream_maxlen=settings.stream_maxlen)
        # The stream reader blocks in XREAD on a connection of its own, with a socket
        # timeout longer than the block so only a real stall times out.
        follow = connect(redis_url, socket_connect_timeout=5, socket_timeout=settings.reader_block_ms / 1000 + 10)
        reader = app.state.reader = Reader(
            hub,
            Store(follow, prefix=settings.prefix),
            count=settings.reader_count,
            block_ms=settings.reader_block_ms,
            max_lag=settings.max_reader_lag,
        )
        task = asyncio.create_task(reader.run(), name="ticker-stream-reader")
        try:
            yield
        finally:
            hub.close_all(CloseCode.GOING_AWAY, "server shutting down")
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await follow.aclose()
            await client.aclose()

    async def readiness() -> list[str]:
        store: Store = app.state.store
        reader: Reader = app.state.reader
        problems = [] if await store.ping() else ["redis unreachable"]
        return problems + reader.problems()

    handlers: dict[Any, Any] = {TickerError: ticker_error, HTTPException: http_error, RedisError: redis_error}
    hub = Hub(
        metrics=Metrics(),
        history_size=settings.history_size,
        snapshot_limit=settings.snapshot_limit,
        snapshot_pool=settings.snapshot_pool,
    )
    routes = [*api.routes, *sse.routes, *live.routes, *feeds.routes, *pages.routes]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(pages.ReadCors)
    app.state.settings = settings
    app.state.write_limits = KeyedBuckets(settings.write_rate, settings.write_burst)
    app.state.readiness = readiness
    app.state.hub = hub
    app.state.connections = ConnectionCounter(
        settings.max_connections, settings.max_connections_per_address, frozenset(settings.trusted_addresses)
    )
    app.state.openapi = functools.partial(openapi.document, settings.labels)
    return app
