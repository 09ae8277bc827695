"""The reader page and the widget in real headless Chromium, against the real server and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, Route, expect

from tests.e2e.conftest import PageLog, Staff, ms
from tests.support import ServerThread, bound_socket, units, wait_for
from ticker.config import Settings
from ticker.models import ItemCreate, parse
from ticker.store import Store, connect

pytestmark = pytest.mark.browser

ZONE = "Europe/Kyiv"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Browser tests show times in a zone with daylight saving time."""
    return settings.with_overrides(display_timezone=ZONE)


def local(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ZoneInfo(ZONE))


def day_label(when: datetime) -> str:
    return f"{when.year}, {when:%A} · {when.day} {when:%B}"


def open_reader(page: Page, server: ServerThread, *, live: bool = True) -> None:
    page.goto(server.url + "/")
    if live:
        expect(page.locator(".tk")).to_have_attribute("data-state", "live")
    else:
        expect(page.locator(".tk-empty")).to_be_hidden()


def row(page: Page, item_id: str) -> object:
    return page.locator(f'.tk-feed .tk-item[data-id="{item_id}"]')


def seed(staff: Staff, count: int, *, start: datetime | None = None) -> list[str]:
    """``count`` items one minute apart, oldest first; their ids."""
    start = start or datetime.now(UTC) - timedelta(hours=3)
    ids = []
    for n in range(count):
        at = (start + timedelta(minutes=n)).isoformat()
        ids.append(staff.publish(f"Seeded item {n}", id=f"seed-{n:03d}", published_at=at)["id"])
    return ids


def test_posted_item_appears_within_a_second_with_time_label_and_day_header(
    page: Page, server: ServerThread, staff: Staff
) -> None:
    open_reader(page, server)
    item = staff.publish("Bridge reopens after repairs", labels=["exclusive"], id="bridge-1")

    shown = page.locator('.tk-feed .tk-item[data-id="bridge-1"]')
    expect(shown).to_be_visible(timeout=ms(1))
    when = local(item["published_at"])
    expect(shown.locator(".tk-time")).to_have_text(f"{when:%H:%M}")
    expect(shown.locator(".tk-tag")).to_have_text("Exclusive")
    expect(shown.locator(".tk-headline")).to_have_text("Bridge reopens after repairs")
    header = page.locator(".tk-day", has=page.locator('.tk-item[data-id="bridge-1"]')).locator(".tk-dayhead")
    expect(header).to_have_text(day_label(when))
    expect(page.locator(".tk-feed .tk-item").first).to_have_attribute("data-id", "bridge-1")
    expect(page.locator(".tk-sr[aria-live=polite]")).to_have_text("1 new")
    assert page.locator("[aria-live=polite]").count() == 1


def test_day_headers_and_times_follow_the_display_zone_across_dst(
    page: Page, server: ServerThread, staff: Staff
) -> None:
    staff.publish("Before the clocks change", id="dst-1", published_at="2024-03-31T00:30:00Z")
    staff.publish("After the clocks change", id="dst-2", published_at="2024-03-31T01:30:00Z")
    staff.publish("Autumn story", id="nov-1", published_at="2024-11-17T14:22:00Z", labels=["review"])
    open_reader(page, server, live=False)

    expect(page.locator('.tk-item[data-id="dst-1"] .tk-time')).to_have_text("02:30")
    expect(page.locator('.tk-item[data-id="dst-2"] .tk-time')).to_have_text("04:30")
    expect(page.locator('.tk-item[data-id="nov-1"] .tk-time')).to_have_text("16:22")
    expect(page.locator(".tk-dayhead")).to_have_text(["2024, Sunday · 17 November", "2024, Sunday · 31 March"])
    expect(page.locator('.tk-item[data-id="nov-1"] .tk-tag')).to_have_text("Review")


