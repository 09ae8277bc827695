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

import functools
import hashlib
import html
import json
import re
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from ticker.config import DEFAULT_CHANNEL, Settings
from ticker.errors import NotFound
from ticker.headers import IMMUTABLE, PAGE_HEADERS, REVALIDATE, STATIC_HEADERS, csp
from ticker.http import settings_of
from ticker.models import Image, Item, format_time, is_item_id
from ticker.urls import Urls

WEB_DIR = Path(str(resources.files("ticker.web")))
"""The page sources: HTML, JavaScript and CSS, served as they are (no build step)."""
JSON_LD_ITEMS = 20
STATIC_SUFFIXES = (".js", ".css", ".svg")
"""What ``/static/`` serves; the HTML sources and the package's own files stay private."""
IMAGE_OBJECT = (("caption", "caption"), ("credit", "creditText"), ("width", "width"), ("height", "height"))
"""Photo fields and their schema.org ``ImageObject`` names."""
RTL_LANGUAGES = ("ar", "he", "fa", "ur")
_PHRASE = re.compile(r"\{\{t:([^}]+)\}\}")


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
    if item.image is not None:
        image: dict[str, Any] = {"@type": "ImageObject", "url": item.image.url, "description": item.image.alt}
        for ours, theirs in IMAGE_OBJECT:
            if getattr(item.image, ours) is not None:
                image[theirs] = getattr(item.image, ours)
        posting["image"] = image
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
    return script_json(data)


def script_json(data: Any) -> str:
    """JSON safe inside a ``<script>`` data block."""
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


@functools.cache
def _all_strings() -> dict[str, dict[str, str]]:
    loaded: dict[str, dict[str, str]] = json.loads((WEB_DIR / "strings.json").read_text(encoding="utf-8"))
    return loaded


def language(locale: str) -> str:
    return locale.split("-")[0].lower()


def strings(locale: str) -> dict[str, str]:
    """The pages' words in the locale's language, keyed by their English text."""
    return _all_strings().get(language(locale), {})


def translate(locale: str, text: str) -> str:
    return strings(locale).get(text, text)


