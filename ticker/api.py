"""HTTP routes for items and health: parse, call the store, respond."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ticker.auth import Scope, Staff, authenticate
from ticker.config import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, Settings
from ticker.errors import (
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    TickerError,
    UnsupportedMediaType,
)
from ticker.limits import KeyedBuckets
from ticker.models import (
    CHANNEL_PATTERN,
    Item,
    ItemCreate,
    ItemEdit,
    ScheduledEdit,
    is_channel,
    is_item_id,
    parse,
)
from ticker.store import Store, Version, WriteResult

_BEFORE = re.compile(r"^\d{15}:[A-Za-z0-9_-]{1,64}$")
_IF_MATCH = re.compile(r'^\s*(?:W/)?"?(\d{1,18})"?\s*$')


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    try:
        encoded = body.encode()
    except UnicodeEncodeError:  # a lone surrogate echoed from bad input: escape it as JSON allows
        encoded = json.dumps(data, separators=(",", ":")).encode()
    return Response(encoded, status, headers, media_type="application/json")


def item_json(item: Item) -> Any:
    return item.model_dump(mode="json")


MAX_QUERY = 200


def write_answer(result: WriteResult, status: int) -> Response:
    if result.scheduled:
        headers = {"Location": f"/api/scheduled/{result.item.id}"}
        body = {"item": item_json(result.item), "cursor": result.cursor, "scheduled": True}
        return json_response(body, status, headers)
    headers = {"ETag": f'"{result.item.version}"', "Location": f"/api/items/{result.item.id}"}
    return json_response({"item": item_json(result.item), "cursor": result.cursor}, status, headers)


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON objects with a key twice are refused: which value wins is not for us to guess."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise TickerError(f"the body repeats the key {key!r}", fields=[{"field": key, "message": "repeated key"}])
        seen.add(key)
    return dict(pairs)


async def read_json(request: Request) -> Any:
    """The request body as JSON: 415 unless it says JSON, 413 past the size limit."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    limit = settings_of(request).max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes")
    try:
        data = json.loads(body, object_pairs_hook=_no_repeated_keys)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TickerError(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise TickerError("the body is nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object", fields=[{"field": "body", "message": "not an object"}])
    return data


async def staff_reader(request: Request, scope: Scope | None = None) -> Staff:
    """The authenticated staff member (allowed ``scope``, when given), for staff-only reads."""
    member = await authenticate(store_of(request), request.headers.get("authorization"))
    if scope is not None:
        member.require(scope)
    return member


async def staff(request: Request, scope: Scope) -> Staff:
    """The authenticated staff member, allowed ``scope`` and within the write rate."""
    member = await staff_reader(request, scope)
    buckets: KeyedBuckets = request.app.state.write_limits
    wait = buckets.take(member.name, time.monotonic())
    if wait:
        raise RateLimited(f"too many writes from token {member.name!r}; slow down", retry_after=wait)
    return member


def item_id(request: Request) -> str:
    value: str = request.path_params["id"]
    if not is_item_id(value):
        raise NotFound(f"no item with id {value!r}")
    return value


def if_match(request: Request) -> int | None:
    raw = request.headers.get("if-match")
    if raw is None or raw.strip() == "*":
        return None
    match = _IF_MATCH.fullmatch(raw)
    if not match:
        raise TickerError("If-Match must be the item's version, e.g. '\"3\"' or '3'")
    return int(match.group(1))


def channel_param(request: Request) -> str | None:
    channel = request.query_params.get("channel") or None
    if channel is not None and not is_channel(channel):
        raise TickerError(
            f"channel {channel!r} is not a channel slug",
            fields=[{"field": "channel", "message": f"does not match {CHANNEL_PATTERN}"}],
        )
    return channel


def limit_param(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return DEFAULT_PAGE_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_LIMIT:
        raise TickerError(
            f"limit must be a whole number from 1 to {MAX_PAGE_LIMIT}",
            fields=[{"field": "limit", "message": f"1 to {MAX_PAGE_LIMIT}"}],
        )
    return int(raw)


async def list_items(request: Request) -> Response:
    before = request.query_params.get("before") or None
    if before is not None and not _BEFORE.fullmatch(before):
        raise TickerError(
            "before must be the 'next' token of an earlier page",
            fields=[{"field": "before", "message": "not a page token"}],
        )
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
    member = await staff(request, Scope.PUBLISH)
    create = parse_body(request, ItemCreate, await read_json(request))
    result = await store_of(request).publish(create, actor=member.name)
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


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    problems = await request.app.state.readiness()
    if problems:
        return json_response({"status": "not ready", "problems": problems}, 503, {"Retry-After": "2"})
    return json_response({"status": "ready"})


async def metrics(request: Request) -> Response:
    body, content_type = request.app.state.hub.metrics.render()
    return Response(body, headers={"Content-Type": content_type})


async def openapi(request: Request) -> Response:
    return JSONResponse(request.app.state.openapi)


routes = [
    Route("/api/items", list_items, methods=["GET"]),
    Route("/api/items", create_item, methods=["POST"]),
    Route("/api/items/{id}", get_item, methods=["GET"]),
    Route("/api/items/{id}", edit_item, methods=["PATCH"]),
    Route("/api/items/{id}", retract_item, methods=["DELETE"]),
    Route("/api/items/{id}/history", item_history, methods=["GET"]),
    Route("/api/scheduled", list_scheduled, methods=["GET"]),
    Route("/api/scheduled/{id}", edit_scheduled, methods=["PATCH"]),
    Route("/api/scheduled/{id}", cancel_scheduled, methods=["DELETE"]),
    Route("/api/scheduled/{id}/publish", publish_scheduled, methods=["POST"]),
    Route("/api/me", whoami, methods=["GET"]),
    Route("/api/readers", readers, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]
