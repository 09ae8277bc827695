"""Chaos: Ticker under faults, end to end, counting what is lost and what arrives twice.

    .venv/bin/python -m bench.chaos --duration 60

Starts Redis (append-only file, fsync on every write), several ``ticker serve``
processes behind a real nginx, and, all through nginx:

- a producer publishing items with ids it chooses, retrying each until it is acknowledged;
- WebSocket readers resuming by cursor after every disconnect;
- browser-style SSE readers, reconnecting as EventSource does: to their first URL
  (``?cursor=`` included) with ``Last-Event-ID`` added;
- consumer-group workers (``ticker tail --group``).

Meanwhile it SIGKILLs and restarts servers, cuts readers' connections, SIGKILLs
and restarts Redis (which comes back from its append-only file), and kills a
worker. Then it waits for every reader and the group to catch up and prints what
was acknowledged, lost and duplicated, and how long reconnects took (p50/p99).

It exits 1 if any acknowledged item is missing anywhere, or any reader got an
event twice or out of order. Consumer groups deliver at least once: changes a
killed worker had not acknowledged reach the group again ("redelivered"), which
is reported but is no failure. Only the public surfaces are used: the ``ticker``
command, HTTP and WebSocket.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from bench.staff import create_token

PREFIX = "chaos"
GROUP = "chaos"
CATCH_UP = 20.0
"""Seconds every reader and the group get, after the faults stop, to show every acknowledged item."""
BACKOFF_CAP = 2.0

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log error;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ""      "";
    }}
    upstream ticker {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://ticker;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_connect_timeout 1s;
            proxy_next_upstream error timeout;
            proxy_read_timeout 1h;
            proxy_buffering off;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cursor_key(cursor: str) -> tuple[int, int]:
    ms, _, seq = cursor.partition("-")
    return int(ms), int(seq)


class Process:
    """One child process that the run kills and starts again; its output goes to a log file."""

    def __init__(self, name: str, command: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.name, self.command, self.log, self.env = name, command, log, env
        self.popen: subprocess.Popen[bytes] | None = None
        self.due = 0.0
        """When the supervisor may start it again after a deliberate kill."""

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT, env=self.env)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@dataclass
class Reader:
    """What one reader saw: every event's cursor, the ids published, reconnect times."""

    name: str
    cursors: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)
    last: tuple[int, int] = (0, 0)
    duplicated: int = 0
    out_of_order: int = 0
    resets: int = 0
    reconnects: list[float] = field(default_factory=list)
    cut: Callable[[], object] | None = None
    """Cuts the reader's connection, if it has one."""

    @property
    def cursor(self) -> str | None:
        """The cursor to resume from: the last event's, or the last snapshot's."""
        return f"{self.last[0]}-{self.last[1]}" if self.last != (0, 0) else None

    def message(self, msg: dict[str, Any]) -> None:
        if msg.get("type") == "snapshot":
            self.ids.update(item["id"] for item in msg.get("items", []))
            self.last = max(self.last, cursor_key(msg["cursor"]))
        elif msg.get("type") == "reset":
            self.resets += 1
        elif msg.get("type") == "event":
            cursor = msg["cursor"]
            if cursor in self.cursors:
                self.duplicated += 1
                return
            if cursor_key(cursor) < self.last:
                self.out_of_order += 1
            self.cursors.add(cursor)
            self.last = max(self.last, cursor_key(cursor))
            if msg["op"] == "publish":
                self.ids.add(msg["item"]["id"])


async def backoff(attempt: int) -> None:
    await asyncio.sleep(random.uniform(0, min(BACKOFF_CAP, 0.1 * 2**attempt)))


async def ws_reader(reader: Reader, url: str, stop: asyncio.Event) -> None:
    """Reconnects with jittered backoff and its last cursor, as the widget does."""
    lost_at: float | None = None
    attempt = 0
    while not stop.is_set():
        query = f"?cursor={reader.cursor}" if reader.cursor else ""
        try:
            async with connect(url + query, open_timeout=5, ping_interval=5, ping_timeout=10, close_timeout=1) as ws:
                if lost_at is not None:
                    reader.reconnects.append(time.monotonic() - lost_at)
                    lost_at = None
                attempt = 0
                reader.cut = ws.transport.abort
                await ws_session(reader, ws, stop)
        except (OSError, WebSocketException, TimeoutError):
            pass
        reader.cut = None
        lost_at = time.monotonic() if lost_at is None else lost_at
        attempt += 1
        if not stop.is_set():
            await backoff(attempt)


