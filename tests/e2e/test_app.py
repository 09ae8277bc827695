"""The log of a real ``ticker serve`` process: a client's mistakes are one line, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from tests.conftest import make_token
from tests.support import units, wait_for
from ticker.auth import Scope
from ticker.config import Settings


class ServeProcess:
    """``python -m ticker.cli serve`` on a free port, its stderr collected line by line."""

    def __init__(self, settings: Settings) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKER_")}
        env.update({"TICKER_REDIS_URL": str(settings.redis_url), "TICKER_PREFIX": settings.prefix})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ticker.cli", "serve", "--port", "0", "--log-level", "info"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.log: list[str] = []
        assert self.proc.stdout and self.proc.stderr
        banner = self.proc.stdout.readline()
        self.reader = threading.Thread(target=self._collect, daemon=True)
        self.reader.start()
        assert banner.startswith("Ticker serving on http://"), banner
        host, port = banner.split()[3].removeprefix("http://").rsplit(":", 1)
        self.address = (host, int(port))

    def _collect(self) -> None:
        assert self.proc.stderr
        for line in self.proc.stderr:
            self.log.append(line)

    def logged(self, fragment: str) -> bool:
        return any(fragment in line for line in list(self.log))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(units(30))
        self.reader.join(units(10))
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe:
                pipe.close()


@pytest.fixture
def serve(settings: Settings) -> Iterator[ServeProcess]:
    running = ServeProcess(settings)
    yield running
    running.stop()


def test_a_client_gone_mid_body_is_one_log_line(serve: ServeProcess, settings: Settings) -> None:
    token = make_token(settings, "desk", Scope.PUBLISH)
    head = (
        "POST /api/items HTTP/1.1\r\nHost: ticker.test\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: 4000\r\n\r\n"
    )
    line = "closed the connection before sending the whole body"
    with socket.create_connection(serve.address, timeout=units(10)) as sock:
        sock.sendall(head.encode() + b'{"headline": "cut off in the mid')
    wait_for(lambda: serve.logged(line) or serve.logged("Traceback"), what="the cut request in the log")
    assert not serve.logged("Traceback"), "".join(serve.log)
