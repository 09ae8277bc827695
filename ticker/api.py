"""HTTP routes for items: parse, call the store, respond."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ticker.admission import Admission
from ticker.auth import Scope, Staff, authenticate
from ticker.errors import RateLimited, Unauthorized
from ticker.http import (
    before_param,
    channel_param,
    if_match,
    item_id,
    json_response,
    limit_param,
    read_json,
    settings_of,
    store_of,
)
from ticker.limits import FailureLimit, KeyedBuckets
from ticker.models import Item, ItemCreate, ItemEdit, parse
from ticker.store import WriteResult


def item_json(item: Item) -> Any:
    return item.model_dump(mode="json")


def write_answer(result: WriteResult, status: int) -> Response:
    headers = {"ETag": f'"{result.item.version}"', "Location": f"/api/items/{result.item.id}"}
    return json_response({"item": item_json(result.item), "cursor": result.cursor}, status, headers)


async def login(request: Request) -> Staff:
    """The staff member behind the request's token; 429 while its address has failed too often.

    A locked-out address is refused before its token is looked at, so a guess
    made while locked out learns nothing.
    """
    failures: FailureLimit = request.app.state.login_failures
    admission: Admission = request.app.state.admission
    address = admission.client(request.scope)
    wait = failures.wait(address, time.monotonic())
    if wait:
        raise RateLimited("too many failed logins from this address; wait and try again", retry_after=wait)
    authorization = request.headers.get("authorization")
    try:
        return await authenticate(store_of(request), authorization)
    except Unauthorized:
        if authorization:  # a token was offered and was wrong: a guess
            failures.fail(address, time.monotonic())
        raise


async def staff(request: Request, scope: Scope) -> Staff:
    """The authenticated staff member, allowed ``scope`` and within the write rate."""
    member = await login(request)
    member.require(scope)
    buckets: KeyedBuckets = request.app.state.write_limits
    wait = buckets.take(member.name, time.monotonic())
    if wait:
        raise RateLimited(f"too many writes from token {member.name!r}; slow down", retry_after=wait)
    return member


async def list_items(request: Request) -> Response:
    before = before_param(request)
    page = await store_of(request).page(channel=channel_param(request), limit=limit_param(request), before=before)
    body: dict[str, Any] = {
        "items": [item_json(i) for i in page.items],
        "cursor": page.cursor,
        "next": page.next,
    }
    if before is None:
        body["pinned"] = [item_json(i) for i in page.pinned]
    return json_response(body)


async def get_item(request: Request) -> Response:
    item = await store_of(request).get(item_id(request))
    return json_response(item_json(item), headers={"ETag": f'"{item.version}"'})


async def create_item(request: Request) -> Response:
    member = await staff(request, Scope.PUBLISH)
    create = parse(ItemCreate, await read_json(request), labels=settings_of(request).labels)
    result = await store_of(request).publish(create, actor=member.name)
    return write_answer(result, 201 if result.created else 200)


async def edit_item(request: Request) -> Response:
    member = await staff(request, Scope.EDIT)
    target = item_id(request)
    edit = parse(ItemEdit, await read_json(request), labels=settings_of(request).labels)
    result = await store_of(request).edit(target, edit, actor=member.name, if_match=if_match(request))
    return write_answer(result, 200)


async def retract_item(request: Request) -> Response:
    member = await staff(request, Scope.RETRACT)
    result = await store_of(request).retract(item_id(request), actor=member.name, if_match=if_match(request))
    return write_answer(result, 200)


Endpoint = Callable[[Request], Awaitable[Response]]


def by_method(path: str, handlers: dict[str, Endpoint]) -> Route:
    """One route for a path that takes several methods.

    Starlette answers a method no route takes with the ``Allow`` of the first
    route whose path matched; with one route per path that is every method the
    path takes. ``HEAD`` is answered like ``GET``.
    """

    async def dispatch(request: Request) -> Response:
        return await handlers["GET" if request.method == "HEAD" else request.method](request)

    return Route(path, dispatch, methods=list(handlers))


routes = [
    by_method("/api/items", {"GET": list_items, "POST": create_item}),
    by_method("/api/items/{id}", {"GET": get_item, "PATCH": edit_item, "DELETE": retract_item}),
]
