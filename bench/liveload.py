"""A quick end-to-end load run of one server process: N WebSocket readers, R changes per second.

Starts a Redis (``redis-server`` on PATH, else the embedded Valkey) and one
``ticker serve`` pinned to CPU 0; the readers and the publisher run in this
process, pinned to CPU 1 (when there are two). Publishes straight to Redis
through the store's atomic publish script. Prints deliveries/s, lost and
duplicate events, publish-to-receive latency p50/p99/max, server CPU time per
1,000 deliveries, server RSS per connection, and whether this load process
saturated its own core (then the figures say more about the client than the
server).

    python bench/liveload.py --clients 1000 --rate 10 --seconds 10 [--asgi-send]
    python bench/liveload.py --clients 5000 --storm
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from ticker.embedded import EmbeddedRedis
from ticker.models import ItemCreate
from ticker.store import Store, connect

CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


async def reader(url: str, got: dict[str, int], latencies: list[float], ready: list[int]) -> None:
    async with websockets.connect(url, max_size=None, open_timeout=60) as ws:
        ready.append(1)
        async for frame in ws:
            now = time.time() * 1000
            for line in str(frame).split("\n"):
                message = json.loads(line)
                if message["type"] == "event":
                    got[message["cursor"]] = got.get(message["cursor"], 0) + 1
                    latencies.append(now - message["ts"])


class StormClient:
    """A reader that remembers its cursor, to drop and come back with it."""

    def __init__(self, ws_url: str) -> None:
        self.ws_url = ws_url
        self.cursor: str | None = None
        self.ws: Any = None
        self.task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        query = f"?cursor={self.cursor}" if self.cursor else ""
        self.ws = await websockets.connect(f"{self.ws_url}/ws{query}", max_size=None, open_timeout=120)
        self.task = asyncio.create_task(self.read(self.ws))

    async def read(self, ws: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for frame in ws:
                for line in str(frame).split("\n"):
                    message = json.loads(line)
                    if message["type"] in ("event", "snapshot"):
                        self.cursor = message["cursor"]

    async def drop(self) -> None:
        self.ws.transport.abort()
        await asyncio.gather(self.task, return_exceptions=True)


async def commandstats(client: Any) -> dict[str, int]:
    info = await client.info("commandstats")
    return {name: int(stats["calls"]) for name, stats in info.items()}


async def storm(args: argparse.Namespace, redis_url: str, server_pid: int, http_url: str) -> None:
    """Every client drops and reconnects with its cursor at once; time to catch up, Redis commands."""
    client = connect(redis_url)
    store = Store(client, prefix="bench")
    for n in range(20):
        await store.publish(ItemCreate(headline=f"Before the storm {n}"), actor="bench")
    clients = [StormClient(http_url.replace("http://", "ws://")) for _ in range(args.clients)]
    for start in range(0, len(clients), 500):
        await asyncio.gather(*(c.connect() for c in clients[start : start + 500]))
    head = await store.head()
    while any(c.cursor != head for c in clients):  # noqa: ASYNC110 (waiting for every snapshot)
        await asyncio.sleep(0.05)
    await asyncio.gather(*(c.drop() for c in clients))
    for n in range(10):
        last = (await store.publish(ItemCreate(headline=f"While away {n}"), actor="bench")).cursor
    before = await commandstats(client)
    cpu0, own0, t0 = cpu_seconds(server_pid), time.process_time(), time.monotonic()
    await asyncio.gather(*(c.connect() for c in clients))
    while any(c.cursor != last for c in clients):  # noqa: ASYNC110 (waiting for every replay)
        await asyncio.sleep(0.01)
    caught_up = time.monotonic() - t0
    cpu, own = cpu_seconds(server_pid) - cpu0, time.process_time() - own0
    after = await commandstats(client)
    issued = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    issued = {k: v for k, v in issued.items() if v and k != "cmdstat_info"}
    print(f"reconnect storm: {args.clients} clients with cursors, all caught up in {caught_up:.2f} s")
    print(f"server CPU {cpu:.2f} s ({cpu / args.clients * 1e3:.2f} ms per reconnect); load generator CPU {own:.2f} s")
    print(f"Redis commands meanwhile (all clients of this Redis): {issued or 'none'}")
    await asyncio.gather(*(c.drop() for c in clients))
    await client.aclose()


def server_latency(http_url: str) -> str:
    """The server's own publish-to-send histogram, as cumulative shares per bucket."""
    text = httpx.get(f"{http_url}/metrics").text
    buckets = [
        (line.split('le="')[1].split('"')[0], float(line.split()[-1]))
        for line in text.splitlines()
        if line.startswith("ticker_publish_to_send_seconds_bucket")
    ]
    total = buckets[-1][1] or 1
    return " ".join(f"<={le}s:{count / total:.0%}" for le, count in buckets if count / total < 1) or "all <= 1ms"


