"""Background duties every server process runs beside its stream reader.

:class:`Scheduler` publishes scheduled items when their ``publish_at`` comes.
Every process runs one, so the schedule survives any of them stopping; the
release is one Lua script that moves the item from the schedule into the
stream and the state, so however many processes see it due at once, exactly
one publishes it. A process that starts after a time was missed publishes
the item on its first round.

:class:`Audience` reports this process's live readers per channel to Redis
every few seconds with an expiry, so the desk can show the sum over all
processes; nothing per reader touches Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from redis.exceptions import RedisError

from ticker.config import DEFAULT_AUDIENCE_INTERVAL, DEFAULT_SCHEDULER_INTERVAL
from ticker.errors import TickerError
from ticker.hub import Hub
from ticker.store import Store

log = logging.getLogger("ticker.scheduler")


class Scheduler:
    """Releases due scheduled items; run :meth:`run` as one task per process."""

    def __init__(self, store: Store, *, interval: float = DEFAULT_SCHEDULER_INTERVAL) -> None:
        self.store = store
        self.interval = interval
        self.released = 0

    async def round(self) -> int:
        """Publish every item due now; how many this process published."""
        published = 0
        for item_id in await self.store.due(int(time.time() * 1000)):
            if await self.store.release(item_id) is not None:
                published += 1
                log.info("published scheduled item %s", item_id)
        self.released += published
        return published

    async def run(self) -> None:
        while True:
            try:
                await self.round()
            except (RedisError, TickerError, OSError) as exc:
                log.warning("scheduler: %s; trying again shortly", exc)
            await asyncio.sleep(self.interval)


class Audience:
    """Reports this process's readers per channel; run :meth:`run` as one task per process."""

    def __init__(self, hub: Hub, store: Store, *, interval: float = DEFAULT_AUDIENCE_INTERVAL) -> None:
        self.hub = hub
        self.store = store
        self.interval = interval
        self.process = uuid.uuid4().hex[:12]

    async def run(self) -> None:
        ttl_ms = int(self.interval * 3 * 1000)
        while True:
            try:
                await self.store.report_readers(self.process, self.hub.readers(), ttl_ms=ttl_ms)
            except (RedisError, TickerError, OSError) as exc:
                log.warning("reader count report: %s", exc)
            await asyncio.sleep(self.interval)
