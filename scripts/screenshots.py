"""Runs ``ticker demo`` on a free port with a throw-away Redis and photographs the pages."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def start_demo(state: str) -> tuple[subprocess.Popen[str], str, str]:
    env = {**os.environ, "TICKER_STATE_DIR": state, "TICKER_DISPLAY_TIMEZONE": "Europe/London"}
    env.pop("TICKER_REDIS_URL", None)
    demo = subprocess.Popen(
        [str(ROOT / ".venv/bin/ticker"), "demo", "--port", "0", "--interval", "1.5"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert demo.stdout is not None
    url = token = ""
    deadline = time.monotonic() + 60
    while not (url and token) and time.monotonic() < deadline:
        line = demo.stdout.readline()
        if not line:
            break
        if match := re.search(r"Reader page:\s+(\S+)/", line):
            url = match.group(1)
        if match := re.search(r"Staff token:\s+(\S+)", line):
            token = match.group(1)
    if not (url and token):
        demo.kill()
        sys.exit("screenshots: ticker demo did not start")
    return demo, url, token


def main() -> int:
    chromium = os.environ.get("TICKER_TEST_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        sys.exit("screenshots: needs Debian's chromium (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as state:
        demo, url, token = start_demo(state)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
                # Reduced motion: a highlighted arrival is photographed still, not halfway in.
                reader = browser.new_page(viewport={"width": 760, "height": 1500}, reduced_motion="reduce")
                reader.goto(url + "/")
                reader.wait_for_selector('.tk[data-state="live"]')
                reader.wait_for_selector(".tk-badge-updated")
                reader.wait_for_selector(".tk-keys .tk-jump")
                reader.wait_for_function("document.querySelector('.tk-lead img')?.complete")
                reader.locator(".tk-banner .tk-banner-text").wait_for()
                reader.locator(".tk-badge-updated").first.evaluate("e => e.focus({preventScroll: true})")
                reader.screenshot(path=str(DOCS / "reader.png"))

                desk = browser.new_page(viewport={"width": 1240, "height": 1180})
                desk.goto(url + "/desk")
                desk.wait_for_selector('#desk-status[data-state="live"]')
                desk.get_by_label("Staff token").fill(token)
                desk.locator("#signed-in").filter(has_text="Signed in").wait_for()
                desk.locator("#scheduled .recent-item").first.wait_for()
                desk.get_by_label("Headline", exact=True).fill("Ferry services resume after the storm")
                desk.get_by_label("Breaking").check()
                desk.get_by_label("Image URL").fill(url + "/static/demo-lighthouse.svg")
                desk.get_by_label("Alt text").fill("The lighthouse at Kestrel Point")
                desk.get_by_label("Caption").fill("Calm returns to the point, illustrative picture")
                desk.wait_for_function("document.querySelector('#image-preview img')?.complete")
                corrected = desk.locator(".recent .recent-item", has=desk.locator(".tk-note")).first
                corrected.get_by_role("button", name=re.compile("^History")).click()
                corrected.locator(".history li").first.wait_for()
                desk.locator("#readers").filter(has_text="Readers now").wait_for()
                desk.locator("#headline").focus()
                desk.screenshot(path=str(DOCS / "desk.png"))
                browser.close()
        finally:
            demo.terminate()
            demo.wait(30)
    print(f"saved {DOCS / 'reader.png'} and {DOCS / 'desk.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
