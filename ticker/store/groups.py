"""Consumer groups on the change stream and their dead-letter streams, for :mod:`ticker.consumer`.

Entries are returned raw, as ``(cursor, fields)`` with fields ``None`` for an entry
trimmed away while it was pending, so the consumer decides what a bad entry means.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

from ticker.errors import NotFound, TickerError
from ticker.store.connection import Connection


class Groups(Connection):
    def dead_letter_key(self, group: str) -> str:
        return self.keys.dead(group)

    async def create_group(self, group: str, start: str) -> bool:
        """Create ``group`` reading after ``start`` (``$``: new changes only); ``False`` if it exists."""
        try:
            await self._call(lambda: self.redis.xgroup_create(self.stream_key, group, id=start, mkstream=True))
        except ResponseError as exc:
            if str(exc).startswith("BUSYGROUP"):
                return False
            raise TickerError(f"cannot create consumer group {group!r} at {start!r}: {exc}") from None
        return True

    async def group_info(self, group: str) -> dict[str, Any] | None:
        """Redis's XINFO GROUPS record of ``group`` (pending, last-delivered-id, lag), or ``None``."""
        try:
            groups = await self._call(lambda: self.redis.xinfo_groups(self.stream_key))
        except ResponseError:
            return None  # no stream yet
        return next((dict(g) for g in groups if g["name"] == group), None)

    async def group_consumers(self, group: str) -> dict[str, dict[str, Any]]:
        """The members of ``group`` by name, with their pending count and idle time."""
        try:
            rows = await self._call(lambda: self.redis.xinfo_consumers(self.stream_key, group))
        except ResponseError:
            return {}  # no such stream or group
        return {str(row["name"]): dict(row) for row in rows}

    async def read_group(
        self, group: str, consumer: str, *, count: int, block_ms: int | None = None, after: str = ">"
    ) -> list[tuple[str, dict[str, str] | None]]:
        """New entries for ``consumer`` (``after=">"``, waiting up to ``block_ms``), or its own
        pending entries after the id ``after`` (no waiting)."""
        streams: dict[Any, Any] = {self.stream_key: after}
        block = block_ms if after == ">" else None
        try:
            reply = await self._call(lambda: self.redis.xreadgroup(group, consumer, streams, count=count, block=block))
        except ResponseError as exc:
            if str(exc).startswith("NOGROUP"):  # a failover promoted a replica that never had the group
                raise NotFound(f"consumer group {group!r} does not exist") from None
            raise
        # An entry trimmed away while pending comes back without fields: report it as None.
        return [(cursor, fields or None) for cursor, fields in reply[0][1]] if reply else []

    async def claim(
        self, group: str, consumer: str, *, min_idle_ms: int, start: str = "0-0", count: int = 100
    ) -> tuple[str, list[tuple[str, dict[str, str]]], list[str]]:
        """XAUTOCLAIM: pending entries idle for ``min_idle_ms`` move to ``consumer``.

        Returns the cursor to continue scanning from (``0-0`` when done), the claimed
        entries, and the ids of pending entries that had been trimmed away (Redis drops those
        from the pending list).
        """
        reply = await self._call(
            lambda: self.redis.xautoclaim(self.stream_key, group, consumer, min_idle_ms, start_id=start, count=count)
        )
        # Redis 7 lists trimmed entries apart; Redis 6.2 returns them without fields.
        deleted = [str(c) for c in reply[2]] if len(reply) > 2 else []
        deleted += [c for c, f in reply[1] if not f]
        return str(reply[0]), [(c, f) for c, f in reply[1] if f], deleted

    async def deliveries(self, group: str, cursors: list[str]) -> dict[str, int]:
        """How many times each pending entry was delivered (Redis counts reads and claims)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for cursor in cursors:
                pipe.xpending_range(self.stream_key, group, min=cursor, max=cursor, count=1)
            replies = await self._call(pipe.execute)
        return {row["message_id"]: int(row["times_delivered"]) for reply in replies for row in reply}

    async def ack(self, group: str, *cursors: str) -> int:
        return int(await self._call(lambda: self.redis.xack(self.stream_key, group, *cursors)))

    async def dead_letter(self, group: str, cursor: str, fields: dict[str, str], note: dict[str, str]) -> str:
        """Copy an entry with ``note`` (error, attempts...) to the group's dead-letter stream and ack it.

        Both happen in one script (the keys share the hash tag), so an entry is
        either still pending or dead-lettered, never lost and never both.
        """
        entry = {**fields, **note, "cursor": cursor}
        keys = [self.dead_letter_key(group), self.stream_key]
        args: list[str | int] = [group, cursor, self.stream_maxlen, *(x for pair in entry.items() for x in pair)]
        script = self.scripts["deadletter"]
        return str(await self._call(lambda: script(keys=keys, args=args)))

    async def dead_letters(self, group: str, *, count: int = 100) -> list[tuple[str, dict[str, str]]]:
        """The oldest entries of the group's dead-letter stream."""
        return list(await self._call(lambda: self.redis.xrange(self.dead_letter_key(group), count=count)))
