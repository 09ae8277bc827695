"""How many stream entries per second one consumer process handles.

Fills a stream of its own with ``--entries`` changes, then, ``--runs`` times, lets a
fresh consumer group read all of them with :class:`ticker.consumer.Consumer`
and a handler that does nothing: every entry is read, parsed into a typed event
and acknowledged on its own, which is the cost a real handler adds its work to.
Prints each run and the median. Uses ``TICKER_REDIS_URL``, or starts an embedded Redis.

    .venv/bin/python bench/consume.py --entries 20000 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from ticker.consumer import OLDEST, Consumer
from ticker.embedded import EmbeddedRedis
from ticker.models import Event, ItemCreate
from ticker.store import Store, connect


async def fill(store: Store, entries: int) -> None:
    """Publish ``entries`` items (one stream entry each), 100 at a time."""
    for start in range(0, entries, 100):
        await asyncio.gather(
            *(
                store.publish(ItemCreate(headline=f"Bench headline number {n}", labels=["breaking"]), actor="bench")
                for n in range(start, min(start + 100, entries))
            )
        )


async def one_run(store: Store, entries: int, batch: int) -> float:
    """Entries per second for one fresh group reading the whole stream."""
    handled = 0
    group = f"bench-{uuid.uuid4().hex[:8]}"

    def handle(event: Event) -> None:
        nonlocal handled
        handled += 1
        if handled >= entries:
            consumer.stop()

    consumer = Consumer(store, handle, group=group, name="c1", start=OLDEST, batch=batch, block_ms=100)
    began = time.perf_counter()
    await consumer.run()
    elapsed = time.perf_counter() - began
    await store.redis.xgroup_destroy(store.stream_key, group)
    return entries / elapsed


async def bench(url: str, entries: int, runs: int, batch: int) -> None:
    client = connect(url)
    store = Store(client, prefix=f"bench-{uuid.uuid4().hex[:8]}", stream_maxlen=entries + 1000)
    try:
        await fill(store, entries)
        rates = []
        for n in range(runs):
            rate = await one_run(store, entries, batch)
            rates.append(rate)
            print(f"run {n + 1}: {rate:,.0f} entries/s", flush=True)
        print(
            f"median: {statistics.median(rates):,.0f} entries/s for one consumer process "
            f"({entries} entries, batch {batch}, Python {platform.python_version()}, {os.cpu_count()} CPUs)"
        )
    finally:
        await store.clear()
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    url = os.environ.get("TICKER_REDIS_URL")
    if url:
        asyncio.run(bench(url, args.entries, args.runs, args.batch))
        return
    with tempfile.TemporaryDirectory() as state, EmbeddedRedis(Path(state)) as embedded_url:
        asyncio.run(bench(embedded_url, args.entries, args.runs, args.batch))


if __name__ == "__main__":
    main()