def test_update_correction_and_retraction_change_the_item_in_place(
    page: Page, server: ServerThread, staff: Staff
) -> None:
    staff.publish("Older story", id="older")
    staff.publish("Quake hits the coast", id="q1", url="https://example.com/quake")
    open_reader(page, server)
    shown = page.locator('.tk-feed .tk-item[data-id="q1"]')
    expect(shown).to_be_visible()
    handle = shown.element_handle()
    assert handle is not None

    updated = staff.edit("q1", headline="Quake: 5 dead")
    expect(shown.locator(".tk-headline")).to_have_text("Quake: 5 dead")
    badge = shown.locator(".tk-badge-updated")
    expect(badge).to_have_text(re.compile(r"^Updated"))
    assert handle.evaluate("e => e.isConnected"), "the row was replaced, not changed in place"
    expect(page.locator(".tk-feed .tk-item")).to_have_count(2)
    expect(page.locator(".tk-feed .tk-item").first).to_have_attribute("data-id", "q1")

    tip = badge.locator(".tk-tip")
    assert tip.evaluate("e => getComputedStyle(e).opacity") == "0"
    badge.focus()
    expect(tip).to_have_text(re.compile(local(updated["updated_at"]).strftime("%H:%M")))
    wait_for(lambda: tip.evaluate("e => getComputedStyle(e).opacity") == "1", what="the update time")
    page.keyboard.press("Tab")

    staff.edit("q1", kind="correction", correction="Four died, not five", headline="Quake: 4 dead")
    expect(shown.locator(".tk-note")).to_have_text("Correction: Four died, not five")
    expect(shown.locator(".tk-badge-corrected")).to_have_text("Corrected")
    expect(shown.locator(".tk-headline")).to_have_text("Quake: 4 dead")

    staff.retract("q1")
    expect(shown).to_have_count(0)
    expect(page.locator('.tk-item[data-id="older"]')).to_be_visible()


def test_more_news_pages_back_without_duplicates(page: Page, server: ServerThread, staff: Staff) -> None:
    ids = seed(staff, 45)
    open_reader(page, server)
    items = page.locator(".tk-feed .tk-item")
    expect(items).to_have_count(20)

    # Changes while reading: an old item (not loaded yet) edited, a new one published.
    staff.edit("seed-003", headline="Seeded item 3, edited")
    staff.publish("Fresh while paging", id="fresh")
    expect(page.locator('.tk-item[data-id="fresh"]')).to_be_visible()

    more = page.get_by_role("button", name="More news")
    more.click()
    expect(items).to_have_count(41)
    more.click()
    expect(items).to_have_count(46)
    expect(more).to_be_hidden()

    shown = items.evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert len(shown) == len(set(shown)) == 46
    assert shown == ["fresh", *reversed(ids)]
    expect(page.locator('.tk-item[data-id="seed-003"] .tk-headline')).to_have_text("Seeded item 3, edited")


def test_scrolled_down_new_items_wait_behind_a_button_and_nothing_moves(
    page: Page, server: ServerThread, staff: Staff
) -> None:
    seed(staff, 20)
    open_reader(page, server)
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    assert page.evaluate("window.scrollY") > 200
    anchor = page.locator('.tk-item[data-id="seed-005"]')
    before = anchor.bounding_box()
    base_title = page.title()

    staff.publish("Arrives while scrolled", id="late-1")
    staff.publish("Another while scrolled", id="late-2")
    button = page.locator(".tk-new")
    expect(button).to_have_text("2 new")
    expect(page).to_have_title(f"(2) {base_title}")
    expect(page.locator(".tk-sr")).to_have_text("2 new")
    assert anchor.bounding_box() == before, "content moved under the reader"
    expect(page.locator('.tk-feed .tk-item[data-id="late-1"]')).to_have_count(0)

    staff.edit("late-1", headline="Arrives while scrolled, updated")
    staff.retract("late-2")
    expect(button).to_have_text("1 new")

    button.focus()
    page.keyboard.press("Enter")
    expect(page.locator('.tk-feed .tk-item[data-id="late-1"]')).to_be_focused()
    expect(page.locator('.tk-feed .tk-item[data-id="late-1"] .tk-headline')).to_have_text(
        "Arrives while scrolled, updated"
    )
    expect(page.locator('.tk-item[data-id="late-2"]')).to_have_count(0)
    expect(button).to_be_hidden()
    expect(page).to_have_title(base_title)


