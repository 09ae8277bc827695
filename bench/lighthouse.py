"""Lighthouse scores of the pages: performance, accessibility, best practices and SEO.

Runs ``ticker demo`` on a free port (embedded Redis in a throw-away folder, its back-filled
sample headlines, the scheduled ones published at once, no new ones during the run, so every
page is measured as it loads, not while items arrive) and Google's Lighthouse in Debian's
Chromium against ``/``, ``/desk`` and, when the server has permalinks, the permalink
``/items/{id}`` of the newest item with a photo (else the newest): as a phone
(Lighthouse's default: a simulated slow 4G link and a 4x slower CPU) and as a desktop. Prints
the four category scores of each page, its Core Web Vitals and every audit that did not pass.

Lighthouse is a Node program and not a dependency of Ticker; install it once, outside the
repository, and name it with ``--lighthouse`` or ``LIGHTHOUSE``::

    npm install --prefix ~/.cache/ticker-lighthouse lighthouse
    LIGHTHOUSE=~/.cache/ticker-lighthouse/node_modules/.bin/lighthouse .venv/bin/python bench/lighthouse.py

The scores depend on the machine (the phone's CPU is simulated from this one's speed):
compare runs made on the same one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn

import httpx

ROOT = Path(__file__).resolve().parent.parent
TICKER = str(ROOT / ".venv" / "bin" / "ticker")
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
METRICS = ("first-contentful-paint", "largest-contentful-paint", "total-blocking-time", "cumulative-layout-shift")
CHROME_FLAGS = "--headless --no-sandbox --disable-gpu"
QUIET_INTERVAL = "86400"
"""Seconds between the demo's new headlines: none arrives while a page is measured."""
START_TIMEOUT = 60.0
RUN_TIMEOUT = 300.0


def fail(message: str) -> NoReturn:
    sys.exit(f"lighthouse: {message}")


def start_demo(state: str) -> tuple[subprocess.Popen[str], str]:
    """``ticker demo`` on a free port; its base URL once its items are stored and published."""
    env = {**os.environ, "TICKER_STATE_DIR": state}
    env.pop("TICKER_REDIS_URL", None)
    demo = subprocess.Popen(
        [TICKER, "demo", "--port", "0", "--interval", QUIET_INTERVAL],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert demo.stdout is not None
    base = token = ""
    deadline = time.monotonic() + START_TIMEOUT
    while not (base and token) and time.monotonic() < deadline:
        line = demo.stdout.readline()
        if not line:
            break
        if match := re.search(r"Reader page:\s+(\S+?)/?$", line.strip()):
            base = match.group(1)
        if match := re.search(r"Staff token:\s+(\S+)", line):
            token = match.group(1)
    if not (base and token):
        demo.kill()
        fail("ticker demo did not start (run scripts/install first)")
    count = -1
    with httpx.Client(base_url=base, timeout=10, headers={"Authorization": f"Bearer {token}"}) as api:
        while time.monotonic() < deadline:
            for item in api.get("/api/scheduled").json()["items"]:
                api.post(f"/api/scheduled/{item['id']}/publish")
            items = api.get("/api/items?limit=50").json()["items"]
            if items and len(items) == count:
                return demo, base
            count = len(items)
            time.sleep(1)
    stop(demo)
    fail("the demo's headlines did not appear")


def stop(demo: subprocess.Popen[str]) -> None:
    demo.send_signal(signal.SIGINT)
    try:
        demo.wait(timeout=20)
    except subprocess.TimeoutExpired:
        demo.kill()
        demo.wait()


def pages(base: str) -> list[str]:
    """``/``, ``/desk`` and a permalink when the server serves them."""
    urls = [f"{base}/", f"{base}/desk"]
    items = httpx.get(f"{base}/api/items?limit=50", timeout=10).json()["items"]
    if items:
        chosen = next((item for item in items if item.get("image")), items[0])
        permalink = f"{base}/items/{chosen['id']}"
        answer = httpx.get(permalink, timeout=10)
        if answer.status_code == 200 and answer.headers.get("content-type", "").startswith("text/html"):
            urls.append(permalink)
    return urls


def lighthouse(program: str, chromium: str, url: str, form_factor: str) -> dict[str, Any]:
    command = [
        program,
        url,
        "--quiet",
        "--output=json",
        "--output-path=stdout",
        f"--chrome-flags={CHROME_FLAGS}",
        f"--only-categories={','.join(CATEGORIES)}",
    ]
    if form_factor == "desktop":
        command.append("--preset=desktop")
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env={**os.environ, "CHROME_PATH": chromium},
        check=False,
    )
    if done.returncode != 0:
        fail(f"Lighthouse failed on {url}: {done.stderr.strip()[-500:]}")
    report: dict[str, Any] = json.loads(done.stdout)
    if report.get("runtimeError"):
        fail(f"Lighthouse could not measure {url}: {report['runtimeError']['message']}")
    return report


def not_passed(report: dict[str, Any]) -> list[str]:
    """Every scored audit below full marks, once, named with its category."""
    lines = []
    seen = set()
    for category in report["categories"].values():
        for ref in category["auditRefs"]:
            audit = report["audits"][ref["id"]]
            if ref["id"] in seen or audit["score"] is None or audit["score"] >= 1:
                continue
            if audit["scoreDisplayMode"] in ("informative", "manual", "notApplicable"):
                continue
            seen.add(ref["id"])
            shown = f" ({audit['displayValue']})" if audit.get("displayValue") else ""
            lines.append(f"    {category['id']}: {audit['title']}{shown}, score {audit['score']:.2f}")
    return lines


def describe(url: str, form_factor: str, report: dict[str, Any]) -> str:
    categories = report["categories"]
    scores = "  ".join(f"{name} {round(categories[name]['score'] * 100)}" for name in CATEGORIES if name in categories)
    metrics = ", ".join(f"{report['audits'][m]['title']} {report['audits'][m]['displayValue']}" for m in METRICS)
    return "\n".join([f"{url} ({form_factor}): {scores}", f"    {metrics}", *not_passed(report)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lighthouse",
        default=os.environ.get("LIGHTHOUSE") or shutil.which("lighthouse"),
        help="the lighthouse program (env LIGHTHOUSE; default: lighthouse on the PATH)",
    )
    parser.add_argument(
        "--chromium",
        default=os.environ.get("CHROME_PATH") or os.environ.get("TICKER_TEST_CHROMIUM") or shutil.which("chromium"),
        help="Chromium to drive (env CHROME_PATH or TICKER_TEST_CHROMIUM; default: chromium on the PATH)",
    )
    parser.add_argument(
        "--form-factor", choices=["mobile", "desktop", "both"], default="both", help="what to emulate (default both)"
    )
    args = parser.parse_args()
    if not args.lighthouse:
        fail("Lighthouse is missing: npm install --prefix DIR lighthouse; LIGHTHOUSE=DIR/node_modules/.bin/lighthouse")
    if not args.chromium:
        fail("needs Debian's chromium (apt-get install chromium) or CHROME_PATH")
    factors = ["mobile", "desktop"] if args.form_factor == "both" else [args.form_factor]
    version = subprocess.run([args.lighthouse, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"Lighthouse {version or '?'}; scores out of 100", flush=True)
    with tempfile.TemporaryDirectory() as state:
        demo, base = start_demo(state)
        try:
            for url in pages(base):
                for form_factor in factors:
                    report = lighthouse(args.lighthouse, args.chromium, url, form_factor)
                    print(describe(url, form_factor, report), flush=True)
        finally:
            stop(demo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
