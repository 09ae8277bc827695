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

RECHECK = 0.05
"""Seconds before looking again at an item this process saw due but could not release."""


class Scheduler:
    """Releases due scheduled items; run :meth:`run` as one task per process.

    Each round reads the soonest items (one command), publishes those due, and
    sleeps until the next one is due or :attr:`interval` passes, whichever is
    sooner: an item known a round ahead goes out on time, one scheduled (by any
    process) less than an interval ahead at most an interval late.
    """

    BATCH = 20

    def __init__(self, store: Store, *, interval: float = DEFAULT_SCHEDULER_INTERVAL) -> None:
        self.store = store
        self.interval = interval
        self.released = 0

    async def round(self) -> float:
        """Publish every item due now; seconds until the next round is needed."""
        upcoming = await self.store.upcoming(count=self.BATCH)
        now_ms = int(time.time() * 1000)
        due = [item_id for item_id, at in upcoming if at <= now_ms]
        released = 0
        for item_id in due:
            if await self.store.release(item_id) is not None:
                released += 1
                log.info("published scheduled item %s", item_id)
        self.released += released
        if released < len(due):  # another process won one, it was cancelled, or Redis's clock says not yet
            return min(self.interval, RECHECK)  # never at once: that could spin while Redis says "not yet"
        if len(due) == self.BATCH:
            return 0.0  # more may be due than one round reads
        soonest = (upcoming[len(due)][1] - time.time() * 1000) / 1000 if len(upcoming) > len(due) else self.interval
        return max(0.0, min(self.interval, soonest))

    async def run(self) -> None:
        while True:
            wait = self.interval
            try:
                wait = await self.round()
            except (RedisError, TickerError, OSError) as exc:
                log.warning("scheduler: %s; trying again shortly", exc)
            await asyncio.sleep(wait)


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
