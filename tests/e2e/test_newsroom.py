"""The reader's lead photo, key events, breaking banner and narrow layout in headless Chromium."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, Route, expect

from tests.e2e.conftest import PageLog, Staff
from tests.support import ServerThread
from ticker.config import Settings

pytestmark = pytest.mark.browser

PHOTO_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="800" height="450">'
    '<rect width="800" height="450" fill="#2b4a6f"/></svg>'
)
PHOTO = {
    "url": "https://photos.example/jet.svg",
    "alt": "A jet over the sea",
    "caption": "F-16 with JASSM-ER, illustrative photo",
    "credit": "Photo desk",
    "width": 800,
    "height": 450,
}


MEASURE_SHIFTS = """
window.__cls = 0;
window.__shifts = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.hadRecentInput) continue;
    window.__cls += e.value;
    const moved = e.sources.map((s) => s.node && (s.node.className || s.node.nodeName));
    window.__shifts.push(e.value.toFixed(3) + " " + moved.join(","));
  }
}).observe({ type: "layout-shift", buffered: true });
"""


def serve_photos(page: Page) -> None:
    def fulfil(route: Route) -> None:
        route.fulfill(status=200, content_type="image/svg+xml", body=PHOTO_SVG)

    page.route("https://photos.example/**", fulfil)


def seed(staff: Staff, count: int) -> None:
    start = datetime.now(UTC) - timedelta(hours=3)
    for n in range(count):
        at = (start + timedelta(minutes=n)).isoformat()
        staff.publish(f"Seeded item {n}", id=f"seed-{n:03d}", published_at=at, key_event=n == 2)


def test_lead_photo_without_layout_shift_then_key_events_jump_and_filter(
    page: Page, page_log: PageLog, server: ServerThread, staff: Staff
) -> None:
    page_log.allow("status of 410")  # the tombstone page at the end
    seed(staff, 30)
    staff.publish("Jets arrive at the air base", id="jets", image=PHOTO)
    serve_photos(page)
    page.add_init_script(MEASURE_SHIFTS)
    page.goto(server.url + "/")
    lead = page.locator(".tk-lead")
    expect(lead).to_be_visible()
    img = lead.locator("img")
    expect(img).to_have_attribute("alt", PHOTO["alt"])
    expect(img).to_have_attribute("loading", "eager")  # on the first screen: lazy would delay it
    expect(img).to_have_attribute("width", "800")
    expect(lead.locator("figcaption")).to_contain_text(PHOTO["caption"])
    expect(lead.locator(".tk-credit")).to_have_text("Photo desk")
    page.wait_for_function("document.querySelector('.tk-lead img').complete")
    expect(page.locator(".tk")).to_have_attribute("data-state", "live")
    cls = page.evaluate("window.__cls")
    assert cls < 0.1, f"cumulative layout shift {cls}: {page.evaluate('window.__shifts')}"
    expect(page.locator('.tk-item[data-id="jets"] .tk-link')).to_have_attribute("href", f"{server.url}/items/jets")

    # Key events: the old one is not loaded yet; its jump link pages back until it is there.
    keys = page.locator(".tk-keys")
    expect(keys.locator(".tk-jump")).to_have_text(["Seeded item 2"])
    expect(page.locator('.tk-feed .tk-item[data-id="seed-002"]')).to_have_count(0)
    keys.locator(".tk-jump").click()
    expect(page.locator('.tk-feed .tk-item[data-id="seed-002"]')).to_be_focused()
    staff.edit("seed-010", key_event=True)
    expect(keys.locator(".tk-jump")).to_have_text(["Seeded item 10", "Seeded item 2"])
    expect(page.locator('.tk-item[data-id="seed-010"] .tk-badge-updated')).to_have_count(0)
    keys.get_by_role("button", name="Key events only").click()
    expect(page.locator(".tk-feed .tk-item:visible")).to_have_count(2)
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()

    # The permalink and, once retracted, its tombstone: plain pages under the same CSP, accessible too.
    staff.edit("jets", kind="correction", correction="Two jets, not three", headline="Two jets arrive")
    page.goto(f"{server.url}/items/jets")
    expect(page.locator("h1")).to_have_text("Two jets arrive")
    expect(page.locator("figure img")).to_have_attribute("alt", PHOTO["alt"])
    expect(page.locator(".permalink-corrections li")).to_contain_text("Two jets, not three")
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    staff.retract("seed-000")
    gone = page.goto(f"{server.url}/items/seed-000")
    assert gone is not None and gone.status == 410
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def test_flash_banner_is_assertive_and_dismissible_and_narrow_layout_fits(
    page: Page, server: ServerThread, staff: Staff
) -> None:
    page.set_viewport_size({"width": 390, "height": 800})
    page.emulate_media(reduced_motion="reduce")  # axe runs while the flash is highlighted: not mid-fade
    staff.publish("Pinned live coverage", id="pin", pinned=True, published_at="2024-11-17T14:22:00Z")
    for n in range(25):
        staff.edit(staff.publish(f"Story {n}", id=f"story-{n}")["id"], headline=f"Story {n}, updated")
    page.goto(server.url + "/")
    expect(page.locator(".tk")).to_have_attribute("data-state", "live")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(page.locator(".tk-pinned .tk-date")).to_have_text("17 Nov")

    staff.publish("Flash: ceasefire announced", id="flash", urgency=1)
    banner = page.locator(".tk-banner")
    expect(banner).to_have_attribute("role", "alert")
    expect(banner).to_have_attribute("aria-live", "assertive")
    expect(banner).to_contain_text("Flash: ceasefire announced")
    assert page.locator(".tk-sr").get_attribute("aria-live") == "polite"
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    banner.get_by_role("button", name="Dismiss").click()
    expect(banner).to_be_empty()

    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    staff.publish("While scrolled down", id="late")
    button = page.locator(".tk-new")
    expect(button).to_have_text("1 new")
    box = button.bounding_box()
    assert box is not None and 0 <= box["y"] < 800, "the N new button scrolled out of view"


@pytest.mark.parametrize(
    ("locale", "heading", "desk_button", "direction"),
    [("uk-UA", "Останні новини", "Опублікувати", "ltr"), ("ar", "آخر الأخبار", "Post headline", "rtl")],
)
def test_reader_and_desk_speak_the_locale_and_lay_out_right_to_left(
    page: Page, settings: Settings, admin_token: str, locale: str, heading: str, desk_button: str, direction: str
) -> None:
    server = ServerThread(settings.with_overrides(locale=locale)).start()
    try:
        staff = Staff(server, admin_token)
        item = staff.publish("Parliament votes on the budget", labels=["exclusive"], key_event=True)
        staff.edit(item["id"], headline="Parliament passes the budget")
        staff.http.close()
        page.goto(server.url + "/")
        expect(page.locator(".tk-heading")).to_have_text(heading)
        expect(page.locator("html")).to_have_attribute("dir", direction)
        expect(page.locator(".tk-feed .tk-ago").first).not_to_be_empty()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        if direction == "rtl":
            head = page.locator(".tk-heading").bounding_box()
            pause = page.locator(".tk-pause").bounding_box()
            assert head and pause and head["x"] > pause["x"], "the heading starts on the right"
        results = Axe().run(page)
        assert results.violations_count == 0, results.generate_report()
        page.goto(server.url + "/desk")
        expect(page.locator("#post")).to_have_text(desk_button)
        expect(page.locator("html")).to_have_attribute("dir", direction)
        expect(page.locator(".recent-item").first).to_be_visible()
        results = Axe().run(page)
        assert results.violations_count == 0, results.generate_report()
    finally:
        page.close()  # before its server goes, so the page does not try to reconnect
        server.stop()
