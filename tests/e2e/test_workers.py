"""``ticker serve --workers 2`` as a real process: both workers serve, one is killed and replaced
without the other's readers noticing, ``/metrics`` sums over the workers, SIGTERM drains both."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import httpx

from tests.clients import LiveReader, ServerProcess, wait_async
from tests.conftest import make_token
from tests.support import units
from ticker.auth import Scope
from ticker.config import Settings

HEADER = "x-ticker-worker"


def metric(text: str, name: str) -> float:
    """One sample's value from the text format (0 when absent)."""
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def sample(base: str, path: str, tries: int = 4) -> dict[int, httpx.Response]:
    """``tries`` requests on fresh connections; the 200 answers by the pid of the worker that gave them."""
    seen: dict[int, httpx.Response] = {}
    no_reuse = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=units(5), limits=no_reuse) as http:
        for _ in range(tries):
            try:
                answer = await http.get(path)
            except httpx.HTTPError:
                continue
            if answer.status_code == 200:
                seen[int(answer.headers[HEADER])] = answer
    return seen


async def answering(base: str, path: str, want: set[int] | int, *, within: float = 30) -> dict[int, httpx.Response]:
    """Sample ``path`` until the workers ``want`` (pids, or how many) all answered 200; each one's last answer."""
    seen: dict[int, httpx.Response] = {}
    deadline = asyncio.get_running_loop().time() + units(within)
    while not (want <= set(seen) if isinstance(want, set) else len(seen) >= want):
        assert asyncio.get_running_loop().time() < deadline, f"only workers {sorted(seen)} answered {path}"
        seen.update(await sample(base, path))
    return seen


def test_two_workers_share_the_port_survive_a_kill_and_drain(settings: Settings, tmp_path: Path) -> None:
    assert settings.redis_url
    token = make_token(settings, "workers", Scope.ADMIN)
    server = ServerProcess(settings.redis_url, settings.prefix, tmp_path, TICKER_WORKERS="2")
    try:
        asyncio.run(scenario(server, token))
        server.terminate()
        assert server.process.wait(units(30)) == 0, server.log.read_text()
    finally:
        server.stop()
    log = server.log.read_text()
    assert "Traceback" not in log, log


async def scenario(server: ServerProcess, token: str) -> None:
    staff = httpx.AsyncClient(base_url=server.url, timeout=units(10), headers={"Authorization": f"Bearer {token}"})
    cursors: list[str] = []

    async def publish(count: int) -> None:
        for _ in range(count):
            answer = await staff.post("/api/items", json={"headline": f"Headline {len(cursors) + 1}"})
            assert answer.status_code == 201, answer.text
            cursors.append(answer.json()["cursor"])

    # Both workers start and answer on the one port.
    pids = set(await answering(server.url, "/readyz", 2))
    assert len(pids) == 2 and server.process.pid not in pids

    # Readers until each worker holds at least three.
    readers: dict[int, list[LiveReader]] = {pid: [] for pid in pids}
    while min(len(group) for group in readers.values()) < 3:
        assert sum(len(group) for group in readers.values()) < 60, "the kernel never spread readers over both"
        reader = LiveReader(server.ws_url)
        await reader.connect()
        await reader.wait_started()
        readers[int(reader.ws.response.headers[HEADER])].append(reader)
    everyone = [reader for group in readers.values() for reader in group]

    await publish(5)
    for reader in everyone:
        await wait_async(lambda r=reader: len(r.events) >= 5, what="every event on every reader")  # type: ignore[misc]
        assert reader.cursors() == cursors

    metrics = await answering(server.url, "/metrics", pids)
    for answer in metrics.values():
        assert metric(answer.text, 'ticker_connections{transport="ws"}') == len(everyone), answer.text
        assert metric(answer.text, "ticker_changes_total") == 2 * 5, "each worker's reader read each change"

    # kill -9 one worker: its readers drop, the other's keep their connection; a new worker takes its place.
    victim, survivor = sorted(pids)
    os.kill(victim, signal.SIGKILL)
    for reader in readers[victim]:
        await wait_async(lambda r=reader: r.close_code is not None, what="the killed worker's readers to drop")  # type: ignore[misc]
    deadline = asyncio.get_running_loop().time() + units(30)
    replacement = None
    while replacement is None:
        assert asyncio.get_running_loop().time() < deadline, "no worker replaced the killed one"
        fresh = set(await sample(server.url, "/readyz")) - {victim, survivor}
        replacement = fresh.pop() if fresh else None

    for reader in readers[victim]:
        await reader.connect()  # resumes from its cursor on whichever worker takes it
    await publish(3)
    for reader in everyone:
        await wait_async(lambda r=reader: len(r.events) >= 8, what="the later events on every reader")  # type: ignore[misc]
        assert reader.cursors() == cursors, "every event once, in order"
    for reader in readers[survivor]:
        assert reader.close_code is None and reader.kinds.count("snapshot") == 1, "kept its connection"

    # The sums: the dead worker's counters stay in, its connections leave with it.
    async def summed() -> bool:
        answers = await answering(server.url, "/metrics", {survivor, replacement})
        return all(
            metric(a.text, 'ticker_connections{transport="ws"}') == len(everyone)
            and metric(a.text, "ticker_changes_total") == 5 + 8 + 3
            for a in answers.values()
        )

    deadline = asyncio.get_running_loop().time() + units(20)
    while not await summed():
        assert asyncio.get_running_loop().time() < deadline, "metrics never summed over the workers"
    await staff.aclose()

    # SIGTERM drains both workers: every reader is closed as on a server shutdown.
    server.terminate()
    for reader in everyone:
        await wait_async(lambda r=reader: r.close_code is not None, what="every reader closed on SIGTERM")  # type: ignore[misc]
        assert reader.close_code in (1001, 1012), reader.close_code
