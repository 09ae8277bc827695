"""The scheduler's rounds against a real Redis: what it publishes, and how long it sleeps."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from ticker.models import ItemCreate, parse
from ticker.scheduler import RECHECK, Scheduler
from ticker.store import Store, connect

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(redis_url: str, prefix: str) -> AsyncIterator[Store]:
    client = connect(redis_url)
    yield Store(client, prefix=prefix)
    await client.aclose()


async def schedule(store: Store, item_id: str, ahead: timedelta) -> None:
    at = (datetime.now(UTC) + ahead).isoformat()
    await store.publish(parse(ItemCreate, {"headline": item_id, "id": item_id, "publish_at": at}), actor="t")


async def test_a_round_publishes_what_is_due_and_sleeps_until_the_soonest_or_its_interval(store: Store) -> None:
    await schedule(store, "soon", timedelta(seconds=30))
    await schedule(store, "later", timedelta(hours=1))
    scheduler = Scheduler(store, interval=60)
    assert 0 < await scheduler.round() <= 30  # wakes when "soon" is due, not a minute later
    assert scheduler.released == 0
    assert await Scheduler(store, interval=1).round() == 1  # looks again within its interval anyway

    # Time passes: "soon" falls due (its score in the schedule is its publish_at).
    await store.redis.zadd(store.keys.sched, {"soon": int(time.time() * 1000) - 1000})
    assert await scheduler.round() == 60  # "later" is an hour away: the interval is sooner
    assert scheduler.released == 1
    assert [i.id for i in await store.scheduled()] == ["later"]
    assert (await store.get("soon")).headline == "soon"


async def test_more_due_items_than_one_round_reads_are_published_without_a_pause(store: Store) -> None:
    for n in range(Scheduler.BATCH + 5):
        await schedule(store, f"n{n}", timedelta(hours=1))
    past = int(time.time() * 1000) - 1000
    await store.redis.zadd(store.keys.sched, {f"n{n}": past for n in range(Scheduler.BATCH + 5)})
    scheduler = Scheduler(store, interval=60)
    assert await scheduler.round() == 0  # a full batch was due: go on at once
    assert await scheduler.round() == 60
    assert scheduler.released == Scheduler.BATCH + 5 and await store.scheduled() == []


async def test_due_items_it_cannot_release_are_looked_at_again_soon_but_not_at_once(store: Store) -> None:
    # Another process won them, or Redis's clock says "not yet": a full batch of them must
    # not make the scheduler go round without a pause.
    past = int(time.time() * 1000) - 1000
    await store.redis.zadd(store.keys.sched, {f"gone{n}": past for n in range(Scheduler.BATCH + 5)})
    scheduler = Scheduler(store, interval=60)
    assert await scheduler.round() == RECHECK
    assert scheduler.released == 0
