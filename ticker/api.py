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
from ticker.models import CHANNEL_PATTERN, Item, ItemCreate, ItemEdit, is_channel, is_item_id, parse
from ticker.store import Store, WriteResult

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


def write_answer(result: WriteResult, status: int) -> Response:
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


async def staff(request: Request, scope: Scope) -> Staff:
    """The authenticated staff member, allowed ``scope`` and within the write rate."""
    member = await authenticate(store_of(request), request.headers.get("authorization"))
    member.require(scope)
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
    """The document is built on first request: its text patterns take a moment to derive."""
    return JSONResponse(request.app.state.openapi())


routes = [
    Route("/api/items", list_items, methods=["GET"]),
    Route("/api/items", create_item, methods=["POST"]),
    Route("/api/items/{id}", get_item, methods=["GET"]),
    Route("/api/items/{id}", edit_item, methods=["PATCH"]),
    Route("/api/items/{id}", retract_item, methods=["DELETE"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]
