"""Helpers shared by the tests: time units, waiting with deadlines, a real server."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig

from ticker.app import create_app
from ticker.config import Settings
from ticker.server import Server, uvicorn_config

UNIT = float(os.environ.get("TICKER_TEST_TIMEOUT_UNIT", "1"))
"""One unit of patience, in seconds; a slow machine stretches it by the environment variable."""

T = TypeVar("T")


def units(n: float) -> float:
    return n * UNIT


def wait_for(check: Callable[[], T], *, timeout: float = 10, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy, or fail after ``timeout`` units."""
    deadline = time.monotonic() + units(timeout)
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {units(timeout):.0f}s waiting for {what}")
        time.sleep(0.01)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, also where this thread already runs a loop (sync Playwright does)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def bound_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY needs proto TCP
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    return sock


class ServerThread:
    """The real ASGI app under uvicorn on a free port, in a thread of the test process."""

    def __init__(self, settings: Settings, *, port: int = 0) -> None:
        self.settings = settings
        self.sock = bound_socket(port=port)
        port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"
        config = uvicorn_config(create_app(settings), settings, log_level="warning")
        self.server = Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=20, what="server start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(units(30))
        self.sock.close()
        assert not self.thread.is_alive(), "the server did not stop within 30 s"


class HypercornThread:
    """The same app under Hypercorn, another ASGI server: the portable path, without ``ticker.frames``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        sock = bound_socket()
        port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"
        self.config = HypercornConfig()
        self.config.bind = [f"fd://{sock.detach()}"]  # Hypercorn owns the listening socket from here
        self.config.websocket_max_message_size = settings.max_client_frame
        self.config.websocket_ping_interval = settings.ping_interval
        self.config.loglevel = "WARNING"
        self.config.graceful_timeout = 0.2
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.stopping = asyncio.Event()
            await serve(create_app(self.settings), self.config, shutdown_trigger=self.stopping.wait)  # type: ignore[arg-type]

        asyncio.run(main())

    def start(self) -> HypercornThread:
        self.thread.start()

        def ready() -> bool:
            try:
                return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=20, what="Hypercorn start")
        return self

    def stop(self) -> None:
        if self.loop is not None and self.stopping is not None:
            self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(units(30))
