"""The store against a real Redis: atomic changes, the stream layout, paging."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.support import units
from ticker.errors import Conflict, NotFound, PreconditionFailed, Unavailable
from ticker.models import Item, ItemCreate, ItemEdit, ScheduledEdit, epoch_ms, parse
from ticker.store import Store, TokenRefused, TokenUse, connect

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(redis_url: str, prefix: str) -> AsyncIterator[Store]:
    client = connect(redis_url)
    yield Store(client, prefix=prefix, stream_maxlen=100)
    await client.aclose()


def create(**body: object) -> ItemCreate:
    return parse(ItemCreate, {"headline": "Quake hits the coast", **body})


async def entries(store: Store) -> list[tuple[str, dict[str, str]]]:
    return list(await store.redis.xrange(store.stream_key))


async def test_publish_appends_one_entry_with_the_documented_fields(store: Store) -> None:
    result = await store.publish(create(labels=["breaking"], id="q1"), actor="desk")
    [(cursor, fields)] = await entries(store)
    assert cursor == result.cursor
    assert set(fields) == {"op", "id", "item", "actor", "v", "ts", "kind"}
    assert fields["op"] == "publish" and fields["id"] == "q1" and fields["actor"] == "desk"
    assert fields["v"] == "1"
    assert abs(int(fields["ts"]) - int(cursor.split("-")[0])) < 1000
    assert json.loads(fields["item"]) == result.item.model_dump(mode="json")
    assert (await store.get("q1")) == result.item


async def test_keys_share_one_hash_tag(store: Store) -> None:
    await store.publish(create(channel="sport"), actor="desk")
    keys = [k async for k in store.redis.scan_iter(match="*" + store.prefix + "*")]
    assert keys and all(k.startswith("{" + store.prefix + "}:") for k in keys)


async def test_same_id_same_content_appends_nothing(store: Store) -> None:
    first = await store.publish(create(id="q1"), actor="desk")
    again = await store.publish(create(id="q1"), actor="desk")
    assert not again.created and again.item == first.item and again.cursor == first.cursor
    assert len(await entries(store)) == 1


async def test_same_id_other_content_conflicts(store: Store) -> None:
    await store.publish(create(id="q1"), actor="desk")
    with pytest.raises(Conflict):
        await store.publish(create(id="q1", headline="Something else"), actor="desk")
    assert len(await entries(store)) == 1


async def test_edit_and_retract_keep_log_and_state_together(store: Store) -> None:
    await store.publish(create(id="q1"), actor="desk")
    edited = await store.edit("q1", parse(ItemEdit, {"headline": "Quake: 5 dead"}), actor="ed")
    assert edited.item.version == 2 and edited.item.updated_at is not None
    gone = await store.retract("q1", actor="chief")
    assert gone.item.version == 3
    log = await entries(store)
    assert [f["op"] for _, f in log] == ["publish", "update", "retract"]
    assert [f["actor"] for _, f in log] == ["desk", "ed", "chief"]
    assert json.loads(log[-1][1]["item"])["version"] == 3
    with pytest.raises(NotFound, match="retracted"):
        await store.get("q1")
    assert (await store.page()).items == []
    assert [i.id for i in await store.retracted()] == ["q1"]
    with pytest.raises(NotFound):
        await store.edit("q1", parse(ItemEdit, {"headline": "again"}), actor="ed")
    with pytest.raises(Conflict, match="retracted"):
        await store.publish(create(id="q1"), actor="desk")


async def test_if_match_mismatch_is_a_precondition_failure(store: Store) -> None:
    await store.publish(create(id="q1"), actor="desk")
    with pytest.raises(PreconditionFailed):
        await store.edit("q1", parse(ItemEdit, {"headline": "x"}), actor="ed", if_match=2)
    ok = await store.edit("q1", parse(ItemEdit, {"headline": "x"}), actor="ed", if_match=1)
    assert ok.item.version == 2
    with pytest.raises(PreconditionFailed):
        await store.retract("q1", actor="ed", if_match=1)


async def test_unknown_item(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.get("nope")
    with pytest.raises(NotFound):
        await store.retract("nope", actor="ed")


async def test_fifty_concurrent_edits_agree_with_the_log(store: Store) -> None:
    await store.publish(create(id="hot"), actor="desk")

    async def edit(n: int) -> bool:
        try:
            await store.edit("hot", parse(ItemEdit, {"headline": f"Edit {n}"}), actor=f"e{n}")
        except Conflict:
            return False
        return True

    results = await asyncio.gather(*(edit(n) for n in range(50)))
    item = await store.get("hot")
    assert item.version == 1 + sum(results)
    log = await entries(store)
    versions = [json.loads(f["item"])["version"] for _, f in log]
    assert versions == list(range(1, item.version + 1))
    assert json.loads(log[-1][1]["item"]) == item.model_dump(mode="json")


async def test_concurrent_if_match_edits_let_exactly_one_win(store: Store) -> None:
    await store.publish(create(id="hot"), actor="desk")

    async def edit(n: int) -> bool:
        try:
            await store.edit("hot", parse(ItemEdit, {"headline": f"Edit {n}"}), actor="e", if_match=1)
        except PreconditionFailed:
            return False
        return True

    results = await asyncio.gather(*(edit(n) for n in range(20)))
    assert sum(results) == 1 and (await store.get("hot")).version == 2


async def test_paging_has_no_overlap_while_new_items_arrive(store: Store) -> None:
    base = datetime.now(UTC) - timedelta(hours=1)
    for n in range(25):
        await store.publish(create(id=f"i{n:02d}", published_at=base + timedelta(seconds=n)), actor="desk")
    first = await store.page(limit=10)
    assert [i.id for i in first.items] == [f"i{n:02d}" for n in range(24, 14, -1)]
    for n in range(5):  # new items land on top meanwhile
        await store.publish(create(id=f"new{n}"), actor="desk")
    seen = [i.id for i in first.items]
    token = first.next
    while token:
        page = await store.page(limit=10, before=token)
        seen += [i.id for i in page.items]
        token = page.next
    assert seen == [f"i{n:02d}" for n in range(24, -1, -1)]


async def test_equal_times_page_by_id(store: Store) -> None:
    at = datetime.now(UTC) - timedelta(minutes=1)
    for name in ("c", "a", "b"):
        await store.publish(create(id=name, published_at=at), actor="desk")
    one = await store.page(limit=2)
    two = await store.page(limit=2, before=one.next)
    assert [i.id for i in one.items + two.items] == ["c", "b", "a"] and two.next is None


async def test_channels_pins_and_snapshot_cursor(store: Store) -> None:
    await store.publish(create(id="s1", channel="sport"), actor="desk")
    await store.publish(create(id="n1", pinned=True), actor="desk")
    last = await store.publish(create(id="n2"), actor="desk")
    news = await store.page(channel="news")
    assert [i.id for i in news.items] == ["n2", "n1"] and news.cursor == last.cursor
    assert [i.id for i in news.pinned] == ["n1"]
    assert [i.id for i in (await store.page(channel="sport")).items] == ["s1"]
    assert len((await store.page()).items) == 3
    await store.edit("s1", parse(ItemEdit, {"channel": "news"}), actor="ed")
    assert (await store.page(channel="sport")).items == []
    await store.edit("n1", parse(ItemEdit, {"pinned": False}), actor="ed")
    assert (await store.page()).pinned == []


async def test_stream_is_trimmed_approximately(store: Store) -> None:
    for n in range(400):
        await store.publish(create(id=f"i{n}"), actor="desk")
    length = await store.redis.xlen(store.stream_key)
    assert 100 <= length < 400
    first = await store.first()
    assert first is not None and first > "0-0"
    assert len((await store.page(limit=200)).items) == 200  # the state keeps every item


async def test_changes_after_cursor(store: Store) -> None:
    one = await store.publish(create(id="a"), actor="desk")
    two = await store.publish(create(id="b"), actor="desk")
    changes = await store.changes_after(one.cursor)
    assert [c.cursor for c in changes] == [two.cursor]
    assert Item.from_json(changes[0].item).id == "b" and changes[0].op == "publish"
    waited = await store.wait_changes(one.cursor, block_ms=100)
    assert [c.id for c in waited] == ["b"]
    assert await store.wait_changes(two.cursor, block_ms=50) == []


async def test_a_publish_checks_its_token_in_its_own_script(store: Store) -> None:
    record = {"scopes": ["edit"], "hash": "h-editor", "created_at": "2026-11-27T00:00:00Z"}
    await store.add_token("editor", "h-editor", record)
    await store.add_token("desk", "h-desk", {**record, "scopes": ["publish"], "hash": "h-desk"})

    def token(digest: str, allowed: tuple[str, ...] = ("publish", "admin")) -> TokenUse:
        return TokenUse(digest, "2026-11-27T09:00:00Z", 1.0, 2, allowed)

    with pytest.raises(TokenRefused) as unknown:
        await store.publish(create(id="a"), token=token("h-nobody"))
    assert unknown.value.found is None
    with pytest.raises(TokenRefused) as lacking:
        await store.publish(create(id="a"), token=token("h-editor"))
    assert lacking.value.found == ("editor", record, 0)
    assert await entries(store) == [], "a refused token writes nothing"

    published = await store.publish(create(id="a"), token=token("h-desk"))
    assert [fields["actor"] for _, fields in await entries(store)] == ["desk"], "the token's name is the actor"
    assert await store.redis.hget(store.keys.token_used, "desk") == "2026-11-27T09:00:00Z"
    await store.publish(create(id="b", headline="Second"), token=token("h-desk"))
    assert (await store.use_token("h-desk", "t", write=(1.0, 2)) or ("", {}, 0.0))[2] > 0, "the same limit"
    with pytest.raises(TokenRefused) as limited:  # the burst of 2 is spent
        await store.publish(create(id="c", headline="Third"), token=token("h-desk"))
    assert limited.value.found is not None and 0 < limited.value.found[2] <= 1
    assert [fields["id"] for _, fields in await entries(store)] == ["a", "b"]
    scheduled = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await store.redis.hdel(store.keys.rates, "desk")
    later = await store.publish(create(id="d", publish_at=scheduled), token=token("h-desk"))
    assert later.scheduled and await store.redis.hget(store.keys.sched_by, "d") == "desk"
    assert published.item.id == "a"


async def test_write_rate_limit_is_kept_in_redis(store: Store, redis_url: str) -> None:
    record = {"scopes": ["publish"], "hash": "h-desk", "created_at": "2026-11-27T00:00:00Z"}
    await store.add_token("desk", "h-desk", record)
    await store.add_token("other", "h-other", {**record, "hash": "h-other"})
    limit = (1.0, 3)
    waits = [(await store.use_token("h-desk", "t", write=limit) or ("", {}, -1.0))[2] for _ in range(4)]
    assert waits[:3] == [0, 0, 0] and 0 < waits[3] <= 1
    assert await store.use_token("h-desk", "t") == ("desk", record, 0), "a read takes nothing from the limit"
    other = await store.use_token("h-other", "t", write=limit)
    assert other is not None and other[2] == 0, "each token has its own limit"
    assert await store.use_token("h-unknown", "t", write=limit) is None
    client = connect(redis_url)  # another process's client counts against the same limit
    try:
        again = await Store(client, prefix=store.prefix).use_token("h-desk", "t", write=limit)
        assert again is not None and again[2] > 0
    finally:
        await client.aclose()
    await store.revoke_token("desk")  # the limit goes with the token
    assert "desk" not in await store.redis.hgetall(store.keys.rates)


async def test_a_write_no_replica_confirms_is_unavailable_and_safe_to_retry(store: Store) -> None:
    durable = Store(store.redis, prefix=store.prefix, min_replicas=1, replica_wait_ms=20)
    with pytest.raises(Unavailable) as raised:
        await durable.publish(create(id="w1"), actor="desk")
    assert "0 of 1 replicas" in raised.value.message and raised.value.headers["Retry-After"]
    with pytest.raises(Unavailable):  # the entry is on the primary: a retry waits for it again
        await durable.publish(create(id="w1"), actor="desk")
    assert not (await store.publish(create(id="w1"), actor="desk")).created
    assert len(await entries(store)) == 1
    # Until a write is confirmed, readiness reports the failure (INFO alone can look healthy
    # while WAIT still times out), for at most one write's worst case; then INFO again.
    info = "redis has 0 of the 1 replicas writes wait for"
    reported = await durable.write_problems()
    assert reported[0] == info and reported[1].startswith("the last call to redis failed: the change reached")
    deadline = time.monotonic() + units(10)
    while (problems := await durable.write_problems()) != [info]:
        assert time.monotonic() < deadline, f"the failure was reported for ever: {problems}"
        await asyncio.sleep(0.05)
    assert await store.write_problems() == []


FLOAT_SHORT = datetime(2004, 8, 7, 7, 13, 57, 64000, tzinfo=UTC)
"""A time whose milliseconds ``timestamp() * 1000`` counts one short, as releases before the exact count did."""


async def test_an_item_indexed_under_the_older_key_is_rekeyed_by_its_next_change(store: Store) -> None:
    at = FLOAT_SHORT
    item = (await store.publish(create(headline="Old index", id="old", published_at=at.isoformat()), actor="t")).item
    legacy = f"{int(at.timestamp() * 1000):015d}:old"
    assert legacy != item.sort_key
    timelines = ["{" + store.prefix + "}:tl", "{" + store.prefix + "}:tl:news"]
    for key in timelines:  # the index as an older release left it
        await store.redis.zrem(key, item.sort_key)
        await store.redis.zadd(key, {legacy: 0})
    await store.edit("old", parse(ItemEdit, {"kind": "fix", "headline": "Old index, fixed"}), actor="t")
    for key in timelines:
        assert await store.redis.zrange(key, 0, -1) == [item.sort_key]
    page = await store.page(limit=5)
    assert [i.headline for i in page.items] == ["Old index, fixed"]
    await store.retract("old", actor="t")
    for key in timelines:
        assert await store.redis.zrange(key, 0, -1) == []


async def test_scheduled_items_are_released_once_and_only_when_due(store: Store) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    first = await store.publish(create(headline="At noon", id="noon", publish_at=later.isoformat()), actor="t")
    assert first.scheduled and await store.upcoming(count=1) == [("noon", epoch_ms(first.item.published_at))]
    assert await store.release("noon") is None  # not due yet: nothing appended
    assert await entries(store) == []
    edited = await store.edit_scheduled("noon", parse(ScheduledEdit, {"headline": "At noon sharp"}))
    assert edited.headline == "At noon sharp"
    released = await store.release("noon", force=True)
    assert released is not None and released.item.headline == "At noon sharp"
    assert [fields["op"] for _, fields in await entries(store)] == ["publish"]
    assert await store.release("noon") is None  # released already: another process's call finds nothing
    with pytest.raises(NotFound):
        await store.release("noon", force=True)
    with pytest.raises(NotFound):
        await store.edit_scheduled("noon", parse(ScheduledEdit, {"headline": "Too late"}))
    with pytest.raises(NotFound):
        await store.cancel_scheduled("noon")
    assert await store.upcoming(count=1) == []


async def test_a_cancelled_schedule_frees_its_id_and_appends_nothing(store: Store) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await store.publish(create(headline="Maybe", id="maybe", publish_at=later), actor="t")
    assert [i.id for i in await store.scheduled()] == ["maybe"]
    cancelled = await store.cancel_scheduled("maybe")
    assert cancelled.headline == "Maybe" and await store.scheduled() == []
    assert await store.release("maybe") is None
    assert (await store.publish(create(headline="Now for real", id="maybe"), actor="t")).created
    assert [fields["op"] for _, fields in await entries(store)] == ["publish"]
