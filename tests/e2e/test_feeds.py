"""JSON Feed and Atom on a real server, checked with a real feed parser."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import feedparser
import httpx
import pytest
from starlette.requests import Request

from tests.support import ServerThread, units
from ticker.config import Settings
from ticker.feeds import not_modified, validators

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
FEED_KEYS = {
    "version",
    "title",
    "home_page_url",
    "feed_url",
    "description",
    "user_comment",
    "next_url",
    "icon",
    "favicon",
    "authors",
    "language",
    "expired",
    "hubs",
    "items",
}
ITEM_KEYS = {
    "id",
    "url",
    "external_url",
    "title",
    "content_html",
    "content_text",
    "summary",
    "image",
    "banner_image",
    "date_published",
    "date_modified",
    "authors",
    "tags",
    "language",
    "attachments",
}
TOMBSTONE = "{http://purl.org/atompub/tombstones/1.0}"
ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


@pytest.fixture
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture
def newsroom(http: httpx.Client, admin_token: str) -> dict[str, str]:
    """Four items: one plain, one updated, one corrected (in sport), one retracted."""
    auth = {"Authorization": f"Bearer {admin_token}"}

    def post(body: dict[str, Any]) -> None:
        assert http.post("/api/items", json=body, headers=auth).status_code == 201

    def patch(item_id: str, body: dict[str, Any]) -> None:
        assert http.patch(f"/api/items/{item_id}", json=body, headers=auth).status_code == 200

    post(
        {
            "id": "plain",
            "headline": "Markets open <b>flat</b> & calm",
            "published_at": "2026-01-01T08:00:00Z",
            "labels": ["analysis"],
            "author": "Ana Lyst",
            "lang": "en",
        }
    )
    post(
        {
            "id": "edited",
            "headline": "Storm nears",
            "published_at": "2026-01-01T09:00:00Z",
            "url": "https://example.com/storm",
        }
    )
    patch("edited", {"headline": "Storm makes landfall"})
    post({"id": "fixed", "headline": "Cup final: 2-1", "channel": "sport", "published_at": "2026-01-01T10:00:00Z"})
    patch("fixed", {"kind": "correction", "correction": "The score was 3-1", "headline": "Cup final: 3-1"})
    post({"id": "gone", "headline": "Minister resigns", "published_at": "2026-01-01T11:00:00Z"})
    assert http.delete("/api/items/gone", headers=auth).status_code == 200
    return auth


def rfc3339(value: Any) -> bool:
    return isinstance(value, str) and bool(RFC3339.match(value))


def check_json_feed(doc: Any) -> None:
    """JSON Feed 1.1's rules (https://www.jsonfeed.org/version/1.1/); feedparser 6 reads no JSON Feed."""
    assert isinstance(doc, dict) and doc["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(doc["title"], str) and isinstance(doc["items"], list)
    for key in ("home_page_url", "feed_url"):
        assert urlsplit(doc[key]).scheme in ("http", "https")
    assert all(key.startswith("_") or key in FEED_KEYS for key in doc), set(doc) - FEED_KEYS
    for item in doc["items"]:
        assert all(key.startswith("_") or key in ITEM_KEYS for key in item), set(item) - ITEM_KEYS
        assert isinstance(item["id"], str) and item["id"]
        assert isinstance(item.get("content_text"), str) or isinstance(item.get("content_html"), str)
        assert rfc3339(item.get("date_published")) and rfc3339(item.get("date_modified", "2026-01-01T00:00:00Z"))
        assert all(isinstance(tag, str) for tag in item.get("tags", []))
        assert all(isinstance(a.get("name"), str) for a in item.get("authors", []))
        assert urlsplit(item.get("url", "http://x")).scheme in ("http", "https")


def test_json_feed_validates_and_marks_edits(http: httpx.Client, newsroom: dict[str, str]) -> None:
    response = http.get("/feed.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/feed+json")
    doc = response.json()
    check_json_feed(doc)
    assert [item["id"] for item in doc["items"]] == ["fixed", "edited", "plain"]
    assert doc["version"] == "https://jsonfeed.org/version/1.1" and doc["feed_url"].endswith("/feed.json")
    items = {item["id"]: item for item in doc["items"]}
    assert all(item["content_text"] for item in doc["items"])
    assert items["plain"]["title"] == "Markets open <b>flat</b> & calm" and "date_modified" not in items["plain"]
    assert items["plain"]["tags"] == ["analysis"] and items["plain"]["authors"] == [{"name": "Ana Lyst"}]
    assert items["edited"]["date_modified"] and "Updated" in items["edited"]["content_text"]
    assert items["edited"]["url"] == "https://example.com/storm" and items["edited"]["_ticker"]["edit"] == "updated"
    assert "Corrected" in items["fixed"]["content_text"] and "The score was 3-1" in items["fixed"]["content_text"]
    assert [r["id"] for r in doc["_ticker"]["retracted"]] == ["gone"]


def test_atom_feed_validates_with_tombstones(http: httpx.Client, newsroom: dict[str, str]) -> None:
    response = http.get("/feed.atom")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(response.content, response_headers=dict(response.headers))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    titles = [e.title for e in parsed.entries]
    assert titles == ["Cup final: 3-1", "Storm makes landfall", "Markets open <b>flat</b> & calm"]
    assert all(e.content[0].value for e in parsed.entries)
    edited = parsed.entries[1]
    assert edited.link == "https://example.com/storm" and edited.updated != edited.published
    assert "Updated" in edited.content[0].value

    root = ET.fromstring(response.content)
    [tombstone] = root.findall(f"{TOMBSTONE}deleted-entry")
    assert tombstone.get("ref", "").endswith("/items/gone") and tombstone.get("when")
    assert tombstone.get("ref") not in [e.findtext(f"{ATOM}id") for e in root.findall(f"{ATOM}entry")]


def test_feeds_per_channel(http: httpx.Client, newsroom: dict[str, str]) -> None:
    sport = http.get("/feed.json", params={"channel": "sport"}).json()
    assert [i["id"] for i in sport["items"]] == ["fixed"] and sport["_ticker"]["retracted"] == []
    news = ET.fromstring(http.get("/feed.atom", params={"channel": "news", "limit": "1"}).content)
    assert [e.findtext(f"{ATOM}title") for e in news.findall(f"{ATOM}entry")] == ["Storm makes landfall"]
    assert len(news.findall(f"{TOMBSTONE}deleted-entry")) == 1


@pytest.mark.parametrize("path", ["/feed.json", "/feed.atom"])
def test_conditional_get_answers_304_until_something_changes(
    http: httpx.Client, newsroom: dict[str, str], path: str
) -> None:
    first = http.get(path)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert first.headers["access-control-allow-origin"] == "*", "partners' pages may read the feeds"
    again = http.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    a_second_later = format_datetime(parsedate_to_datetime(modified) + timedelta(seconds=1), usegmt=True)
    assert http.get(path, headers={"If-Modified-Since": a_second_later}).status_code == 304
    assert http.get(path, headers={"If-None-Match": '"other"', "If-Modified-Since": modified}).status_code == 200

    http.post("/api/items", json={"headline": "Fresh news"}, headers=newsroom)
    changed = http.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag and "Fresh news" in changed.text


@pytest.mark.parametrize(
    "params",
    [
        {"channel": "Not A Slug"},
        {"channel": "x" * 40},
        {"limit": "0"},
        {"limit": "many"},
        {"limit": "\u00b9"},  # superscript one: str.isdigit says yes, int() says no
        {"limit": "\u0663"},  # Arabic-Indic three: int() reads 3
        {"limit": "\uff13"},  # fullwidth three
        {"limit": " 3"},
        {"limit": ""},  # empty is not a number either (the API's pages refuse it too)
        {"before": "\u0661" * 15 + ":x"},
    ],
)
def test_bad_feed_parameters_are_json_400(http: httpx.Client, params: dict[str, str]) -> None:
    for path in ("/feed.json", "/feed.atom"):
        response = http.get(path, params=params)
        assert response.status_code == 400 and response.headers["content-type"].startswith("application/json")
        assert response.json()["error"]["code"] == "bad_request"


def test_an_empty_feed_is_still_valid(http: httpx.Client) -> None:
    assert not feedparser.parse(http.get("/feed.atom").text).bozo
    empty = http.get("/feed.json").json()
    check_json_feed(empty)
    assert empty["items"] == []


def test_feeds_are_in_the_openapi_document(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    assert {"/feed.json", "/feed.atom"} <= set(paths) and "304" in paths["/feed.atom"]["get"]["responses"]


def test_a_change_in_the_same_second_as_last_modified_is_not_hidden() -> None:
    """Last-Modified has whole seconds; the feed's head has milliseconds, and they decide."""
    changed_at = "1732000000700-0"  # 0.7 s into the second that Last-Modified names
    last_modified = validators("1732000000100-0")["Last-Modified"]
    assert validators(changed_at)["Last-Modified"] == last_modified

    def asks(since: str) -> Request:
        return Request({"type": "http", "method": "GET", "headers": [(b"if-modified-since", since.encode())]})

    assert not not_modified(asks(last_modified), changed_at)
    assert not_modified(asks(last_modified), "1732000000000-5")
    a_second_later = format_datetime(parsedate_to_datetime(last_modified) + timedelta(seconds=1), usegmt=True)
    assert not_modified(asks(a_second_later), changed_at)


def test_json_feed_pages_with_next_url_and_atom_says_its_language(http: httpx.Client, newsroom: dict[str, str]) -> None:
    first = http.get("/feed.json", params={"limit": "2"}).json()
    check_json_feed(first)
    assert [i["id"] for i in first["items"]] == ["fixed", "edited"] and first["language"] == "en-GB"
    second = http.get(first["next_url"]).json()
    assert [i["id"] for i in second["items"]] == ["plain"] and "next_url" not in second
    assert "limit=2" in first["next_url"] and second["feed_url"] == first["next_url"]

    root = ET.fromstring(http.get("/feed.atom", params={"limit": "2"}).content)
    assert root.get(XML_LANG) == "en-GB"
    [after] = [link.get("href") for link in root.findall(f"{ATOM}link") if link.get("rel") == "next"]
    older = ET.fromstring(http.get(str(after)).content)
    [plain] = older.findall(f"{ATOM}entry")
    assert plain.get(XML_LANG) == "en" and plain.findtext(f"{ATOM}title") == "Markets open <b>flat</b> & calm"


def test_public_url_starts_every_absolute_url_whatever_the_host(settings: Settings, admin_token: str) -> None:
    public = ServerThread(dataclasses.replace(settings, public_url="https://news.example/live")).start()
    try:
        with httpx.Client(base_url=public.url, headers={"Host": "evil.example"}, timeout=units(10)) as http:
            auth = {"Authorization": f"Bearer {admin_token}"}
            assert http.post("/api/items", json={"id": "a", "headline": "One"}, headers=auth).status_code == 201
            assert http.post("/api/items", json={"id": "b", "headline": "Two"}, headers=auth).status_code == 201
            assert http.delete("/api/items/b", headers=auth).status_code == 200
            doc = http.get("/feed.json", params={"limit": "1", "channel": "news"}).json()
            atom = http.get("/feed.atom").text
            page = http.get("/").text
    finally:
        public.stop()
    urls = [doc["home_page_url"], doc["feed_url"], doc["items"][0]["url"]]
    assert urls == [
        "https://news.example/live/",
        "https://news.example/live/feed.json?channel=news&limit=1",
        "https://news.example/live/items/a",
    ]
    root = ET.fromstring(atom)
    assert root.findtext(f"{ATOM}id") == "https://news.example/live/feed.atom"
    assert [e.findtext(f"{ATOM}id") for e in root.findall(f"{ATOM}entry")] == ["https://news.example/live/items/a"]
    assert root.find(f"{TOMBSTONE}deleted-entry").get("ref") == "https://news.example/live/items/b"  # type: ignore[union-attr]
    assert "evil.example" not in atom and "evil.example" not in page and "127.0.0.1" not in page
    assert '"@id":"https://news.example/live/items/a#posting"' in page
