"""Fixtures: a real Redis (embedded, or TICKER_TEST_REDIS_URL), a key prefix per test, a real server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ServerThread, run
from ticker.auth import Scope, create_token
from ticker.config import Settings
from ticker.embedded import EmbeddedRedis
from ticker.store import Store, connect


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("TICKER_TEST_REDIS_URL")
    if url:
        yield url
        return
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as embedded_url:
        yield embedded_url


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    yield name

    async def clear() -> None:
        client = connect(redis_url)
        try:
            await Store(client, prefix=name).clear()
        finally:
            await client.aclose()

    run(clear())


@pytest.fixture
def settings(redis_url: str, prefix: str, tmp_path: Path) -> Settings:
    return Settings(redis_url=redis_url, prefix=prefix, state_dir=tmp_path / "state", write_rate=1000, write_burst=1000)


def make_token(settings: Settings, name: str, *scopes: Scope) -> str:
    async def create() -> str:
        assert settings.redis_url
        client = connect(settings.redis_url)
        try:
            return await create_token(Store(client, prefix=settings.prefix), name, frozenset(scopes))
        finally:
            await client.aclose()

    return run(create())


@pytest.fixture
def admin_token(settings: Settings) -> str:
    return make_token(settings, "editor", Scope.ADMIN)


@pytest.fixture
def server(settings: Settings) -> Iterator[ServerThread]:
    running = ServerThread(settings).start()
    yield running
    running.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
