"""A Sentinel deployment under load through two failovers: a kill -9 of the primary, then a
``SENTINEL FAILOVER``. Two ``ticker serve`` processes on the sentinel URL with
``TICKER_MIN_REPLICAS=1``, readers on both (WebSocket and SSE), a producer that retries with its
own ids. Nothing acknowledged is lost, every reader gets everything once, writes come back within
10 s of each new primary, and ``/readyz`` never says ready while writes fail. Run with ``-s`` to
see the figures.

The time without writes has two parts: Sentinel's (noticing the loss, electing a leader,
promoting a replica and pointing the other at it; a split vote retries only after twice
``failover-timeout``) and Ticker's (from the moment every Sentinel names the new primary and a
replica is in sync with it, until a write is acknowledged). Only the second is
Ticker's to keep short, so that is what the test bounds; both are printed."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests import consumer_worker
from tests.clients import ServerProcess, wait_async
from tests.e2e.failover import (
    Lines,
    Producer,
    Reader,
    ReadyPoller,
    cancel,
    create_token,
    handled_ids,
    read_sse,
    read_ws,
)
from tests.e2e.topology import SERVICE, SentinelSet, replica_args, synced
from tests.support import units, wait_for
from ticker.models import ItemCreate, parse
from ticker.store import Store, connect

PREFIX = "sentinel-e2e"
PHASE = 25
"""Acknowledged writes the producer makes before, between and after the failovers."""


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    started = SentinelSet(tmp_path_factory.mktemp("sentinel"))
    yield started
    started.stop()


def new_primary(topology: SentinelSet, old: int) -> bool:
    """Sentinels agree on a primary other than port ``old``, and it has a replica in sync."""
    primary = topology.current_primary()
    if primary is None or primary.port == old:
        return False
    replicas = [n for n in topology.nodes if n is not primary and n.process.poll() is None]
    return any(synced(r) and r.info().get("master_port") == primary.port for r in replicas)


def healthy(topology: SentinelSet) -> bool:
    """Both replicas in sync and known to every Sentinel as up: a planned failover's precondition."""
    primary = topology.current_primary()
    if primary is None or not all(synced(n) for n in topology.nodes if n is not primary):
        return False
    for sentinel in topology.sentinels:
        replicas = sentinel.client.sentinel_slaves(SERVICE)
        if len(replicas) != 2 or any(r["is_sdown"] or r["is_odown"] or r["is_disconnected"] for r in replicas):
            return False
    return True


def sentinel_failover(topology: SentinelSet) -> bool:
    try:
        return bool(topology.sentinels[0].client.execute_command("SENTINEL", "FAILOVER", SERVICE))
    except redis.ResponseError:  # NOGOODSLAVE / INPROG while Sentinel catches up: ask again
        return False


async def eventually(check: object, within: float, what: str) -> None:
    assert callable(check)
    deadline = time.monotonic() + units(within)
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def test_failovers_lose_no_acknowledged_write(topology: SentinelSet, tmp_path: Path) -> None:
    token = create_token(topology.url, PREFIX)
    env = {"TICKER_MIN_REPLICAS": "1", "TICKER_WRITE_RATE": "1000", "TICKER_WRITE_BURST": "1000"}
    out = tmp_path / "worker.out"
    worker = Lines(
        *consumer_worker.command(topology.url, PREFIX, group="g", name="w1", out=out, options=("--start", "oldest"))
    )
    servers = [ServerProcess(topology.url, PREFIX, tmp_path, **env) for _ in range(2)]
    try:
        acked = asyncio.run(scenario(topology, [s.url for s in servers], token))
        # The consumer helper follows the primary through both failovers too (at least once).
        wait_for(lambda: acked <= handled_ids(out), timeout=30, what="the consumer to handle every change")
    finally:
        for server in servers:
            server.stop()
        errors = worker.stop()
    assert "Traceback" not in errors, errors