def test_hidden_tab_counts_new_items_in_the_title(page: Page, server: ServerThread, staff: Staff) -> None:
    open_reader(page, server)
    base_title = page.title()
    page.evaluate(
        """() => {
          Object.defineProperty(document, "visibilityState", { get: () => "hidden", configurable: true });
          document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    staff.publish("While the tab was hidden", id="hidden-1")
    expect(page).to_have_title(f"(1) {base_title}")
    expect(page.locator('.tk-feed .tk-item[data-id="hidden-1"]')).to_have_count(0)
    page.evaluate(
        """() => {
          delete document.visibilityState;
          document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    expect(page.locator(".tk-new")).to_have_text("1 new")
    page.locator(".tk-new").click()
    expect(page.locator('.tk-feed .tk-item[data-id="hidden-1"]')).to_be_visible()
    expect(page).to_have_title(base_title)


def test_pause_holds_new_items_until_resumed(page: Page, server: ServerThread, staff: Staff) -> None:
    open_reader(page, server)
    pause = page.get_by_role("button", name="Pause")
    pause.press("Enter")
    expect(page.locator(".tk-pause")).to_have_attribute("aria-pressed", "true")
    staff.publish("Held back", id="held")
    expect(page.locator(".tk-new")).to_have_text("1 new")
    expect(page.locator('.tk-feed .tk-item[data-id="held"]')).to_have_count(0)
    page.get_by_role("button", name="Resume").click()
    expect(page.locator('.tk-feed .tk-item[data-id="held"]')).to_be_visible()
    expect(page.locator(".tk-new")).to_be_hidden()


def test_new_items_are_highlighted_without_motion_when_the_reader_asks(
    page: Page, server: ServerThread, staff: Staff
) -> None:
    page.emulate_media(reduced_motion="reduce")
    open_reader(page, server)
    staff.publish("Calm arrival", id="calm")
    fresh = page.locator('.tk-item.tk-fresh[data-id="calm"]')
    expect(fresh).to_be_visible()
    assert fresh.evaluate("e => getComputedStyle(e).animationName") == "none"
    page.emulate_media(reduced_motion="no-preference")
    staff.publish("Lively arrival", id="lively")
    lively = page.locator('.tk-item.tk-fresh[data-id="lively"]')
    expect(lively).to_be_visible()
    assert "tk-in" in lively.evaluate("e => getComputedStyle(e).animationName")


def test_keyboard_reaches_every_control(page: Page, server: ServerThread, staff: Staff) -> None:
    seed(staff, 25)
    staff.edit("seed-024", headline="Seeded item 24, updated")
    open_reader(page, server)
    reached = []
    for _ in range(8):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.className || document.activeElement.textContent"))
    assert "tk-pause" in reached and any("tk-badge-updated" in r for r in reached), reached
    page.get_by_role("button", name="More news").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".tk-feed .tk-item")).to_have_count(25)


def publish_directly(settings: Settings, headlines: list[tuple[str, str]]) -> None:
    """Writes straight to Redis (no server running), in a thread of its own event loop."""

    async def write() -> None:
        assert settings.redis_url
        client = connect(settings.redis_url)
        try:
            store = Store(client, prefix=settings.prefix)
            for item_id, headline in headlines:
                await store.publish(parse(ItemCreate, {"id": item_id, "headline": headline}), actor="test")
        finally:
            await client.aclose()

    worker = threading.Thread(target=asyncio.run, args=(write(),))
    worker.start()
    worker.join(units(20))


def test_server_restart_shows_reconnecting_then_every_missed_item_once(
    page: Page, page_log: PageLog, server: ServerThread, staff: Staff, settings: Settings
) -> None:
    page_log.allow("WebSocket connection to")
    page_log.allow("ERR_CONNECTION_REFUSED")
    staff.publish("Before the restart", id="before")
    open_reader(page, server)
    expect(page.locator('.tk-item[data-id="before"]')).to_be_visible()

    port = int(server.url.rsplit(":", 1)[1])
    server.stop()
    status = page.locator(".tk-status")
    expect(status).to_have_attribute("data-state", "reconnecting")
    expect(status).to_have_text("Reconnecting…")

    missed = [(f"missed-{n}", f"Posted while the server was down {n}") for n in range(3)]
    publish_directly(settings, missed)
    restarted = ServerThread(settings, port=port).start()
    try:
        expect(status).to_have_attribute("data-state", "live", timeout=ms(40))
        for item_id, _ in missed:
            expect(page.locator(f'.tk-feed .tk-item[data-id="{item_id}"]')).to_have_count(1)
        after = Staff(restarted, staff.http.headers["Authorization"].removeprefix("Bearer "))
        after.publish("After the restart", id="after")
        expect(page.locator('.tk-feed .tk-item[data-id="after"]')).to_have_count(1)
        after.http.close()
        shown = page.locator(".tk-feed .tk-item").evaluate_all("rows => rows.map(r => r.dataset.id)")
        assert sorted(shown) == sorted(["before", "after", *(i for i, _ in missed)])
    finally:
        restarted.stop()


LAYOUT_SHIFTS = """
new Promise((done) => {
  let total = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) if (!entry.hadRecentInput) total += entry.value;
  }).observe({ type: "layout-shift", buffered: true });
  requestAnimationFrame(() => requestAnimationFrame(() => done(total)));
})
"""


