"""The producer: publishes numbered headlines at a fixed rate through ``Store.publish``.

``Store.publish`` is the real publish path (the same atomic Lua script the
``POST /api/items`` endpoint calls), used directly so that the HTTP layer of
the server under test costs nothing during the measurement. Headlines read
``bench <seq> ...`` so readers can check order, gaps and duplicates.
Prints one JSON line at the end: how many, how long, how far behind schedule.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from ticker.models import ItemCreate
from ticker.store import Store, connect

HEADLINE = "bench {seq} Storm closes the coastal road as rivers rise across the region"


async def produce(
    redis_url: str, prefix: str, rate: float, start: int, count: int, wait_for_go: bool = False
) -> dict[str, float]:
    client = connect(redis_url)
    store = Store(client, prefix=prefix)
    published, behind, begin = 0, 0.0, time.monotonic()
    try:
        await client.ping()
        if wait_for_go:
            print("ready", flush=True)
            go = await asyncio.to_thread(sys.stdin.readline)
            if go.strip() != "go":  # the benchmark went away: publish nothing
                count = 0
        begin = time.monotonic()
        for i in range(count):
            due = begin + i / rate
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                behind = max(behind, -wait)
            seq = start + i
            create = ItemCreate(id=f"e{seq}", headline=HEADLINE.format(seq=seq))
            await store.publish(create, actor="bench")
            published += 1
    finally:
        await client.aclose()
    return {
        "published": published,
        "secs": time.monotonic() - begin,
        "behind_max": behind,
        "cpu": time.process_time(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--rate", type=float, required=True, help="events per second")
    parser.add_argument("--start", type=int, default=1, help="first sequence number")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument(
        "--wait-for-go", action="store_true", help='print "ready" once started, then wait for a line on stdin'
    )
    args = parser.parse_args()
    result = asyncio.run(produce(args.redis_url, args.prefix, args.rate, args.start, args.count, args.wait_for_go))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
