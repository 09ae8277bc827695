"""Readers now: each server process reports its live readers per channel, and any process
sums the reports of those that reported lately (a report expires unless refreshed,
so a process that died drops out by itself).
"""

from __future__ import annotations

from ticker.store.connection import Connection


class Audience(Connection):
    async def report_readers(self, process: str, counts: dict[str, int], *, ttl_ms: int) -> None:
        """This process's live readers per channel, kept for ``ttl_ms`` unless reported again."""
        key = self.keys.readers_of(process)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(key)
            if counts:
                pipe.hset(key, mapping=counts)  # type: ignore[arg-type]
                pipe.pexpire(key, ttl_ms)
            pipe.zadd(self.keys.readers, {process: 0})
            await self._call(pipe.execute)

    async def readers(self) -> dict[str, int]:
        """Live readers per channel, summed over every server process that reported lately."""
        processes = await self._call(lambda: self.redis.zrange(self.keys.readers, 0, -1))
        if not processes:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for process in processes:
                pipe.hgetall(self.keys.readers_of(process))
            rows = await self._call(pipe.execute)
        total: dict[str, int] = {}
        for process, counts in zip(processes, rows, strict=True):
            if not counts:
                await self._call(lambda: self.redis.zrem(self.keys.readers, process))  # noqa: B023
            for channel, n in counts.items():
                total[channel] = total.get(channel, 0) + int(n)
        return total