def test_the_footer_keeps_its_place_while_items_render(page: Page, server: ServerThread, staff: Staff) -> None:
    seed(staff, 12)
    open_reader(page, server)
    expect(page.locator(".tk-feed .tk-item")).to_have_count(12)
    shift = page.evaluate(LAYOUT_SHIFTS)
    assert shift < 0.02, f"cumulative layout shift {shift:.3f}: something moved when the items rendered"


def test_links_the_server_accepts_have_the_same_host_in_the_browser(page: Page, server: ServerThread) -> None:
    """The WHATWG URL parser (Chromium's) reads every accepted link's host as Python does."""
    vectors = json.loads((Path(__file__).parent.parent / "vectors" / "urls.json").read_text(encoding="utf-8"))
    page.goto(server.url + "/")
    seen = page.evaluate("urls => urls.map(u => [new URL(u).hostname, window.Ticker.safeUrl(u)])", vectors["accept"])
    for url, (host, link) in zip(vectors["accept"], seen, strict=True):
        assert host.strip("[]") == urlsplit(url).hostname and link, url
    with_user = ["https://user:pass@good.example/", "https://good.example@evil.example/"]
    assert page.evaluate("urls => urls.map(u => window.Ticker.safeUrl(u))", with_user) == [None, None]


HOSTILE = [
    '<img src=x onerror="window.__pwned=1">',
    "<script>window.__pwned=2</script>",
    '"><svg onload="window.__pwned=3">',
    "&lt;b&gt;entities stay text&lt;/b&gt;",
]


def test_hostile_headlines_render_as_text(page: Page, server: ServerThread, staff: Staff) -> None:
    for n, text in enumerate(HOSTILE[:2]):
        staff.publish(text, id=f"hostile-{n}", url='https://example.com/a?b=<c>&d="e"')
    open_reader(page, server)
    for n, text in enumerate(HOSTILE[2:], start=2):
        staff.publish(text, id=f"hostile-{n}")
    for n, text in enumerate(HOSTILE):
        expect(page.locator(f'.tk-item[data-id="hostile-{n}"] .tk-headline')).to_have_text(text)
    assert page.locator(".tk img, .tk script, .tk svg, .tk b").count() == 0
    assert page.evaluate("window.__pwned") is None
    link = page.locator('.tk-item[data-id="hostile-0"] a')
    assert link.get_attribute("href") == "https://example.com/a?b=%3Cc%3E&d=%22e%22"
    assert link.get_attribute("rel") == "noopener noreferrer"


def test_non_http_links_never_become_links(page: Page, server: ServerThread) -> None:
    """Defence in depth: even if bad URLs reached the page, only http(s) become links."""
    bad = [
        "javascript:window.__pwned=1",
        "data:text/html,<b>x</b>",
        "vbscript:x",
        "//example.com/x",
        "ftp://x/y",
    ]
    now = datetime.now(UTC)
    items = [
        {
            "id": f"bad-{n}",
            "version": 1,
            "headline": f"Bad link {n}",
            "url": url,
            "labels": [],
            "channel": "news",
            "published_at": (now - timedelta(minutes=n)).isoformat(),
            "updated_at": None,
            "correction": None,
            "pinned": False,
            "lang": None,
            "author": None,
        }
        for n, url in enumerate(bad)
    ]

    def fake_page(route: Route) -> None:
        body = {"items": items, "cursor": "0-0", "next": None, "pinned": []}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page.route("**/api/items?*", fake_page)
    page.goto(server.url + "/")
    expect(page.locator(".tk-feed .tk-item")).to_have_count(len(bad))
    hrefs = page.locator(".tk-feed a").evaluate_all("links => links.map(a => a.href)")
    assert hrefs == [f"{server.url}/items/bad-{n}" for n in range(len(bad))], "only the permalink, never the bad URL"
    expect(page.locator('.tk-item[data-id="bad-0"] .tk-headline')).to_have_text("Bad link 0")


def test_page_headers_csp_and_json_ld(page: Page, server: ServerThread, staff: Staff) -> None:
    staff.publish("Markup </script><script>alert(1)</script> in a headline", id="ld-1")
    response = page.goto(server.url + "/")
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    expect(page.locator(".tk")).to_have_attribute("data-state", "live")
    data = json.loads(page.locator('script[type="application/ld+json"]').text_content() or "")
    assert data["@type"] == "LiveBlogPosting"
    assert data["liveBlogUpdate"][0]["headline"] == "Markup </script><script>alert(1)</script> in a headline"
    assert page.locator("script").count() == 2


