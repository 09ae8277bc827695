"""In-process fan-out: the current snapshot, recent history and every subscriber.

The hub is fed by the one stream reader of the process (:mod:`ticker.reader`)
and never awaits: :meth:`Hub.apply` serializes each change once, encodes it
once per kind of subscriber and channel filter, and hands the same bytes to
every subscriber's write function (for WebSockets under Ticker's server, the
connection's transport ``write``). A sink that cannot keep up reports itself
``stalled`` and the hub closes it with 1013; the client resumes by cursor, and
nobody else waits for it.

A fan-out to many subscribers runs in slices of :attr:`Hub.fanout_slice_ms`
milliseconds, each slice a callback of its own on the event loop, so new
connections are served between slices however many readers there are; while
HTTP requests wait for their answer (:meth:`Hub.hold`, a publish above all),
the next slice waits for them, up to :attr:`Hub.fanout_yield_ms`. The reader
waits for :meth:`Hub.fanned_out` before it reads again, so changes that arrive
meanwhile are sent together, in fewer and larger frames (see
``docs/performance.md``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ticker.config import (
    DEFAULT_FANOUT_SLICE_MS,
    DEFAULT_FANOUT_YIELD_MS,
    DEFAULT_HISTORY_SIZE,
    DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_SNAPSHOT_LIMIT,
    DEFAULT_SNAPSHOT_POOL,
)
from ticker.metrics import Metrics
from ticker.models import Change, sort_key
from ticker.protocol import (
    CloseCode,
    Message,
    cursor_key,
    event_message,
    pack,
    passes,
    plan,
    reset_message,
    snapshot_message,
    sse_text,
    ws_frames,
)


class Sink(Protocol):
    """Where one subscriber's bytes go (see :mod:`ticker.sinks`)."""

    kind: str
    """``ws`` (ready frames, bytes), ``text`` (a list of text payloads) or ``sse`` (bytes)."""

    def open(self, listener: Subscriber) -> Callable[[Any], object]:
        """The function that takes one delivery and never blocks; the sink tells ``listener``
        when its client cannot keep up (``stalled``) or its connection stops (``stopped``)."""
        ...

    def close(self, code: int, reason: str = "") -> None: ...


def encode(kind: str, messages: Sequence[Message], limit: int = DEFAULT_MAX_FRAME_BYTES) -> Any:
    """The messages in the form a sink of ``kind`` takes."""
    if kind == "ws":
        return ws_frames(messages, limit)
    if kind == "sse":
        return sse_text(messages)
    return [payload.decode() for payload in pack(messages, limit)]


@dataclass(frozen=True, slots=True)
class Entry:
    """One change as the hub keeps it: the serialized event and what filters need."""

    cursor: str
    message: Message
    channel: str
    previous_channel: str | None
    ts: int


class History:
    """The most recent changes, oldest first, addressable by cursor."""

    def __init__(self, size: int = DEFAULT_HISTORY_SIZE) -> None:
        self.size = size
        self.base = "0-0"
        """Every change after this cursor is held."""
        self._entries: list[Entry] = []
        self._index: dict[str, int] = {}
        self._offset = 0

    def reset(self, base: str) -> None:
        self.base = base
        self._entries = []
        self._index = {}
        self._offset = 0

    def append(self, entry: Entry) -> None:
        self._index[entry.cursor] = self._offset + len(self._entries)
        self._entries.append(entry)
        if len(self._entries) >= 2 * self.size:
            # Trim in halves, so appending stays O(1) amortized.
            drop = len(self._entries) - self.size
            for old in self._entries[:drop]:
                del self._index[old.cursor]
            self.base = self._entries[drop - 1].cursor
            self._entries = self._entries[drop:]
            self._offset += drop

    def known(self, cursor: str) -> bool:
        return cursor == self.base or cursor in self._index

    def after(self, cursor: str) -> list[Entry]:
        """Every change after ``cursor``, which must be :meth:`known`."""
        position = self._index.get(cursor)
        if position is None:  # the base, which the history may or may not hold itself
            return list(self._entries)
        return self._entries[position - self._offset + 1 :]

    def __len__(self) -> int:
        return len(self._entries)


def _nowhere(data: Any) -> None:
    """Where a subscriber's deliveries go once it has left."""


@dataclass(slots=True, eq=False)
class Subscriber:
    hub: Hub
    sink: Sink
    channel: str | None
    ahead: str | None = None
    """A cursor past the hub's head (another process read it first): skip changes up to it."""
    write: Callable[[Any], object] = _nowhere

    def stalled(self) -> None:
        self.hub._stalled(self)

    def stopped(self) -> None:
        self.hub.leave(self)


