"""Items and their changes: publish, edit and retract (each one Lua script that appends the
stream entry and updates the item state together, so the log and the state never
disagree), and the reads of that state: one item, pages of a timeline, tombstones,
an item's history, headline search.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ticker.errors import Conflict, NotFound, PreconditionFailed
from ticker.models import (
    STREAM_SCHEMA_VERSION,
    Change,
    Item,
    ItemCreate,
    ItemEdit,
    apply_edit,
    change_kind,
    epoch_ms,
    legacy_sort_key,
    now,
)
from ticker.protocol import cursor_key
from ticker.store.stream import Stream
from ticker.store.tokens import TokenRefused, TokenUse, token_found

_WORDS = re.compile(r"\w+")
EDIT_RETRIES = 200
"""Optimistic retries of an edit that lost a race with another edit of the same item."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    item: Item
    cursor: str
    created: bool = True
    scheduled: bool = False
    """The item waits for its ``publish_at``: nothing was appended, ``cursor`` is the head."""


@dataclass(frozen=True, slots=True)
class Version:
    """One change of an item, as its history shows it."""

    cursor: str
    kind: str
    actor: str
    ts: int
    item: Item | None
    """The item after the change; ``None`` once the entry was trimmed from the stream."""


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Item]
    cursor: str
    """The stream position the page is current as of."""
    next: str | None
    """Pass as ``before`` for the next (older) page; ``None`` on the last page."""
    pinned: list[Item]


