"""The desk page in real headless Chromium: post, edit, correct, fix, retract, errors, focus."""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.e2e.conftest import PageLog, Staff
from tests.support import ServerThread, wait_for
from ticker.config import Settings

pytestmark = pytest.mark.browser


def open_desk(page: Page, server: ServerThread, token: str | None) -> None:
    page.goto(server.url + "/desk")
    expect(page.locator("#desk-status")).to_have_attribute("data-state", "live")
    if token is not None:
        page.get_by_label(re.compile("token", re.I)).fill(token)


def recent(page: Page, text: str) -> object:
    return page.locator(".recent-item", has_text=text)


def test_desk_posts_edits_corrects_fixes_and_retracts(
    page: Page, server: ServerThread, admin_token: str, staff: Staff
) -> None:
    open_desk(page, server, admin_token)
    headline = page.get_by_label("Headline", exact=True)
    headline.fill("Storm closes the coastal road")
    page.get_by_label("Exclusive").check()
    page.get_by_label(re.compile("^Link")).fill("https://example.com/storm")
    headline.press("Control+Enter")
    row = page.locator(".recent-item", has_text="Storm closes the coastal road")
    expect(row).to_be_visible()
    expect(headline).to_have_value("")
    expect(headline).to_be_focused()
    item_id = row.get_attribute("data-id")
    assert item_id
    row = page.locator(f'.recent-item[data-id="{item_id}"]')
    item = staff.get(item_id).json()
    assert item["labels"] == ["exclusive"] and item["url"] == "https://example.com/storm"

    headline.fill("Second headline, posted with the Mac shortcut")
    headline.press("Meta+Enter")
    expect(page.locator(".recent-item", has_text="Mac shortcut")).to_be_visible()

    # An update, in place.
    row.get_by_role("button", name=re.compile("^Edit")).click()
    editor = row.locator("form.editor")
    editor.get_by_label("Headline").fill("Storm closes the coastal road until Monday")
    editor.get_by_role("button", name="Save").click()
    expect(row.locator(".recent-headline")).to_have_text("Storm closes the coastal road until Monday")
    expect(row.locator(".tk-badge-updated")).to_be_visible()
    updated = staff.get(item_id).json()
    assert updated["version"] == 2 and updated["updated_at"] is not None

    # A correction with its note.
    row.get_by_role("button", name=re.compile("^Edit")).click()
    editor.get_by_role("radio", name=re.compile("^Correction")).check()
    editor.get_by_label(re.compile("Correction note")).fill("It is the A1, not the A2")
    editor.get_by_label("Headline").fill("Storm closes the A1 until Monday")
    editor.get_by_label("Headline").press("Control+Enter")
    expect(row.locator(".tk-note")).to_have_text("Correction: It is the A1, not the A2")
    assert staff.get(item_id).json()["correction"] == "It is the A1, not the A2"

    # A fix: the version moves, no new update time.
    row.get_by_role("button", name=re.compile("^Edit")).click()
    editor.get_by_role("radio", name=re.compile("^Fix")).check()
    editor.get_by_label("Headline").fill("Storm closes the A1 until Monday.")
    editor.get_by_role("button", name="Save").click()
    expect(row.locator(".recent-headline")).to_have_text("Storm closes the A1 until Monday.")
    fixed = staff.get(item_id).json()
    assert fixed["version"] == 4 and fixed["updated_at"] == staff.get(item_id).json()["updated_at"]

    # Retract asks first; keeping it changes nothing.
    row.get_by_role("button", name=re.compile("^Retract")).click()
    expect(row.get_by_role("button", name="Keep it")).to_be_focused()
    row.get_by_role("button", name="Keep it").click()
    assert staff.get(item_id).status_code == 200
    row.get_by_role("button", name=re.compile("^Retract")).click()
    row.get_by_role("button", name="Yes, retract").click()
    expect(page.locator(f'.recent-item[data-id="{item_id}"]')).to_have_count(0)
    wait_for(lambda: staff.get(item_id).status_code == 404, what="the retraction")


