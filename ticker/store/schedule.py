"""Items that wait for their ``publish_at``: kept apart from the public state until a
release appends them (the scheduler task of every process tries; one wins), and
changed or cancelled meanwhile without a trace in the stream. A publish with a
future ``publish_at`` puts an item here (:meth:`ticker.store.items.Items.publish`).
"""

from __future__ import annotations

from ticker.errors import Conflict, NotFound
from ticker.models import STREAM_SCHEMA_VERSION, Item, ScheduledEdit, epoch_ms, now
from ticker.store.connection import Connection
from ticker.store.items import EDIT_RETRIES, WriteResult


class Schedule(Connection):
    async def scheduled(self) -> list[Item]:
        """Items waiting for their ``publish_at``, soonest first."""
        ids = await self._call(lambda: self.redis.zrange(self.keys.sched, 0, -1))
        if not ids:
            return []
        raw = await self._call(lambda: self.redis.hmget(self.keys.sched_items, ids))
        return [Item.from_json(r) for r in raw if r]

    async def upcoming(self, *, count: int = 20) -> list[tuple[str, int]]:
        """The ``count`` soonest scheduled items: id and publish_at (ms), soonest first."""
        first = await self._call(lambda: self.redis.zrange(self.keys.sched, 0, count - 1, withscores=True))
        return [(str(item_id), int(at)) for item_id, at in first]

    async def _scheduled_item(self, item_id: str) -> tuple[str, Item]:
        raw = await self._call(lambda: self.redis.hget(self.keys.sched_items, item_id))
        if raw is None:
            raise NotFound(f"no scheduled item with id {item_id}")
        return raw, Item.from_json(raw)

    async def release(self, item_id: str, *, force: bool = False) -> WriteResult | None:
        """Publish a scheduled item if it is due (or at once with ``force``); ``None`` if another
        process did, it is not due yet, or it was cancelled. Its ``published_at`` is the release time."""
        k, script = self.keys, self.scripts["release"]
        for _ in range(EDIT_RETRIES):
            try:
                raw, item = await self._scheduled_item(item_id)
            except NotFound:
                if force:
                    raise
                return None
            released = item.model_copy(update={"published_at": now()})
            keys = [
                k.stream,
                k.items,
                k.cursor,
                k.tl,
                k.timeline(item.channel),
                k.pinned,
                k.sched,
                k.sched_items,
                k.sched_by,
                k.history(item_id),
            ]
            args: list[str | int] = [
                item_id,
                released.to_json(),
                released.sort_key,
                STREAM_SCHEMA_VERSION,
                self.stream_maxlen,
                "1" if item.pinned else "0",
                "1" if force else "0",
                raw,
            ]
            async with self._writer() as writer:
                reply = await self._call(lambda: script(keys=keys, args=args, client=writer))  # noqa: B023
                if reply[0] == "ok":
                    await self._replicated(writer)
            if reply[0] == "ok":
                return WriteResult(released, reply[1])
            if reply[0] == "stale":
                continue  # edited meanwhile: release what it is now
            if force and reply[0] == "gone":
                raise NotFound(f"item {item_id} is no longer scheduled")
            return None
        raise Conflict(f"scheduled item {item_id} is being edited too often at once; try again")

    async def edit_scheduled(self, item_id: str, edit: ScheduledEdit) -> Item:
        """Change a scheduled item (its content or its time) before it is published."""
        keys = [self.keys.sched, self.keys.sched_items, self.keys.sched_by, self.keys.fp]
        script = self.scripts["schedule"]
        for _ in range(EDIT_RETRIES):
            raw, item = await self._scheduled_item(item_id)
            new = edit.apply(item)
            args: list[str | int] = ["edit", item_id, raw, new.to_json(), epoch_ms(new.published_at)]
            async with self._writer() as writer:
                reply = await self._call(lambda: script(keys=keys, args=args, client=writer))  # noqa: B023
                if reply[0] == "ok":
                    await self._replicated(writer)
            if reply[0] == "ok":
                return new
            if reply[0] == "missing":
                break
        raise NotFound(f"item {item_id} is no longer scheduled")

    async def cancel_scheduled(self, item_id: str) -> Item:
        """Drop a scheduled item; it was never public, so nothing is appended. Its id is free again."""
        raw, item = await self._scheduled_item(item_id)
        keys = [self.keys.sched, self.keys.sched_items, self.keys.sched_by, self.keys.fp]
        script = self.scripts["schedule"]
        async with self._writer() as writer:
            cancel: list[str | int] = ["cancel", item_id, raw, "", 0]
            reply = await self._call(lambda: script(keys=keys, args=cancel, client=writer))
            if reply[0] == "ok":
                await self._replicated(writer)
        if reply[0] != "ok":
            raise NotFound(f"item {item_id} is no longer scheduled")
        return item
