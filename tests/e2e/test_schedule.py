"""Two real server processes: scheduled items published once, on time, whoever is up; readers counted across both."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.clients import LiveReader, ServerProcess, wait_async
from tests.conftest import make_token
from tests.support import run, units, wait_for
from ticker.auth import Scope
from ticker.config import Settings
from ticker.store import Store, connect


def publishes(settings: Settings, item_id: str) -> int:
    """How many publish entries the stream holds for ``item_id``."""

    async def count() -> int:
        assert settings.redis_url
        client = connect(settings.redis_url)
        try:
            store = Store(client, prefix=settings.prefix)
            return sum(1 for c in await store.changes_after("0-0") if c.id == item_id and c.op == "publish")
        finally:
            await client.aclose()

    return run(count())


def readers(url: str, token: str) -> dict[str, int]:
    answer = httpx.get(f"{url}/api/readers", headers={"Authorization": f"Bearer {token}"}, timeout=units(10))
    channels: dict[str, int] = answer.json()["channels"]
    return channels


def schedule(url: str, token: str, item_id: str, at: datetime) -> None:
    body = {"id": item_id, "headline": f"Scheduled {item_id}", "publish_at": at.isoformat()}
    answer = httpx.post(f"{url}/api/items", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=units(10))
    assert answer.status_code == 201 and answer.json()["scheduled"] is True, answer.text


def test_the_accepting_process_stops_and_the_other_publishes_once_on_time(settings: Settings, tmp_path: Path) -> None:
    assert settings.redis_url
    token = make_token(settings, "night-desk", Scope.PUBLISH)
    a, b = (ServerProcess(settings.redis_url, settings.prefix, tmp_path) for _ in range(2))
    try:
        wait_for(lambda: a.ready() and b.ready(), timeout=30, what="both servers ready")

        async def watch() -> tuple[LiveReader, LiveReader, datetime]:
            on_a, on_b = LiveReader(a.ws_url), LiveReader(b.ws_url)
            await asyncio.gather(on_a.connect(), on_b.connect())
            await asyncio.gather(on_a.wait_started(), on_b.wait_started())
            # Each process reports its own readers; the count is their sum, whichever process answers.
            await wait_async(lambda: readers(b.url, token) == {"*": 2}, what="readers of both processes counted")
            at = datetime.now(UTC) + timedelta(seconds=units(3))
            schedule(a.url, token, "at-nine", at)
            await asyncio.sleep(0)
            a.stop()  # the process that accepted it is gone before the time
            await wait_async(lambda: on_a.close_code is not None, what="reader of the stopped process cut")
            assert on_a.events == [] and on_b.events == []
            await on_a.connect(b.ws_url)  # its reader resumes by cursor on the other process
            await wait_async(lambda: on_a.events and on_b.events, within=20, what="the scheduled item published")
            await asyncio.sleep(units(0.5))  # a second publish would arrive by now
            await asyncio.gather(on_a.close(), on_b.close())
            return on_a, on_b, at

        on_a, on_b, at = asyncio.run(watch())
        for reader in (on_a, on_b):
            assert [(e["op"], e["item"]["id"]) for e in reader.events] == [("publish", "at-nine")]
        published = datetime.fromisoformat(on_b.events[0]["item"]["published_at"])
        assert published >= at - timedelta(milliseconds=1)
        assert on_b.events[0]["ts"] >= at.timestamp() * 1000 - 1
        assert publishes(settings, "at-nine") == 1

        # Nobody is up at the time: the next process to start publishes it at once.
        schedule(b.url, token, "missed", datetime.now(UTC) + timedelta(seconds=units(1)))
        b.stop()
        missed = datetime.now(UTC) + timedelta(seconds=units(1))
        while datetime.now(UTC) < missed:
            time.sleep(0.05)
        assert publishes(settings, "missed") == 0
        late = ServerProcess(settings.redis_url, settings.prefix, tmp_path)
        try:
            wait_for(lambda: httpx.get(f"{late.url}/api/items/missed").status_code == 200, what="published on start")
        finally:
            late.stop()
        assert publishes(settings, "missed") == 1
    finally:
        a.stop()
        b.stop()
