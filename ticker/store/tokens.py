"""Staff tokens (only their hashes are stored; :mod:`ticker.auth` makes and checks them) and
each token's write limit, shared by every server process of the deployment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ticker.errors import Conflict, NotFound
from ticker.store.connection import Connection

Found = tuple[str, dict[str, Any], float]
"""A token's name, its record, and the seconds until its next write (0: it may write now)."""


@dataclass(frozen=True, slots=True)
class TokenUse:
    """A staff token for a write to check in its own script, in the same round trip
    (``publish.lua``): found, allowed one of :attr:`allowed`, and within its write limit."""

    digest: str
    at: str
    """When it is used (ISO 8601), recorded as its last use."""
    rate: float
    burst: int
    allowed: tuple[str, ...]
    """Every scope that allows the write."""

    def args(self) -> list[str | float | int]:
        """The script's token arguments, in ``_token.lua``'s order, then the allowed scopes."""
        return [self.digest, self.at, self.rate, self.burst, " ".join(self.allowed)]


class TokenRefused(Exception):
    """A write's own script refused its token, and wrote nothing: unknown (``found`` is
    ``None``), without the scope, or over its write limit."""

    def __init__(self, found: Found | None) -> None:
        super().__init__("the token was refused")
        self.found = found


def token_found(name: str, record: str, wait_us: int | str) -> Found:
    return name, json.loads(record), int(wait_us) / 1_000_000


class Tokens(Connection):
    async def add_token(self, name: str, token_hash: str, record: dict[str, Any]) -> None:
        created = await self._call(lambda: self.redis.hsetnx(self.keys.tokens, name, json.dumps(record)))
        if not created:
            raise Conflict(f"a token named {name!r} exists already; revoke it first or pick another name")
        await self._call(lambda: self.redis.hset(self.keys.token_hash, token_hash, name))

    async def use_token(self, token_hash: str, at: str, *, write: tuple[float, int] | None = None) -> Found | None:
        """The token's name and record, recording its use at ``at``; ``None`` if unknown or revoked.

        With ``write`` (rate per second, burst) one write is also taken from the
        token's limit, shared by every process, in the same round trip: the third
        value is 0 when it was, else the seconds until one may be.
        """
        args: list[str | float | int] = [token_hash, at, *(write or ())]
        script = self.scripts["token"]
        reply = await self._call(lambda: script(keys=self.keys.token_keys, args=args))
        return None if not reply else token_found(*reply)

    async def tokens(self) -> dict[str, dict[str, Any]]:
        records = await self._call(lambda: self.redis.hgetall(self.keys.tokens))
        used = await self._call(lambda: self.redis.hgetall(self.keys.token_used))
        return {name: {**json.loads(raw), "last_used": used.get(name)} for name, raw in sorted(records.items())}

    async def revoke_token(self, name: str) -> None:
        raw = await self._call(lambda: self.redis.hget(self.keys.tokens, name))
        if raw is None:
            raise NotFound(f"no token named {name!r}")
        record = json.loads(raw)
        script = self.scripts["revoke"]
        await self._call(lambda: script(keys=self.keys.token_keys, args=[record["hash"], name]))
