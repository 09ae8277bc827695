"""The reader page ``/``, the desk ``/desk``, the widget settings and the files of ``web/`` (shipped as ``ticker.web``).

Pages are static HTML with a few values filled in (display time zone, locale,
site name and the schema.org JSON-LD); everything dynamic happens in
``web/ticker.js`` and ``web/desk.js`` under a strict Content-Security-Policy:
no inline script or style, no ``eval``, and Trusted Types required, so no
string can ever become HTML.

``/static/`` serves the scripts, styles and icon (:data:`STATIC_SUFFIXES`),
never the HTML sources (their placeholders would show raw) nor anything else
in the directory, each with the headers of :mod:`ticker.headers`. A page links
them as ``/static/NAME?v=VERSION`` (:func:`asset_version`, a hash of their
contents), which may be cached for good; any other request for them
revalidates with the ``ETag`` every time.

The embeddable widget is ``/static/ticker.js`` on a foreign site: it reads
``/widget.json`` and ``GET /api/items`` across origins, which
:class:`ticker.headers.ReadCors` allows for anonymous reads only (no credentials, GET/HEAD).
"""

from __future__ import annotations

import hashlib
import html
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from ticker.config import DEFAULT_CHANNEL, Settings
from ticker.headers import IMMUTABLE, PAGE_HEADERS, REVALIDATE, STATIC_HEADERS
from ticker.http import settings_of
from ticker.models import Item, format_time
from ticker.urls import Urls

WEB_DIR = Path(str(resources.files("ticker.web")))
"""The page sources: HTML, JavaScript and CSS, served as they are (no build step)."""
JSON_LD_ITEMS = 20
STATIC_SUFFIXES = (".js", ".css", ".svg")
"""What ``/static/`` serves; the HTML sources and the package's own files stay private."""


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


@lru_cache(maxsize=4)
def _hash_files(signature: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, _, _ in signature:
        digest.update(name.encode() + b"\0" + (WEB_DIR / name).read_bytes())
    return digest.hexdigest()[:12]


def asset_version() -> str:
    """A hash of the files ``/static/`` serves: it changes with any of them, so a page's
    ``?v=`` links never meet an old copy in a cache. Hashed again only when a file changes."""
    files = sorted(p for p in WEB_DIR.iterdir() if p.is_file() and p.suffix in STATIC_SUFFIXES)
    return _hash_files(tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files))


class WebFiles(StaticFiles):
    """The scripts, styles and icon of ``web/``, with hardening and cache headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if not path.lower().endswith(STATIC_SUFFIXES):
            raise HTTPException(404, "no such file; the pages are served at / and /desk")
        response = await super().get_response(path, scope)
        response.headers.update(STATIC_HEADERS)
        asked = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("v", [])
        response.headers["Cache-Control"] = IMMUTABLE if asked == [asset_version()] else REVALIDATE
        return response


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
        "v": asset_version(),
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
    Mount("/static", WebFiles(directory=WEB_DIR, check_dir=False), name="static"),
]
