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
from ticker.models import Item
from ticker.pages import json_ld
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
        # No inline script or style: every script has a src, except the JSON-LD data block.
        for tag in re.findall(r"<script[^>]*>", answer.text):
            assert "src=" in tag or 'type="application/ld+json"' in tag
        assert "<style" not in answer.text and " style=" not in answer.text


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
