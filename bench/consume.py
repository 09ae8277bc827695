"""How many stream entries per second one consumer process handles.

Starts ``ticker serve`` (on ``TICKER_REDIS_URL``, or its embedded Redis in a
throw-away folder), publishes ``--entries`` changes through the HTTP API, then,
``--runs`` times, lets a fresh consumer group read all of them with
:class:`ticker.Consumer` and a handler that does nothing: every entry is read,
parsed into a typed event and acknowledged on its own, which is the cost a real
handler adds its work to. Prints each run and the median. Only public surfaces
are used: the command line, the HTTP API through :class:`ticker.Client`, and
the consumer. On ``TICKER_REDIS_URL`` it writes under a key prefix of its own
(``bench-...``, printed), which it leaves behind.

    .venv/bin/python -m bench.consume --entries 10000 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.staff import create_token
from ticker import Client, Consumer, Event
from ticker.consumer import OLDEST

TICKER = str(Path(sys.executable).with_name("ticker"))
BANNER = re.compile(r"Ticker serving on (?P<url>http://\S+) \(Redis: (?P<redis>\S+)\)")


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen[str], str, str]:
    """``ticker serve`` on a free port; its URL and the Redis URL it prints."""
    server = subprocess.Popen(
        [TICKER, "serve", "--port", "0", "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    for line in server.stdout:
        found = BANNER.search(line)
        if found:
            return server, found["url"], found["redis"]
    raise SystemExit(f"ticker serve exited with {server.wait()} before it printed where it serves")


def fill(url: str, token: str, entries: int) -> None:
    """Publish ``entries`` items (one stream entry each) through the API, 8 requests at a time."""

    def publish(numbers: range) -> None:
        with Client(url, token=token) as desk:
            for n in numbers:
                desk.publish(f"Bench headline number {n}", labels=["breaking"])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(publish, [range(start, entries, 8) for start in range(8)]))


async def one_run(redis_url: str, prefix: str, entries: int, batch: int) -> float:
    """Entries per second for one fresh group reading the whole stream."""
    handled = 0

    def handle(event: Event) -> None:
        nonlocal handled
        handled += 1
        if handled >= entries:
            consumer.stop()

    group = f"bench-{uuid.uuid4().hex[:8]}"
    options = {"start": OLDEST, "batch": batch, "block_ms": 100}
    async with Consumer.connect(redis_url, handle, group=group, name="c1", prefix=prefix, **options) as consumer:
        began = time.perf_counter()
        await consumer.run()
        return entries / (time.perf_counter() - began)


def bench(entries: int, runs: int, batch: int, state: str) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "TICKER_STATE_DIR": state,
        "TICKER_PREFIX": prefix,
        "TICKER_STREAM_MAXLEN": str(entries + 1000),
        "TICKER_WRITE_RATE": "1000000",
        "TICKER_WRITE_BURST": "1000000",
    }
    server, url, redis_url = start_server(env)
    try:
        env["TICKER_REDIS_URL"] = redis_url
        fill(url, create_token(env), entries)
        print(f"published {entries} entries under the prefix {prefix}", flush=True)
        rates = []
        for n in range(runs):
            rate = asyncio.run(one_run(redis_url, prefix, entries, batch))
            rates.append(rate)
            print(f"run {n + 1}: {rate:,.0f} entries/s", flush=True)
        print(
            f"median: {statistics.median(rates):,.0f} entries/s for one consumer process "
            f"({entries} entries, batch {batch}, Python {platform.python_version()}, {os.cpu_count()} CPUs)"
        )
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tk") as state:
        bench(args.entries, args.runs, args.batch, state)


if __name__ == "__main__":
    main()
