"""Publish throughput of one server process through the HTTP API.

Starts an embedded Redis and one ``ticker serve`` process (pinned to core 0
with ``taskset`` when there are two cores), then a load generator in this
process (pinned to core 1, a minimal HTTP/1.1 client on asyncio streams so
that it costs far less than the server) that keeps ``--concurrency`` keep-alive
connections busy with ``POST /api/items`` for ``--seconds``. Each run also
measures ``GET /healthz`` on the same connections as a baseline, so the
figures can be compared across noisy machines as a ratio. Prints medians of
``--repeat`` runs::

    .venv/bin/python -m bench.publish --repeat 5

With ``--rate R`` it paces one connection at R requests a second instead, as a
newsroom publishes, and reports the server's CPU per request (from ``/proc``):
at a low rate every request wakes an idle process, which costs more than the
same request among thousands. A bare asyncio server answering the same paced
requests shows the floor of that on this machine::

    .venv/bin/python -m bench.publish --rate 20 --seconds 20 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.fanout import cpu_seconds, redis_binary
from bench.staff import create_token


@dataclass
class Run:
    requests: int
    seconds: float
    latencies: list[float]
    errors: int
    load_cpu: float
    server_cpu: float
    """Seconds of the server's CPU over the run."""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def pin(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") and (os.cpu_count() or 1) >= 2 else []


@contextmanager
def started(args: list[str], env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """A Python server on core 0: the first line it prints, and its pid; stopped afterwards."""
    proc = subprocess.Popen([*pin(0), sys.executable, *args], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout
        yield proc.stdout.readline(), proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


@contextmanager
def server(redis_url: str, prefix: str) -> Iterator[tuple[str, int]]:
    env = {
        **os.environ,
        "TICKER_REDIS_URL": redis_url,
        "TICKER_PREFIX": prefix,
        "TICKER_WRITE_RATE": "1000000",
        "TICKER_WRITE_BURST": "1000000",
    }
    with started(["-m", "ticker.cli", "serve", "--port", "0", "--log-level", "warning"], env) as (line, pid):
        if not line.startswith("Ticker serving on "):
            raise SystemExit(f"bench: the server did not start: {line!r}")
        yield line.split()[3], pid


BARE_SERVER = """
import asyncio

class Answer(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")

async def main():
    server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""
"""The least a request can cost a Python server here: asyncio alone, the same answer to
anything. Paced, what it costs is mostly waking an idle process."""


@contextmanager
def bare_server() -> Iterator[tuple[str, int]]:
    with started(["-c", BARE_SERVER]) as (port, pid):
        yield f"http://127.0.0.1:{port.strip()}", pid


@contextmanager
def throwaway_redis(directory: Path) -> Iterator[str]:
    """A Redis on a Unix socket in ``directory``, nothing on disk, stopped afterwards."""
    sock = directory / "redis.sock"
    args = [redis_binary(), "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen([*pin(0), *args, "--dir", str(directory)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("bench: Redis did not start")
            time.sleep(0.05)
        yield f"unix://{sock}"
    finally:
        proc.terminate()
        proc.wait(30)


class Connection:
    """A minimal keep-alive HTTP/1.1 client: the load generator must cost far less than the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, url: str) -> Connection:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer, parts.netloc)

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> int:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.writer.write(head.encode() + b"\r\n" + body)
        response = await self.reader.readuntil(b"\r\n\r\n")
        status = int(response[9:12])
        length = 0
        for line in response.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def load(
    url: str, secret: str, pid: int, *, publish: bool, seconds: float, concurrency: int, rate: float | None = None
) -> Run:
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    connections = [await Connection.open(url) for _ in range(1 if rate else concurrency)]
    cpu0, server0 = time.process_time(), cpu_seconds(pid)
    start = time.perf_counter()
    deadline = start + seconds

    async def worker(n: int, connection: Connection) -> None:
        nonlocal errors
        i = 0
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            if publish:
                body = json.dumps({"headline": f"Bench headline {n}-{i}", "labels": ["breaking"]}).encode()
                ok = await connection.request("POST", "/api/items", headers, body) == 201
            else:
                ok = await connection.request("GET", "/healthz", headers) == 200
            latencies.append(time.perf_counter() - t0)
            errors += not ok
            i += 1
            if rate:
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))

    await asyncio.gather(*(worker(n, c) for n, c in enumerate(connections)))
    elapsed = time.perf_counter() - start
    for connection in connections:
        connection.close()
    load_cpu = (time.process_time() - cpu0) / elapsed
    return Run(len(latencies), elapsed, latencies, errors, load_cpu, cpu_seconds(pid) - server0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=float, help="pace one connection at this many requests a second")
    args = parser.parse_args()

    if pin(1):
        os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory(prefix="tb") as tmp, throwaway_redis(Path(tmp)) as redis_url:
        prefix = f"bench-{os.getpid()}"
        secret = create_token({**os.environ, "TICKER_REDIS_URL": redis_url, "TICKER_PREFIX": prefix}, scope="admin")
        with server(redis_url, prefix) as (url, pid):
            asyncio.run(load(url, secret, pid, publish=True, seconds=1, concurrency=args.concurrency))  # warm-up

            def run(publish: bool) -> Run:
                pace = {"seconds": args.seconds, "concurrency": args.concurrency, "rate": args.rate}
                return asyncio.run(load(url, secret, pid, publish=publish, **pace))

            base, pubs = [], []
            for _ in range(args.repeat):
                base.append(run(publish=False))
                pubs.append(run(publish=True))
        bare: list[Run] = []
        if args.rate:
            with bare_server() as (bare_url, bare_pid):
                paced = {"seconds": args.seconds, "concurrency": 1, "rate": args.rate}
                bare = [asyncio.run(load(bare_url, "", bare_pid, publish=False, **paced)) for _ in range(args.repeat)]

    def med(values: list[float]) -> float:
        return statistics.median(values)

    pace = f"one connection at {args.rate:g}/s" if args.rate else f"concurrency {args.concurrency}"
    print(f"publish bench: {args.repeat} runs x {args.seconds:.0f}s, {pace}, server pinned: {bool(pin(0))}")
    rows = [("GET /healthz (baseline)", base), ("POST /api/items", pubs)]
    for name, runs in [*rows, *([("bare asyncio server", bare)] if bare else [])]:
        print(
            f"  {name:<24} {med([r.rate for r in runs]):8.0f} req/s   "
            f"p50 {med([r.pct(0.5) for r in runs]):6.1f} ms   p99 {med([r.pct(0.99) for r in runs]):6.1f} ms   "
            f"server CPU {med([r.server_cpu / max(1, r.requests) * 1000 for r in runs]):.2f} ms/request   "
            f"errors {sum(r.errors for r in runs)}   load generator CPU {med([r.load_cpu for r in runs]):.0%}"
        )
    ratio = med([r.rate for r in pubs]) / med([r.rate for r in base])
    print(f"  publish / baseline throughput ratio: {ratio:.2f}")
    if med([r.load_cpu for r in pubs]) > 0.9:
        print("  note: the load generator saturated its core; the server may be able to take more")


if __name__ == "__main__":
    main()