async def ws_session(reader: Reader, ws: ClientConnection, stop: asyncio.Event) -> None:
    async for frame in ws:
        for line in str(frame).split("\n"):
            if line.strip():
                reader.message(json.loads(line))
        if stop.is_set():
            return


async def sse_reader(reader: Reader, base: str, stop: asyncio.Event) -> None:
    """A page with a browser's EventSource: the first page of items and its cursor, then the stream
    from that cursor, reconnecting to that first URL with ``Last-Event-ID`` added, ``retry:`` honoured."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(5, read=30)) as client:
        page = (await client.get(f"{base}/api/items?limit=200")).json()
        reader.message({"type": "snapshot", **page})  # what the page shows before the stream opens
        url = f"{base}/api/events?cursor={page['cursor']}"
        state = SseState()
        while not stop.is_set():
            session = asyncio.create_task(sse_session(reader, client, url, state))
            reader.cut = session.cancel
            await asyncio.wait([session])
            reader.cut = None
            state.lost_at = time.monotonic() if state.lost_at is None else state.lost_at
            if not stop.is_set():
                await asyncio.sleep(state.retry)


@dataclass
class SseState:
    """What an EventSource keeps across reconnects."""

    last_id: str | None = None
    retry: float = 1.0
    lost_at: float | None = None


async def sse_session(reader: Reader, client: httpx.AsyncClient, url: str, state: SseState) -> None:
    headers = {"Accept": "text/event-stream"}
    if state.last_id:
        headers["Last-Event-ID"] = state.last_id
    with contextlib.suppress(httpx.HTTPError):
        async with client.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                return
            if state.lost_at is not None:
                reader.reconnects.append(time.monotonic() - state.lost_at)
                state.lost_at = None
            event_id, data = None, []
            async for line in response.aiter_lines():
                if line.startswith("id:"):
                    event_id = line[3:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line.startswith("retry:"):
                    state.retry = int(line[6:].strip()) / 1000
                elif line == "" and data:
                    if event_id is not None:
                        state.last_id = event_id
                    reader.message(json.loads("\n".join(data)))
                    event_id, data = None, []


@dataclass
class Group:
    """What the consumer group's workers handled, by cursor."""

    handled: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)


async def worker_output(process: asyncio.subprocess.Process, group: Group) -> None:
    assert process.stdout is not None
    async for raw in process.stdout:
        event = json.loads(raw)
        group.handled.append(event["cursor"])
        if event["op"] == "publish":
            group.ids.add(event["item"]["id"])


@dataclass
class Producer:
    acknowledged: dict[str, str] = field(default_factory=dict)
    retries: int = 0


