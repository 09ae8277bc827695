"""The stream reader against a real Redis: loading, following, surviving its own timeouts."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from tests.clients import wait_async
from tests.support import units
from ticker.hub import Hub
from ticker.models import ItemCreate
from ticker.reader import Reader
from ticker.store import Store, connect
from ticker.tasks import cancel


async def wait_until(check: Callable[[], object], what: str) -> None:
    await wait_async(check, within=20, what=what)


def test_reader_survives_timeouts_and_retries_from_its_cursor(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def run() -> None:
        writer = connect(redis_url)
        # A socket timeout shorter than the block: every idle XREAD times out in the
        # client, as it does when a busy event loop comes back to it too late.
        follower = connect(redis_url, socket_timeout=0.1)
        store = Store(writer, prefix=prefix)
        before = (await store.publish(ItemCreate(headline="before"), actor="t")).cursor
        hub = Hub()
        reader = Reader(hub, Store(follower, prefix=prefix), block_ms=300)
        task = asyncio.create_task(reader.run())
        try:
            await wait_until(lambda: hub.cursor == before, "loaded")
            await wait_until(lambda: reader.error is not None, "a read timed out")
            assert any("retrying from" in r.message for r in caplog.records)
            cursors = [(await store.publish(ItemCreate(headline=f"n{i}"), actor="t")).cursor for i in range(5)]
            await wait_until(lambda: hub.cursor == cursors[-1], "every change applied")
            assert [e.cursor for e in hub.history.after(before)] == cursors
        finally:
            await cancel([task])
            await follower.aclose()
            await writer.aclose()

    caplog.set_level(logging.WARNING, logger="ticker.reader")
    asyncio.run(run())


def test_reader_loads_snapshot_and_history_before_following(redis_url: str, prefix: str) -> None:
    async def run() -> None:
        client = connect(redis_url)
        store = Store(client, prefix=prefix)
        cursors = [(await store.publish(ItemCreate(headline=f"n{i}"), actor="t")).cursor for i in range(5)]
        hub = Hub(history_size=3)
        reader = Reader(hub, store, block_ms=100)
        await reader.load()
        assert hub.cursor == cursors[-1] and hub.history.base == cursors[-3]
        assert [e.cursor for e in hub.history.after(cursors[-3])] == cursors[-2:]
        assert reader.problems() == []
        await client.aclose()

    asyncio.run(run())


def test_changes_trimmed_before_they_were_read_reset_every_client(redis_url: str, prefix: str) -> None:
    async def run() -> None:
        client = connect(redis_url)
        store = Store(client, prefix=prefix)
        await store.publish(ItemCreate(headline="seen"), actor="t")
        hub = Hub()
        reader = Reader(hub, store, block_ms=100)
        await reader.load()
        sink = Sink()
        hub.join(sink, channel=None, cursor=hub.cursor)
        for i in range(5):  # while the reader is away...
            await store.publish(ItemCreate(headline=f"missed {i}"), actor="t")
        await client.xtrim(store.stream_key, maxlen=2, approximate=False)  # ...Redis trims them
        head = await store.head()
        task = asyncio.create_task(reader.run())
        try:
            await wait_until(lambda: hub.cursor == head, "reloaded")
            await wait_until(lambda: sink.got, "told the client")
            assert [json.loads(line)["type"] for line in sink.got[0][0].split("\n")] == ["reset", "snapshot"]
        finally:
            await cancel([task])
            await client.aclose()

    asyncio.run(run())


def test_changes_faster_than_the_interval_are_read_and_sent_together(redis_url: str, prefix: str) -> None:
    """A change after a quiet spell goes out at once; those that follow within the interval
    wait for its end and go out together: one frame per reader for all of them."""

    async def run() -> None:
        writer, follower = connect(redis_url), connect(redis_url)
        store = Store(writer, prefix=prefix)
        hub = Hub()
        reader = Reader(hub, Store(follower, prefix=prefix), block_ms=300, interval=units(3))
        sink = Sink()
        task = asyncio.create_task(reader.run())
        try:
            await wait_until(lambda: hub.loaded.is_set(), "loaded")
            hub.join(sink, channel=None, cursor=hub.cursor)
            first = (await store.publish(ItemCreate(headline="first"), actor="t")).cursor
            await wait_until(lambda: hub.cursor == first, "the first change applied")
            cursors = [(await store.publish(ItemCreate(headline=f"n{i}"), actor="t")).cursor for i in range(3)]
            await wait_until(lambda: hub.cursor == cursors[-1], "every change applied")
            writes = [[json.loads(line)["cursor"] for part in data for line in part.split("\n")] for data in sink.got]
            assert writes == [[first], cursors]
        finally:
            await cancel([task])
            await follower.aclose()
            await writer.aclose()

    asyncio.run(run())


class Sink:
    kind = "text"

    def __init__(self) -> None:
        self.got: list[Any] = []

    def open(self, listener: Any) -> Any:
        return self.got.append

    def close(self, code: int, reason: str = "") -> None:
        raise AssertionError("not closed")


def test_readiness_problems_of_a_lagging_or_failing_reader(redis_url: str, prefix: str) -> None:
    async def run() -> None:
        client = connect(redis_url)
        hub = Hub()
        reader = Reader(hub, Store(client, prefix=prefix), max_lag=5)
        assert reader.problems() == ["stream reader has not loaded the snapshot yet"]
        await reader.load()
        reader.lag = 12.0
        reader.error = "TimeoutError: Timeout reading from socket"
        assert reader.problems() == [
            "stream reader failing: TimeoutError: Timeout reading from socket",
            "stream reader 12.0s behind the stream head",
        ]
        await client.aclose()

    asyncio.run(run())
