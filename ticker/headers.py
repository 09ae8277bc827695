"""Every header policy of the HTTP responses, in one place.

- :class:`SecurityHeaders` adds the hardening headers to every response.
- :data:`PAGE_HEADERS` are the pages' strict Content-Security-Policy and frame protection;
  :data:`STATIC_HEADERS` the same for every file under ``/static/``, cached
  for good (:data:`IMMUTABLE`) when asked for by the pages' hashed links, else
  revalidated (:data:`REVALIDATE`).
- :class:`ReadCors` lets a widget on another site make anonymous reads
  (no credentials, GET/HEAD of public paths); staff writes never get CORS.
- :class:`Compress` gzips text answers, never the event stream.

The middlewares are pure ASGI, so streaming responses (SSE) stay streaming.
"""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ]
)


def csp(image_origins: tuple[str, ...] = ()) -> str:
    """The pages' Content-Security-Policy with ``img-src`` for item photos from ``image_origins``
    (``TICKER_IMAGE_ORIGINS``), or from any https origin when none are set."""
    images = " ".join(image_origins) if image_origins else "https:"
    return CSP.replace("img-src 'self' data:", f"img-src 'self' data: {images}")


PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Cache-Control": "no-cache",
}
STATIC_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
}
"""Scripts and styles do not need them, but an SVG opened directly is a document like any page."""
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
STREAMS = frozenset({"/api/events"})
"""Answers that stream: never buffered for compression, each event must leave at once."""
READS = frozenset({"GET", "HEAD"})
"""The methods whose answers are compressed: a write's answer is one item, rarely worth it."""
GZIP_MIN_BYTES = 1024
GZIP_LEVEL = 6
"""zlib's default: nearly level 9's size at a fraction of its CPU."""
CORS_PREFIXES = ("/api/items", "/api/events", "/widget.json", "/static/", "/feed.json", "/feed.atom")
"""Anonymous reads a widget on another site makes; staff writes never get CORS."""


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


class ReadCors:
    """``Access-Control-Allow-Origin: *`` on anonymous reads (GET/HEAD of public paths)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or not scope["path"].startswith(CORS_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"access-control-allow-origin", b"*"),
                    (b"access-control-expose-headers", b"etag"),
                    (b"cross-origin-resource-policy", b"cross-origin"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_cors)


class Compress:
    """gzip for answers to reads a client accepts it for (pages, scripts, styles, feeds,
    JSON), except the streams in :data:`STREAMS`, whatever the installed Starlette
    excludes, and ranges (a compressed part of a file matches no ``Content-Range``).
    The answer to a write is one item, rarely worth it: writes skip the wrapper."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=GZIP_MIN_BYTES, compresslevel=GZIP_LEVEL)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        read = scope["type"] == "http" and scope["method"] in READS and scope["path"] not in STREAMS
        if read and not any(name == b"range" for name, _ in scope["headers"]):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)
