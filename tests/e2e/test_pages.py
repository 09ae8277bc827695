"""The pages' headers, CORS for the widget, JSON-LD and the display settings (no browser)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.support import ServerThread, units
from ticker import config
from ticker.errors import ConfigError
from ticker.headers import csp
from ticker.models import Item
from ticker.pages import STATIC_SUFFIXES, WEB_DIR, json_ld
from ticker.urls import Urls


@pytest.fixture
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=units(10)) as client:
        yield client


def test_pages_send_a_strict_csp_and_hardening_headers(http: httpx.Client) -> None:
    for path in ("/", "/desk"):
        answer = http.get(path)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
        csp = answer.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe" not in csp and "require-trusted-types-for 'script'" in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "{{" not in answer.text
        # No inline script or style: every script has a src, except JSON data blocks (never executed).
        for tag in re.findall(r"<script[^>]*>", answer.text):
            assert "src=" in tag or 'type="application/ld+json"' in tag or 'type="application/json"' in tag
        assert "<style" not in answer.text and " style=" not in answer.text


def test_static_files_are_hardened_cached_with_validators_and_never_raw_html(http: httpx.Client) -> None:
    for name in ("desk.html", "index.html", "DESK.HTML", "nope.html", "__init__.py"):
        answer = http.get(f"/static/{name}")
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found", name
    version = re.search(r'/static/ticker\.js\?v=([0-9a-f]+)"', http.get("/").text)
    assert version and f"/static/desk.js?v={version[1]}" in http.get("/desk").text
    files = sorted(p.name for p in WEB_DIR.iterdir() if p.suffix in STATIC_SUFFIXES)
    assert {"ticker.js", "desk.js", "ticker.css", "favicon.svg"} <= set(files)
    for name in files:
        answer = http.get(f"/static/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-security-policy"].startswith("default-src 'none'"), name
        assert answer.headers["x-frame-options"] == "DENY" and answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-cache" and answer.headers["last-modified"]
        again = http.get(f"/static/{name}", headers={"If-None-Match": answer.headers["etag"]})
        assert again.status_code == 304, name
        linked = http.get(f"/static/{name}", params={"v": version[1]})
        assert linked.headers["cache-control"] == "public, max-age=31536000, immutable", name
        assert http.get(f"/static/{name}", params={"v": "old"}).headers["cache-control"] == "no-cache"


def test_text_is_compressed_but_never_the_event_stream(
    http: httpx.Client, server: ServerThread, admin_token: str
) -> None:
    gzip = {"Accept-Encoding": "gzip"}
    long = {"headline": "A long link", "url": "https://news.example/" + "a" * 1200}
    written = http.post("/api/items", json=long, headers={**gzip, "Authorization": f"Bearer {admin_token}"})
    assert written.status_code == 201 and "content-encoding" not in written.headers, "a write's answer is not"
    read = http.get(f"/api/items/{written.json()['item']['id']}", headers=gzip)
    assert read.headers.get("content-encoding") == "gzip" and read.json()["url"] == long["url"], "the same item read is"
    for path in ("/static/ticker.js", "/static/ticker.css", "/", "/desk", "/openapi.json"):
        answer = http.get(path, headers=gzip)
        assert answer.headers.get("content-encoding") == "gzip", path
        assert "accept-encoding" in answer.headers["vary"].lower()
    assert "content-encoding" not in http.get("/static/ticker.js", headers={"Accept-Encoding": "identity"}).headers
    part = http.get("/static/ticker.js", headers={**gzip, "Range": "bytes=0-4999"})
    assert part.status_code == 206 and "content-encoding" not in part.headers and len(part.content) == 5000
    with http.stream("GET", "/api/events", headers=gzip) as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in events.headers
        first = next(events.iter_raw())  # arrives at once: nothing buffers it for compression
        assert first.startswith(b"retry:")


def test_cors_allows_anonymous_reads_only(http: httpx.Client, admin_token: str) -> None:
    origin = {"Origin": "http://news.example"}
    for path in ("/api/items", "/static/ticker.js", "/static/ticker.css", "/widget.json"):
        answer = http.get(path, headers=origin)
        assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "*", path
    write = http.post(
        "/api/items",
        headers={**origin, "Authorization": f"Bearer {admin_token}"},
        json={"headline": "From another site"},
    )
    assert write.status_code == 201 and "access-control-allow-origin" not in write.headers
    assert "access-control-allow-origin" not in http.get("/desk", headers=origin).headers


def test_widget_settings_and_static_files(http: httpx.Client) -> None:
    shown = http.get("/widget.json").json()
    assert shown["timezone"] == "UTC" and shown["locale"] == "en-GB" and "opinion" in shown["labels"]
    script = http.get("/static/ticker.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "innerHTML" not in script.text and "eval(" not in script.text
    assert http.get("/static/../pyproject.toml").status_code == 404


def test_json_ld_cannot_end_its_script_block() -> None:
    item = Item.model_validate(
        {
            "id": "a",
            "version": 2,
            "headline": "</script><!-- & more",
            "published_at": "2024-11-17T14:22:00Z",
            "updated_at": "2024-11-17T15:00:00Z",
            "labels": ["opinion"],
            "url": "https://example.com/a",
            "channel": "sport",
            "author": "Olena Hart",
            "lang": "en-GB",
            "correction": "The score was 3-1",
        }
    )
    text = json_ld(config.Settings(), [item], Urls("https://ticker.example"))
    assert "<" not in text and ">" not in text and "&" not in text
    data = json.loads(text)
    assert data["@type"] == "LiveBlogPosting" and data["dateModified"] == "2024-11-17T15:00:00.000Z"
    assert data["url"] == "https://ticker.example/"
    update = data["liveBlogUpdate"][0]
    assert update["headline"] == "</script><!-- & more" and update["keywords"] == ["opinion"]
    assert update["url"] == "https://example.com/a"
    # The mapping in docs/stream.md: the permalink (not the API) names the posting.
    assert update["@id"] == "https://ticker.example/items/a#posting" and update["identifier"] == "a"
    assert update["author"] == {"@type": "Person", "name": "Olena Hart"}
    assert update["inLanguage"] == "en-GB" and update["articleSection"] == "sport"
    assert update["correction"] == {"@type": "CorrectionComment", "text": "The score was 3-1"}


def test_display_settings_come_from_the_environment() -> None:
    settings = config.load(
        {
            "TICKER_DISPLAY_TIMEZONE": "Europe/Kyiv",
            "TICKER_LOCALE": "uk-UA",
            "TICKER_SITE_NAME": "Daily",
        }
    )
    assert (settings.display_timezone, settings.locale, settings.site_name) == (
        "Europe/Kyiv",
        "uk-UA",
        "Daily",
    )
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        config.load({"TICKER_DISPLAY_TIMEZONE": "Mars/Olympus"})


def test_reader_page_advertises_its_feeds(http: httpx.Client) -> None:
    import re

    page = http.get("/").text
    for kind, href in (("application/feed+json", "/feed.json"), ("application/atom+xml", "/feed.atom")):
        assert re.search(rf'<link rel="alternate" type="{re.escape(kind)}"[^>]*href="{href}"', page)
        assert http.get(href).status_code == 200


def test_permalink_shows_the_item_its_corrections_and_json_ld_then_a_410_tombstone(
    http: httpx.Client, admin_token: str
) -> None:
    auth = {"Authorization": f"Bearer {admin_token}"}
    photo = {
        "url": "https://photos.example/jet.jpg",
        "alt": "A jet",
        "caption": "Illustrative",
        "width": 800,
        "height": 450,
    }
    body = {"id": "jet", "headline": "Jets <b>arrive</b>", "image": photo, "key_event": True}
    assert http.post("/api/items", json=body, headers=auth).status_code == 201
    correction = {"kind": "correction", "correction": "Two jets, not three", "headline": "Two jets arrive"}
    assert http.patch("/api/items/jet", json=correction, headers=auth).status_code == 200

    page = http.get("/items/jet")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "img-src 'self' data: https:" in page.headers["content-security-policy"]
    assert "Two jets arrive" in page.text and "Two jets, not three" in page.text and "Key event" in page.text
    assert 'alt="A jet"' in page.text and 'width="800"' in page.text and "{{" not in page.text
    ld = json.loads(re.search(r'<script type="application/ld\+json" id="item-ld">(.*?)</script>', page.text).group(1))  # type: ignore[union-attr]
    assert (
        ld["@type"] == "BlogPosting" and ld["url"].endswith("/items/jet") and ld["image"]["caption"] == "Illustrative"
    )
    assert ld["correction"]["text"] == "Two jets, not three"
    feed = http.get("/feed.json").json()
    assert feed["items"][0]["url"].endswith("/items/jet") and feed["items"][0]["image"] == photo["url"]
    listing = json.loads(re.search(r'id="live-blog">(.*?)</script>', http.get("/").text).group(1))  # type: ignore[union-attr]
    assert listing["liveBlogUpdate"][0]["url"].endswith("/items/jet")

    assert http.delete("/api/items/jet", headers=auth).status_code == 200
    gone = http.get("/items/jet")
    assert gone.status_code == 410 and "retracted" in gone.text and "Two jets" not in gone.text
    assert gone.headers["content-security-policy"] == page.headers["content-security-policy"]
    assert http.get("/items/never").status_code == 404
    assert http.get("/items/bad%20id").status_code == 404


def test_image_origins_setting_drives_the_csp_and_refuses_plain_http_elsewhere() -> None:
    loaded = config.load({"TICKER_IMAGE_ORIGINS": "https://photos.example, http://127.0.0.1:8000"})
    assert loaded.image_origins == ("https://photos.example", "http://127.0.0.1:8000")
    assert "img-src 'self' data: https://photos.example http://127.0.0.1:8000;" in csp(loaded.image_origins)
    assert "img-src 'self' data: https:;" in csp(())
    for bad in ("http://photos.example", "https://photos.example/path", "ftp://x", "photos.example"):
        with pytest.raises(ConfigError):
            config.load({"TICKER_IMAGE_ORIGINS": bad})
