"""A three-master Redis Cluster, named by a node that does not own the deployment's slot:
``serve``, ``token create``, ``publish``, ``/ws``, ``tail`` and the consumer helper all work,
and moving the slot to another master under load loses nothing; writes are back within 5 s.
Run with ``-s`` to see the figures."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis.crc import key_slot

from tests import consumer_worker
from tests.clients import ServerProcess, wait_async
from tests.e2e.failover import CLI, Lines, Producer, Reader, cancel, create_token, handled_ids, read_ws
from tests.e2e.topology import Cluster, Node
from tests.support import units, wait_for
from ticker.store import Store, connect

PREFIX = "cluster-e2e"
SLOT = key_slot(("{" + PREFIX + "}").encode())
PHASE = 20


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = Cluster(tmp_path_factory.mktemp("cluster"))
    yield started
    started.stop()


def test_cluster_named_by_another_node_and_a_slot_moved_under_load(cluster: Cluster, tmp_path: Path) -> None:
    owner = cluster.owner(SLOT)
    seed, target = [n for n in cluster.nodes if n is not owner]
    url = f"redis+cluster://{seed.address}"
    options = ["--redis-url", url, "--prefix", PREFIX]

    token = create_token(url, PREFIX)
    published = subprocess.run(
        [*CLI, *options, "publish", "Straight to the cluster", "--id", "cli-1", "--json"],
        capture_output=True,
        text=True,
        timeout=units(30),
    )
    assert published.returncode == 0, published.stderr
    tail = Lines(*CLI, *options, "tail", "--from", "oldest", "--json")
    out = tmp_path / "worker.out"
    worker = Lines(*consumer_worker.command(url, PREFIX, group="g", name="w1", out=out, options=("--start", "oldest")))
    server = ServerProcess(url, PREFIX, tmp_path, TICKER_WRITE_RATE="1000", TICKER_WRITE_BURST="1000")
    try:
        moved_at, done_at, producer, reader = asyncio.run(scenario(cluster, server.url, token, target))
        acked = {*producer.acked, "cli-1"}
        tail_ids = lambda: {json.loads(line)["item"]["id"] for line in list(tail.lines)}  # noqa: E731
        wait_for(lambda: acked <= tail_ids(), timeout=30, what="tail to print every change")
        wait_for(lambda: acked <= handled_ids(out), timeout=30, what="the consumer to handle every change")
    finally:
        server.stop()
        tail_errors = tail.stop()
        worker_errors = worker.stop()
    stored = asyncio.run(stored_ids(url))
    lost = sorted(acked - stored)
    gap = producer.longest_gap(moved_at)
    print(
        f"\ncluster slot {SLOT} moved {owner.port}->{target.port} under load: acknowledged={len(acked)} "
        f"lost={len(lost)} duplicated={len(reader.duplicates)} longest_without_writes={gap:.1f}s "
        f"(migration took {done_at - moved_at:.1f}s)"
    )
    assert cluster.owner(SLOT) is target
    assert not lost, lost[:10]
    assert not reader.duplicates, reader.duplicates[:5]
    assert acked - {"cli-1"} <= reader.seen
    assert gap <= 5, gap
    assert "Traceback" not in tail_errors + worker_errors, tail_errors + worker_errors


async def scenario(cluster: Cluster, base: str, token: str, target: Node) -> tuple[float, float, Producer, Reader]:
    reader = Reader("ws")
    producer = Producer([base], token)
    async with httpx.AsyncClient(timeout=httpx.Timeout(units(5))) as client:
        reading = asyncio.create_task(read_ws(base, reader))
        await wait_async(lambda: reader.cursor, what="the WebSocket snapshot")
        writing = asyncio.create_task(producer.run(client))
        try:
            await wait_async(lambda: len(producer.acked) >= PHASE, within=30, what="writes before the move")
            moved_at = time.monotonic()
            await asyncio.to_thread(cluster.migrate, SLOT, target)
            done_at = time.monotonic()
            await wait_async(lambda: producer.acked_after(done_at) >= PHASE, within=30, what="writes after the move")
        finally:
            await cancel(writing)
        acked = set(producer.acked)
        await wait_async(lambda: acked <= reader.seen, within=30, what="the reader to catch up")
        await cancel(reading)
    return moved_at, done_at, producer, reader


async def stored_ids(url: str) -> set[str]:
    client = connect(url, socket_connect_timeout=5)
    try:
        page = await Store(client, prefix=PREFIX).page(limit=200)
        return {item.id for item in page.items}
    finally:
        await client.aclose()
