"""HTTP routes for items: parse, call the store, respond."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ticker.admission import Admission
from ticker.auth import Scope, Staff, authenticate, refuse, token_use
from ticker.errors import RateLimited, TickerError, Unauthorized
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
from ticker.limits import FailureLimit
from ticker.models import Item, ItemCreate, ItemEdit, ScheduledEdit, parse
from ticker.store import TokenRefused, Version, WriteResult

MAX_QUERY = 200


def item_json(item: Item) -> Any:
    return item.model_dump(mode="json")


def write_answer(result: WriteResult, status: int) -> Response:
    if result.scheduled:
        headers = {"Location": f"/api/scheduled/{result.item.id}"}
        body = {"item": item_json(result.item), "cursor": result.cursor, "scheduled": True}
        return json_response(body, status, headers)
    headers = {"ETag": f'"{result.item.version}"', "Location": f"/api/items/{result.item.id}"}
    return json_response({"item": item_json(result.item), "cursor": result.cursor}, status, headers)


@contextlib.contextmanager
def logging_in(request: Request) -> Iterator[str | None]:
    """The request's ``Authorization`` header, to check inside the block; 429 while its
    address has failed too often, and a 401 from the block counts as a failure.

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
        yield authorization
    except Unauthorized:
        if authorization:  # a token was offered and was wrong: a guess
            failures.fail(address, time.monotonic())
        raise


def write_limit(request: Request) -> tuple[float, int]:
    settings = settings_of(request)
    return settings.write_rate, settings.write_burst


async def login(request: Request, *, write: bool = False) -> Staff:
    """The staff member behind the request's token (see :func:`logging_in`). With ``write``,
    the same Redis round trip takes one write from the token's limit (see :func:`staff`)."""
    with logging_in(request) as authorization:
        return await authenticate(store_of(request), authorization, write=write_limit(request) if write else None)


async def staff_reader(request: Request, scope: Scope | None = None) -> Staff:
    """The authenticated staff member (allowed ``scope``, when given), for staff-only reads."""
    member = await login(request)
    if scope is not None:
        member.require(scope)
    return member


async def staff(request: Request, scope: Scope) -> Staff:
    """The authenticated staff member, allowed ``scope`` and within the write rate (kept in Redis,
    so every process counts against the same limit). The token check and the rate limit are
    one round trip; a write refused for its scope has still counted against the limit."""
    member = await login(request, write=True)
    member.admit(scope)
    return member


async def list_items(request: Request) -> Response:
    before = before_param(request)
    query = request.query_params.get("q", "").strip()
    if len(query) > MAX_QUERY:
        raise TickerError(f"q must be at most {MAX_QUERY} characters", fields=[{"field": "q", "message": "too long"}])
    store, channel, limit = store_of(request), channel_param(request), limit_param(request)
    key_events = request.query_params.get("key_event", "") in ("1", "true")
    if query or key_events:
        page = await store.search(query.split(), channel=channel, limit=limit, before=before, key_events=key_events)
    else:
        page = await store.page(channel=channel, limit=limit, before=before)
    body: dict[str, Any] = {
        "items": [item_json(i) for i in page.items],
        "cursor": page.cursor,
        "next": page.next,
    }
    if before is None and not query and not key_events:
        body["pinned"] = [item_json(i) for i in page.pinned]
    return json_response(body)


async def get_item(request: Request) -> Response:
    item = await store_of(request).get(item_id(request))
    return json_response(item_json(item), headers={"ETag": f'"{item.version}"'})


def parse_body(request: Request, model: type[Any], data: Any) -> Any:
    settings = settings_of(request)
    return parse(model, data, labels=settings.labels, image_origins=settings.image_origins)


async def create_item(request: Request) -> Response:
    """The token is checked by the publish's own script: one Redis round trip for both.

    A locked-out address or a header no token has is refused before the body is
    read; a bad body is refused only after the token is checked on its own, so who
    may not publish hears that first, as for every write.
    """
    limit = write_limit(request)
    with logging_in(request) as authorization:
        token = token_use(authorization, Scope.PUBLISH, limit)
        try:
            create = parse_body(request, ItemCreate, await read_json(request))
        except TickerError:
            (await authenticate(store_of(request), authorization, write=limit)).admit(Scope.PUBLISH)
            raise
        try:
            result = await store_of(request).publish(create, token=token)
        except TokenRefused as refused:
            refuse(refused, token, Scope.PUBLISH)
    return write_answer(result, 201 if result.created else 200)


async def edit_item(request: Request) -> Response:
    member = await staff(request, Scope.EDIT)
    target = item_id(request)
    edit = parse_body(request, ItemEdit, await read_json(request))
    result = await store_of(request).edit(target, edit, actor=member.name, if_match=if_match(request))
    return write_answer(result, 200)


async def retract_item(request: Request) -> Response:
    member = await staff(request, Scope.RETRACT)
    result = await store_of(request).retract(item_id(request), actor=member.name, if_match=if_match(request))
    return write_answer(result, 200)


def version_json(version: Version) -> Any:
    return {
        "cursor": version.cursor,
        "kind": version.kind,
        "actor": version.actor,
        "ts": version.ts,
        "item": None if version.item is None else item_json(version.item),
    }


async def item_history(request: Request) -> Response:
    """Every change of an item with its kind, actor and time (staff: it names who did what)."""
    await staff_reader(request)
    versions = await store_of(request).history(item_id(request))
    return json_response({"versions": [version_json(v) for v in versions]})


async def list_scheduled(request: Request) -> Response:
    await staff_reader(request)
    items = await store_of(request).scheduled()
    return json_response({"items": [item_json(i) for i in items]})


async def edit_scheduled(request: Request) -> Response:
    await staff(request, Scope.EDIT)
    target = item_id(request)
    edit = parse_body(request, ScheduledEdit, await read_json(request))
    item = await store_of(request).edit_scheduled(target, edit)
    return json_response({"item": item_json(item), "scheduled": True})


async def cancel_scheduled(request: Request) -> Response:
    await staff(request, Scope.RETRACT)
    item = await store_of(request).cancel_scheduled(item_id(request))
    return json_response({"item": item_json(item), "cancelled": True})


async def publish_scheduled(request: Request) -> Response:
    await staff(request, Scope.PUBLISH)
    result = await store_of(request).release(item_id(request), force=True)
    assert result is not None  # a forced release either publishes or raises
    return write_answer(result, 200)


async def whoami(request: Request) -> Response:
    """Who a token is: its name and scopes (the desk checks a token as soon as it is entered)."""
    member = await staff_reader(request)
    return json_response({"name": member.name, "scopes": sorted(s.value for s in member.scopes)})


async def readers(request: Request) -> Response:
    """Live readers per channel, summed over every server process (``*``: readers of all channels)."""
    await staff_reader(request)
    counts = await store_of(request).readers()
    return json_response({"channels": counts, "total": sum(counts.values())})


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
    by_method("/api/items/{id}/history", {"GET": item_history}),
    by_method("/api/scheduled", {"GET": list_scheduled}),
    by_method("/api/scheduled/{id}", {"PATCH": edit_scheduled, "DELETE": cancel_scheduled}),
    by_method("/api/scheduled/{id}/publish", {"POST": publish_scheduled}),
    by_method("/api/me", {"GET": whoami}),
    by_method("/api/readers", {"GET": readers}),
]