@contextlib.contextmanager
def partner_site(html: str) -> Iterator[str]:
    """Another site on this machine (its own origin), serving one page with the embed."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    worker = threading.Thread(target=httpd.serve_forever, daemon=True)
    worker.start()
    try:
        yield f"http://localhost:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_widget_on_a_foreign_site(page: Page, settings: Settings, staff: Staff) -> None:
    """One script tag and one element on another origin: items by CORS, live by Origin."""
    with contextlib.ExitStack() as stack:
        server_port = bound_socket()
        ticker_url = f"http://127.0.0.1:{server_port.getsockname()[1]}"
        server_port.close()
        html = (
            "<!doctype html><html lang=en><head><title>Partner</title></head>"
            "<body><main><h1>Partner</h1>"
            f'<aside><div data-ticker="{ticker_url}" data-channel="news" data-photos="off"></div></aside>'
            f'<script src="{ticker_url}/static/ticker.js" defer></script></main></body></html>'
        )
        site = stack.enter_context(partner_site(html))
        allowed = settings.with_overrides(allowed_origins=(site,))
        server = ServerThread(allowed, port=int(ticker_url.rsplit(":", 1)[1])).start()
        stack.callback(server.stop)
        foreign = Staff(server, staff.http.headers["Authorization"].removeprefix("Bearer "))
        stack.callback(foreign.http.close)
        photo = {"url": "https://photos.example/p.jpg", "alt": "A photo the sidebar leaves out"}
        foreign.publish("Seen on a partner site", id="partner-1", labels=["opinion"], image=photo)
        page.goto(site + "/partner")
        expect(page.locator('.tk-item[data-id="partner-1"] .tk-tag')).to_have_text("Opinion")
        expect(page.locator(".tk-lead")).to_be_hidden()  # data-photos="off": not even requested
        assert page.locator(".tk-lead img").count() == 0
        expect(page.locator(".tk")).to_have_attribute("data-state", "live")
        foreign.publish("Live on the partner site", id="partner-2")
        expect(page.locator('.tk-item[data-id="partner-2"]')).to_be_visible(timeout=ms(1))
        assert page.evaluate("getComputedStyle(document.querySelector('.tk')).borderTopStyle") == "solid"
        page.close()


COUNT_SOCKETS = """
window.__sockets = 0;
const RealWebSocket = window.WebSocket;
window.WebSocket = function (url, protocols) { window.__sockets += 1; return new RealWebSocket(url, protocols); };
"""


def test_widget_on_a_site_the_server_does_not_allow_says_why(page: Page, server: ServerThread, staff: Staff) -> None:
    """The live socket refuses the partner's origin (1008 "origin: …"): the status line says why,
    one console warning names the origin and the setting, and the widget asks again only after minutes."""
    staff.publish("Still readable without the live socket", id="refused-1")
    html = (
        "<!doctype html><html lang=en><head><title>Partner</title></head><body><main><h1>Partner</h1>"
        f'<aside><div data-ticker="{server.url}"></div></aside>'
        f'<script src="{server.url}/static/ticker.js" defer></script></main></body></html>'
    )
    warnings: list[str] = []
    page.on("console", lambda message: warnings.append(message.text) if message.type == "warning" else None)
    page.add_init_script(COUNT_SOCKETS)
    page.clock.install()
    with partner_site(html) as site:
        page.goto(site + "/partner")
        expect(page.locator('.tk-item[data-id="refused-1"]')).to_be_visible()
        expect(page.locator(".tk")).to_have_attribute("data-state", "refused")
        expect(page.locator(".tk-status")).to_have_text(
            "This site is not allowed to show the live ticker: the server’s TICKER_ALLOWED_ORIGINS must list it"
        )
        assert len(warnings) == 1 and site in warnings[0] and "TICKER_ALLOWED_ORIGINS" in warnings[0], warnings

        page.clock.run_for(5 * 60 * 1000)  # an ordinary backoff would have asked a dozen times by now
        assert page.evaluate("window.__sockets") == 1
        with page.expect_websocket() as again:
            page.clock.run_for(16 * 60 * 1000)
        if not again.value.is_closed():
            again.value.wait_for_event("close")
        assert page.evaluate("window.__sockets") == 2
        expect(page.locator(".tk")).to_have_attribute("data-state", "refused")
        assert len(warnings) == 1, warnings