@dataclass(slots=True)
class _Job:
    """One group's share of a fan-out: the same bytes for every target, from ``done`` on."""

    data: Any
    messages: int
    targets: list[Subscriber]
    done: int = 0


@dataclass(slots=True)
class _Held:
    id: str
    sort_key: str
    channel: str
    pinned: bool
    json: str


def _held(raw: str) -> _Held:
    """What the snapshot needs of an item, from its JSON (parsed once per change)."""
    item = json.loads(raw)
    published = datetime.fromisoformat(item["published_at"])
    return _Held(item["id"], sort_key(published, item["id"]), item["channel"], bool(item.get("pinned")), raw)


def _entry(change: Change, channel: str, previous: str | None = None) -> Entry:
    message = event_message(change.cursor, change.op, change.ts, change.item)
    return Entry(change.cursor, message, channel, previous if previous != channel else None, change.ts)


@dataclass
class Hub:
    """The snapshot, the history and the subscribers of one server process."""

    metrics: Metrics = field(default_factory=Metrics)
    history_size: int = DEFAULT_HISTORY_SIZE
    snapshot_limit: int = DEFAULT_SNAPSHOT_LIMIT
    snapshot_pool: int = DEFAULT_SNAPSHOT_POOL
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    fanout_slice_ms: float = DEFAULT_FANOUT_SLICE_MS
    """How long one slice of a fan-out writes before the event loop serves others."""
    fanout_yield_ms: float = DEFAULT_FANOUT_YIELD_MS
    """How long the next slice waits at most while HTTP requests wait for their answer."""
    fanout_clock_every: int = 32
    """Writes between two looks at the clock in a slice: a write takes a few µs, the clock one."""

    def __post_init__(self) -> None:
        self.cursor = "0-0"
        """The newest change applied."""
        self.history = History(self.history_size)
        self.loaded = asyncio.Event()
        self._items: dict[str, _Held] = {}
        self._snapshots: dict[str | None, Message] = {}
        self._groups: dict[tuple[str | None, str], dict[Subscriber, None]] = {}
        self._ahead: dict[Subscriber, None] = {}
        self._jobs: deque[_Job] = deque()
        self._entries: list[Entry] = []
        """The changes of the fan-out in progress (for its latency figure)."""
        self._idle = asyncio.Event()
        self._idle.set()
        self._slow: list[Subscriber] = []
        self._writing = False
        self._handle: asyncio.Handle | None = None
        self._held = 0
        self._paused: asyncio.AbstractEventLoop | None = None
        """The loop of a slice put off for requests in progress (:meth:`hold`)."""
        self._closed: tuple[int, str] | None = None
        """The close code and reason once :meth:`close_all` ran: whoever joins later is closed at once."""

    # --- state ----------------------------------------------------------------------

    def load(self, cursor: str, items: Iterable[str], history: Sequence[Change], *, complete: bool) -> None:
        """Start (or start over) from a snapshot current as of ``cursor`` and the changes up to it.

        ``complete`` says ``history`` is the whole retained stream. When the hub
        was already running, every subscriber gets ``reset`` and the new snapshot.
        """
        self._items = {}
        for raw in items:
            held = _held(raw)
            self._items[held.id] = held
        self.history.reset("0-0" if complete or not history else history[0].cursor)
        for change in history:
            self.history.append(_entry(change, json.loads(change.item)["channel"]))
        self.cursor = cursor
        self._snapshots.clear()
        if self.loaded.is_set():
            self._finish()
            for subscriber in list(self._ahead):
                subscriber.ahead = None
                self._ahead.pop(subscriber)
                self._groups.setdefault((subscriber.channel, subscriber.sink.kind), {})[subscriber] = None
            for (channel, kind), group in list(self._groups.items()):
                data = encode(
                    kind,
                    [reset_message("history gap"), self.snapshot(channel)],
                    self.max_frame_bytes,
                )
                self._write_all(list(group), data)
        self.loaded.set()

    def _prune(self) -> None:
        if len(self._items) <= 2 * self.snapshot_pool:
            return
        ranked = sorted(self._items.items(), key=lambda kv: kv[1].sort_key, reverse=True)
        self._items = {k: v for i, (k, v) in enumerate(ranked) if i < self.snapshot_pool or v.pinned}

    def snapshot(self, channel: str | None) -> Message:
        """The current snapshot for a channel filter, built once per change."""
        cached = self._snapshots.get(channel)
        if cached is None:
            held = sorted(self._items.values(), key=lambda h: h.sort_key, reverse=True)
            mine = [h for h in held if channel is None or h.channel == channel]
            shown = mine[: self.snapshot_limit]
            pinned = [h.json for h in mine if h.pinned]
            next_page = shown[-1].sort_key if shown else None
            cached = self._snapshots[channel] = snapshot_message(
                self.cursor, [h.json for h in shown], pinned, next_page
            )
        return cached

    # --- changes ----------------------------------------------------------------------

    def apply(self, changes: Sequence[Change]) -> None:
        """Apply changes read from the stream and send them to every subscriber. Never awaits.

        The sending may go on in slices after this returns (:meth:`fanned_out`);
        a fan-out still in progress is finished first, so order holds.
        """
        head = cursor_key(self.cursor)
        entries: list[Entry] = []
        for change in changes:
            if cursor_key(change.cursor) <= head:
                continue  # read twice (a retry after a timeout): already applied
            head = cursor_key(change.cursor)
            held = _held(change.item)  # the one parse of this change's item
            before = self._items.pop(change.id, None)
            if change.op != "retract":
                self._items[change.id] = held
            entry = _entry(change, held.channel, before.channel if before is not None else None)
            self.history.append(entry)
            entries.append(entry)
            self.cursor = change.cursor
        if not entries:
            return
        self._finish()
        self._prune()
        self._snapshots.clear()
        self._fan_out(entries)

    async def fanned_out(self) -> None:
        """Wait until the fan-out in progress has written to every subscriber."""
        await self._idle.wait()

    def _fan_out(self, entries: list[Entry]) -> None:
        frames = 0
        for (channel, kind), group in self._groups.items():
            due = [e for e in entries if passes(channel, e.channel, e.previous_channel)]
            if not due or not group:
                continue
            data = encode(kind, [e.message for e in due], self.max_frame_bytes)
            self._jobs.append(_Job(data, len(due), list(group)))
            frames += len(group)
        self.metrics.frames.inc(frames)
        for subscriber in list(self._ahead):  # after the groups' targets are taken: once each
            self._catch_up(subscriber, entries)
        self._entries = entries
        self._idle.clear()
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None  # driven by hand (tests): everything at once
        self._slice(loop)

    def _slice(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Write one slice of the fan-out and schedule the next (all of it without a loop)."""
        self._handle = None
        self._paused = None
        clock = time.perf_counter
        deadline = clock() + self.fanout_slice_ms / 1000 if loop is not None else float("inf")
        deliveries, every = 0, self.fanout_clock_every
        self._writing = True
        try:
            while self._jobs:
                job = self._jobs[0]
                targets, data, start = job.targets, job.data, job.done
                end, done = len(targets), start
                while done < end:
                    stop = min(end, done + every)
                    for target in targets[done:stop]:
                        target.write(data)
                    done = stop
                    if clock() >= deadline:
                        break
                job.done = done
                deliveries += (done - start) * job.messages
                if done < end:
                    break
                self._jobs.popleft()
        finally:
            self._writing = False
        self.metrics.deliveries.inc(deliveries)
        self._drop_slow()
        if self._jobs and loop is not None:
            if self._held:
                self._paused = loop
                self._handle = loop.call_later(self.fanout_yield_ms / 1000, self._slice, loop)
            else:
                self._handle = loop.call_soon(self._slice, loop)
        elif not self._jobs:
            self._done()

    def hold(self) -> None:
        """An HTTP request waits for its answer: slices wait for it (up to :attr:`fanout_yield_ms`).

        A publish needs several turns of the event loop (the request, Redis, the
        answer); a slice between each would make staff wait for the readers.
        """
        self._held += 1

    def release(self) -> None:
        """A request held by :meth:`hold` has its answer; the fan-out goes on when none waits."""
        self._held -= 1
        loop = self._paused
        if not self._held and loop is not None and self._handle is not None:
            self._handle.cancel()
            self._paused = None
            self._handle = loop.call_soon(self._slice, loop)

    def _finish(self) -> None:
        """Write the rest of a fan-out in progress now (its scheduled slice is cancelled)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._paused = None
        if self._jobs:
            self._slice(None)

    def _done(self) -> None:
        sent = time.time() * 1000
        for entry in self._entries:
            self.metrics.latency.observe(max(0.0, sent - entry.ts) / 1000)
        self._entries = []
        self._idle.set()

    def _catch_up(self, subscriber: Subscriber, entries: list[Entry]) -> None:
        """A subscriber whose cursor is ahead of this process: quiet until the stream reaches it.

        When the stream passes that cursor without having it, the change never existed
        here (a failover lost it after the client saw it elsewhere): ``reset`` and a snapshot.
        """
        assert subscriber.ahead is not None
        ahead = cursor_key(subscriber.ahead)
        if cursor_key(entries[-1].cursor) < ahead:
            return
        subscriber.ahead = None
        self._ahead.pop(subscriber, None)
        self._groups.setdefault((subscriber.channel, subscriber.sink.kind), {})[subscriber] = None
        if any(cursor_key(e.cursor) == ahead for e in entries):
            due = [e for e in entries if passes(subscriber.channel, e.channel, e.previous_channel)]
            messages = [e.message for e in due if cursor_key(e.cursor) > ahead]
        else:
            messages = [reset_message("unknown cursor"), self.snapshot(subscriber.channel)]
        if messages:
            self._write_all([subscriber], encode(subscriber.sink.kind, messages, self.max_frame_bytes), len(messages))

    def _write_all(self, subscribers: list[Subscriber], data: Any, messages: int = 1) -> None:
        self._writing = True
        try:
            for subscriber in subscribers:
                subscriber.write(data)
        finally:
            self._writing = False
        self.metrics.deliveries.inc(messages * len(subscribers))
        self.metrics.frames.inc(len(subscribers))
        self._drop_slow()

    def _stalled(self, subscriber: Subscriber) -> None:
        self._slow.append(subscriber)
        if not self._writing:
            self._drop_slow()

    def _drop_slow(self) -> None:
        slow, self._slow = self._slow, []
        for subscriber in slow:
            if self.leave(subscriber):
                self.metrics.slow_closes.inc()
                subscriber.sink.close(CloseCode.TRY_AGAIN, "too slow; resume with your cursor")

    # --- subscribers --------------------------------------------------------------------

    def join(self, sink: Sink, *, channel: str | None, cursor: str | None) -> Subscriber:
        """Register a subscriber and send what its connection starts with, in one step (no gap).

        A fan-out in progress does not reach it: what it carries is in the history,
        so the replay (or snapshot) here already covers it.
        """
        start = plan(
            cursor,
            known=cursor is not None and self.history.known(cursor),
            base=self.history.base,
            head=self.cursor,
            now_ms=int(time.time() * 1000),
        )
        subscriber = Subscriber(self, sink, channel)
        messages: list[Message] = []
        if start.kind == "snapshot":
            messages = [self.snapshot(channel)]
        elif start.kind == "reset":
            messages = [reset_message(start.reason), self.snapshot(channel)]
        elif start.after is not None and self.history.known(start.after):
            replay = self.history.after(start.after)
            messages = [e.message for e in replay if passes(channel, e.channel, e.previous_channel)]
        else:
            subscriber.ahead = start.after
        if subscriber.ahead is None:
            self._groups.setdefault((channel, sink.kind), {})[subscriber] = None
        else:
            self._ahead[subscriber] = None
        self.metrics.connections.labels(sink.kind).inc()
        subscriber.write = sink.open(subscriber)
        if self._closed is not None:
            # A stream that was still being set up when the server began stopping: it
            # would otherwise hold the shutdown until the grace period cuts it.
            self.leave(subscriber)
            sink.close(*self._closed)
            return subscriber
        if messages:
            self._write_all([subscriber], encode(sink.kind, messages, self.max_frame_bytes), len(messages))
        return subscriber

    def leave(self, subscriber: Subscriber) -> bool:
        """Forget a subscriber (nothing more is written to it); False if it had left already."""
        subscriber.write = _nowhere
        key = (subscriber.channel, subscriber.sink.kind)
        group = self._groups.get(key)
        if group is not None and subscriber in group:
            del group[subscriber]
            if not group:
                del self._groups[key]
        elif subscriber in self._ahead:
            del self._ahead[subscriber]
        else:
            return False
        self.metrics.connections.labels(subscriber.sink.kind).dec()
        return True

    def readers(self) -> dict[str, int]:
        """Live subscribers per channel filter (``*``: all channels), for the desk's reader count."""
        counts: dict[str, int] = {}
        for (channel, _), group in self._groups.items():
            name = channel or "*"
            counts[name] = counts.get(name, 0) + len(group)
        return counts

    def subscribers(self) -> list[Subscriber]:
        return [*(s for group in self._groups.values() for s in group), *self._ahead]

    def close_all(self, code: int, reason: str = "") -> None:
        """Close every subscriber, and every one that joins from now on (the server is stopping)."""
        self._closed = (code, reason)
        self._finish()
        for subscriber in self.subscribers():
            self.leave(subscriber)
            subscriber.sink.close(code, reason)
