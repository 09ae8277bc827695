"""Real clients and processes for the live tests: WebSocket readers, server processes."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.exceptions import ConnectionClosed

from tests.support import units


def lines(frame: str | bytes) -> list[dict[str, Any]]:
    """The messages of one frame (several may share it, one per line)."""
    text = frame.decode() if isinstance(frame, bytes) else frame
    return [json.loads(line) for line in text.split("\n") if line]


class LiveReader:
    """A WebSocket reader: keeps every event and the last cursor; can resume elsewhere."""

    def __init__(self, ws_url: str, *, channel: str | None = None) -> None:
        self.ws_url = ws_url
        self.channel = channel
        self.cursor: str | None = None
        self.start: str | None = None
        self.events: list[dict[str, Any]] = []
        self.kinds: list[str] = []
        self.close_code: int | None = None
        self.ws: Any = None
        self.task: asyncio.Task[None] | None = None

    def url(self, base: str | None = None) -> str:
        params = [f"channel={self.channel}"] if self.channel else []
        if self.cursor:
            params.append(f"cursor={self.cursor}")
        return f"{base or self.ws_url}/ws" + ("?" + "&".join(params) if params else "")

    async def connect(self, base: str | None = None) -> None:
        """Connect (resuming from the last cursor) and read in the background."""
        self.ws = await websockets.connect(self.url(base), max_size=None, open_timeout=units(20))
        self.close_code = None
        self.task = asyncio.create_task(self._read(self.ws))

    async def wait_started(self) -> None:
        deadline = time.monotonic() + units(20)
        while self.cursor is None:
            assert time.monotonic() < deadline, "no snapshot"
            await asyncio.sleep(0.01)

    async def _read(self, ws: Any) -> None:
        try:
            async for frame in ws:
                for message in lines(frame):
                    self.kinds.append(message["type"])
                    if message["type"] == "snapshot":
                        self.start = self.start or message["cursor"]
                        self.cursor = message["cursor"]
                    elif message["type"] == "event":
                        self.events.append(message)
                        self.cursor = message["cursor"]
        except ConnectionClosed:
            pass
        self.close_code = ws.close_code

    async def cut(self) -> None:
        """Drop the connection without a closing handshake, as a flaky network does."""
        self.ws.transport.abort()
        if self.task:
            await asyncio.gather(self.task, return_exceptions=True)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.task:
            await asyncio.gather(self.task, return_exceptions=True)

    def cursors(self) -> list[str]:
        return [e["cursor"] for e in self.events]


async def wait_async(check: Any, *, within: float = 20, what: str = "condition") -> None:
    """Poll ``check`` until truthy, or fail after ``within`` units (the async ``wait_for``)."""
    deadline = time.monotonic() + units(within)
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {units(within):.0f}s waiting for {what}")
        await asyncio.sleep(0.02)


class ServerProcess:
    """``python -m ticker.cli serve`` as a child process on ``port`` (0: a free one)."""

    def __init__(self, redis_url: str, prefix: str, tmp: Path, *, port: int = 0, **env: str) -> None:
        self.log = tmp / f"server-{os.urandom(3).hex()}.log"
        self._log_file = self.log.open("wb")
        environment = {**os.environ, "TICKER_STATE_DIR": str(tmp / "state"), **env}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ticker.cli",
                "--redis-url",
                redis_url,
                "--prefix",
                prefix,
                "serve",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            env=environment,
            text=True,
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + units(30)
        line = ""
        while "Ticker serving on" not in line:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.1)
            if ready:
                line = self.process.stdout.readline()
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise AssertionError(f"server did not start: {self.log.read_text()}")
        self.url = line.split("Ticker serving on ", 1)[1].split()[0]
        self.ws_url = self.url.replace("http://", "ws://")

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        self.terminate()
        try:
            self.process.wait(units(30))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self._log_file.close()
