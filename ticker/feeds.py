"""Feeds for readers and partners that only speak HTTP: JSON Feed 1.1 and Atom.

``GET /feed.json`` and ``GET /feed.atom``, each with ``?channel=`` (one
channel; all by default) and ``?limit=`` (newest items first). Edited items
carry their update time and say "Updated" or "Corrected" in the text; Atom
lists retracted items as RFC 6721 tombstones (``at:deleted-entry``), JSON Feed
(which has no tombstones) in its ``_ticker.retracted`` extension.

The stream cursor a feed is current as of is its ``ETag``, and the cursor's
time its ``Last-Modified``, so a conditional request for an unchanged feed costs
one Redis round trip and answers 304. ``If-Modified-Since`` is compared with the
cursor's time to the millisecond, never the rounded second, so a change in the
same second as the ``Last-Modified`` a poller saw is never hidden; only
``If-None-Match`` makes the cheap poll certain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ticker.config import MAX_PAGE_LIMIT
from ticker.http import BEFORE, before_param, channel_param, limit_param, settings_of, store_of
from ticker.models import CHANNEL_PATTERN, Item, format_time
from ticker.store import Page
from ticker.urls import Urls

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
ATOM_NS = "http://www.w3.org/2005/Atom"
TOMBSTONE_NS = "http://purl.org/atompub/tombstones/1.0"
FEED_TITLE = "Ticker"
DEFAULT_TOMBSTONES = 50
CACHE_CONTROL = "no-cache"
"""Caches may keep a feed but must revalidate: a 304 costs little, a stale headline a lot."""


def cursor_time(cursor: str) -> datetime:
    """The time a cursor's change was appended (its milliseconds part)."""
    return datetime.fromtimestamp(int(cursor.split("-", 1)[0]) / 1000, UTC)


def validators(cursor: str) -> dict[str, str]:
    return {
        "ETag": f'"{cursor}"',
        "Last-Modified": format_datetime(cursor_time(cursor).replace(microsecond=0), usegmt=True),
        "Cache-Control": CACHE_CONTROL,
    }


def not_modified(request: Request, cursor: str) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present, else If-Modified-Since."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        return "*" in tags or f'"{cursor}"' in tags
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False  # an unreadable date is ignored, as the RFC says
    if when.tzinfo is None:
        return False
    # To the millisecond: Last-Modified is the change's second rounded down, and a later
    # change in that same second must not pass for "not modified" (pollers would miss it).
    return cursor_time(cursor) <= when


def edit_note(item: Item) -> str:
    """What a feed reader shows under the headline: the edit badge and the correction note."""
    lines = [item.headline]
    if item.correction is not None:
        lines.append(f"Corrected {format_time(item.updated_at or item.published_at)}: {item.correction}")
    elif item.updated_at is not None:
        lines.append(f"Updated {format_time(item.updated_at)}")
    return "\n\n".join(lines)


def edit_kind(item: Item) -> str | None:
    if item.correction is not None:
        return "corrected"
    return "updated" if item.updated_at is not None else None


@dataclass(frozen=True, slots=True)
class FeedRequest:
    """What one feed answer is built from: its URLs, the page asked for and the tombstones."""

    urls: Urls
    path: str
    channel: str | None
    limit: str | None
    """The ``limit`` as asked (None: the default), repeated in the feed's own and next URLs."""
    page: Page
    gone: list[tuple[Item, str]]
    lang: str

    def url(self, before: str | None = None) -> str:
        """This feed's absolute URL; with ``before``, the URL of the next (older) page."""
        return self.urls.path(
            self.path, {"channel": self.channel or "", "limit": self.limit or "", "before": before or ""}
        )


def json_feed(feed: FeedRequest, before: str | None = None) -> Any:
    """The JSON Feed 1.1 document: items newest first, ``content_text`` on every item."""
    page, urls = feed.page, feed.urls
    items = []
    for item in page.items:
        entry: dict[str, Any] = {
            "id": item.id,
            "url": item.url or urls.item(item.id),
            "title": item.headline,
            "content_text": edit_note(item),
            "date_published": format_time(item.published_at),
            "_ticker": {
                "version": item.version,
                "channel": item.channel,
                "edit": edit_kind(item),
                "correction": item.correction,
                "pinned": item.pinned,
                "key_event": item.key_event,
                "urgency": item.urgency,
            },
        }
        if item.image is not None:
            entry["image"] = item.image.url
            entry["_ticker"]["image"] = item.image.model_dump()
        if item.updated_at is not None:
            entry["date_modified"] = format_time(item.updated_at)
        if item.labels:
            entry["tags"] = item.labels
        if item.author:
            entry["authors"] = [{"name": item.author}]
        if item.lang:
            entry["language"] = item.lang
        items.append(entry)
    document: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": title(feed.channel),
        "home_page_url": urls.home(),
        "feed_url": feed.url(before),
        "language": feed.lang,
        "items": items,
        "_ticker": {
            "cursor": page.cursor,
            "retracted": [
                {"id": item.id, "cursor": cursor, "retracted_at": format_time(cursor_time(cursor))}
                for item, cursor in feed.gone
            ],
        },
    }
    if page.next is not None:
        document["next_url"] = feed.url(page.next)
    return document


def title(channel: str | None) -> str:
    return FEED_TITLE if channel is None else f"{FEED_TITLE}: {channel}"


def _text(tag: str, value: str, **attrs: str) -> str:
    attributes = "".join(f" {name}={quoteattr(v)}" for name, v in attrs.items())
    return f"<{tag}{attributes}>{escape(value)}</{tag}>"


