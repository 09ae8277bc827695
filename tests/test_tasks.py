"""Background tasks stop for certain, even when Python 3.11's ``asyncio.wait_for`` loses a
cancellation (redis-py sends every command through it)."""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.support import units
from ticker.scheduler import Scheduler
from ticker.store import Store, connect
from ticker.tasks import cancel

pytestmark = pytest.mark.anyio


async def test_a_scheduler_busy_with_redis_stops_whenever_it_is_cancelled(redis_url: str, prefix: str) -> None:
    # No pause between rounds: the task is nearly always inside a command, where a lost
    # cancellation lets it run on (before the fix most rounds here never stopped).
    for _ in range(20):
        client = connect(redis_url, socket_timeout=10)
        task = asyncio.create_task(Scheduler(Store(client, prefix=prefix), interval=0).run())
        await asyncio.sleep(random.uniform(0.001, 0.02))
        try:
            async with asyncio.timeout(units(5)):
                await cancel([task])
        finally:
            await client.aclose()
        assert task.cancelled()


async def test_an_error_a_task_ended_with_is_raised() -> None:
    async def fails() -> None:
        raise RuntimeError("the reader broke")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="the reader broke"):
        await cancel([task])
