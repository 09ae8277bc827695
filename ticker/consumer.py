"""Consume the change stream at least once, as a named member of a Redis consumer group.

::

    async def handle(event: Event) -> None:
        await notify(event.op, event.item)      # raise to have the entry retried

    consumer = Consumer(store, handle, group="push", name="push-1")
    await consumer.run(handle_signals=True)     # until SIGINT/SIGTERM or consumer.stop()

Each entry is acknowledged only after the handler returned. An entry whose
handler raised stays pending and is retried once it has been idle for
``claim_idle`` seconds (like a visibility timeout); after ``max_attempts``
deliveries it goes to the group's dead-letter stream with the error. Entries
a crashed consumer left pending are claimed by any live member of the group
after the same idle time; entries this consumer name left pending in an earlier
run are taken up first when it starts again. ``docs/stream.md`` explains the
guarantees and shows the same loop in plain Redis commands.

:func:`follow` reads without a group (no acknowledgements, nothing survives a
restart but the cursor you keep), and :func:`consume` is the blocking form of
:class:`Consumer` for code without an event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import signal
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ticker.config import DEFAULT_PREFIX
from ticker.errors import InvalidInput, NotFound, Unavailable
from ticker.models import Change, Event, format_time, now
from ticker.protocol import parse_cursor
from ticker.store import Store, connect

log = logging.getLogger("ticker.consumer")

NEW = "new"
"""Start position: only changes made after the group is created."""
OLDEST = "oldest"
"""Start position: the oldest change still retained in the stream."""
DEFAULT_BATCH = 100
DEFAULT_BLOCK_MS = 1000
"""How long one read waits for new entries; also the longest a stop request waits."""
DEFAULT_CLAIM_IDLE = 30.0
"""Seconds an entry stays pending before another delivery: longer than any handler call."""
DEFAULT_MAX_ATTEMPTS = 5
MAX_ERROR_CHARS = 4000
MAX_RETRY_DELAY = 5.0
"""Longest wait between attempts to reach Redis again during an outage."""

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")

Handler = Callable[[Event], "Awaitable[None] | None"]
"""Called once per change; sync or async. Return to acknowledge, raise to retry."""


def start_id(start: str) -> str:
    """The Redis stream id for a start position: ``new``, ``oldest`` or a cursor."""
    if start == NEW:
        return "$"
    if start == OLDEST:
        return "0-0"
    if parse_cursor(start) is None:
        raise InvalidInput(
            f"{start!r} is not a start position; use 'new', 'oldest' or a cursor like 1732000000000-0",
            fields=[{"field": "start", "message": "not a cursor"}],
        )
    return start


def check_name(what: str, value: str) -> str:
    """Group and consumer names end up in key names and logs: keep them plain."""
    if not NAME_PATTERN.fullmatch(value):
        raise InvalidInput(
            f"{what} name {value!r} must be 1-64 letters, digits or _ . : @ -",
            fields=[{"field": what, "message": f"does not match {NAME_PATTERN.pattern}"}],
        )
    return value


@dataclass
class Stats:
    """What one consumer has done since it started."""

    handled: int = 0
    """Entries the handler returned for (acknowledged)."""
    failed: int = 0
    """Handler calls that raised (the entry stays pending for a retry or is dead-lettered)."""
    dead_lettered: int = 0
    claimed: int = 0
    """Entries taken over after they were idle for ``claim_idle`` (a crash or a failure)."""
    skipped: int = 0
    """Entries of other channels, acknowledged without calling the handler."""
    trimmed: int = 0
    """Pending entries that were trimmed away before they could be handled."""


class Consumer:
    """One member of a consumer group running ``handler`` for every change, at least once."""

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        redis_url: str,
        handler: Handler,
        *,
        group: str,
        name: str,
        prefix: str = DEFAULT_PREFIX,
        **options: Any,
    ) -> AsyncIterator[Consumer]:
        """A consumer of the deployment at ``redis_url`` (any URL form of ``docs/deploy.md``), for a
        service that runs it in its own event loop: ``async with Consumer.connect(...) as consumer:
        await consumer.run()``. Its Redis connections close when the block ends."""
        client = connect(redis_url)
        try:
            yield cls(Store(client, prefix=prefix), handler, group=group, name=name, **options)
        finally:
            await client.aclose()

    def __init__(
        self,
        store: Store,
        handler: Handler,
        *,
        group: str,
        name: str,
        start: str = NEW,
        channel: str | None = None,
        batch: int = DEFAULT_BATCH,
        block_ms: int = DEFAULT_BLOCK_MS,
        claim_idle: float = DEFAULT_CLAIM_IDLE,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        """``start`` applies only when this call creates the group; an existing group goes on
        from where it is. ``channel`` limits the handler to one channel (by the item after
        the change). ``max_attempts`` counts deliveries, including those a crash cut short.
        """
        self.store = store
        self.handler = handler
        self.group = check_name("group", group)
        self.name = check_name("consumer", name)
        self.start = start_id(start)
        self.channel = channel
        if batch < 1 or block_ms < 1 or claim_idle <= 0 or max_attempts < 1:
            raise InvalidInput("batch, block_ms, claim_idle and max_attempts must be positive")
        self.batch = batch
        self.block_ms = block_ms
        self.claim_idle = claim_idle
        self.max_attempts = max_attempts
        self.stats = Stats()
        self.created: bool | None = None
        """Whether :meth:`run` created the group (``None`` until it has started)."""
        self._stopping = asyncio.Event()
        self._gap_seen: str | None = None
        self._last: str | None = None
        """The last change this consumer handled: where a lost group is made again."""

    def stop(self) -> None:
        """Finish the entry being handled, then return from :meth:`run` (safe from a signal)."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self, *, handle_signals: bool = False) -> None:
        """Handle changes until :meth:`stop` (or SIGINT/SIGTERM with ``handle_signals``)."""
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM) if handle_signals else ()
        for signum in signals:
            loop.add_signal_handler(signum, self.stop)
        try:
            await self._run()
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)

    async def _run(self) -> None:
        """The loop, surviving Redis outages: it waits, reconnects and goes on where it was."""
        started = False
        next_claim = 0.0
        outages = 0
        while not self.stopping:
            try:
                if not started:
                    await self._start()
                    started = True
                    next_claim = time.monotonic() + self.claim_idle / 2
                next_claim = await self._step(next_claim)
                outages = 0
            except Unavailable as exc:
                outages += 1
                delay = min(MAX_RETRY_DELAY, 0.1 * 2**outages)
                log.warning("consumer %s: %s (next try in %.1fs)", self.name, exc.message, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
            except NotFound:
                # The group is gone (a failover to a replica that never had it): make it
                # again after the last change this consumer handled, or at the start.
                log.warning("group %s vanished; creating it again after %s", self.group, self._last or self.start)
                started = False

    async def _start(self) -> None:
        self.created = await self.store.create_group(self.group, self._last or self.start)
        if not self.created and self.start != "$":
            log.info("group %s exists; it goes on from its own position, not %s", self.group, self.start)
        await self._check_gap()
        await self._take_up_own_pending()

    async def _step(self, next_claim: float) -> float:
        """One read (and, when due, one round of claiming); returns when the next claim is due."""
        if time.monotonic() >= next_claim:
            await self._claim_stale()
            await self._check_gap()
            next_claim = time.monotonic() + self.claim_idle / 2
        wait_ms = max(1, min(self.block_ms, int((next_claim - time.monotonic()) * 1000)))
        entries = await self.store.read_group(self.group, self.name, count=self.batch, block_ms=wait_ms)
        for cursor, fields in entries:
            if self.stopping:
                break  # read but not handled: pending, taken up again after claim_idle
            await self._handle(cursor, fields or {}, attempts=1)
        return next_claim

    async def _take_up_own_pending(self) -> None:
        """Entries this consumer name read but never acknowledged before it last stopped."""
        after = "0-0"
        while not self.stopping:
            entries = await self.store.read_group(self.group, self.name, count=self.batch, after=after)
            if not entries:
                return
            counts = await self.store.deliveries(self.group, [c for c, f in entries if f is not None])
            for cursor, fields in entries:
                after = cursor
                if self.stopping:
                    return
                if fields is None:
                    await self._trimmed(cursor)
                    await self.store.ack(self.group, cursor)
                    continue
                await self._deliver(cursor, fields, counts.get(cursor, 1))

    async def _claim_stale(self) -> None:
        """Take over entries idle for ``claim_idle``: a crashed member's, or failed ones."""
        start = "0-0"
        while not self.stopping:
            start, entries, trimmed = await self.store.claim(
                self.group, self.name, min_idle_ms=int(self.claim_idle * 1000), start=start, count=self.batch
            )
            for cursor in trimmed:
                await self._trimmed(cursor)
                await self.store.ack(self.group, cursor)  # Redis 6.2 keeps them pending
            if entries:
                self.stats.claimed += len(entries)
                log.info("claimed %d idle entries for %s", len(entries), self.name)
                counts = await self.store.deliveries(self.group, [c for c, _ in entries])
                for cursor, fields in entries:
                    if self.stopping:
                        return
                    await self._deliver(cursor, fields, counts.get(cursor, 1))
            if start == "0-0":
                return

    async def _deliver(self, cursor: str, fields: dict[str, str], attempts: int) -> None:
        """Handle a redelivered entry, unless it already had every attempt it gets."""
        if attempts > self.max_attempts:
            error = (
                f"delivered {attempts - 1} times without an acknowledgement: "
                "the consumer crashed or stopped while handling it"
            )
            await self._dead_letter(cursor, fields, error, attempts - 1)
        else:
            await self._handle(cursor, fields, attempts)

    async def _handle(self, cursor: str, fields: dict[str, str], attempts: int) -> None:
        try:
            event = Event.from_change(Change.from_entry(cursor, fields))
        except (KeyError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            # Retrying cannot fix a malformed entry: straight to the dead letters.
            await self._dead_letter(cursor, fields, f"malformed entry: {exc!r}", attempts)
            return
        if self.channel is not None and event.item.channel != self.channel:
            await self.store.ack(self.group, cursor)
            self.stats.skipped += 1
            return
        try:
            result = self.handler(event)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            self.stats.failed += 1
            if attempts == 1:  # a first delivery; a redelivery's count is already known
                attempts = (await self.store.deliveries(self.group, [cursor])).get(cursor, 1)
            if attempts >= self.max_attempts:
                await self._dead_letter(cursor, fields, describe(exc), attempts)
            else:
                log.warning(
                    "handler failed on %s (attempt %d of %d; retried after %gs): %s",
                    cursor,
                    attempts,
                    self.max_attempts,
                    self.claim_idle,
                    describe(exc, short=True),
                )
            return
        await self.store.ack(self.group, cursor)
        self.stats.handled += 1
        self._last = cursor

    async def _dead_letter(self, cursor: str, fields: dict[str, str], error: str, attempts: int) -> None:
        note = {
            "error": error[-MAX_ERROR_CHARS:],  # the end of a traceback says the most
            "attempts": str(attempts),
            "group": self.group,
            "consumer": self.name,
            "failed_at": format_time(now()),
        }
        dead = await self.store.dead_letter(self.group, cursor, fields, note)
        self.stats.dead_lettered += 1
        log.error(
            "entry %s moved to the dead-letter stream as %s after %d attempts: %s",
            cursor,
            dead,
            attempts,
            error.splitlines()[-1] if error else "",
        )

    async def _trimmed(self, cursor: str) -> None:
        self.stats.trimmed += 1
        log.warning("pending entry %s was trimmed away before it was handled", cursor)

    async def _check_gap(self) -> None:
        """Warn once if the group fell further behind than the stream's retention."""
        info = await self.store.group_info(self.group)
        last = str(info["last-delivered-id"]) if info else "0-0"
        read = info.get("entries-read") if info else None
        if last != "0-0" and last != self._gap_seen and await self.store.trimmed_after(last, entries_read=read):
            self._gap_seen = last
            log.warning(
                "group %s fell behind retention: entries after %s were trimmed before it read them",
                self.group,
                last,
            )


def describe(exc: BaseException, *, short: bool = False) -> str:
    """The error for the dead-letter entry: the exception and where it was raised."""
    if short:
        return f"{type(exc).__name__}: {exc}"
    return "".join(traceback.format_exception(exc)).strip()


async def follow(
    store: Store,
    *,
    start: str = NEW,
    channel: str | None = None,
    block_ms: int = DEFAULT_BLOCK_MS,
    stop: asyncio.Event | None = None,
) -> AsyncIterator[Event]:
    """Every change after ``start``, as it happens, without a group (nothing is acknowledged).

    Keep the last ``event.cursor`` and pass it as ``start`` to resume. Malformed
    entries are logged and skipped. Through a Redis outage or a failover it waits and
    goes on from its cursor. Ends when ``stop`` is set.
    """
    cursor = start_id(start)
    if cursor == "$":
        cursor = await store.head()
    elif cursor != "0-0" and await store.trimmed_after(cursor):
        log.warning("entries after %s may have been trimmed; following from the oldest retained one", cursor)
    outages = 0
    while stop is None or not stop.is_set():
        try:
            if outages and cursor != "0-0" and not await store.has(cursor):
                log.warning("change %s is not in the stream any more (trimmed, or lost in a failover)", cursor)
            changes = await store.wait_changes(cursor, count=DEFAULT_BATCH, block_ms=block_ms)
            outages = 0
        except Unavailable as exc:
            outages += 1
            delay = min(MAX_RETRY_DELAY, 0.1 * 2**outages)
            log.warning("following from %s: %s (next try in %.1fs)", cursor, exc.message, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for((stop or asyncio.Event()).wait(), delay)
            continue
        for change in changes:
            cursor = change.cursor
            try:
                event = Event.from_change(change)
            except ValueError as exc:
                log.error("skipping malformed entry %s: %s", change.cursor, exc)
                continue
            if channel is None or event.item.channel == channel:
                yield event


def consume(
    redis_url: str,
    handler: Handler,
    *,
    group: str,
    name: str,
    prefix: str = DEFAULT_PREFIX,
    **options: Any,
) -> Stats:
    """Run a :class:`Consumer` until SIGINT or SIGTERM, blocking; the handler may be sync.

    ``options`` are :class:`Consumer`'s (``start``, ``channel``, ``claim_idle``...).
    """

    async def main() -> Stats:
        async with Consumer.connect(redis_url, handler, group=group, name=name, prefix=prefix, **options) as consumer:
            await consumer.run(handle_signals=True)
            return consumer.stats

    return asyncio.run(main())


__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_BLOCK_MS",
    "DEFAULT_CLAIM_IDLE",
    "DEFAULT_MAX_ATTEMPTS",
    "NEW",
    "OLDEST",
    "Consumer",
    "Event",
    "Handler",
    "Stats",
    "consume",
    "follow",
    "start_id",
]