def render(request: Request, name: str, values: dict[str, str], status: int = 200) -> Response:
    """The page ``name`` with ``{{key}}`` values and ``{{t:English}}`` phrases in the configured language."""
    settings = settings_of(request)
    text = (WEB_DIR / name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    text = _PHRASE.sub(lambda m: html.escape(translate(settings.locale, m.group(1)), quote=True), text)
    headers = {**PAGE_HEADERS, "Content-Security-Policy": csp(settings.image_origins)}
    return Response(text, status, headers=headers, media_type="text/html")


def page_values(settings: Settings) -> dict[str, str]:
    return {
        "site": html.escape(settings.site_name),
        "timezone": html.escape(settings.display_timezone),
        "locale": html.escape(settings.locale),
        "lang": html.escape(settings.locale),
        "dir": "rtl" if language(settings.locale) in RTL_LANGUAGES else "ltr",
        "relative": "on" if settings.relative_times else "off",
        "channel": DEFAULT_CHANNEL,
        "v": asset_version(),
    }


async def reader(request: Request) -> Response:
    settings = settings_of(request)
    page = await request.app.state.store.page(limit=JSON_LD_ITEMS)
    urls = Urls.of(request)
    values = page_values(settings) | {"jsonld": json_ld(settings, page.items, urls), "base": html.escape(urls.base)}
    return render(request, "index.html", values)


async def desk(request: Request) -> Response:
    settings = settings_of(request)
    return render(request, "desk.html", page_values(settings) | {"strings": script_json(strings(settings.locale))})


def _when(value: datetime, zone: ZoneInfo) -> str:
    local = value.astimezone(zone)
    return f"{local.day} {local:%B %Y}, {local:%H:%M}"


def _time(value: datetime, zone: ZoneInfo) -> str:
    return f'<time datetime="{format_time(value)}">{html.escape(_when(value, zone))}</time>'


def _figure(image: Image) -> str:
    size = "".join(f' {name}="{value}"' for name, value in (("width", image.width), ("height", image.height)) if value)
    parts = [
        '<figure class="tk-lead">',
        # The photo is the page's largest content: fetched first, never lazily.
        f'<img src="{html.escape(image.url)}" alt="{html.escape(image.alt)}"{size}'
        ' fetchpriority="high" decoding="async">',
    ]
    if image.caption or image.credit:
        caption = html.escape(image.caption or "")
        credit = f' <span class="tk-credit">{html.escape(image.credit)}</span>' if image.credit else ""
        parts.append(f"<figcaption>{caption}{credit}</figcaption>")
    parts.append("</figure>")
    return "".join(parts)


async def permalink(request: Request) -> Response:
    """``/items/{id}``: the item with its corrections and JSON-LD; 410 with a tombstone once retracted."""
    settings = settings_of(request)
    store = request.app.state.store
    item_id = request.path_params["id"]
    zone = ZoneInfo(settings.display_timezone)
    values = page_values(settings)

    def t(text: str) -> str:
        return html.escape(translate(settings.locale, text))

    urls = Urls.of(request)
    values["permalink"] = html.escape(urls.item(item_id))
    gone = await store.retraction(item_id) if is_item_id(item_id) else None
    if gone is not None:
        _, cursor = gone
        retracted = datetime.fromtimestamp(int(cursor.split("-")[0]) / 1000, UTC)
        body = (
            f'<article class="permalink-gone"><h1 class="page-title">{t("This item was retracted")}</h1>'
            f"<p>{t('It was withdrawn on')} {_time(retracted, zone)} {t('and is no longer published.')}</p></article>"
        )
        ld = {"@context": "https://schema.org", "@type": "WebPage", "name": "Retracted item"}
        values |= {"title": t("Retracted"), "description": t("This item was retracted"), "body": body}
        return render(request, "item.html", values | {"jsonld": script_json(ld)}, status=410)
    try:
        item: Item | None = await store.get(item_id) if is_item_id(item_id) else None
    except NotFound:
        item = None
    if item is None:
        body = (
            f'<h1 class="page-title">{t("No such item")}</h1>'
            f"<p>{t('It may have been scheduled for later, or never existed.')}</p>"
        )
        values |= {"title": t("Not found"), "description": t("No such item"), "body": body, "jsonld": "{}"}
        return render(request, "item.html", values, status=404)
    versions = await store.history(item_id)
    lang = item.lang or settings.locale.split("-")[0]
    parts = ['<article class="permalink-item">']
    tags = [f'<span class="tk-tag tk-tag-{html.escape(label)}">{html.escape(label)}</span>' for label in item.labels]
    if item.key_event:
        tags.insert(0, f'<span class="tk-tag tk-tag-key">{t("Key event")}</span>')
    if tags:
        parts.append(f'<p class="tk-meta">{"".join(tags)}</p>')
    parts.append(f'<h1 class="page-title" lang="{html.escape(lang)}">{html.escape(item.headline)}</h1>')
    line = [_time(item.published_at, zone), html.escape(item.channel)]
    if item.author:
        line.append(html.escape(item.author))
    if item.updated_at is not None:
        line.append(f"{t('Updated')} {_time(item.updated_at, zone)}")
    parts.append(f'<p class="permalink-meta">{" · ".join(line)}</p>')
    if item.image is not None:
        parts.append(_figure(item.image))
    if item.url:
        parts.append(
            f'<p><a href="{html.escape(item.url)}" rel="noopener noreferrer">{t("Read the full story")}</a></p>'
        )
    notes = [v for v in versions if v.kind == "correction" and v.item is not None and v.item.correction]
    if notes:
        parts.append(f'<section class="permalink-corrections"><h2>{t("Corrections")}</h2><ul>')
        for v in notes:
            assert v.item is not None and v.item.correction is not None
            when = datetime.fromtimestamp(v.ts / 1000, UTC)
            parts.append(f"<li>{_time(when, zone)}: {html.escape(v.item.correction)}</li>")
        parts.append("</ul></section>")
    parts.append("</article>")
    posting = blog_posting(item, urls)
    ld = {"@context": "https://schema.org", **posting}
    values |= {
        "title": html.escape(item.headline),
        "description": html.escape(item.headline),
        "body": "\n".join(parts),
        "jsonld": script_json(ld),
    }
    return render(request, "item.html", values)


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
    Route("/items/{id}", permalink, methods=["GET"]),
    Mount("/static", WebFiles(directory=WEB_DIR, check_dir=False), name="static"),
]