async def run(args: argparse.Namespace, redis_url: str, server_pid: int, http_url: str) -> None:
    ws_url = http_url.replace("http://", "ws://")
    got: dict[str, int] = {}
    latencies: list[float] = []
    ready: list[int] = []
    tasks = []
    rss_before = rss_bytes(server_pid)
    for _ in range(args.clients):
        tasks.append(asyncio.create_task(reader(f"{ws_url}/ws?cursor=0-0", got, latencies, ready)))
        if len(tasks) % 200 == 0:
            await asyncio.sleep(0.05)
    while len(ready) < args.clients:  # noqa: ASYNC110 (counting connected readers)
        await asyncio.sleep(0.05)
    await asyncio.sleep(1)
    idle = (rss_bytes(server_pid) - rss_before) / args.clients
    print(f"server RSS per idle connection: {idle / 1024:.1f} KiB (growth from 0 to {args.clients})")
    got.clear()
    latencies.clear()
    client = connect(redis_url)
    store = Store(client, prefix="bench")
    published = []
    cpu0, own0, t0 = (
        cpu_seconds(server_pid),
        resource.getrusage(resource.RUSAGE_SELF),
        time.monotonic(),
    )
    for n in range(int(args.rate * args.seconds)):
        due = t0 + n / args.rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        result = await store.publish(ItemCreate(headline=f"Load test headline number {n}"), actor="bench")
        published.append(result.cursor)
    deadline = time.monotonic() + 30
    expected = len(published) * args.clients
    while sum(got.values()) < expected and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(server_pid) - cpu0
    own = resource.getrusage(resource.RUSAGE_SELF)
    own_cpu = (own.ru_utime + own.ru_stime) - (own0.ru_utime + own0.ru_stime)
    deliveries = sum(min(c, args.clients) for c in got.values())
    lost = expected - deliveries
    duplicates = sum(max(0, c - args.clients) for c in got.values())
    print(
        f"clients={args.clients} rate={args.rate}/s published={len(published)} "
        f"path={'asgi' if args.asgi_send else 'direct'}"
    )
    print(f"deliveries/s={deliveries / elapsed:,.0f} lost={lost} duplicates={duplicates}")
    print(
        f"latency ms p50={percentile(latencies, 0.5):.1f} p99={percentile(latencies, 0.99):.1f} "
        f"max={max(latencies, default=float('nan')):.1f}"
    )
    print(
        f"server CPU per 1,000 deliveries={cpu / max(deliveries, 1) * 1e3 * 1e3:.1f} ms "
        f"({cpu / max(deliveries, 1) * 1e6:.1f} µs per delivery)"
    )
    rss = rss_bytes(server_pid)
    print(f"server RSS={rss / 2**20:.1f} MiB ({rss / args.clients / 1024:.1f} KiB per connection, all included)")
    print(f"load generator CPU: {own_cpu / elapsed:.0%} of its core")
    print("server publish->send histogram: " + server_latency(http_url))
    if own_cpu / elapsed > 0.9:
        print(
            f"WARNING: the load generator used {own_cpu / elapsed:.0%} of its core: the figures are bound by the client"
        )
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--asgi-send", action="store_true", help="the portable ASGI send path instead")
    parser.add_argument("--storm", action="store_true", help="measure a reconnect storm instead")
    args = parser.parse_args()
    gc.set_threshold(20_000)  # the load generator holds thousands of connections too
    two_cores = (os.cpu_count() or 1) >= 2
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "redis") as redis_url:
        env = {
            **os.environ,
            "TICKER_STATE_DIR": tmp,
            "TICKER_DIRECT_FRAMES": "0" if args.asgi_send else "1",
        }
        command = [
            sys.executable,
            "-m",
            "ticker.cli",
            "--redis-url",
            redis_url,
            "--prefix",
            "bench",
            "serve",
            "--port",
            "0",
            "--log-level",
            "warning",
        ]
        if two_cores:
            command = ["taskset", "-c", "0", *command]
            os.sched_setaffinity(0, {1})
        server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            url = line.split("Ticker serving on ", 1)[1].split()[0]
            time.sleep(1)
            if args.storm:
                asyncio.run(storm(args, redis_url, server.pid, url))
            else:
                asyncio.run(run(args, redis_url, server.pid, url))
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
