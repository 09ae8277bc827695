"""The one stream reader of a server process: Redis stream in, :class:`~ticker.hub.Hub` out.

It loads the snapshot and recent history once, then follows the stream with
``XREAD BLOCK`` and a ``COUNT`` from the last cursor it applied. Any failure
(Redis gone, a read that timed out because the event loop was busy) is logged
and counted, and the read is retried from that same cursor after a short
backoff: never from ``$``, never silently dead. After any failure it checks that
the change it read last is still in the stream: if Redis trimmed changes the
reader had not seen (a long outage), or a failover promoted a replica that never
had that change, the hub starts over from a new snapshot and every client gets
``reset``, never a silent gap.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.exceptions import RedisError

from ticker.config import (
    DEFAULT_FANOUT_INTERVAL_MS,
    DEFAULT_MAX_READER_LAG,
    DEFAULT_READER_BLOCK_MS,
    DEFAULT_READER_COUNT,
)
from ticker.errors import TickerError
from ticker.hub import Hub
from ticker.protocol import cursor_key
from ticker.store import Store

log = logging.getLogger("ticker.reader")

MIN_BACKOFF = 0.05
MAX_BACKOFF = 2.0


class Reader:
    """Follows the stream into ``hub``; run :meth:`run` as one task per process."""

    def __init__(
        self,
        hub: Hub,
        store: Store,
        *,
        count: int = DEFAULT_READER_COUNT,
        block_ms: int = DEFAULT_READER_BLOCK_MS,
        max_lag: float = DEFAULT_MAX_READER_LAG,
        interval: float = DEFAULT_FANOUT_INTERVAL_MS / 1000,
    ) -> None:
        self.hub = hub
        self.store = store
        self.count = count
        self.block_ms = block_ms
        self.max_lag = max_lag
        self.interval = interval
        self.lag = 0.0
        self.error: str | None = None
        self.last_read = time.monotonic()
        self._batch = 0.0
        """When the last batch of changes was read (and its fan-out began)."""

    async def load(self) -> None:
        page = await self.store.page(limit=self.hub.snapshot_pool)
        history = await self.store.changes_until(page.cursor, count=self.hub.history_size)
        items = [item.to_json() for item in [*page.items, *page.pinned]]
        complete = len(history) < self.hub.history_size
        self.hub.load(page.cursor, items, history, complete=complete)
        log.info(
            "stream reader loaded %d items and %d changes up to %s",
            len(items),
            len(history),
            page.cursor,
        )

    async def _gap(self) -> str | None:
        """Why the stream no longer continues from the hub's cursor, or ``None`` when it does."""
        cursor = self.hub.cursor
        if cursor == "0-0" or await self.store.has(cursor):
            return None
        first = await self.store.first()
        if first is not None and cursor_key(first) > cursor_key(cursor):
            return "changes after it were trimmed during the outage"
        return "Redis does not have it (a failover promoted a replica that never had it)"

    async def run(self) -> None:
        backoff = MIN_BACKOFF
        recovering = True  # a restarted reader checks for a gap as after an outage
        while True:
            try:
                if not self.hub.loaded.is_set():
                    await self.load()
                elif recovering and (gap := await self._gap()):
                    log.warning("stream reader at %s: %s; starting over", self.hub.cursor, gap)
                    await self.load()
                recovering = False
                changes = await self.store.wait_changes(self.hub.cursor, count=self.count, block_ms=self.block_ms)
                self.last_read = time.monotonic()
                self.error = None
                backoff = MIN_BACKOFF
                if changes and len(changes) < self.count and (rest := self._batch + self.interval - self.last_read) > 0:
                    # Sooner than the interval after the last batch: what else comes before
                    # it is up goes with it, one frame per reader for all of it. (Waiting
                    # only when a change came early costs an idle process no extra wake.)
                    await asyncio.sleep(rest)
                    changes += await self.store.changes_after(changes[-1].cursor, count=self.count - len(changes))
                if changes:
                    self._batch = time.monotonic()
                    self.hub.metrics.changes.inc(len(changes))
                    self.hub.apply(changes)
                    # What arrives while the fan-out runs is read afterwards, in one batch.
                    await self.hub.fanned_out()
                full = len(changes) >= self.count
                self.lag = max(0.0, time.time() - changes[-1].ts / 1000) if full else 0.0
                self.hub.metrics.reader_lag.set(self.lag)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, TimeoutError, TickerError) as exc:
                recovering = True
                await self.store.reconnect()
                self.hub.metrics.redis_errors.inc()
                if self.error is None:
                    log.warning(
                        "stream reader: %s: %s; retrying from %s",
                        type(exc).__name__,
                        exc,
                        self.hub.cursor,
                    )
                self.error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)
            except Exception as exc:
                recovering = True
                log.exception("stream reader failed; retrying from %s", self.hub.cursor)
                self.error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(MAX_BACKOFF)

    def problems(self) -> list[str]:
        """Why this reader makes the process not ready (empty when it is fine)."""
        problems = []
        if not self.hub.loaded.is_set():
            problems.append("stream reader has not loaded the snapshot yet")
        if self.error is not None:
            problems.append(f"stream reader failing: {self.error}")
        if self.lag > self.max_lag:
            problems.append(f"stream reader {self.lag:.1f}s behind the stream head")
        stalled = time.monotonic() - self.last_read
        if self.error is None and stalled > self.block_ms / 1000 + self.max_lag + 5:
            problems.append(f"stream reader has not read for {stalled:.0f}s")
        return problems