async def scenario(topology: SentinelSet, bases: list[str], token: str) -> set[str]:
    """The failovers under load; returns the acknowledged ids."""
    readers = [Reader(f"{kind}@{n}") for n in range(len(bases)) for kind in ("ws", "sse")]
    producer = Producer(bases, token)
    poller = ReadyPoller(bases)
    timeout = httpx.Timeout(units(5), read=units(60))
    async with httpx.AsyncClient(timeout=timeout) as client:
        start = (await client.get(f"{bases[0]}/api/items")).json()["cursor"]
        tasks = []
        for n, base in enumerate(bases):
            ws, sse = readers[2 * n], readers[2 * n + 1]
            sse.cursor = start  # SSE starts from now without a cursor; this one starts before any write
            tasks += [asyncio.create_task(read_ws(base, ws)), asyncio.create_task(read_sse(client, base, sse))]
        await wait_async(lambda: readers[0].cursor and readers[2].cursor, what="WebSocket snapshots")
        writing = asyncio.create_task(producer.run(client))
        polling = asyncio.create_task(poller.run(client))
        try:
            await wait_async(lambda: len(producer.acked) >= PHASE, within=30, what="writes before the kill")
            primary = topology.current_primary()
            assert primary is not None
            killed_at = time.monotonic()
            primary.kill()
            await eventually(lambda: new_primary(topology, primary.port), 60, "a new primary with a replica")
            promoted_at = time.monotonic()
            await wait_async(lambda: producer.acked_after(killed_at) >= PHASE, within=30, what="writes after the kill")
            second = topology.current_primary()
            assert second is not None
            # The killed node comes back as a replica, as its Sentinel-rewritten config would
            # say: a forced failover leaves the old primary a primary for ~10 s, so the new
            # one needs another replica to confirm writes at once.
            primary.start(*replica_args(second))
            await eventually(lambda: healthy(topology), 30, "the old primary back as a replica the Sentinels know")
            await eventually(lambda: sentinel_failover(topology), 30, "SENTINEL FAILOVER to be accepted")
            failover_at = time.monotonic()
            await eventually(lambda: new_primary(topology, second.port), 60, "the second failover")
            switched_at = time.monotonic()
            await wait_async(
                lambda: producer.acked_after(failover_at) >= PHASE, within=30, what="writes after the failover"
            )
        finally:
            await cancel(writing, polling)
        acked = set(producer.acked)
        await wait_async(lambda: all(acked <= r.seen for r in readers), within=30, what="every reader to catch up")
        await cancel(*tasks)

    stored, published_twice = await stored_ids(topology.url)
    lost = sorted(acked - stored)
    duplicated = sum(len(r.duplicates) for r in readers) + len(published_twice)
    kill_gap = gap_between(producer, killed_at, failover_at)
    failover_gap = producer.longest_gap(failover_at)
    resumed = (resumed_after(producer, killed_at, promoted_at), resumed_after(producer, failover_at, switched_at))
    wrong = poller.ready_while_writes_fail(producer.attempts)
    print(
        f"\nsentinel failovers: acknowledged={len(acked)} lost={len(lost)} duplicated={duplicated} "
        f"seconds_without_writes: kill -9 {kill_gap:.1f}, SENTINEL FAILOVER {failover_gap:.1f}; "
        f"of which Sentinel's: {promoted_at - killed_at:.1f}, {switched_at - failover_at:.1f}; "
        f"Ticker's, from a new primary with a replica to the next write: {resumed[0]:.1f}, {resumed[1]:.1f}; "
        f"resets seen by readers={sum(r.resets for r in readers)}; "
        f"readyz 200 while writes failed={len(wrong)} of {len(poller.answers)} polls"
    )
    assert not lost, f"acknowledged but not in Redis: {lost[:10]}"
    assert not published_twice, f"published twice in the stream: {published_twice[:10]}"
    assert not duplicated, {r.name: r.duplicates[:5] for r in readers if r.duplicates}
    assert max(resumed) <= 10, resumed
    assert not wrong, wrong[:5]
    return acked


def resumed_after(producer: Producer, lost_at: float, named_at: float) -> float:
    """Seconds from a new primary with a replica in sync (seen at ``named_at``) to the first write
    acknowledged after the old one was lost at ``lost_at``; 0 when Ticker was there first."""
    first = min((at for at in producer.acked.values() if at > lost_at), default=float("inf"))
    return max(0.0, first - named_at)


def gap_between(producer: Producer, start: float, end: float) -> float:
    """The longest time without an acknowledged write between ``start`` and ``end``."""
    times = [start, *sorted(at for at in producer.acked.values() if start < at < end)]
    return max(b - a for a, b in itertools.pairwise(times)) if len(times) > 1 else end - start


async def stored_ids(url: str) -> tuple[set[str], list[str]]:
    """The ids of every item Redis has, and those the stream has two publish entries of,
    read through the sentinel URL (the current primary)."""
    client = connect(url, socket_connect_timeout=5)
    try:
        store = Store(client, prefix=PREFIX)
        page = await store.page(limit=200)
        ids = {item.id for item in page.items}
        while page.next:
            page = await store.page(limit=200, before=page.next)
            ids |= {item.id for item in page.items}
        published = [c.id for c in await store.changes_after("0-0", count=100_000) if c.op == "publish"]
        return ids, sorted({i for i in published if published.count(i) > 1})
    finally:
        await client.aclose()


def test_without_min_replicas_the_sentinel_url_works_and_is_ready(topology: SentinelSet) -> None:
    async def check() -> list[str]:
        client = connect(topology.url, socket_connect_timeout=5)
        try:
            store = Store(client, prefix=PREFIX + "-plain")
            problems = await store.write_problems()
            if not problems:
                await store.publish(parse(ItemCreate, {"id": "plain-1", "headline": "No replicas awaited"}), actor="t")
                assert (await store.get("plain-1")).version == 1
                await store.clear()
            return problems
        finally:
            await client.aclose()

    wait_for(lambda: asyncio.run(check()) == [], timeout=30, what="the sentinel URL to be ready for writes")
