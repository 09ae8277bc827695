"""Publish → visible in the browser: how long from a staff POST until the headline is on screen.

Runs ``ticker serve`` with a throw-away embedded Redis, opens the reader page in headless
Chromium, posts headlines one by one through the HTTP API and, for each, takes the time from
just before the POST to the first animation frame after the row entered the page. Prints the
median and spread, and the widget's size (gzip).

    .venv/bin/python -m bench.browser_latency [--count 25]
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from bench.staff import create_token

ROOT = Path(__file__).resolve().parent.parent
TICKER = str(ROOT / ".venv" / "bin" / "ticker")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

WATCH = """
window.__seen = {};
new MutationObserver((records) => {
  for (const record of records) {
    for (const node of record.addedNodes) {
      const rows = node.nodeType === 1 ? [node, ...node.querySelectorAll(".tk-item")] : [];
      for (const row of rows) {
        const id = row.dataset && row.dataset.id;
        if (id && id.startsWith("bench-") && !(id in window.__seen)) {
          window.__seen[id] = null;
          requestAnimationFrame(() => { window.__seen[id] = performance.timeOrigin + performance.now(); });
        }
      }
    }
  }
}).observe(document.querySelector(".tk"), { childList: true, subtree: true });
"""


def widget_sizes() -> dict[str, tuple[int, int]]:
    sizes = {}
    for name in ("ticker.js", "ticker.css"):
        raw = (ROOT / "web" / name).read_bytes()
        sizes[name] = (len(raw), len(gzip.compress(raw, compresslevel=9)))
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=25, help="headlines to time (default 25)")
    args = parser.parse_args()
    chromium = os.environ.get("TICKER_TEST_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        sys.exit("browser_latency: needs Debian's chromium (apt-get install chromium)")

    with tempfile.TemporaryDirectory() as state:
        env = {**os.environ, "TICKER_STATE_DIR": state}
        env.pop("TICKER_REDIS_URL", None)
        server = subprocess.Popen(
            [TICKER, "serve", "--port", "0", "--log-level", "warning"], stdout=subprocess.PIPE, text=True, env=env
        )
        try:
            assert server.stdout is not None
            match = re.search(r"serving on (\S+)", server.stdout.readline())
            if not match:
                sys.exit("browser_latency: the server did not start")
            url = match.group(1)
            latencies = measure(url, create_token(env), chromium, args.count)
        finally:
            server.terminate()
            server.wait(30)

    ordered = sorted(latencies)
    print(f"publish -> visible in Chromium, {len(ordered)} headlines, one at a time:")
    print(
        f"  median {statistics.median(ordered):.1f} ms, p90 {ordered[int(len(ordered) * 0.9) - 1]:.1f} ms, "
        f"min {ordered[0]:.1f} ms, max {ordered[-1]:.1f} ms"
    )
    for name, (raw, packed) in widget_sizes().items():
        print(f"  {name}: {raw / 1024:.1f} KB, {packed / 1024:.1f} KB gzip")
    return 0


def measure(url: str, token: str, chromium: str, count: int) -> list[float]:
    latencies = []
    with (
        sync_playwright() as playwright,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as http,
    ):
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
        page = browser.new_page()
        page.goto(url + "/")
        page.wait_for_selector('.tk[data-state="live"]')
        page.evaluate(WATCH)
        for n in range(count + 3):
            item_id = f"bench-{n}"
            started = time.time() * 1000
            http.post("/api/items", json={"id": item_id, "headline": f"Benchmark headline {n}"}).raise_for_status()
            deadline = time.monotonic() + 10
            while not (seen := page.evaluate(f"window.__seen[{item_id!r}]")):
                if time.monotonic() > deadline:
                    sys.exit(f"browser_latency: {item_id} never appeared")
                time.sleep(0.005)  # the time is taken in the page, so polling adds nothing to it
            if n >= 3:  # the first few warm up the page and the server
                latencies.append(seen - started)
            time.sleep(0.2)
        browser.close()
    return latencies


if __name__ == "__main__":
    sys.exit(main())
