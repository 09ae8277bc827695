"""Staff tokens: created once, stored hashed in Redis, checked on every write.

A token is shown to its owner once and only its SHA-256 is stored: tokens are
256 random bits, so a fast hash is enough, and a lookup by hash plus a
constant-time comparison never reveals the secret by timing. Revocation deletes
the hash from Redis, so every server process refuses the token at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import NoReturn

from ticker.errors import Forbidden, InvalidInput, RateLimited, Unauthorized
from ticker.models import format_time, now
from ticker.store import Found, Store, TokenRefused, TokenUse

TOKEN_PREFIX = "tk_"
TOKEN_BYTES = 32
TOKEN_PATTERN = re.compile(r"tk_[A-Za-z0-9_-]{43}")
"""Every token :func:`create_token` makes: the prefix and 32 bytes in URL-safe base64."""
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class Scope(StrEnum):
    PUBLISH = "publish"
    EDIT = "edit"
    RETRACT = "retract"
    ADMIN = "admin"
    """Everything."""


@dataclass(frozen=True, slots=True)
class Staff:
    """Who made a request: the token's name is recorded as the change's actor."""

    name: str
    scopes: frozenset[Scope]
    write_wait: float = 0.0
    """For a write: 0 if the token's rate limit let it through, else seconds until it would."""

    def require(self, scope: Scope) -> None:
        if not self.scopes & set(granting(scope)):
            raise Forbidden(f"token {self.name!r} lacks the {scope.value!r} scope")

    def admit(self, scope: Scope) -> None:
        """Allowed ``scope`` and within the write limit: 403 before 429, so a token that may
        never make this write is not told to wait for it."""
        self.require(scope)
        if self.write_wait:
            raise RateLimited(f"too many writes from token {self.name!r}; slow down", retry_after=self.write_wait)


def granting(scope: Scope) -> tuple[Scope, ...]:
    """The scopes that allow what ``scope`` names: itself and admin (the one rule; a write
    that checks its token in its own script is handed this list)."""
    return (scope, Scope.ADMIN)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scopes(values: list[str]) -> frozenset[Scope]:
    if not values:
        raise InvalidInput("give at least one scope: " + ", ".join(s.value for s in Scope))
    try:
        return frozenset(Scope(v.strip().lower()) for v in values)
    except ValueError:
        bad = next(v for v in values if v.strip().lower() not in {s.value for s in Scope})
        raise InvalidInput(f"unknown scope {bad!r}; use " + ", ".join(s.value for s in Scope)) from None


async def create_token(store: Store, name: str, scopes: frozenset[Scope]) -> str:
    """Create a named token and return its secret (the only time it is seen)."""
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidInput(f"token name {name!r} must be 1-64 of A-Z a-z 0-9 _ . @ -")
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    digest = hash_token(token)
    record = {"scopes": sorted(s.value for s in scopes), "hash": digest, "created_at": format_time(now())}
    await store.add_token(name, digest, record)
    return token


async def authenticate(store: Store, authorization: str | None, *, write: tuple[float, int] | None = None) -> Staff:
    """The staff member behind an ``Authorization: Bearer`` header, or 401.

    A token of the wrong shape is refused without a Redis round trip. With
    ``write`` (rate per second, burst), the same round trip takes one write from
    the token's shared limit (:attr:`Staff.write_wait`).
    """
    digest = token_digest(authorization)
    return staff_of(await store.use_token(digest, format_time(now()), write=write), digest)


def token_use(authorization: str | None, scope: Scope, write: tuple[float, int]) -> TokenUse:
    """The token of a write that checks it in its own script (:meth:`Store.publish`), or 401 for
    a header of the wrong shape; turn its :class:`TokenRefused` into the answer with :func:`refuse`."""
    rate, burst = write
    return TokenUse(token_digest(authorization), format_time(now()), rate, burst, granting(scope))


def refuse(refused: TokenRefused, token: TokenUse, scope: Scope) -> NoReturn:
    """Raise what a write whose script refused its token answers: what :func:`authenticate`
    and :meth:`Staff.admit` would have said."""
    member = staff_of(refused.found, token.digest)
    member.admit(scope)
    raise Forbidden(f"token {member.name!r} may not make this write")  # the script and admit disagree


def staff_of(found: Found | None, digest: str) -> Staff:
    if found is None or not hmac.compare_digest(found[1]["hash"], digest):
        raise Unauthorized("unknown or revoked token")
    name, record, wait = found
    return Staff(name, frozenset(Scope(s) for s in record["scopes"]), wait)


def token_digest(authorization: str | None) -> str:
    """The hash a token is stored under, or 401 for a header no token ever had."""
    if not authorization:
        raise Unauthorized("this needs a staff token: send 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    token = token.strip()
    if not TOKEN_PATTERN.fullmatch(token):  # no token ever had this shape: no need to ask Redis
        raise Unauthorized("unknown or revoked token")
    return hash_token(token)
