"""The README's tour, run as written: its shell and Python snippets against a real ``ticker serve``.

The one liberty taken is the port: the tour's 8000 becomes a free port, so the test never
collides with a server already running. ``scripts/install`` is not rerun (the test runs
inside the environment it made). HOME is a fresh folder, so the embedded Redis, its data
and the URL the tour exports are the test's own.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.support import units, wait_for

ROOT = Path(__file__).resolve().parents[2]
TOUR_PORT = "8000"


def tour() -> list[tuple[str, str]]:
    """(language, code) of every fenced block in the README's tour, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## A short tour", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```(\w+)\n(.*?)^```", section, re.MULTILINE | re.DOTALL)


def collect(stream: IO[str], lines: list[str]) -> None:
    for line in stream:
        lines.append(line)


def free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


@pytest.fixture
def home() -> Iterator[Path]:
    """A short HOME (the embedded Redis listens on a Unix socket inside it)."""
    folder = Path(tempfile.mkdtemp(prefix="rd"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_the_tour_runs_as_written(home: Path) -> None:
    blocks = tour()
    languages = [language for language, _ in blocks]
    assert languages == ["sh", "text", "sh", "sh", "python", "html"], languages
    (_, start), (_, printed), (_, api), (_, cli), (_, python), (_, embed) = blocks
    port = free_port()

    def as_run(code: str) -> str:
        return code.replace(f"localhost:{TOUR_PORT}", f"localhost:{port}").replace(
            f"--port {TOUR_PORT}", f"--port {port}"
        )

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKER_", "XDG_"))}
    env["HOME"] = str(home)
    serve_line = next(line for line in start.splitlines() if " serve " in line)
    assert start.splitlines()[0].startswith("scripts/install")
    server = subprocess.Popen(
        ["bash", "-c", "exec " + as_run(serve_line).split("#")[0]],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        banner = [server.stdout.readline().rstrip("\n") for _ in printed.strip().splitlines()]
        redis_url = f"unix://{home}/.local/state/ticker/redis.sock"
        assert banner[0] == f"Ticker serving on http://127.0.0.1:{port} (Redis: {redis_url})", banner
        for shown, written in zip(banner, printed.strip().splitlines(), strict=True):
            assert shown.split(":")[0] == written.split(":")[0], (shown, written)
        assert "/desk" in "".join(banner) and "ticker token create" in "".join(banner)
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200, what="the tour's server")

        # The second terminal: the API by curl, then the CLI; it keeps what it exported for Python.
        saved = home / "exported"
        keep = f'printf "%s\\n" "$TOKEN" "$TICKER_REDIS_URL" > {saved}'
        script = f"set -euo pipefail\n{as_run(api)}\n{as_run(cli)}\n{keep}\n"
        terminal = subprocess.run(
            ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=units(120), check=False
        )
        assert terminal.returncode == 0, terminal.stdout + terminal.stderr
        assert '"error"' not in terminal.stdout, terminal.stdout
        assert '"version":4,"headline":"Storm closes the A1"' in terminal.stdout, terminal.stdout
        assert "retracted budget v4" in terminal.stdout and "desk\tadmin" in terminal.stdout, terminal.stdout
        token, exported = saved.read_text().split()
        assert exported == redis_url, "the tour exports the Redis URL the server printed"

        # The token line again: a second run replaces the token instead of failing.
        again = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + api.splitlines()[0] + '\necho "$TOKEN"'],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=units(60),
            check=False,
        )
        assert again.returncode == 0 and again.stdout.startswith("tk_"), again.stderr
        token = again.stdout.strip()

        # Python, in that terminal: the client writes, the consumer prints every change until Ctrl+C.
        program = home / "tour.py"
        program.write_text(as_run(python))
        consumer = subprocess.Popen(
            [sys.executable, str(program)],
            cwd=home,
            env={**env, "TOKEN": token, "TICKER_REDIS_URL": exported},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert consumer.stdout is not None and consumer.stderr is not None
        seen: list[str] = []
        # A reader thread, so the deadline holds even if the consumer prints nothing at all.
        reader = threading.Thread(target=collect, args=(consumer.stdout, seen), daemon=True)
        reader.start()
        try:
            wait_for(
                lambda: "update Storm closes the A1 road\n" in seen,
                timeout=60,
                what="the consumer to print the client's edit",
            )
            assert "publish Storm closes the coastal road\n" in seen, seen
        finally:
            consumer.send_signal(signal.SIGINT)
            consumer.wait(units(30))
            reader.join(units(10))
            errors = consumer.stderr.read()
            consumer.stdout.close()
            consumer.stderr.close()
        assert consumer.returncode == 0, errors
    finally:
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=units(30))
    assert server.returncode == 0 and "Traceback" not in errors, errors

    assert "TICKER_ALLOWED_ORIGINS" in (ROOT / "README.md").read_text().split("```html")[0].rsplit("```", 1)[1]
    assert 'src="https://ticker.example/static/ticker.js"' in embed and "data-ticker=" in embed