def atom_feed(feed: FeedRequest, before: str | None = None) -> str:
    """The Atom document, with an ``at:deleted-entry`` tombstone per retracted item.

    The feed's ``id`` is its URL without ``limit`` or ``before``, an entry's ``id`` the
    item's permalink: both stable under ``TICKER_PUBLIC_URL``, whatever ``Host`` was sent.
    """
    page, urls = feed.page, feed.urls
    updated = format_time(cursor_time(page.cursor)) if page.cursor != "0-0" else format_time(datetime.now(UTC))
    feed_id = urls.path(feed.path, {"channel": feed.channel or ""})
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<feed xmlns="{ATOM_NS}" xmlns:at="{TOMBSTONE_NS}" xml:lang={quoteattr(feed.lang)}>',
        _text("id", feed_id),
        _text("title", title(feed.channel)),
        _text("updated", updated),
        f"<author>{_text('name', FEED_TITLE)}</author>",
        f'<link rel="self" type="application/atom+xml" href={quoteattr(feed.url(before))}/>',
        f'<link rel="alternate" type="text/html" href={quoteattr(urls.home())}/>',
    ]
    if page.next is not None:
        out.append(f'<link rel="next" type="application/atom+xml" href={quoteattr(feed.url(page.next))}/>')
    for item in page.items:
        out.append("<entry>" if item.lang is None else f"<entry xml:lang={quoteattr(item.lang)}>")
        out.append(_text("id", urls.item(item.id)))
        out.append(_text("title", item.headline, type="text"))
        out.append(_text("published", format_time(item.published_at)))
        out.append(_text("updated", format_time(item.updated_at or item.published_at)))
        if item.author:
            out.append(f"<author>{_text('name', item.author)}</author>")
        out.append(f'<link rel="alternate" href={quoteattr(item.url or urls.item(item.id))}/>')
        if item.image is not None:
            out.append(f'<link rel="enclosure" href={quoteattr(item.image.url)} title={quoteattr(item.image.alt)}/>')
        if item.key_event:
            out.append('<category scheme="urn:ticker:key-event" term="key-event"/>')
        for label in item.labels:
            out.append(f"<category term={quoteattr(label)}/>")
        if (kind := edit_kind(item)) is not None:
            out.append(f'<category scheme="urn:ticker:edit" term={quoteattr(kind)}/>')
        out.append(_text("content", edit_note(item), type="text"))
        out.append("</entry>")
    for item, cursor in feed.gone:
        ref, when = quoteattr(urls.item(item.id)), quoteattr(format_time(cursor_time(cursor)))
        out.append(f"<at:deleted-entry ref={ref} when={when}>{_text('at:comment', 'Retracted')}</at:deleted-entry>")
    out.append("</feed>")
    return "\n".join(out) + "\n"


async def _feed(request: Request, kind: str) -> Response:
    channel = channel_param(request)
    limit = limit_param(request)
    before = before_param(request)
    store = store_of(request)
    head = await store.head()
    if not_modified(request, head):
        return Response(status_code=304, headers=validators(head))
    page = await store.page(channel=channel, limit=limit, before=before)
    gone = await store.tombstones(channel=channel, limit=DEFAULT_TOMBSTONES)
    feed = FeedRequest(
        urls=Urls.of(request),
        path="/feed.json" if kind == "json" else "/feed.atom",
        channel=channel,
        limit=str(limit) if request.query_params.get("limit") else None,
        page=page,
        gone=gone,
        lang=settings_of(request).locale,
    )
    headers = validators(page.cursor)
    if kind == "json":
        body = json.dumps(json_feed(feed, before), ensure_ascii=False, separators=(",", ":"))
        return Response(body, 200, headers, media_type="application/feed+json")
    return Response(atom_feed(feed, before), 200, headers, media_type="application/atom+xml")


async def feed_json(request: Request) -> Response:
    return await _feed(request, "json")


async def feed_atom(request: Request) -> Response:
    return await _feed(request, "atom")


def openapi_paths() -> dict[str, Any]:
    """The feeds' part of the OpenAPI document."""
    channel = f"^(?:{CHANNEL_PATTERN[1:-1]})?$"
    limit = {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_LIMIT}
    before = f"^(?:{BEFORE.pattern[1:-1]})?$"
    params = [
        {"name": "channel", "in": "query", "required": False, "schema": {"type": "string", "pattern": channel}},
        {"name": "limit", "in": "query", "required": False, "schema": limit},
        {
            "name": "before",
            "in": "query",
            "required": False,
            "description": "next_url's page token: the page of older items",
            "schema": {"type": "string", "pattern": before},
        },
        {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}},
        {"name": "If-Modified-Since", "in": "header", "required": False, "schema": {"type": "string"}},
    ]

    def feed(summary: str, media_type: str) -> dict[str, Any]:
        return {
            "get": {
                "summary": summary,
                "parameters": params,
                "responses": {
                    "200": {"description": "The feed (ETag: the stream cursor)", "content": {media_type: {}}},
                    "304": {"description": "Not modified since the ETag or date given"},
                    "400": {
                        "description": "Malformed channel or limit",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                },
            }
        }

    return {
        "/feed.json": feed("JSON Feed 1.1 of the newest items", "application/feed+json"),
        "/feed.atom": feed("Atom feed of the newest items, with RFC 6721 tombstones", "application/atom+xml"),
    }


routes = [
    Route("/feed.json", feed_json, methods=["GET"]),
    Route("/feed.atom", feed_atom, methods=["GET"]),
]
