"""Browser fixtures: Debian's Chromium through Playwright, a page that records every console
error, uncaught exception and Content-Security-Policy violation, and the staff API."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.support import ServerThread, units

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


def chromium_path() -> str:
    """Debian's Chromium: TICKER_TEST_CHROMIUM, else ``chromium`` on PATH. Never skipped."""
    path = os.environ.get("TICKER_TEST_CHROMIUM") or shutil.which("chromium")
    if not path or not os.access(path, os.X_OK):
        pytest.fail(
            "the browser tests need Chromium: run scripts/test (it installs Debian's chromium), "
            "or apt-get install chromium, or set TICKER_TEST_CHROMIUM to its path",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per module: the sync API keeps an event loop running while it is open."""
    executable = chromium_path()
    expect.set_options(timeout=units(10) * 1000)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class PageLog:
    """What went wrong in a page; checked after every test unless allowed."""

    errors: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def allow(self, fragment: str) -> None:
        """Console errors containing ``fragment`` are expected (e.g. a refused reconnect)."""
        self.allowed.append(fragment)

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in self.allowed)]


@pytest.fixture
def page_log() -> PageLog:
    return PageLog()


@pytest.fixture
def page(browser: Browser, page_log: PageLog, server: ServerThread) -> Iterator[Page]:
    """A fresh browser context and page; fails the test on any console error or CSP violation.

    It needs ``server`` so the server outlives the page (no reconnect errors at teardown).
    """
    context = browser.new_context(viewport={"width": 900, "height": 900})
    context.set_default_timeout(units(10) * 1000)
    opened = context.new_page()
    opened.add_init_script(RECORD_VIOLATIONS)
    opened.on("console", page_log.console)
    opened.on("pageerror", lambda exc: page_log.errors.append(f"uncaught: {exc}"))
    yield opened
    violations = []
    if not opened.is_closed():
        violations = opened.evaluate("window.__violations || []")
    context.close()
    assert violations == [], f"Content-Security-Policy violations: {violations}"
    assert page_log.unexpected() == [], f"errors in the page: {page_log.unexpected()}"


class Staff:
    """The staff HTTP API of a running server, with an admin token."""

    def __init__(self, server: ServerThread, token: str) -> None:
        self.http = httpx.Client(base_url=server.url, timeout=units(10), headers={"Authorization": f"Bearer {token}"})

    def publish(self, headline: str, **fields: Any) -> dict[str, Any]:
        answer = self.http.post("/api/items", json={"headline": headline, **fields})
        assert answer.status_code == 201, answer.text
        item: dict[str, Any] = answer.json()["item"]
        return item

    def edit(self, item_id: str, **fields: Any) -> dict[str, Any]:
        answer = self.http.patch(f"/api/items/{item_id}", json=fields)
        assert answer.status_code == 200, answer.text
        item: dict[str, Any] = answer.json()["item"]
        return item

    def retract(self, item_id: str) -> None:
        answer = self.http.delete(f"/api/items/{item_id}")
        assert answer.status_code == 200, answer.text

    def get(self, item_id: str) -> httpx.Response:
        return self.http.get(f"/api/items/{item_id}")


@pytest.fixture
def staff(server: ServerThread, admin_token: str) -> Iterator[Staff]:
    api = Staff(server, admin_token)
    yield api
    api.http.close()


def ms(n: float) -> float:
    """``n`` units as Playwright's milliseconds."""
    return units(n) * 1000
