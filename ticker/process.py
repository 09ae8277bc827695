"""Starting a server process: the listening socket, Redis, uvicorn and its signals.

``ticker serve`` and ``ticker demo`` both start here, so neither imports the
other. The socket is bound before anything else (a busy port is one quick
line), Redis is the configured URL or the embedded one started for the run,
and SIGINT/SIGTERM end the server normally so the embedded Redis is stopped
cleanly behind it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ticker.config import Settings, redacted
from ticker.embedded import EmbeddedRedis
from ticker.errors import ConfigError, TickerError, Unavailable

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ticker.server import Server as TickerServer
    from ticker.store import Store

LISTEN_BACKLOG = 2048
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int) -> None:
    """Ticker's own log lines (uvicorn configures its loggers itself)."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` that child processes may inherit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted connections only then, and
    # without it Nagle's algorithm holds every small write for a delayed ACK (~40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port") from None
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


def base_url(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket, IPv6 hosts in brackets."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def redis_unreachable(url: str) -> TickerError:
    """The one line for a Redis that does not answer: which URL, and what to check."""
    return TickerError(
        f"cannot reach Redis at {redacted(url)}: is it running, and is the URL right? "
        "Check TICKER_REDIS_URL or --redis-url (unset, Ticker starts an embedded Redis)"
    )


async def reach(store: Store, url: str) -> None:
    """Fail with :func:`redis_unreachable` unless Redis at ``url`` answers (one cheap read)."""
    try:
        await store.head()
    except (RedisError, OSError, Unavailable):
        raise redis_unreachable(url) from None


@contextlib.contextmanager
def redis_url(settings: Settings) -> Iterator[str]:
    """The configured Redis URL, or the embedded Redis (started if needed, stopped after)."""
    if settings.redis_url:
        yield settings.redis_url
        return
    embedded = EmbeddedRedis(settings.state_dir)
    try:
        yield embedded.start()
    finally:
        embedded.stop()


def server_class(*, signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)) -> type[TickerServer]:
    """Ticker's uvicorn server, stopping gracefully on ``signals`` and returning normally after.

    uvicorn re-raises a captured signal once it has shut down; here ``run()`` just
    returns, so what the caller holds (the embedded Redis) is released cleanly.
    """
    from ticker.server import Server

    class Stoppable(Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Stoppable


def build_server(app: Starlette, settings: Settings, *, log_level: str, **server_options: Any) -> TickerServer:
    """The uvicorn server for ``app``, configured from ``settings``."""
    from ticker.server import uvicorn_config

    return server_class(**server_options)(uvicorn_config(app, settings, log_level=log_level))


Banner = Callable[[str, str], str]
"""What a starting server prints, given its base URL and its Redis URL."""


def serve(settings: Settings, *, banner: Banner, log_level: str = "info") -> int:
    """Run one server process until SIGINT/SIGTERM, printing ``banner`` once the port is bound."""
    from ticker.app import create_app

    sock = bind(settings.host, settings.port)
    with redis_url(settings) as url:
        settings = settings.with_overrides(redis_url=url)
        print(banner(base_url(sock), url), flush=True)
        build_server(create_app(settings), settings, log_level=log_level).run(sockets=[sock])
    return 0
