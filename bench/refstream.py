"""What the two reference servers share: one XREAD reader and a per-client catch-up.

The references are deliberately plain. One reader per process follows the
stream with ``XREAD BLOCK`` and builds each event's frame once; a client that
comes with a cursor is caught up with its own ``XRANGE`` calls (one Redis
round trip or more per client, which is what the reconnect storm shows).
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

READ_COUNT = 500
READ_BLOCK_MS = 1000
REPLAY_COUNT = 1000
REDIS_CONNECTIONS = 50
BACKLOG = 2048
"""Listen backlog, as uvicorn's default (asyncio's own default is 100)."""

log = logging.getLogger("bench.reference")


def parse_cursor(cursor: str) -> tuple[int, int]:
    ms, _, seq = cursor.partition("-")
    return int(ms), int(seq or 0)


def event_frame(cursor: str, fields: dict[str, str]) -> str:
    """The event message, serialized once; the item stays the JSON string from the entry."""
    ts = int(fields.get("ts") or cursor.split("-", 1)[0])
    return (
        f'{{"type":"event","cursor":{json.dumps(cursor)},"op":{json.dumps(fields["op"])},'
        f'"ts":{ts},"item":{fields["item"]}}}'
    )


def snapshot_frame(cursor: str) -> str:
    return json.dumps({"type": "snapshot", "cursor": cursor, "items": [], "pinned": []})


class StreamTail:
    """Follows ``{prefix}:stream``; ``position`` is the last entry handed to ``on_event``."""

    def __init__(self, redis: aioredis.Redis, prefix: str, on_event: Callable[[str], None]) -> None:
        self.redis = redis
        self.key = "{" + prefix + "}:stream"
        self.on_event = on_event
        self.position = "0-0"

    async def start(self) -> None:
        last: Any = await self.redis.xrevrange(self.key, count=1)
        self.position = str(last[0][0]) if last else "0-0"

    async def run(self) -> None:
        while True:
            try:
                reply: Any = await self.redis.xread({self.key: self.position}, count=READ_COUNT, block=READ_BLOCK_MS)
            except Exception:  # a reference keeps reading whatever happens, from where it was
                log.exception("XREAD failed; retrying from %s", self.position)
                continue
            for _, entries in reply or ():
                for cursor, fields in entries:
                    self.position = cursor
                    self.on_event(event_frame(cursor, fields))

    async def catch_up(self, cursor: str, send: Callable[[str], Awaitable[None]]) -> None:
        """Send every entry after ``cursor`` up to the reader's position.

        Returns with nothing awaited after the last check, so the caller can
        register the client for live events with no gap and nothing twice.
        """
        last = cursor
        while parse_cursor(last) < parse_cursor(self.position):
            head = self.position
            rows: Any = await self.redis.xrange(self.key, min="(" + last, max=head, count=REPLAY_COUNT)
            if not rows:
                return
            for entry_id, fields in rows:
                await send(event_frame(entry_id, fields))
                last = entry_id

    async def admit(self, cursor: str, send: Callable[[str], Awaitable[None]]) -> None:
        """Bring a new client up to date: a ``snapshot`` without a cursor, else the catch-up.

        As :meth:`catch_up`, nothing is awaited after the last check: register
        the client for live events right after.
        """
        if not cursor:
            cursor = self.position
            await send(snapshot_frame(cursor))
        await self.catch_up(cursor, send)


def connect(url: str) -> aioredis.Redis:
    """A client whose pool waits for a free connection instead of failing a burst of catch-ups."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, decode_responses=True, max_connections=REDIS_CONNECTIONS, timeout=None
    )
    return aioredis.Redis(connection_pool=pool)


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True)
    return parser.parse_args()


def listen(host: str, port: int) -> socket.socket:
    # Protocol given explicitly: asyncio sets TCP_NODELAY on accepted sockets only when it is TCP.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


def banner(sock: socket.socket) -> None:
    host, port = sock.getsockname()[:2]
    print(f"Reference serving on http://{host}:{port}", flush=True)
