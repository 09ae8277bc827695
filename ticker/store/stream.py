"""Reading the change log in order: what the stream reader, a resuming live client and
:mod:`ticker.consumer` read, and whether a position still has everything after it.
Entries are appended only by the scripts of :mod:`ticker.store.items` and
:mod:`ticker.store.schedule`.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

from ticker.models import Change
from ticker.protocol import cursor_key
from ticker.store.connection import Connection


class Stream(Connection):
    async def head(self) -> str:
        """The cursor of the newest entry (``0-0`` for an empty stream)."""
        last = await self._call(lambda: self.redis.xrevrange(self.stream_key, count=1))
        return str(last[0][0]) if last else "0-0"

    async def first(self) -> str | None:
        """The cursor of the oldest retained entry; older cursors have been trimmed away."""
        first = await self._call(lambda: self.redis.xrange(self.stream_key, count=1))
        return str(first[0][0]) if first else None

    async def changes_after(self, cursor: str, *, count: int = 1000) -> list[Change]:
        """Entries after ``cursor``, oldest first (no waiting)."""
        rows = await self._call(lambda: self.redis.xrange(self.stream_key, min="(" + cursor, count=count))
        return [Change.from_entry(entry_id, fields) for entry_id, fields in rows]

    async def changes_until(self, cursor: str, *, count: int) -> list[Change]:
        """Up to ``count`` entries ending at ``cursor`` (inclusive), oldest first: history for resumes."""
        rows = await self._call(lambda: self.redis.xrevrange(self.stream_key, max=cursor, count=count))
        return [Change.from_entry(entry_id, fields) for entry_id, fields in reversed(rows)]

    async def has(self, cursor: str) -> bool:
        """Whether the entry ``cursor`` is in the stream (after a failover: whether the new primary had it)."""
        return bool(await self._call(lambda: self.redis.xrange(self.stream_key, min=cursor, max=cursor, count=1)))

    async def wait_changes(self, cursor: str, *, count: int = 1000, block_ms: int = 5000) -> list[Change]:
        """Entries after ``cursor``, waiting up to ``block_ms`` for the first one."""
        reply: Any = await self._call(lambda: self.redis.xread({self.stream_key: cursor}, count=count, block=block_ms))
        if not reply:
            return []
        return [Change.from_entry(entry_id, fields) for entry_id, fields in reply[0][1]]

    async def trimmed_after(self, cursor: str, *, entries_read: int | None = None) -> bool:
        """Whether entries after ``cursor`` were trimmed away, so a reader there missed some.

        With a group's ``entries_read`` counter the answer is exact; without it, any
        cursor older than the oldest retained entry counts (the entry right after it
        may have been the oldest one trimmed).
        """
        try:
            info = await self._call(lambda: self.redis.xinfo_stream(self.stream_key))
        except ResponseError:
            return False  # no stream yet
        first = info.get("first-entry")
        if not first or cursor_key(cursor) >= cursor_key(str(first[0])):
            return False
        added = info.get("entries-added")
        if entries_read is not None and added is not None:
            return int(added) - entries_read - int(info["length"]) > 0
        return True
