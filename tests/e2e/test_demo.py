"""``ticker demo``: the sample headlines, the producer against a real Redis, the command itself."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support import run, units, wait_for
from ticker.config import DEFAULT_PREFIX, Settings
from ticker.demo import (
    BACKFILL,
    BACKFILL_SPACING,
    DEFAULT_INTERVAL,
    DEMO_PREFIX,
    FOLLOW_UP_STEPS,
    REPEAT_WINDOW,
    Producer,
    banner,
    demo_settings,
    load_samples,
)
from ticker.models import ItemCreate, ItemEdit, parse
from ticker.pages import WEB_DIR
from ticker.store import Store, connect


def test_samples_are_valid_items_with_every_kind_of_follow_up() -> None:
    samples = load_samples()
    assert len(samples) >= 30
    for sample in samples:
        parse(ItemCreate, {"headline": sample.headline, "labels": list(sample.labels), "url": sample.url})
        if sample.update:
            parse(ItemEdit, {"headline": sample.update})
        if sample.correction:
            parse(
                ItemEdit, {"kind": "correction", "headline": sample.correction[0], "correction": sample.correction[1]}
            )
    assert samples[0].pinned and sum(s.pinned for s in samples) == 1
    assert samples[0].image and any(s.urgency == 1 for s in samples) and any(s.key_event for s in samples)
    assert sum(s.scheduled for s in samples) == 1 and len({s.headline for s in samples}) == len(samples)
    for sample in samples:
        if sample.image:
            assert (WEB_DIR / sample.image["file"]).is_file()
            photo = {k: v for k, v in sample.image.items() if k != "file"}
            url = f"http://127.0.0.1:8000/static/{sample.image['file']}"
            parse(
                ItemCreate, {"headline": "x", "image": {**photo, "url": url}}, image_origins=["http://127.0.0.1:8000"]
            )
    assert any(s.update for s in samples) and any(s.correction for s in samples) and any(s.retract for s in samples)
    labels = {label for s in samples for label in s.labels}
    assert {"exclusive", "opinion", "interview", "review"} <= labels


def test_demo_keeps_to_its_own_prefix() -> None:
    assert demo_settings(Settings()).prefix == DEMO_PREFIX
    assert demo_settings(Settings(prefix="newsroom")).prefix == "newsroom"
    assert DEFAULT_PREFIX != DEMO_PREFIX
    text = banner("http://127.0.0.1:8000", "tk_secret", 4)
    assert "http://127.0.0.1:8000/desk" in text and "tk_secret" in text and "every 4 s" in text
    assert "starts fresh each time" in text


def test_producer_backfills_then_publishes_updates_corrects_and_retracts(settings: Settings) -> None:
    assert settings.redis_url
    url = settings.redis_url

    async def scenario() -> tuple[list[dict[str, object]], list[str]]:
        client = connect(url)
        store = Store(client, prefix=settings.prefix)
        try:
            producer = Producer(store, load_samples(), run_id="t")
            await producer.backfill(12)
            page = await store.page(limit=50)
            assert len(page.items) == 12 and len(page.pinned) == 1
            oldest = min(item.published_at for item in page.items)
            assert datetime.now(UTC) - oldest > BACKFILL_SPACING * 10
            assert any(item.updated_at for item in page.items)
            assert any(item.correction for item in page.items)
            steps = len(load_samples()) + FOLLOW_UP_STEPS
            for number in range(1, steps + 1):
                await producer.step(number)
            changes = await store.changes_after("0-0", count=10_000)
            final = await store.page(limit=200)
            return [item.model_dump(mode="json") for item in final.items], [c.op for c in changes]
        finally:
            await client.aclose()

    items, ops = run(scenario())
    assert {"publish", "update", "retract"} <= set(ops)
    assert all(item["id"].startswith("demo-t-") for item in items)
    assert not any(item["headline"].startswith("Unconfirmed") for item in items)
    published = [datetime.fromisoformat(str(item["published_at"]).replace("Z", "+00:00")) for item in items]
    assert max(published) > datetime.now(UTC) - timedelta(minutes=1)


def test_no_headline_repeats_within_ten_minutes_and_the_scheduled_one_waits(settings: Settings) -> None:
    """Ten minutes of steps at the default pace, against a real Redis (published times do not matter)."""
    assert settings.redis_url
    url = settings.redis_url

    async def scenario() -> tuple[list[str], list[str]]:
        client = connect(url)
        store = Store(client, prefix=settings.prefix)
        try:
            producer = Producer(store, load_samples(), run_id="r", photos="http://127.0.0.1:8000")
            await producer.backfill()
            await producer.schedule()
            producer.set_pace(DEFAULT_INTERVAL)
            for number in range(1, int(REPEAT_WINDOW.total_seconds() / DEFAULT_INTERVAL) + 1):
                await producer.step(number)
            changes = await store.changes_after("0-0", count=10_000)
            published = [c for c in changes if c.op == "publish"]
            scheduled = [i.headline for i in await store.scheduled()]
            return [c.parsed().headline for c in published], scheduled
        finally:
            await client.aclose()

    headlines, scheduled = run(scenario())
    assert len(headlines) == len(set(headlines)) > 40
    assert scheduled == [s.headline for s in load_samples() if s.scheduled]
    flash = [s.headline for s in load_samples() if s.urgency == 1]
    assert headlines[BACKFILL:][:1] == flash, "the flash and its banner come first"


def test_ticker_demo_serves_the_pages_and_moves(settings: Settings) -> None:
    assert settings.redis_url
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKER_")}
    env.update({"TICKER_REDIS_URL": settings.redis_url, "TICKER_PREFIX": settings.prefix})
    demo = subprocess.Popen(
        [sys.executable, "-m", "ticker.cli", "demo", "--port", "0", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert demo.stdout is not None
        lines = [demo.stdout.readline() for _ in range(8)]
        text = "".join(lines)
        base = re.search(r"Reader page:\s+(\S+)/", text)
        token = re.search(r"Staff token:\s+(\S+)", text)
        assert base and token, text
        with httpx.Client(base_url=base.group(1), timeout=units(10)) as http:
            assert "data-ticker" in http.get("/").text
            assert http.get("/desk").status_code == 200
            first = http.get("/api/items").json()["cursor"]
            wait_for(lambda: http.get("/api/items").json()["cursor"] != first, what="a sample headline")
            answer = http.post(
                "/api/items", json={"headline": "From the desk"}, headers={"Authorization": f"Bearer {token.group(1)}"}
            )
            assert answer.status_code == 201
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(units(30))
        except subprocess.TimeoutExpired:
            demo.kill()
            pytest.fail("ticker demo did not stop on Ctrl+C")
        for pipe in (demo.stdout, demo.stderr):
            if pipe:
                pipe.close()
