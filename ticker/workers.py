"""``ticker serve --workers N``: N server processes on one port, and the supervisor that keeps them.

The supervisor binds the port and starts the embedded Redis (when no URL is
configured) once, then spawns N workers that inherit the listening socket; the
kernel spreads new connections among them. Each worker is a whole server
process (its own stream reader, hub and connections), so a worker that dies
takes only its own clients with it: the supervisor starts another in its
place and the others' readers never notice. SIGTERM (or Ctrl+C) is passed to
every worker, which closes its clients as a lone server would (1001) and
exits; the supervisor exits 0 once all have.

Workers are forked from a fork server (multiprocessing's ``forkserver``), not
from the supervisor: the fork server is a fresh interpreter that imports the
application once, with ``PROMETHEUS_MULTIPROC_DIR`` already in its environment
(see :mod:`ticker.metrics`), so each worker starts without importing anything
again and without any state of the supervisor's. Each worker names itself in
an ``x-ticker-worker`` header (its pid) on every response and handshake.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticker import process
from ticker.config import Settings

log = logging.getLogger("ticker.workers")

PRELOAD = ["ticker.workers", "ticker.app", "ticker.server"]
"""What the fork server imports once, so a worker (or its replacement) starts at once."""
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's switch to multiprocess mode; read by the library in each worker."""
WORKER_HEADER = b"x-ticker-worker"
STEADY_UPTIME = 5.0
"""A worker that ran this long before dying is restarted at once; a quicker death waits."""
MIN_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 10.0
STOP_MARGIN = 10.0
"""Seconds past the shutdown grace a stopping worker gets before it is killed."""


class WorkerHeader:
    """Adds ``x-ticker-worker: <pid>`` to every HTTP response and WebSocket handshake."""

    def __init__(self, app: ASGIApp, pid: int) -> None:
        self.app = app
        self.value = str(pid).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_named(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message = {**message, "headers": [*message.get("headers", []), (WORKER_HEADER, self.value)]}
            await send(message)

        await self.app(scope, receive, send_named)


def work(settings: Settings, sock: socket.socket, log_level: str, lifeline: Connection) -> None:
    """One worker process: a whole server on the inherited socket until SIGTERM or its supervisor is gone."""
    # Ctrl+C reaches the whole process group; the supervisor alone decides, and sends SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    process.configure_logging(logging.INFO)
    from ticker.app import create_app

    app = create_app(settings)
    app.add_middleware(WorkerHeader, pid=os.getpid())
    server = process.build_server(app, settings, log_level=log_level, signals=(signal.SIGTERM,))

    def watch_supervisor() -> None:
        with contextlib.suppress(EOFError, OSError):
            lifeline.recv()  # the supervisor never sends: this returns when its end closes
        server.should_exit = True

    threading.Thread(target=watch_supervisor, name="ticker-lifeline", daemon=True).start()
    server.run(sockets=[sock])


@dataclass
class Worker:
    """One slot of the pool: its process (if running), when it started, when to restart it."""

    index: int
    process: BaseProcess | None = None
    lifeline: Connection | None = None
    started: float = 0.0
    delay: float = MIN_RESTART_DELAY
    restart_at: float | None = None


class Supervisor:
    """Starts ``settings.workers`` workers on ``sock``, restarts any that dies, stops them all on a signal."""

    def __init__(self, settings: Settings, sock: socket.socket, *, log_level: str) -> None:
        self.settings = settings
        self.sock = sock
        self.log_level = log_level
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(PRELOAD)
        self.pool = [Worker(index) for index in range(settings.workers)]
        self.stopping = False
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_write.setblocking(False)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        with contextlib.suppress(OSError):
            self._wake_write.send(b"\0")

    def _start(self, worker: Worker) -> None:
        receive, keep = self.context.Pipe(duplex=False)
        child = self.context.Process(
            target=work,
            args=(self.settings, self.sock, self.log_level, receive),
            name=f"ticker-worker-{worker.index + 1}",
        )
        child.start()
        receive.close()
        worker.process, worker.lifeline, worker.started, worker.restart_at = child, keep, time.monotonic(), None
        log.info("worker %d started (pid %d)", worker.index + 1, child.pid)

    def _reap(self, worker: Worker) -> None:
        """Forget a dead worker; schedule its replacement (later, when it died young)."""
        child = worker.process
        assert child is not None and worker.lifeline is not None
        child.join()
        worker.lifeline.close()
        worker.process = worker.lifeline = None
        assert child.pid is not None
        self.forget_metrics(child.pid)
        uptime = time.monotonic() - worker.started
        if uptime >= STEADY_UPTIME:
            wait_for, worker.delay = 0.0, MIN_RESTART_DELAY
        else:
            wait_for, worker.delay = worker.delay, min(MAX_RESTART_DELAY, worker.delay * 2)
        worker.restart_at = time.monotonic() + wait_for
        log.warning(
            "worker %d (pid %d) exited with code %s after %.0f s; restarting it in %.1f s",
            worker.index + 1,
            child.pid,
            child.exitcode,
            uptime,
            wait_for,
        )

    def forget_metrics(self, pid: int) -> None:
        """Drop a dead worker's live gauges; its counters stay in the sums."""
        if self.settings.metrics_dir is not None:
            from prometheus_client.multiprocess import mark_process_dead

            mark_process_dead(pid, str(self.settings.metrics_dir))  # type: ignore[no-untyped-call]

    def run(self) -> None:
        """Run the pool until SIGINT or SIGTERM, then drain every worker."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for worker in self.pool:
                self._start(worker)
            while not self.stopping:
                now = time.monotonic()
                for worker in self.pool:
                    if worker.process is None and worker.restart_at is not None and worker.restart_at <= now:
                        self._start(worker)
                due = [w.restart_at for w in self.pool if w.process is None and w.restart_at is not None]
                timeout = max(0.0, min(due) - now) if due else None
                sentinels = {w.process.sentinel: w for w in self.pool if w.process is not None}
                for ready in wait([self._wake_read, *sentinels], timeout):
                    if ready in sentinels and not self.stopping:
                        self._reap(sentinels[ready])
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._wake_read.close()
            self._wake_write.close()

    def _stop_all(self) -> None:
        running = [w for w in self.pool if w.process is not None]
        for worker in running:
            assert worker.process is not None
            worker.process.terminate()
        deadline = time.monotonic() + self.settings.shutdown_grace + STOP_MARGIN
        for worker in running:
            child = worker.process
            assert child is not None and worker.lifeline is not None
            child.join(max(0.0, deadline - time.monotonic()))
            if child.exitcode is None:
                log.warning("worker %d (pid %d) did not stop in time; killing it", worker.index + 1, child.pid)
                child.kill()
                child.join()
            worker.lifeline.close()
            worker.process = worker.lifeline = None


def serve(settings: Settings, *, banner: process.Banner, log_level: str = "info") -> int:
    """``ticker serve --workers N``: bind once, start Redis once, run the pool until a signal."""
    from ticker.server import check_versions

    check_versions()  # once here, rather than in every worker the supervisor would restart for ever
    sock = process.bind(settings.host, settings.port)
    with process.redis_url(settings) as url, tempfile.TemporaryDirectory(prefix="ticker-metrics-") as shared:
        # The fork server (and so every worker) inherits the environment: prometheus_client reads this.
        os.environ[METRICS_DIR_VARIABLE] = shared
        settings = settings.with_overrides(redis_url=url, metrics_dir=Path(shared))
        print(banner(process.base_url(sock), url), flush=True)
        Supervisor(settings, sock, log_level=log_level).run()
    sock.close()
    return 0
