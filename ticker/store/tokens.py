"""Staff tokens (only their hashes are stored; :mod:`ticker.auth` makes and checks them) and
each token's write limit, shared by every server process of the deployment.
"""

from __future__ import annotations

import json
from typing import Any

from ticker.errors import Conflict, NotFound
from ticker.store.connection import Connection


class Tokens(Connection):
    async def add_token(self, name: str, token_hash: str, record: dict[str, Any]) -> None:
        created = await self._call(lambda: self.redis.hsetnx(self.keys.tokens, name, json.dumps(record)))
        if not created:
            raise Conflict(f"a token named {name!r} exists already; revoke it first or pick another name")
        await self._call(lambda: self.redis.hset(self.keys.token_hash, token_hash, name))

    async def use_token(
        self, token_hash: str, at: str, *, write: tuple[float, int] | None = None
    ) -> tuple[str, dict[str, Any], float] | None:
        """The token's name and record, recording its use at ``at``; ``None`` if unknown or revoked.

        With ``write`` (rate per second, burst) one write is also taken from the
        token's limit, shared by every process, in the same round trip: the third
        value is 0 when it was, else the seconds until one may be.
        """
        keys = [self.keys.token_hash, self.keys.tokens, self.keys.token_used, self.keys.rates]
        args: list[str | float | int] = [token_hash, at, *(write or ())]
        script = self.scripts["token"]
        reply = await self._call(lambda: script(keys=keys, args=args))
        return None if not reply else (reply[0], json.loads(reply[1]), int(reply[2]) / 1_000_000)

    async def tokens(self) -> dict[str, dict[str, Any]]:
        records = await self._call(lambda: self.redis.hgetall(self.keys.tokens))
        used = await self._call(lambda: self.redis.hgetall(self.keys.token_used))
        return {name: {**json.loads(raw), "last_used": used.get(name)} for name, raw in sorted(records.items())}

    async def revoke_token(self, name: str) -> None:
        raw = await self._call(lambda: self.redis.hget(self.keys.tokens, name))
        if raw is None:
            raise NotFound(f"no token named {name!r}")
        record = json.loads(raw)
        keys = [self.keys.token_hash, self.keys.tokens, self.keys.token_used, self.keys.rates]
        script = self.scripts["revoke"]
        await self._call(lambda: script(keys=keys, args=[record["hash"], name]))
