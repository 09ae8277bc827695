"""The reader page ``/``, the desk ``/desk``, the widget settings and the files of ``web/`` (shipped as ``ticker.web``).

Pages are static HTML with a few values filled in (display time zone, locale,
site name and the schema.org JSON-LD); everything dynamic happens in
``web/ticker.js`` and ``web/desk.js`` under a strict Content-Security-Policy:
no inline script or style, no ``eval``, and Trusted Types required, so no
string can ever become HTML.

The embeddable widget is ``/static/ticker.js`` on a foreign site: it reads
``/widget.json`` and ``GET /api/items`` across origins, which
:class:`ticker.headers.ReadCors` allows for anonymous reads only (no credentials, GET/HEAD).
"""

from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ticker.config import DEFAULT_CHANNEL, Settings
from ticker.headers import PAGE_HEADERS
from ticker.http import settings_of
from ticker.models import Item, format_time
from ticker.urls import Urls

WEB_DIR = Path(str(resources.files("ticker.web")))
"""The page sources: HTML, JavaScript and CSS, served as they are (no build step)."""
JSON_LD_ITEMS = 20


def blog_posting(item: Item, urls: Urls) -> dict[str, Any]:
    """One item as a schema.org ``BlogPosting``, as mapped in ``docs/stream.md``."""
    permalink = urls.item(item.id)
    posting: dict[str, Any] = {
        "@type": "BlogPosting",
        "@id": f"{permalink}#posting",
        "identifier": item.id,
        "headline": item.headline,
        "url": item.url or permalink,
        "datePublished": format_time(item.published_at),
        "dateModified": format_time(item.updated_at or item.published_at),
        "articleSection": item.channel,
    }
    if item.labels:
        posting["keywords"] = item.labels
    if item.author:
        posting["author"] = {"@type": "Person", "name": item.author}
    if item.lang:
        posting["inLanguage"] = item.lang
    if item.correction:
        posting["correction"] = {"@type": "CorrectionComment", "text": item.correction}
    return posting


def json_ld(settings: Settings, items: list[Item], urls: Urls) -> str:
    """schema.org ``LiveBlogPosting`` for the page, safe inside a ``<script>`` element."""
    updates = [blog_posting(item, urls) for item in items]
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "LiveBlogPosting",
        "@id": urls.home(),
        "headline": settings.site_name,
        "url": urls.home(),
        "liveBlogUpdate": updates,
    }
    if items:
        data["coverageStartTime"] = updates[-1]["datePublished"]
        data["dateModified"] = max(u["dateModified"] for u in updates)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    # "<" never appears raw, so no "</script>" or "<!--" can end the block early.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(name: str, values: dict[str, str]) -> Response:
    text = (WEB_DIR / name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return Response(text, headers=PAGE_HEADERS, media_type="text/html")


def page_values(settings: Settings) -> dict[str, str]:
    return {
        "site": html.escape(settings.site_name),
        "timezone": html.escape(settings.display_timezone),
        "locale": html.escape(settings.locale),
        "channel": DEFAULT_CHANNEL,
    }


async def reader(request: Request) -> Response:
    settings = settings_of(request)
    page = await request.app.state.store.page(limit=JSON_LD_ITEMS)
    urls = Urls.of(request)
    values = page_values(settings) | {"jsonld": json_ld(settings, page.items, urls), "base": html.escape(urls.base)}
    return render("index.html", values)


async def desk(request: Request) -> Response:
    return render("desk.html", page_values(settings_of(request)))


async def widget_settings(request: Request) -> Response:
    """What the widget needs to show items the way the site is configured."""
    settings = settings_of(request)
    body = {
        "site": settings.site_name,
        "timezone": settings.display_timezone,
        "locale": settings.locale,
        "labels": list(settings.labels),
        "channel": DEFAULT_CHANNEL,
    }
    return Response(json.dumps(body), media_type="application/json", headers={"Cache-Control": "max-age=60"})


routes = [
    Route("/", reader, methods=["GET"]),
    Route("/desk", desk, methods=["GET"]),
    Route("/widget.json", widget_settings, methods=["GET"]),
    Mount("/static", StaticFiles(directory=WEB_DIR, check_dir=False), name="static"),
]
