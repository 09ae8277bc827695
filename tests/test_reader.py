"""The stream reader against a real Redis: loading, following, surviving its own timeouts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from tests.clients import wait_async
from ticker.hub import Hub
from ticker.models import ItemCreate
from ticker.reader import Reader
from ticker.store import Store, connect


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
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
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
