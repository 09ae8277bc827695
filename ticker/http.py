"""Request parsing and the one JSON response shape, shared by every HTTP route.

Item routes (:mod:`ticker.api`), feeds, the SSE stream and the operations routes
all read their parameters and bodies through these helpers, so a rule about a
parameter lives in one place.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ticker.config import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, Settings
from ticker.errors import InvalidInput, NotFound, PayloadTooLarge, TickerError, UnsupportedMediaType
from ticker.models import CHANNEL_PATTERN, is_channel, is_item_id
from ticker.store import Store

BEFORE = re.compile(r"^[0-9]{15}:[A-Za-z0-9_-]{1,64}$")
_IF_MATCH = re.compile(r'^\s*(?:W/)?"?([0-9]{1,18})"?\s*$')
_WHOLE = re.compile(r"[0-9]{1,18}")


def whole_number(raw: str) -> int | None:
    """A non-negative whole number written in ASCII digits, else None.

    The one parser for numbers in requests: ``str.isdigit`` and ``int`` also take
    superscripts, Arabic-Indic and fullwidth digits (``¹``, ``٣``, ``３``), and
    ``int`` signs, spaces and underscores; none of those is a number on the wire.
    """
    return int(raw) if _WHOLE.fullmatch(raw) else None


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    try:
        encoded = body.encode()
    except UnicodeEncodeError:  # a lone surrogate echoed from bad input: escape it as JSON allows
        encoded = json.dumps(data, separators=(",", ":")).encode()
    return Response(encoded, status, headers, media_type="application/json")


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
    declared = whole_number(request.headers.get("content-length", ""))
    if declared is not None and declared > limit:
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
    if raw is None:
        return DEFAULT_PAGE_LIMIT
    value = whole_number(raw)
    if value is None or not 1 <= value <= MAX_PAGE_LIMIT:
        raise TickerError(
            f"limit must be a whole number from 1 to {MAX_PAGE_LIMIT} in ASCII digits",
            fields=[{"field": "limit", "message": f"1 to {MAX_PAGE_LIMIT}"}],
        )
    return value


def before_param(request: Request) -> str | None:
    """The ``before`` page token of an older page, or None for the first page."""
    before = request.query_params.get("before") or None
    if before is not None and not BEFORE.fullmatch(before):
        raise TickerError(
            "before must be the 'next' token of an earlier page",
            fields=[{"field": "before", "message": "not a page token"}],
        )
    return before
