"""``create_app(settings)``: routes, error handling, headers and the lifespan."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ticker import api, feeds, live, openapi, operations, pages, sse
from ticker.admission import Admission
from ticker.config import Settings
from ticker.errors import ConfigError, TickerError
from ticker.headers import Compress, ReadCors, SecurityHeaders
from ticker.http import json_response
from ticker.hub import Hub
from ticker.limits import FailureLimit
from ticker.metrics import Metrics
from ticker.precedence import AnswersFirst
from ticker.protocol import CloseCode
from ticker.reader import Reader
from ticker.scheduler import Audience, Scheduler
from ticker.store import Store, connect, unavailable
from ticker.tasks import cancel

log = logging.getLogger("ticker")


async def ticker_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TickerError)
    return json_response(exc.to_json(), exc.status, exc.headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    error = TickerError(exc.detail or "error")
    body = {"error": {"code": codes.get(exc.status_code, "bad_request"), "message": error.message, "fields": []}}
    return json_response(body, exc.status_code, dict(exc.headers or {}))


async def client_gone(request: Request, exc: Exception) -> Response:
    """A client that hangs up mid-body is not a server fault: one line, and an answer no one reads."""
    assert isinstance(exc, ClientDisconnect)
    log.info("%s %s: the client closed the connection before sending the whole body", request.method, request.url.path)
    return Response(status_code=400)


async def redis_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RedisError)
    error = unavailable(exc)
    return json_response(error.to_json(), error.status, error.headers)


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
        app.state.store = Store(
            client,
            prefix=settings.prefix,
            stream_maxlen=settings.stream_maxlen,
            min_replicas=settings.min_replicas,
            replica_wait_ms=settings.replica_wait_ms,
        )
        # The stream reader blocks in XREAD on a connection of its own, with a socket
        # timeout longer than the block so only a real stall times out.
        follow = connect(redis_url, socket_connect_timeout=5, socket_timeout=settings.reader_block_ms / 1000 + 10)
        reader = app.state.reader = Reader(
            hub,
            Store(follow, prefix=settings.prefix),
            count=settings.reader_count,
            block_ms=settings.reader_block_ms,
            max_lag=settings.max_reader_lag,
            interval=settings.fanout_interval_ms / 1000,
        )
        scheduler = Scheduler(app.state.store, interval=settings.scheduler_interval)
        audience = Audience(hub, app.state.store, interval=settings.audience_interval)
        tasks = [
            asyncio.create_task(reader.run(), name="ticker-stream-reader"),
            asyncio.create_task(scheduler.run(), name="ticker-scheduler"),
            asyncio.create_task(audience.run(), name="ticker-audience"),
        ]
        try:
            yield
        finally:
            hub.close_all(CloseCode.GOING_AWAY, "server shutting down")
            await cancel(tasks)
            await follow.aclose()
            await client.aclose()

    async def readiness() -> list[str]:
        store: Store = app.state.store
        reader: Reader = app.state.reader
        return await store.write_problems() + reader.problems()

    handlers: dict[Any, Any] = {
        TickerError: ticker_error,
        HTTPException: http_error,
        RedisError: redis_error,
        ClientDisconnect: client_gone,
    }
    hub = Hub(
        metrics=Metrics(shared_dir=settings.metrics_dir),
        history_size=settings.history_size,
        snapshot_limit=settings.snapshot_limit,
        snapshot_pool=settings.snapshot_pool,
        fanout_slice_ms=settings.fanout_slice_ms,
        fanout_yield_ms=settings.fanout_yield_ms,
    )
    routes = [*api.routes, *operations.routes, *sse.routes, *live.routes, *feeds.routes, *pages.routes]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(ReadCors)
    app.add_middleware(Compress)
    app.add_middleware(AnswersFirst, hub=hub)
    app.state.settings = settings
    app.state.readiness = readiness
    app.state.hub = hub
    app.state.admission = Admission(settings)
    app.state.login_failures = FailureLimit(settings.login_failure_rate, settings.login_failure_burst)
    app.state.openapi = functools.partial(openapi.today_document, settings)
    return app
