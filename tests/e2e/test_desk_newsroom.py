"""The desk's newsroom tools in headless Chromium: photo, urgency, key events, the schedule,
the archive (search, channel, older pages), history, who is signed in and readers now."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, Route, expect

from tests.e2e.conftest import PageLog, Staff
from tests.support import ServerThread, wait_for

pytestmark = pytest.mark.browser

PHOTO_SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="80" height="45"><rect width="80" height="45"/></svg>'


def test_desk_posts_a_photo_schedules_and_manages_the_schedule(
    page: Page, page_log: PageLog, server: ServerThread, admin_token: str, staff: Staff
) -> None:
    page_log.allow("status of 401")

    def photo(route: Route) -> None:
        route.fulfill(status=200, content_type="image/svg+xml", body=PHOTO_SVG)

    page.route("https://photos.example/**", photo)
    page.goto(server.url + "/desk")
    expect(page.locator("#desk-status")).to_have_attribute("data-state", "live")
    expect(page.locator("#token-hint")).to_contain_text("ticker token create")
    token = page.get_by_label(re.compile("token", re.I))
    token.fill("tk_wrong")
    expect(page.locator("#token-error")).to_contain_text("unknown or revoked")
    token.fill(admin_token)
    expect(page.locator("#signed-in")).to_have_text("Signed in as editor (admin)")
    expect(page.locator("#readers")).to_contain_text("Readers now: ")

    page.get_by_label("Headline", exact=True).fill("Jets arrive at the air base")
    page.get_by_label(re.compile("^Image URL")).fill("https://photos.example/jet.svg")
    page.get_by_label(re.compile("^Alt text")).fill("A jet over the sea")
    page.get_by_label("Caption").fill("Illustrative photo")
    preview = page.locator("#image-preview img")
    expect(preview).to_have_attribute("alt", "A jet over the sea")
    expect(page.locator("#image-preview figcaption")).to_have_text("Illustrative photo")
    page.get_by_label("Urgency", exact=True).select_option("1")
    page.get_by_label("Key event", exact=True).check()
    page.get_by_role("button", name="Post headline").click()
    row = page.locator(".recent .recent-item", has_text="Jets arrive")
    expect(row.locator(".tk-tag-key")).to_have_text("Key event")
    item = staff.get(row.get_attribute("data-id") or "").json()
    assert item["urgency"] == 1 and item["key_event"] and item["image"]["caption"] == "Illustrative photo"
    expect(page.locator("#image-preview")).to_be_hidden()

    # Two scheduled items: one rescheduled and published now, one cancelled.
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    for text in ("Budget speech at noon", "Rail timetable changes"):
        page.get_by_label("Headline", exact=True).fill(text)
        page.get_by_label(re.compile("^Publish at")).fill(later)
        page.get_by_role("button", name="Post headline").click()
        expect(page.locator("#scheduled .recent-item", has_text=text)).to_be_visible()
    assert staff.http.get("/api/items", params={"q": "budget"}).json()["items"] == []
    budget_id = page.locator("#scheduled .recent-item", has_text="Budget speech").get_attribute("data-id")
    budget = page.locator(f'#scheduled .recent-item[data-id="{budget_id}"]')
    budget.get_by_role("button", name=re.compile("^Edit scheduled")).click()
    budget.get_by_label("Headline").fill("Budget speech at one")
    budget.get_by_role("button", name="Save").click()
    expect(budget.locator(".recent-headline")).to_have_text("Budget speech at one")
    budget.get_by_role("button", name=re.compile("^Publish now")).click()
    expect(page.locator(".recent .recent-item", has_text="Budget speech at one")).to_be_visible()
    expect(budget).to_have_count(0)
    rail_id = page.locator("#scheduled .recent-item", has_text="Rail timetable").get_attribute("data-id")
    rail = page.locator(f'#scheduled .recent-item[data-id="{rail_id}"]')
    rail.get_by_role("button", name=re.compile("^Cancel scheduled")).click()
    rail.get_by_role("button", name="Yes, cancel it").click()
    expect(page.locator("#scheduled-panel")).to_be_hidden()
    wait_for(lambda: staff.http.get("/api/scheduled").json()["items"] == [], what="the schedule emptied")


def test_desk_searches_pages_back_filters_and_shows_history(
    page: Page, server: ServerThread, admin_token: str, staff: Staff
) -> None:
    start = datetime.now(UTC) - timedelta(days=3)
    for n in range(35):
        channel = "sport" if n % 5 == 0 else "news"
        at = (start + timedelta(hours=n)).isoformat()
        staff.publish(f"Archive story {n}", id=f"arc-{n:02d}", published_at=at, channel=channel)
    staff.edit("arc-01", headline="Archive story 1, harbour update")
    staff.edit("arc-01", kind="correction", correction="It was the east pier", headline="Archive story 1, harbour pier")
    staff.edit("arc-01", key_event=True)
    page.goto(server.url + "/desk")
    page.get_by_label(re.compile("token", re.I)).fill(admin_token)
    expect(page.locator("#signed-in")).to_contain_text("editor")
    rows = page.locator(".recent .recent-item")
    expect(rows).to_have_count(30)
    expect(rows.first.locator(".recent-date")).to_have_text(re.compile(r"\d+ \w+"))
    page.get_by_role("button", name="Older items").click()
    expect(rows).to_have_count(35)
    expect(page.get_by_role("button", name="Older items")).to_be_hidden()

    page.get_by_label("Search headlines").fill("HARBOUR pier")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    row = rows.first
    row.get_by_role("button", name=re.compile("^History")).click()
    history = row.locator(".history li")
    expect(history).to_have_count(4)
    expect(history.locator(".history-kind")).to_have_text(["publish", "update", "correction", "key event"])
    expect(history.nth(2)).to_contain_text("editor")
    expect(history.nth(2)).to_contain_text("It was the east pier")

    page.get_by_label("Search headlines").fill("")
    page.get_by_label("Channel", exact=True).last.fill("sport")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(7)
    staff.publish("Live sport result", channel="sport")
    staff.publish("Live news result", channel="news")
    expect(page.locator(".recent .recent-item", has_text="Live sport result")).to_be_visible()
    expect(rows).to_have_count(8)
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def test_desk_changes_and_removes_the_photo_of_an_item_with_errors_beside_the_field(
    page: Page, page_log: PageLog, server: ServerThread, admin_token: str, staff: Staff
) -> None:
    page_log.allow("status of 422")
    page.route("https://photos.example/**", lambda route: route.fulfill(content_type="image/svg+xml", body=PHOTO_SVG))
    image = {"url": "https://photos.example/old.svg", "alt": "The old pier", "width": 80, "height": 45}
    item = staff.publish("Harbour reopens", image=image)
    page.goto(server.url + "/desk")
    page.get_by_label(re.compile("token", re.I)).fill(admin_token)
    row = page.locator(f'.recent .recent-item[data-id="{item["id"]}"]')
    row.get_by_role("button", name=re.compile("^Edit")).click()
    editor = row.locator("form.editor")
    expect(editor.get_by_label("Image URL")).to_have_value("https://photos.example/old.svg")
    expect(editor.locator(".image-preview img")).to_have_attribute("alt", "The old pier")

    # A plain-http URL and an empty alt: the API's errors next to the photo fields.
    editor.get_by_label("Image URL").fill("http://photos.example/new.svg")
    editor.get_by_label("Alt text").fill("")
    editor.get_by_role("button", name="Save").click()
    expect(editor.locator('[data-error-for="image"]')).to_contain_text("https")
    expect(editor.locator('[data-error-for="image"]')).to_contain_text("alt must not be empty")
    expect(editor.get_by_label("Image URL")).to_have_attribute("aria-invalid", "true")
    assert staff.get(item["id"]).json()["version"] == 1

    editor.get_by_label("Image URL").fill("https://photos.example/new.svg")
    editor.get_by_label("Alt text").fill("Boats back in the harbour")
    editor.get_by_label("Caption").fill("This morning")
    editor.get_by_label("Credit").fill("Harbour office")
    expect(editor.locator(".image-preview img")).to_have_attribute("src", "https://photos.example/new.svg")
    expect(editor.locator(".image-preview figcaption")).to_have_text("This morning \u00b7 Harbour office")
    editor.get_by_role("button", name="Save").click()
    expect(row.locator(".recent-version")).to_have_text("v2")
    expect(row.locator(".recent-photo")).to_be_visible()
    changed = staff.get(item["id"]).json()
    assert changed["image"] == {
        "url": "https://photos.example/new.svg",
        "alt": "Boats back in the harbour",
        "caption": "This morning",
        "credit": "Harbour office",
        "width": None,
        "height": None,
    }

    row.get_by_role("button", name=re.compile("^Edit")).click()
    editor.get_by_role("button", name="Remove photo").click()
    expect(editor.locator(".image-preview")).to_be_hidden()
    editor.get_by_role("button", name="Save").click()
    expect(row.locator(".recent-version")).to_have_text("v3")
    expect(row.locator(".recent-photo")).to_have_count(0)
    assert staff.get(item["id"]).json()["image"] is None


def test_desk_edits_every_field_of_a_scheduled_item(
    page: Page, page_log: PageLog, server: ServerThread, admin_token: str, staff: Staff
) -> None:
    page_log.allow("status of 422")
    page.route("https://photos.example/**", lambda route: route.fulfill(content_type="image/svg+xml", body=PHOTO_SVG))
    at = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=2)
    item = staff.publish("Budget speech", publish_at=at.isoformat())
    page.goto(server.url + "/desk")
    page.get_by_label(re.compile("token", re.I)).fill(admin_token)
    row = page.locator(f'#scheduled .recent-item[data-id="{item["id"]}"]')
    row.get_by_role("button", name=re.compile("^Edit scheduled")).click()
    editor = row.locator("form.editor")
    editor.get_by_label("Channel").fill("Not A Channel")
    editor.get_by_role("button", name="Save").click()
    expect(editor.locator('[data-error-for="channel"]')).to_contain_text("does not match")
    expect(editor.get_by_label("Channel")).to_have_attribute("aria-invalid", "true")

    editor.get_by_label("Headline").fill("Budget speech moved")
    editor.get_by_label("Publish at").fill((at + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    editor.get_by_label("Link").fill("https://example.com/budget")
    editor.get_by_label("Channel").fill("politics")
    editor.get_by_label("Analysis").check()
    editor.get_by_label("Image URL").fill("https://photos.example/podium.svg")
    editor.get_by_label("Alt text").fill("The podium")
    expect(editor.locator(".image-preview img")).to_have_attribute("alt", "The podium")
    editor.get_by_label("Urgency (1 = flash)").select_option("2")
    editor.get_by_label("Key event").check()
    editor.get_by_label("Pinned").check()
    editor.get_by_role("button", name="Save").click()
    expect(row.locator(".recent-headline")).to_have_text("Budget speech moved")
    [scheduled] = staff.http.get("/api/scheduled").json()["items"]
    assert scheduled["published_at"] == (at + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert scheduled["url"] == "https://example.com/budget" and scheduled["channel"] == "politics"
    assert scheduled["labels"] == ["analysis"] and scheduled["urgency"] == 2
    assert scheduled["key_event"] and scheduled["pinned"]
    assert scheduled["image"]["url"] == "https://photos.example/podium.svg"
    assert scheduled["image"]["alt"] == "The podium"
    assert staff.http.get("/api/items", params={"q": "budget"}).json()["items"] == []