async def produce(producer: Producer, base: str, token: str, run_id: str, rate: float, stop: asyncio.Event) -> None:
    """Publishes with its own ids; each is retried (same id, same content) until acknowledged."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=5) as client:
        n = 0
        while not stop.is_set():
            started = time.monotonic()
            item_id = f"{run_id}-{n:06d}"
            body = {"id": item_id, "headline": f"Chaos run {run_id}, item {n}"}
            attempt = 0
            while True:
                try:
                    answer = await client.post("/api/items", json=body)
                    if answer.status_code in (200, 201):
                        producer.acknowledged[item_id] = answer.json()["cursor"]
                        break
                except httpx.HTTPError:
                    pass
                producer.retries += 1
                attempt += 1
                await backoff(attempt)
            n += 1
            await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))


class Chaos:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args, self.tmp = args, tmp
        self.ticker = str(Path(sys.executable).parent / "ticker")
        self.redis_port = free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}"
        self.env = {
            **os.environ,
            "TICKER_REDIS_URL": self.redis_url,
            "TICKER_PREFIX": PREFIX,
            "TICKER_WRITE_RATE": "1000",
            "TICKER_WRITE_BURST": "1000",
        }
        (tmp / "redis").mkdir()
        self.redis = Process(
            "redis",
            [
                shutil.which("redis-server") or "redis-server",
                *("--port", str(self.redis_port), "--bind", "127.0.0.1", "--dir", str(tmp / "redis")),
                *("--appendonly", "yes", "--appendfsync", "always", "--save", ""),
            ],
            tmp / "redis.log",
        )
        self.server_ports = [free_port() for _ in range(args.servers)]
        self.servers = [
            Process(
                f"server {i}",
                [self.ticker, "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "error"],
                tmp / f"server-{i}.log",
                self.env,
            )
            for i, port in enumerate(self.server_ports)
        ]
        self.nginx_port = free_port()
        self.base = f"http://127.0.0.1:{self.nginx_port}"
        self.workers: list[asyncio.subprocess.Process] = []
        self.worker_tasks: list[asyncio.Task[None]] = []
        self.group = Group()
        self.nginx: Process | None = None
        self.faults = {"server kills": 0, "client cuts": 0, "Redis kills": 0, "worker kills": 0}

    async def wait_until(self, check: Callable[[], Awaitable[bool]], what: str, within: float = 30) -> None:
        deadline = time.monotonic() + within
        while not await check():
            if time.monotonic() > deadline:
                raise SystemExit(f"chaos: {what} did not come up in {within:.0f}s (logs in {self.tmp})")
            await asyncio.sleep(0.05)

    async def redis_up(self) -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.redis_port)
        except OSError:
            return False
        writer.close()
        return True

    async def ready(self, port: int) -> bool:
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    async def start(self) -> str:
        self.redis.start()
        await self.wait_until(self.redis_up, "Redis")
        for server in self.servers:
            server.start()
        token = await asyncio.to_thread(create_token, self.env, name="chaos-producer")
        for port in self.server_ports:
            await self.wait_until(functools.partial(self.ready, port), f"the server on port {port}")
        nginx_dir = self.tmp / "nginx"
        nginx_dir.mkdir()
        upstreams = "\n".join(f"        server 127.0.0.1:{p} max_fails=0;" for p in self.server_ports)
        conf = nginx_dir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=nginx_dir, servers=upstreams, port=self.nginx_port))
        nginx_binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.nginx = Process("nginx", [nginx_binary, "-p", str(nginx_dir), "-c", str(conf)], self.tmp / "nginx.log")
        self.nginx.start()
        await self.wait_until(lambda: self.ready(self.nginx_port), "nginx")
        for i in range(self.args.workers):
            await self.start_worker(i)
        return token

    async def start_worker(self, i: int) -> None:
        process = await asyncio.create_subprocess_exec(
            self.ticker,
            *("tail", "--group", GROUP, "--consumer", f"worker-{i}", "--from", "oldest", "--json"),
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=(self.tmp / f"worker-{i}.log").open("ab"),
        )
        if i < len(self.workers):
            self.workers[i] = process
        else:
            self.workers.append(process)
        self.worker_tasks.append(asyncio.create_task(worker_output(process, self.group)))

    async def supervise(self, stop: asyncio.Event) -> None:
        """Starts again any server or worker that exited on its own (e.g. it started while Redis was down)."""
        while not stop.is_set():
            for server in self.servers:
                if not server.alive() and server.due <= time.monotonic():
                    server.start()
            for i, worker in enumerate(self.workers):
                if worker.returncode is not None:
                    await self.start_worker(i)
            await asyncio.sleep(0.2)

    async def faults_loop(self, readers: list[Reader], stop: asyncio.Event) -> None:
        duration = self.args.duration
        plan: list[tuple[float, str]] = []
        plan += [(duration * f, "server") for f in (0.15, 0.3, 0.45, 0.6, 0.75, 0.85)]
        plan += [(duration * f, "client") for f in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)]
        plan += [(duration * f, "redis") for f in (0.35, 0.7)]
        plan += [(duration * 0.5, "worker")]
        begun = time.monotonic()
        for at, fault in sorted(plan):
            await asyncio.sleep(max(0.0, begun + at - time.monotonic()))
            if stop.is_set():
                return
            if fault == "server":
                server = random.choice(self.servers)
                server.kill()
                server.due = time.monotonic() + 1
                self.faults["server kills"] += 1
            elif fault == "client":
                reader = random.choice(readers)
                if reader.cut is not None:
                    reader.cut()
                    self.faults["client cuts"] += 1
            elif fault == "redis":
                self.redis.kill()
                self.faults["Redis kills"] += 1
                await asyncio.sleep(1)
                self.redis.start()
            elif fault == "worker":
                worker = random.choice(self.workers)
                if worker.returncode is None:
                    worker.kill()
                    await worker.wait()
                    self.faults["worker kills"] += 1

    def stop(self) -> None:
        """Everything is killed outright: the figures are in, and a graceful stop only costs time."""
        for worker in self.workers:
            if worker.returncode is None:
                worker.kill()
        for process in [*self.servers, *([self.nginx] if self.nginx else []), self.redis]:
            process.kill()


async def run(args: argparse.Namespace, tmp: Path) -> int:
    chaos = Chaos(args, tmp)
    try:
        began = time.monotonic()
        token = await chaos.start()
        print(f"chaos: started in {time.monotonic() - began:.1f} s")
        ws_url = chaos.base.replace("http", "ws", 1) + "/ws"
        ws_readers = [Reader(f"ws-{i}") for i in range(args.ws)]
        sse_readers = [Reader(f"sse-{i}") for i in range(args.sse)]
        stop_readers, stop_faults, stop_producer = asyncio.Event(), asyncio.Event(), asyncio.Event()
        tasks = [asyncio.create_task(ws_reader(r, ws_url, stop_readers)) for r in ws_readers]
        tasks += [asyncio.create_task(sse_reader(r, chaos.base, stop_readers)) for r in sse_readers]
        supervisor = asyncio.create_task(chaos.supervise(stop_readers))
        producer = Producer()
        producing = asyncio.create_task(
            produce(producer, chaos.base, token, f"c{random.randrange(10**6):06d}", args.rate, stop_producer)
        )
        faults = asyncio.create_task(chaos.faults_loop([*ws_readers, *sse_readers], stop_faults))
        started = time.monotonic()
        await asyncio.sleep(args.duration)
        stop_faults.set()
        stop_producer.set()
        await faults
        await producing
        acked = set(producer.acknowledged)

        def caught_up() -> bool:
            return all(acked <= r.ids for r in [*ws_readers, *sse_readers]) and acked <= chaos.group.ids

        for _ in range(int(CATCH_UP / 0.2)):
            if caught_up():
                break
            await asyncio.sleep(0.2)
        print(f"chaos: caught up {time.monotonic() - started - args.duration:.1f} s after the faults stopped")
        stop_readers.set()
        await supervisor
        for reader in [*ws_readers, *sse_readers]:
            if reader.cut is not None:
                reader.cut()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return report(args, chaos, producer, ws_readers, sse_readers)
    finally:
        chaos.stop()


def report(args: argparse.Namespace, chaos: Chaos, producer: Producer, ws: list[Reader], sse: list[Reader]) -> int:
    acked = set(producer.acknowledged)
    faults = ", ".join(f"{n} {what}" for what, n in chaos.faults.items())
    print(f"chaos: {args.duration:.0f} s, {args.servers} servers behind nginx, {args.ws} WebSocket and {args.sse} SSE")
    print(f"       readers, {args.workers} consumer-group workers; faults: {faults}")
    print(f"acknowledged  {len(acked)} items ({producer.retries} retried requests)")
    failed = False
    for kind, readers in (("websocket", ws), ("sse", sse)):
        lost = sum(len(acked - r.ids) for r in readers)
        duplicated = sum(r.duplicated for r in readers)
        disorder = sum(r.out_of_order for r in readers)
        resets = sum(r.resets for r in readers)
        times = [t * 1000 for r in readers for t in r.reconnects]
        failed |= bool(lost or duplicated or disorder)
        for r in readers:
            if acked - r.ids:
                missing = sorted(acked - r.ids)
                cursors = [producer.acknowledged[i] for i in missing[:5]]
                print(f"  {r.name} never got {len(missing)}: {', '.join(missing[:5])} (cursors {', '.join(cursors)})")
        print(
            f"{kind:<13} lost {lost}, duplicated {duplicated}, out of order {disorder}, resets {resets}; "
            f"{len(times)} reconnects, p50 {percentile(times, 0.5):.0f} ms, p99 {percentile(times, 0.99):.0f} ms"
        )
    group_lost = len(acked - chaos.group.ids)
    redelivered = len(chaos.group.handled) - len(set(chaos.group.handled))
    failed |= bool(group_lost)
    print(f"{'group':<13} lost {group_lost}, redelivered {redelivered} (at least once)")
    print(
        "chaos: FAILED: something acknowledged was lost or repeated" if failed else "chaos: nothing lost, nothing twice"
    )
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60, help="seconds of faults (default 60)")
    parser.add_argument("--servers", type=int, default=3, help="ticker serve processes (default 3)")
    parser.add_argument("--ws", type=int, default=4, help="WebSocket readers (default 4)")
    parser.add_argument("--sse", type=int, default=4, help="SSE readers (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="consumer-group workers (default 2)")
    parser.add_argument("--rate", type=float, default=20, help="items published per second (default 20)")
    parser.add_argument("--keep", action="store_true", help="keep the logs' folder")
    args = parser.parse_args()
    if not shutil.which("nginx") and not Path("/usr/sbin/nginx").exists():
        raise SystemExit("chaos: needs nginx and redis-server (Debian: apt-get install nginx-light redis-server)")
    tmp = Path(tempfile.mkdtemp(prefix="ticker-chaos-"))
    try:
        code = asyncio.run(run(args, tmp))
    finally:
        if args.keep:
            print(f"chaos: logs in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