def test_validation_errors_show_next_to_their_field(
    page: Page, page_log: PageLog, server: ServerThread, admin_token: str
) -> None:
    page_log.allow("status of 401")
    page_log.allow("status of 422")
    open_desk(page, server, None)
    headline = page.get_by_label("Headline", exact=True)
    headline.fill("No token yet")
    headline.press("Control+Enter")
    expect(page.locator("#token-error")).to_have_text("Enter your staff token first.")

    page.get_by_label(re.compile("token", re.I)).fill("tk_not-a-real-token")
    headline.press("Control+Enter")
    expect(page.locator("#token-error")).to_contain_text("token")

    page.get_by_label(re.compile("token", re.I)).fill(admin_token)
    expect(page.locator("#token-error")).to_be_hidden()
    headline.fill("   ")
    headline.press("Control+Enter")
    error = page.locator("#headline-error")
    expect(error).to_contain_text("must not be empty")
    expect(headline).to_have_attribute("aria-invalid", "true")
    assert "headline-error" in (headline.get_attribute("aria-describedby") or "")
    assert error.evaluate("(e) => e.closest('.field').contains(document.getElementById('headline'))")

    headline.fill("A fine headline")
    page.get_by_label(re.compile("^Link")).fill("javascript:alert(1)")
    headline.press("Control+Enter")
    expect(page.locator("#url-error")).to_contain_text("http")
    expect(page.locator("#headline-error")).to_be_hidden()


def test_a_later_post_clears_the_unreachable_server_message(
    page: Page, page_log: PageLog, server: ServerThread, admin_token: str, settings: Settings, staff: Staff
) -> None:
    """An editor who sees "nothing was saved" after a post that did save would post twice."""
    page_log.allow("WebSocket connection to")
    page_log.allow("ERR_CONNECTION_REFUSED")
    open_desk(page, server, admin_token)
    port = int(server.url.rsplit(":", 1)[1])
    server.stop()
    headline = page.get_by_label("Headline", exact=True)
    headline.fill("Posted once the server is back")
    headline.press("Control+Enter")
    error = page.locator("#compose-error")
    expect(error).to_have_text(re.compile("cannot be reached; nothing was saved"))
    restarted = ServerThread(settings, port=port).start()
    try:
        page.get_by_role("button", name=re.compile("^Post")).click()
        expect(recent(page, "Posted once the server is back")).to_be_visible()  # type: ignore[attr-defined]
        expect(error).to_be_hidden()
        expect(headline).to_have_value("")
        assert [i["headline"] for i in staff.http.get("/api/items").json()["items"]] == [
            "Posted once the server is back"
        ]
    finally:
        restarted.stop()


def test_live_changes_never_steal_focus(
    page: Page, page_log: PageLog, server: ServerThread, admin_token: str, staff: Staff
) -> None:
    page_log.allow("status of 412")
    staff.publish("Being edited at the desk", id="edit-me")
    open_desk(page, server, admin_token)
    headline = page.get_by_label("Headline", exact=True)
    headline.click()
    headline.type("Half a head")
    for n in range(3):
        staff.publish(f"Posted elsewhere {n}", id=f"elsewhere-{n}")
    expect(recent(page, "Posted elsewhere 2")).to_be_visible()
    expect(headline).to_be_focused()
    headline.type("line")
    expect(headline).to_have_value("Half a headline")

    row = page.locator('.recent-item[data-id="edit-me"]')
    row.get_by_role("button", name=re.compile("^Edit")).click()
    box = row.get_by_label("Headline")
    expect(box).to_be_focused()
    box.type(" (mine)")
    staff.edit("edit-me", headline="Changed by a colleague")
    expect(row.locator(".edit-notice")).to_contain_text("version 2")
    expect(box).to_be_focused()
    expect(box).to_have_value("Being edited at the desk (mine)")

    # Saving over a colleague's change is refused (If-Match), and the desk says why.
    row.get_by_role("button", name="Save").click()
    expect(row.locator(".form-error")).to_contain_text("Someone changed this item")
    assert staff.get("edit-me").json()["headline"] == "Changed by a colleague"
    row.get_by_role("button", name="Cancel").click()
    expect(row.locator(".recent-headline")).to_have_text("Changed by a colleague")


def test_token_is_kept_for_the_browser_session_only(page: Page, server: ServerThread, admin_token: str) -> None:
    open_desk(page, server, admin_token)
    page.reload()
    expect(page.get_by_label(re.compile("token", re.I))).to_have_value(admin_token)
    assert page.evaluate("localStorage.length") == 0
    other = page.context.browser.new_context()  # type: ignore[union-attr]
    try:
        fresh = other.new_page()
        fresh.goto(server.url + "/desk")
        expect(fresh.get_by_label(re.compile("token", re.I))).to_have_value("")
    finally:
        other.close()


@pytest.mark.parametrize("path", ["/", "/desk"])
def test_pages_pass_an_axe_accessibility_check(page: Page, server: ServerThread, staff: Staff, path: str) -> None:
    staff.publish("Accessible headline", labels=["opinion"], url="https://example.com/a")
    staff.edit(staff.publish("Edited headline")["id"], headline="Edited headline, updated")
    page.goto(server.url + path)
    expect(page.locator(".tk-item, .recent-item").first).to_be_visible()
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
