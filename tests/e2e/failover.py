"""What the failover tests run against live servers: readers that record every message,
a producer that retries with its own ids, a ``/readyz`` poller, and the figures they yield."""

from __future__ import annotations

import asyncio
import itertools
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.exceptions import WebSocketException

from tests.clients import lines
from tests.support import units

CLI = [sys.executable, "-m", "ticker.cli"]


def create_token(redis_url: str, prefix: str) -> str:
    """``ticker token create`` against ``redis_url``: the CLI on the topology's URL."""
    result = subprocess.run(
        [
            *CLI,
            "--redis-url",
            redis_url,
            "--prefix",
            prefix,
            "token",
            "create",
            "--name",
            "producer",
            "--scope",
            "admin",
        ],
        capture_output=True,
        text=True,
        timeout=units(30),
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


class Lines:
    """A child process whose stdout lines are collected by a thread."""

    def __init__(self, *command: str) -> None:
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            _, errors = self.process.communicate(timeout=units(20))
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, errors = self.process.communicate()
        self.thread.join(units(5))
        return errors


def handled_ids(out: Path) -> set[str]:
    """The item ids a ``tests.consumer_worker`` process wrote to ``out``."""
    return {line.split()[2] for line in out.read_text().splitlines()} if out.exists() else set()


@dataclass
class Reader:
    """Everything one reader was sent; ``reset`` starts a new epoch (the client starts over)."""

    name: str
    cursor: str | None = None
    seen: set[str] = field(default_factory=set)
    epoch: set[tuple[str, int]] = field(default_factory=set)
    duplicates: list[tuple[str, int]] = field(default_factory=list)
    resets: int = 0

    def take(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "reset":
            self.resets += 1
            self.epoch = set()
        elif kind == "snapshot":
            self.cursor = message["cursor"]
            for item in [*message["items"], *message.get("pinned", [])]:
                self.seen.add(item["id"])
                self.epoch.add((item["id"], item["version"]))
        elif kind == "event":
            key = (message["item"]["id"], message["item"]["version"])
            if key in self.epoch:
                self.duplicates.append(key)
            self.epoch.add(key)
            self.seen.add(key[0])
            self.cursor = message["cursor"]


async def read_ws(base: str, reader: Reader) -> None:
    """A WebSocket reader that reconnects with its cursor, as the page does."""
    while True:
        url = f"{base.replace('http://', 'ws://')}/ws" + (f"?cursor={reader.cursor}" if reader.cursor else "")
        try:
            async with websockets.connect(url, max_size=None, open_timeout=units(10)) as ws:
                async for frame in ws:
                    for message in lines(frame):
                        reader.take(message)
        except (OSError, WebSocketException, TimeoutError):
            pass
        await asyncio.sleep(0.1)


async def read_sse(client: httpx.AsyncClient, base: str, reader: Reader) -> None:
    """An SSE reader that resumes with ``Last-Event-ID``, as a browser's EventSource does."""
    while True:
        headers = {"Last-Event-ID": reader.cursor} if reader.cursor else {}
        try:
            async with client.stream("GET", f"{base}/api/events", headers=headers) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        for message in lines(line[5:].strip()):
                            reader.take(message)
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.1)


@dataclass
class Attempt:
    server: int
    start: float
    end: float
    ok: bool


@dataclass
class Producer:
    """Publishes ``p0000``, ``p0001``... to the servers in turn, retrying each on its server until
    it is acknowledged (the same id makes a retry safe)."""

    bases: list[str]
    token: str
    acked: dict[str, float] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)

    async def run(self, client: httpx.AsyncClient) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        for n in range(1_000_000):
            item_id, server = f"p{n:04d}", n % len(self.bases)
            while True:
                start = time.monotonic()
                try:
                    response = await client.post(
                        f"{self.bases[server]}/api/items",
                        json={"id": item_id, "headline": f"Headline {n}"},
                        headers=headers,
                    )
                    status = response.status_code
                except httpx.HTTPError:
                    status = 0
                ok = status in (200, 201)
                self.attempts.append(Attempt(server, start, time.monotonic(), ok))
                if ok:
                    self.acked[item_id] = time.monotonic()
                    break
                assert status in (0, 503), f"{status}: {response.text}"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.01)

    def acked_after(self, moment: float) -> int:
        return sum(1 for at in self.acked.values() if at > moment)

    def longest_gap(self, since: float) -> float:
        """The longest time between two acknowledgements after ``since`` (or since it)."""
        times = [since, *sorted(at for at in self.acked.values() if at > since)]
        return max(b - a for a, b in itertools.pairwise(times)) if len(times) > 1 else float("inf")


@dataclass
class ReadyPoller:
    """Polls ``/readyz`` of each server and keeps each answer with when it was asked."""

    bases: list[str]
    answers: list[tuple[int, float, float, int]] = field(default_factory=list)

    async def run(self, client: httpx.AsyncClient) -> None:
        while True:
            for server, base in enumerate(self.bases):
                start = time.monotonic()
                try:
                    status = (await client.get(f"{base}/readyz")).status_code
                except httpx.HTTPError:
                    status = 0
                self.answers.append((server, start, time.monotonic(), status))
            await asyncio.sleep(0.05)

    def ready_while_writes_fail(self, attempts: list[Attempt]) -> list[tuple[int, float]]:
        """``200`` answers given between two failed writes on the same server, with no
        successful one between: the server said "ready" while its writes were failing."""
        wrong = []
        for server, start, end, status in self.answers:
            if status != 200:
                continue
            mine = [a for a in attempts if a.server == server]
            before = [a for a in mine if a.end < start]
            after = [a for a in mine if a.start > end]
            if before and after and not before[-1].ok and not after[0].ok:
                wrong.append((server, start))
        return wrong


async def cancel(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
