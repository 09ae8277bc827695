"""Consumer groups against a real Redis, with consumers as real separate processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests import consumer_worker
from tests.support import units, wait_for
from ticker.consumer import NEW, OLDEST, Consumer, follow
from ticker.embedded import EmbeddedRedis
from ticker.errors import InvalidInput, Unavailable
from ticker.models import Event, ItemCreate, parse
from ticker.store import Store, connect

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def run(settings_url: str, prefix: str, work: Callable[[Store], Awaitable[T]]) -> T:
    """Run ``work`` with a store of its own (each call has its own event loop)."""

    async def go() -> T:
        client = connect(settings_url)
        try:
            return await work(Store(client, prefix=prefix))
        finally:
            await client.aclose()

    return asyncio.run(go())


def create(item_id: str, **body: Any) -> ItemCreate:
    return parse(ItemCreate, {"id": item_id, "headline": f"Headline {item_id}", **body})


class Group:
    """One consumer group of a test's stream, and the worker processes reading it."""

    def __init__(self, redis_url: str, prefix: str, tmp: Path, name: str = "g") -> None:
        self.redis_url, self.prefix, self.tmp, self.name = redis_url, prefix, tmp, name
        self.procs: list[subprocess.Popen[bytes]] = []

    def call(self, work: Callable[[Store], Awaitable[T]]) -> T:
        return run(self.redis_url, self.prefix, work)

    def publish(self, *ids: str) -> list[str]:
        async def go(store: Store) -> list[str]:
            return [(await store.publish(create(i), actor="desk")).cursor for i in ids]

        return self.call(go)

    def create(self, start: str = "0-0") -> None:
        self.call(lambda store: store.create_group(self.name, start))

    def worker(self, name: str, *options: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            consumer_worker.command(
                self.redis_url, self.prefix, group=self.name, name=name, out=self.out(name), options=options
            ),
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        self.procs.append(proc)
        return proc

    def out(self, name: str) -> Path:
        return self.tmp / f"{name}.out"

    def handled(self, name: str) -> list[str]:
        """Item ids the worker ``name`` handled, in order."""
        path = self.out(name)
        return [line.split()[2] for line in path.read_text().splitlines()] if path.exists() else []

    def pending(self) -> int:
        info = self.call(lambda store: store.group_info(self.name))
        return int(info["pending"]) if info else -1

    def members(self) -> set[str]:
        return set(self.call(lambda store: store.group_consumers(self.name)))

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(units(20))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            assert proc.stderr is not None
            proc.stderr.close()


@pytest.fixture
def group(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[Group]:
    made = Group(redis_url, prefix, tmp_path)
    yield made
    made.stop_all()


def test_a_consumer_killed_mid_batch_leaves_nothing_behind(group: Group) -> None:
    ids = [f"k{n:03d}" for n in range(40)]
    group.publish(*ids)
    group.create("0-0")
    first = group.worker("a", "--delay", "0.05", "--batch", "100")
    wait_for(lambda: len(group.handled("a")) >= 5, what="worker a to handle a few")
    first.send_signal(signal.SIGKILL)
    first.wait(units(10))
    done_by_a = group.handled("a")
    assert len(done_by_a) < len(ids), "the kill came too late to be mid-batch"
    assert group.pending() > 0

    group.worker("b", "--claim-idle", "0.3")
    wait_for(lambda: set(group.handled("a")) | set(group.handled("b")) == set(ids), what="every entry handled")
    wait_for(lambda: group.pending() == 0, what="every entry acknowledged")
    twice = set(done_by_a) & set(group.handled("b"))
    assert len(twice) <= 1, f"only the entry in flight at the kill may be handled again, not {twice}"


def test_two_consumers_share_the_load_and_none_is_handled_twice(group: Group) -> None:
    group.create("$")
    group.worker("a", "--batch", "5", "--delay", "0.005")
    group.worker("b", "--batch", "5", "--delay", "0.005")
    wait_for(lambda: group.members() == {"a", "b"}, what="both members reading")
    ids = [f"s{n:03d}" for n in range(200)]
    group.publish(*ids)
    wait_for(lambda: len(group.handled("a")) + len(group.handled("b")) >= len(ids), what="all entries handled")
    wait_for(lambda: group.pending() == 0, what="every entry acknowledged")
    a, b = group.handled("a"), group.handled("b")
    assert sorted(a + b) == ids, "every entry exactly once"
    assert a and b, "both members took a share"
    assert a == sorted(a) and b == sorted(b), "each member sees its entries in stream order"


def test_a_poison_entry_lands_in_the_dead_letter_stream_with_its_error(group: Group) -> None:
    group.create("$")
    group.worker("a", "--fail", "poison", "--max-attempts", "3", "--claim-idle", "0.2")
    wait_for(lambda: group.members() == {"a"}, what="the member reading")
    cursors = group.publish("ok1", "poison1", "ok2")

    def dead() -> list[tuple[str, dict[str, str]]]:
        return group.call(lambda store: store.dead_letters(group.name))

    [(_, entry)] = wait_for(dead, what="a dead letter")
    assert entry["id"] == "poison1" and entry["cursor"] == cursors[1] and entry["op"] == "publish"
    assert entry["attempts"] == "3" and entry["group"] == "g" and entry["consumer"] == "a"
    assert "RuntimeError: cannot handle poison1" in entry["error"]
    assert {"item", "actor", "v", "ts", "failed_at"} <= set(entry)
    assert group.handled("a") == ["ok1", "ok2"]
    wait_for(lambda: group.pending() == 0, what="the poison entry acknowledged")


# --- in one process: start positions, retries, crash loops ------------------------------


class Recorder:
    """A handler that records events and stops its consumer after ``until`` of them."""

    def __init__(self, until: int) -> None:
        self.events: list[Event] = []
        self.until = until
        self.consumer: Consumer | None = None

    async def __call__(self, event: Event) -> None:
        self.events.append(event)
        if len(self.events) >= self.until and self.consumer:
            self.consumer.stop()

    @property
    def ids(self) -> list[str]:
        return [e.item.id for e in self.events]


async def consume_until(store: Store, until: int, **options: Any) -> Recorder:
    recorder = Recorder(until)
    consumer = Consumer(store, recorder, group=options.pop("group", "g"), name="c", block_ms=50, **options)
    recorder.consumer = consumer
    await asyncio.wait_for(consumer.run(), units(10))
    return recorder


async def eventually(check: Callable[[], Awaitable[object]], what: str) -> None:
    """Wait until ``check`` answers something truthy, failing after a deadline."""
    deadline = time.monotonic() + units(10)
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def in_store(redis_url: str, prefix: str, work: Callable[[Store], Awaitable[None]]) -> None:
    run(redis_url, prefix, work)


@pytest.mark.parametrize(
    ("start", "expected"),
    [(NEW, ["c"]), (OLDEST, ["a", "b", "c"]), ("cursor-of-a", ["b", "c"])],
)
def test_start_positions(redis_url: str, prefix: str, start: str, expected: list[str]) -> None:
    async def work(store: Store) -> None:
        first = await store.publish(create("a"), actor="desk")
        await store.publish(create("b"), actor="desk")
        begin = first.cursor if start == "cursor-of-a" else start
        task = asyncio.create_task(consume_until(store, len(expected), start=begin))
        await eventually(lambda: store.group_info("g"), "the group")
        await store.publish(create("c"), actor="desk")
        recorder = await task
        assert recorder.ids == expected
        assert [e.op for e in recorder.events] == ["publish"] * len(expected)
        assert recorder.events[-1].actor == "desk" and recorder.events[-1].item.headline == "Headline c"

    in_store(redis_url, prefix, work)


def test_an_existing_group_goes_on_from_where_it_is(redis_url: str, prefix: str) -> None:
    async def work(store: Store) -> None:
        await store.publish(create("a"), actor="desk")
        assert (await consume_until(store, 1, start=OLDEST)).ids == ["a"]
        await store.publish(create("b"), actor="desk")
        assert (await consume_until(store, 1, start=OLDEST)).ids == ["b"]

    in_store(redis_url, prefix, work)


def test_bad_start_and_names_are_rejected(redis_url: str, prefix: str) -> None:
    async def work(store: Store) -> None:
        for options in ({"start": "yesterday"}, {"group": "a b"}, {"max_attempts": 0}):
            with pytest.raises(InvalidInput):
                Consumer(store, Recorder(1), **{"group": "g", "name": "c", **options})

    in_store(redis_url, prefix, work)


def test_a_failed_entry_is_retried_and_then_handled(redis_url: str, prefix: str) -> None:
    async def work(store: Store) -> None:
        await store.publish(create("a"), actor="desk")
        await store.publish(create("b"), actor="desk")
        calls: Counter[str] = Counter()
        consumer: Consumer

        def flaky(event: Event) -> None:
            calls[event.item.id] += 1
            if event.item.id == "a" and calls["a"] < 3:
                raise ConnectionError("push service down")
            if calls["a"] == 3:
                consumer.stop()

        consumer = Consumer(store, flaky, group="g", name="c", start=OLDEST, claim_idle=0.05, block_ms=20)
        await asyncio.wait_for(consumer.run(), units(10))
        assert calls == {"a": 3, "b": 1}
        assert consumer.stats.handled == 2 and consumer.stats.failed == 2 and consumer.stats.claimed == 2
        assert await store.dead_letters("g") == []
        assert (await store.group_info("g") or {})["pending"] == 0

    in_store(redis_url, prefix, work)


def test_an_entry_that_keeps_crashing_its_consumer_is_dead_lettered(redis_url: str, prefix: str) -> None:
    async def work(store: Store) -> None:
        cursor = (await store.publish(create("a"), actor="desk")).cursor
        await store.create_group("g", "0-0")
        await store.read_group("g", "ghost", count=10)  # delivered once, never acknowledged
        for n in range(2):  # then claimed by members that crashed too
            await store.claim("g", f"ghost{n}", min_idle_ms=0)
        recorder = Recorder(1)
        consumer = Consumer(store, recorder, group="g", name="c", claim_idle=0.05, block_ms=20, max_attempts=3)
        task = asyncio.create_task(consumer.run())
        await eventually(lambda: store.dead_letters("g"), "a dead letter")
        consumer.stop()
        await asyncio.wait_for(task, units(10))
        [(_, entry)] = await store.dead_letters("g")
        assert entry["cursor"] == cursor and entry["attempts"] == "3" and "crashed" in entry["error"]
        assert recorder.events == []

    in_store(redis_url, prefix, work)


def test_a_restarted_consumer_takes_up_its_own_pending_entries_first(redis_url: str, prefix: str) -> None:
    async def work(store: Store) -> None:
        await store.publish(create("a"), actor="desk")
        await store.create_group("g", "0-0")
        await store.read_group("g", "c", count=10)  # read, then "crashed" before the ack
        recorder = await consume_until(store, 1)
        assert recorder.ids == ["a"]
        assert (await store.group_info("g") or {})["pending"] == 0

    in_store(redis_url, prefix, work)


def test_malformed_entries_go_straight_to_the_dead_letters(redis_url: str, prefix: str) -> None:
    async def work(store: Store) -> None:
        await store.create_group("g", "$")
        await store.redis.xadd(store.stream_key, {"op": "publish", "id": "x", "item": "{not json"})
        await store.publish(create("b"), actor="desk")
        recorder = await consume_until(store, 1)
        assert recorder.ids == ["b"]
        [(_, entry)] = await store.dead_letters("g")
        assert entry["id"] == "x" and entry["attempts"] == "1" and "malformed entry" in entry["error"]

    in_store(redis_url, prefix, work)


def test_channel_filter_acknowledges_other_channels(redis_url: str, prefix: str) -> None:
    async def work(store: Store) -> None:
        await store.publish(create("a", channel="sport"), actor="desk")
        await store.publish(create("b", channel="news"), actor="desk")
        recorder = await consume_until(store, 1, start=OLDEST, channel="news")
        assert recorder.ids == ["b"]
        assert (await store.group_info("g") or {})["pending"] == 0

    in_store(redis_url, prefix, work)


def test_a_group_behind_retention_is_warned_about(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def work(store: Store) -> None:
        small = Store(store.redis, prefix=store.prefix, stream_maxlen=1)
        first = (await small.publish(create("a0"), actor="desk")).cursor
        for n in range(1, 250):
            await small.publish(create(f"a{n}"), actor="desk")
        assert await store.first() != first
        await consume_until(store, 1, start=first)

    with caplog.at_level("WARNING", logger="ticker.consumer"):
        in_store(redis_url, prefix, work)
    assert "fell behind retention" in caplog.text


def test_stop_on_sigterm_is_graceful(group: Group) -> None:
    group.create("$")
    proc = group.worker("a")
    wait_for(lambda: group.members() == {"a"}, what="the member reading")
    group.publish("x")
    wait_for(lambda: group.handled("a") == ["x"], what="x handled")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(units(10)) == 0
    assert group.pending() == 0
    assert os.path.getsize(group.out("a")) > 0


def test_pending_entries_trimmed_away_are_dropped_not_dead_lettered(redis_url: str, prefix: str) -> None:
    async def work(store: Store) -> None:
        await store.publish(create("a"), actor="desk")
        await store.create_group("g", "0-0")
        await store.read_group("g", "c", count=10)  # read, never acknowledged...
        await store.redis.xtrim(store.stream_key, maxlen=0)  # ...and trimmed meanwhile
        await store.publish(create("b"), actor="desk")
        consumer = Consumer(store, Recorder(1), group="g", name="c", block_ms=20)
        recorder = consumer.handler
        assert isinstance(recorder, Recorder)
        recorder.consumer = consumer
        await asyncio.wait_for(consumer.run(), units(10))
        assert recorder.ids == ["b"] and consumer.stats.trimmed == 1
        assert await store.dead_letters("g") == []

    in_store(redis_url, prefix, work)


def test_a_consumer_rides_out_a_redis_restart(tmp_path: Path) -> None:
    embedded = EmbeddedRedis(tmp_path / "redis")
    url = embedded.start()

    async def publish(store: Store, item_id: str) -> None:
        deadline = time.monotonic() + units(20)
        while True:
            try:
                await store.publish(create(item_id), actor="desk")
                return
            except Unavailable:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def work() -> None:
        client = connect(url)
        store = Store(client, prefix="restart")
        try:
            await publish(store, "a")
            recorder = Recorder(2)
            consumer = Consumer(store, recorder, group="g", name="c", start=OLDEST, block_ms=50)
            recorder.consumer = consumer
            task = asyncio.create_task(consumer.run())

            async def got_a() -> bool:
                return recorder.ids == ["a"]

            await eventually(got_a, "a handled")
            await asyncio.to_thread(embedded.stop)
            await asyncio.to_thread(embedded.start)
            await publish(store, "b")
            await asyncio.wait_for(task, units(20))
            assert recorder.ids == ["a", "b"]
        finally:
            await client.aclose()

    try:
        asyncio.run(work())
    finally:
        embedded.stop()


def test_a_group_lost_in_a_failover_is_made_again_after_the_last_handled_change(redis_url: str, prefix: str) -> None:
    async def work(store: Store) -> None:
        await store.publish(create("a"), actor="desk")
        task = asyncio.create_task(consume_until(store, 2, start=OLDEST))

        async def handled_a() -> bool:
            info = await store.group_info("g")
            return bool(info) and info["pending"] == 0 and info["last-delivered-id"] != "0-0"

        await eventually(handled_a, "a handled")
        await store.redis.xgroup_destroy(store.stream_key, "g")  # as a promoted replica without the group
        await store.publish(create("b"), actor="desk")
        assert (await task).ids == ["a", "b"]

    in_store(redis_url, prefix, work)


def test_follow_reads_without_a_group(redis_url: str, prefix: str) -> None:
    async def work(store: Store) -> None:
        first = (await store.publish(create("a", channel="sport"), actor="desk")).cursor
        await store.redis.xadd(store.stream_key, {"op": "publish", "id": "x", "item": "{broken"})
        await store.publish(create("b", channel="news"), actor="desk")
        await store.publish(create("c", channel="news"), actor="desk")
        stop = asyncio.Event()
        seen = []
        async for event in follow(store, start=first, channel="news", block_ms=20, stop=stop):
            seen.append(event.item.id)
            if len(seen) == 2:
                stop.set()
        assert seen == ["b", "c"]
        assert [e.item.id async for e in follow(store, start=OLDEST, block_ms=20, stop=stop)] == []
        assert await store.group_info("g") is None

    in_store(redis_url, prefix, work)


def test_a_service_runs_a_consumer_in_its_own_loop_from_a_url(redis_url: str, prefix: str, tmp_path: Path) -> None:
    Group(redis_url, prefix, tmp_path).publish("a1", "a2", "a3")
    seen: list[str] = []

    async def service() -> None:
        def handle(event: Event) -> None:
            seen.append(event.item.id)
            if len(seen) == 3:
                consumer.stop()

        async with Consumer.connect(
            redis_url, handle, group="svc", name="svc-1", prefix=prefix, start=OLDEST, block_ms=100
        ) as consumer:
            async with asyncio.timeout(units(30)):
                await consumer.run()
        assert consumer.stats.handled == 3

    asyncio.run(service())
    assert seen == ["a1", "a2", "a3"]