class Items(Stream):
    # --- writes -------------------------------------------------------------

    async def publish(self, create: ItemCreate, *, actor: str = "", token: TokenUse | None = None) -> WriteResult:
        """Append a new item; the same ``id`` with the same content again changes nothing.

        With ``token``, the script checks it first (one round trip for both) and the
        token's name is the actor; :class:`TokenRefused` when it refuses, with nothing written.
        """
        item = create.to_item()
        k = self.keys
        keys = [
            k.stream,
            k.items,
            k.gone,
            k.fp,
            k.cursor,
            k.tl,
            k.timeline(item.channel),
            k.pinned,
            k.sched,
            k.sched_items,
            k.sched_by,
            k.history(item.id),
        ]
        at = "" if create.publish_at is None else str(epoch_ms(create.publish_at))
        args: list[str | int | float] = [
            item.id,
            item.to_json(),
            create.fingerprint(),
            item.sort_key,
            actor,
            STREAM_SCHEMA_VERSION,
            self.stream_maxlen,
            "1" if item.pinned else "0",
            at,
        ]
        if token is not None:
            keys += k.token_keys
            args += token.args()
        publish = self.scripts["publish"]
        async with self._writer() as writer:
            reply = await self._call(lambda: publish(keys=keys, args=args, client=writer))
            if reply[0] in ("ok", "same", "scheduled", "same-scheduled"):
                # "same": the first attempt may never have been confirmed
                await self._replicated(writer)
        match reply[0]:
            case "ok":
                return WriteResult(item, reply[1])
            case "scheduled":
                return WriteResult(item, reply[1], scheduled=True)
            case "same":
                return WriteResult(Item.from_json(reply[1]), reply[2], created=False)
            case "same-scheduled":
                return WriteResult(Item.from_json(reply[1]), reply[2], created=False, scheduled=True)
            case "token-unknown":
                raise TokenRefused(None)
            case "token-refused":
                raise TokenRefused(token_found(reply[1], reply[2], reply[3]))
            case "retracted":
                raise Conflict(f"item {item.id} was retracted; publish it under a new id")
            case _:
                raise Conflict(f"item {item.id} already exists with other content")

    async def edit(self, item_id: str, edit: ItemEdit, *, actor: str, if_match: int | None = None) -> WriteResult:
        """Apply an edit (update, correction or fix); version + 1."""
        return await self._apply(
            "update",
            item_id,
            lambda item: apply_edit(item, edit, at=now()),
            actor,
            if_match,
            lambda item: change_kind(item, edit),
        )

    async def retract(self, item_id: str, *, actor: str, if_match: int | None = None) -> WriteResult:
        """Retract an item: a tombstone in the log, gone from every list."""
        return await self._apply(
            "retract",
            item_id,
            lambda item: item.model_copy(update={"version": item.version + 1}),
            actor,
            if_match,
            lambda item: "retract",
        )

    async def _apply(
        self,
        op: str,
        item_id: str,
        change: Callable[[Item], Item],
        actor: str,
        if_match: int | None,
        kind: Callable[[Item], str],
    ) -> WriteResult:
        k, script = self.keys, self.scripts["change"]
        for _ in range(EDIT_RETRIES):
            item = await self.get(item_id)
            if if_match is not None and item.version != if_match:
                raise PreconditionFailed(f"item {item_id} is at version {item.version}, not {if_match}")
            new = change(item)
            keys = [
                k.stream,
                k.items,
                k.gone,
                k.cursor,
                k.tl,
                k.timeline(item.channel),
                k.timeline(new.channel),
                k.pinned,
                k.history(item_id),
            ]
            args: list[str | int] = [
                op,
                item_id,
                item.version,
                new.to_json(),
                item.sort_key,
                actor,
                STREAM_SCHEMA_VERSION,
                self.stream_maxlen,
                "1" if new.pinned else "0",
                kind(item),
                legacy_sort_key(item.published_at, item.id),
            ]
            async with self._writer() as writer:
                reply = await self._call(lambda: script(keys=keys, args=args, client=writer))  # noqa: B023
                if reply[0] == "ok":
                    await self._replicated(writer)
            if reply[0] == "ok":
                return WriteResult(new, reply[1])
            if reply[0] == "missing":
                continue  # retracted meanwhile: get() raises the right error next round
            if if_match is not None:
                raise PreconditionFailed(f"item {item_id} changed meanwhile; read it again")
        raise Conflict(f"item {item_id} is being edited too often at once; try again")

    # --- reads --------------------------------------------------------------

    async def get(self, item_id: str) -> Item:
        """The live item, or :class:`NotFound` (also for retracted items, with a clear message)."""
        raw = await self._call(lambda: self.redis.hget(self.keys.items, item_id))
        if raw is None:
            if await self._call(lambda: self.redis.hexists(self.keys.gone, item_id)):
                raise NotFound(f"item {item_id} was retracted")
            raise NotFound(f"no item with id {item_id}")
        return Item.from_json(raw)

    async def retraction(self, item_id: str) -> tuple[Item, str] | None:
        """A retracted item's tombstone and the cursor of its retraction; ``None`` if not retracted."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(self.keys.gone, item_id)
            pipe.hget(self.keys.cursor, item_id)
            raw, cursor = await self._call(pipe.execute)
        return None if raw is None else (Item.from_json(raw), str(cursor or "0-0"))

    async def page(self, *, channel: str | None = None, limit: int = 20, before: str | None = None) -> Page:
        """Live items newest first by (published_at, id); stable while new items arrive."""
        bound = "+" if before is None else "(" + before
        keys = [self.keys.timeline(channel), self.keys.items, self.stream_key, self.keys.pinned]
        args: list[str | int] = [bound, limit, "1" if before is None else "0"]
        page = self.scripts["page"]
        reply = await self._call(lambda: page(keys=keys, args=args))
        cursor, count = reply[0], int(reply[1])
        pairs = reply[2 : 2 + 2 * count]
        rows = [(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2) if pairs[i + 1]]
        items = [Item.from_json(raw) for _, raw in rows[:limit]]
        more = count > limit
        pinned = [Item.from_json(raw) for raw in reply[2 + 2 * count :] if raw]
        if channel is not None:
            pinned = [item for item in pinned if item.channel == channel]
        return Page(items, cursor, items[-1].sort_key if more and items else None, pinned)

    async def retracted(self, limit: int = 50) -> list[Item]:
        """Recently retracted items (tombstones), for feeds."""
        raw = await self._call(lambda: self.redis.hvals(self.keys.gone))
        items = [Item.from_json(r) for r in raw]
        return sorted(items, key=lambda i: i.sort_key, reverse=True)[:limit]

    async def tombstones(self, *, channel: str | None = None, limit: int = 50) -> list[tuple[Item, str]]:
        """Retracted items with the cursor of their retraction, most recently retracted first."""
        items = [i for i in await self.retracted(limit=1_000_000) if channel is None or i.channel == channel]
        if not items:
            return []
        cursors = await self._call(lambda: self.redis.hmget(self.keys.cursor, [i.id for i in items]))
        pairs = [(item, str(c)) for item, c in zip(items, cursors, strict=True) if c]
        return sorted(pairs, key=lambda pair: cursor_key(pair[1]), reverse=True)[:limit]

    # --- history and search ---------------------------------------------------

    async def history(self, item_id: str) -> list[Version]:
        """Every change of the item, oldest first, read back from the stream by its cursors."""
        cursors = await self._call(lambda: self.redis.lrange(self.keys.history(item_id), 0, -1))
        if not cursors:
            await self.get(item_id)  # NotFound (or "retracted") with the right message
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for cursor in cursors:
                pipe.xrange(self.stream_key, min=cursor, max=cursor, count=1)
            rows = await self._call(pipe.execute)
        versions = []
        for cursor, found in zip(cursors, rows, strict=True):
            if not found:
                versions.append(Version(cursor, "trimmed", "", int(cursor.split("-")[0]), None))
                continue
            change = Change.from_entry(cursor, found[0][1])
            kind = found[0][1].get("kind") or change.op
            versions.append(Version(cursor, kind, change.actor, change.ts, change.parsed()))
        return versions

    async def search(
        self,
        words: list[str],
        *,
        channel: str | None = None,
        limit: int = 20,
        before: str | None = None,
        key_events: bool = False,
    ) -> Page:
        """Live items whose headline has every one of ``words`` (case-insensitive word prefixes), newest first;
        with ``key_events``, only key events.

        A scan of the item state: fine for a desk looking through thousands of items.
        """
        cursor = await self.head()
        raw = await self._call(lambda: self.redis.hvals(self.keys.items))
        wanted = [w.casefold() for w in words]
        found = []
        for text in raw:
            item = Item.from_json(text)
            if (channel is not None and item.channel != channel) or (key_events and not item.key_event):
                continue
            have = [w.casefold() for w in _WORDS.findall(item.headline)]
            if all(any(h.startswith(w) for h in have) for w in wanted) and (before is None or item.sort_key < before):
                found.append(item)
        found.sort(key=lambda i: i.sort_key, reverse=True)
        page = found[:limit]
        return Page(page, cursor, page[-1].sort_key if len(found) > limit else None, [])
