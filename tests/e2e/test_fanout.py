"""Fan-out across real server processes, a Redis process that goes away, and shutdown."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import httpx

from tests.clients import LiveReader, ServerProcess, wait_async
from tests.conftest import make_token
from tests.support import units, wait_for
from ticker.auth import Scope
from ticker.config import Settings
from ticker.embedded import EmbeddedRedis
from ticker.models import ItemCreate
from ticker.store import Store, connect


def key(cursor: str) -> tuple[int, int]:
    ms, seq = cursor.split("-")
    return int(ms), int(seq)


async def publish(http: httpx.AsyncClient, headline: str) -> str:
    answer = await http.post("/api/items", json={"headline": headline})
    assert answer.status_code == 201, answer.text
    cursor: str = answer.json()["cursor"]
    return cursor


def assert_gapless(reader: LiveReader, published: list[str]) -> None:
    assert reader.start is not None
    expected = [c for c in published if key(c) > key(reader.start)]
    assert reader.cursors() == expected, f"{len(reader.cursors())} events, expected {len(expected)}"


def test_200_clients_across_two_processes_with_20_percent_cut_and_moved(settings: Settings, tmp_path: Path) -> None:
    assert settings.redis_url
    token = make_token(settings, "desk", Scope.ADMIN)
    servers = [ServerProcess(settings.redis_url, settings.prefix, tmp_path) for _ in range(2)]
    try:
        wait_for(lambda: all(s.ready() for s in servers), timeout=30, what="both servers ready")

        async def run() -> None:
            readers = [LiveReader(servers[i % 2].ws_url) for i in range(200)]
            await asyncio.gather(*(r.connect() for r in readers))
            await asyncio.gather(*(r.wait_started() for r in readers))
            published: list[str] = []
            async with httpx.AsyncClient(
                base_url=servers[0].url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=units(10),
            ) as http:
                for i in range(20):
                    published.append(await publish(http, f"before the cut {i}"))
                cut = random.Random(7).sample(range(200), 40)
                await asyncio.gather(*(readers[i].cut() for i in cut))
                publishing = asyncio.create_task(publish_many(http, published, 20, "while they are away"))
                await asyncio.gather(*(readers[i].connect(servers[(i + 1) % 2].ws_url) for i in cut))
                await publishing
                for i in range(20):
                    published.append(await publish(http, f"after {i}"))
            await wait_async(
                lambda: all(r.cursor == published[-1] for r in readers),
                within=60,
                what="every reader caught up",
            )
            for reader in readers:
                assert_gapless(reader, published)
            assert all(readers[i].kinds.count("snapshot") == 1 for i in cut)
            await asyncio.gather(*(r.close() for r in readers))

        asyncio.run(run())
    finally:
        for server in servers:
            server.stop()


async def publish_many(http: httpx.AsyncClient, into: list[str], count: int, headline: str) -> None:
    for i in range(count):
        into.append(await publish(http, f"{headline} {i}"))


def test_redis_stopped_and_restarted_under_live_clients(tmp_path: Path) -> None:
    redis = EmbeddedRedis(tmp_path / "redis")
    url = redis.start()
    prefix = "outage"
    settings = Settings(redis_url=url, prefix=prefix, state_dir=tmp_path / "state")
    token = make_token(settings, "desk", Scope.ADMIN)
    server = ServerProcess(url, prefix, tmp_path, TICKER_READER_BLOCK_MS="500", TICKER_WRITE_RATE="1000")
    try:
        wait_for(server.ready, timeout=30, what="server ready")

        async def direct(headline: str) -> str:
            client = connect(url)
            try:
                store = Store(client, prefix=prefix)
                return (await store.publish(ItemCreate(headline=headline), actor="direct")).cursor
            finally:
                await client.aclose()

        async def run() -> None:
            readers = [LiveReader(server.ws_url) for _ in range(20)]
            await asyncio.gather(*(r.connect() for r in readers))
            await asyncio.gather(*(r.wait_started() for r in readers))
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=units(10)) as http:
                published = [await publish(http, f"before {i}") for i in range(5)]
                await wait_async(lambda: all(r.cursor == published[-1] for r in readers))

                await asyncio.to_thread(redis.stop)
                await wait_async(lambda: b"not ready" in httpx.get(f"{server.url}/readyz").content)
                refused = await http.post("/api/items", json={"headline": "while down"})
                assert refused.status_code == 503 and refused.headers["retry-after"]
                assert refused.json()["error"]["code"] == "unavailable"
                late = LiveReader(server.ws_url)
                await late.connect()
                await late.wait_started()
                assert late.start == published[-1]

                assert await asyncio.to_thread(redis.start) == url
                # Changes made while the server's reader is still reconnecting.
                published += [await direct(f"meanwhile {i}") for i in range(3)]
                await wait_async(server.ready, within=30, what="ready again")
                published += [await publish(http, f"after {i}") for i in range(5)]
            everyone = [*readers, late]
            await wait_async(lambda: all(r.cursor == published[-1] for r in everyone), what="catching up")
            for reader in everyone:
                assert_gapless(reader, published)
                assert reader.close_code is None
            await asyncio.gather(*(r.close() for r in everyone))

        asyncio.run(run())
        assert "stream reader" in server.log.read_text()
    finally:
        server.stop()
        redis.stop()


def test_sigterm_closes_clients_so_they_reconnect(settings: Settings, tmp_path: Path) -> None:
    assert settings.redis_url
    server = ServerProcess(settings.redis_url, settings.prefix, tmp_path)

    async def run() -> None:
        readers = [LiveReader(server.ws_url) for _ in range(10)]
        await asyncio.gather(*(r.connect() for r in readers))
        await asyncio.gather(*(r.wait_started() for r in readers))
        http = httpx.AsyncClient(base_url=server.url, timeout=units(30))
        async with http, http.stream("GET", "/api/events") as stream:  # an open SSE stream
            server.terminate()
            stopped = time.monotonic()
            async for _ in stream.aiter_bytes():
                pass
        await wait_async(lambda: all(r.task is not None and r.task.done() for r in readers))
        assert {r.close_code for r in readers} <= {1001, 1012}, [r.close_code for r in readers]
        assert time.monotonic() - stopped < units(4)  # the SSE stream was ended, not waited for

    try:
        wait_for(server.ready, timeout=30, what="server ready")
        asyncio.run(run())
        assert server.process.wait(units(30)) == 0
    finally:
        server.stop()
