"""Staff tokens against a real Redis: created once, stored hashed, scoped, revocable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.support import run
from ticker.auth import TOKEN_PREFIX, Scope, Staff, authenticate, create_token, hash_token, parse_scopes
from ticker.config import Settings
from ticker.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from ticker.store import Store, connect


async def with_store(settings: Settings, work: Callable[[Store], Awaitable[None]]) -> None:
    assert settings.redis_url
    client = connect(settings.redis_url)
    try:
        await work(Store(client, prefix=settings.prefix))
    finally:
        await client.aclose()


def test_a_token_is_shown_once_and_stored_only_hashed(settings: Settings) -> None:
    async def work(store: Store) -> None:
        secret = await create_token(store, "desk", frozenset({Scope.PUBLISH}))
        assert secret.startswith(TOKEN_PREFIX)
        stored = await store.tokens()
        assert stored["desk"]["hash"] == hash_token(secret)
        assert secret not in repr(stored)
        staff = await authenticate(store, f"Bearer {secret}")
        assert staff == Staff("desk", frozenset({Scope.PUBLISH}))
        assert (await store.tokens())["desk"]["last_used"]

    run(with_store(settings, work))


def test_scopes_and_admin(settings: Settings) -> None:
    Staff("a", frozenset({Scope.ADMIN})).require(Scope.RETRACT)
    Staff("p", frozenset({Scope.PUBLISH})).require(Scope.PUBLISH)
    with pytest.raises(Forbidden, match="retract"):
        Staff("p", frozenset({Scope.PUBLISH})).require(Scope.RETRACT)
    assert parse_scopes([" Publish", "edit"]) == {Scope.PUBLISH, Scope.EDIT}
    with pytest.raises(InvalidInput, match="unknown scope 'owner'"):
        parse_scopes(["edit", "owner"])
    with pytest.raises(InvalidInput, match="at least one"):
        parse_scopes([])


@pytest.mark.parametrize(
    "header", [None, "", "Basic abc", "Bearer", "Bearer  ", "Bearer tk_not-a-real-token", "bearer nope"]
)
def test_bad_credentials_are_401(settings: Settings, header: str | None) -> None:
    async def work(store: Store) -> None:
        with pytest.raises(Unauthorized):
            await authenticate(store, header)

    run(with_store(settings, work))


def test_names_are_unique_and_revocation_is_immediate(settings: Settings) -> None:
    async def work(store: Store) -> None:
        secret = await create_token(store, "night-desk", frozenset({Scope.ADMIN}))
        with pytest.raises(Conflict, match="exists already"):
            await create_token(store, "night-desk", frozenset({Scope.ADMIN}))
        with pytest.raises(InvalidInput, match="token name"):
            await create_token(store, "no spaces", frozenset({Scope.ADMIN}))
        await store.revoke_token("night-desk")
        with pytest.raises(Unauthorized, match="revoked"):
            await authenticate(store, f"Bearer {secret}")
        with pytest.raises(NotFound):
            await store.revoke_token("night-desk")

    run(with_store(settings, work))
