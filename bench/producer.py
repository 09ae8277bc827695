"""The producer: publishes numbered headlines at a fixed rate, through public surfaces only.

For Ticker, every headline is a ``POST /api/items`` with a staff token (the
real publish path, HTTP layer included), one after the other on one
keep-alive connection (so the stream holds them in sequence order), and each
answer's latency is recorded: under a fan-out overload this is what staff
would wait. A slow answer makes the producer fall behind its schedule, which
the run reports. For the references, which have no publish API, each headline is
an ``XADD`` of an entry in the layout ``docs/stream.md`` documents. Headlines
read ``bench <seq> ...`` so readers can check order, gaps and duplicates.
Prints one JSON line at the end: how many, how long, how far behind schedule,
and the publish latency p50/p99/max (milliseconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import httpx
import redis.asyncio as aioredis

HEADLINE = "bench {seq} Storm closes the coastal road as rivers rise across the region"


def item_json(seq: int, now_ms: int) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_ms / 1000)) + f".{now_ms % 1000:03d}Z"
    return json.dumps(
        {
            "id": f"e{seq}",
            "version": 1,
            "headline": HEADLINE.format(seq=seq),
            "url": None,
            "labels": [],
            "channel": "news",
            "published_at": stamp,
            "updated_at": stamp,
            "correction": None,
            "pinned": False,
            "lang": None,
            "author": None,
        },
        separators=(",", ":"),
    )


def over_http(url: str, token: str) -> tuple[Callable[[int], Awaitable[None]], Callable[[], Awaitable[None]]]:
    client = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)

    async def publish(seq: int) -> None:
        answer = await client.post("/api/items", json={"id": f"e{seq}", "headline": HEADLINE.format(seq=seq)})
        if answer.status_code != 201:
            raise RuntimeError(f"publish {seq}: {answer.status_code} {answer.text[:200]}")

    return publish, client.aclose


def over_redis(url: str, prefix: str) -> tuple[Callable[[int], Awaitable[None]], Callable[[], Awaitable[None]]]:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    key = "{" + prefix + "}:stream"

    async def publish(seq: int) -> None:
        now = int(time.time() * 1000)
        fields = {"op": "publish", "id": f"e{seq}", "item": item_json(seq, now), "actor": "bench", "v": "1"}
        await client.xadd(key, {**fields, "ts": str(now)})

    return publish, client.aclose


async def produce(args: argparse.Namespace) -> dict[str, float]:
    if args.url:
        publish, close = over_http(args.url, args.token)
    else:
        publish, close = over_redis(args.redis_url, args.prefix)
    latencies: list[float] = []
    behind, begin = 0.0, time.monotonic()
    count = args.count

    async def one(seq: int) -> None:
        sent = time.monotonic()
        await publish(seq)
        latencies.append(time.monotonic() - sent)

    try:
        if args.wait_for_go:
            print("ready", flush=True)
            go = await asyncio.to_thread(sys.stdin.readline)
            if go.strip() != "go":  # the benchmark went away: publish nothing
                count = 0
        begin = time.monotonic()
        for i in range(count):
            due = begin + i / args.rate
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                behind = max(behind, -wait)
            await one(args.start + i)
    finally:
        await close()
    ordered = sorted(latencies) or [0.0]
    return {
        "published": len(latencies),
        "secs": time.monotonic() - begin,
        "behind_max": behind,
        "cpu": time.process_time(),
        "publish_p50_ms": statistics.median(ordered) * 1000,
        "publish_p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000,
        "publish_max_ms": ordered[-1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="Ticker's base URL: publish through POST /api/items (with --token)")
    parser.add_argument("--token", help="a staff token with the publish scope")
    parser.add_argument("--redis-url", help="without --url: XADD to this Redis (the references)")
    parser.add_argument("--prefix", default="ticker", help="the stream's key prefix (with --redis-url)")
    parser.add_argument("--rate", type=float, required=True, help="events per second")
    parser.add_argument("--start", type=int, default=1, help="first sequence number")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument(
        "--wait-for-go", action="store_true", help='print "ready" once started, then wait for a line on stdin'
    )
    args = parser.parse_args()
    if bool(args.url) == bool(args.redis_url) or (args.url and not args.token):
        parser.error("give --url and --token (Ticker), or --redis-url (a reference)")
    print(json.dumps(asyncio.run(produce(args))), flush=True)


if __name__ == "__main__":
    main()
