"""``ticker demo``: the server, Redis and a producer of sample headlines, in one command.

Without ``TICKER_REDIS_URL`` the embedded Redis is started. The demo writes
under its own key prefix (``demo``, unless ``--prefix`` or ``TICKER_PREFIX``
names another), which it empties first so every run starts fresh (``ticker
serve`` keeps its items); it creates a staff token for the desk and prints it
with the reader and desk URLs.

The producer first back-fills a dozen items over the last hours (so day
headers and a lead photo show), schedules one item to appear while you watch,
then publishes a fresh sample at a pace that repeats no headline within ten
minutes (a flash with its breaking banner first), and every few seconds
updates, corrects or retracts one, as a newsroom would. The samples are
fictional, written for this project: ``ticker/samples.json``; their photos are
drawings in ``web/``, which the demo serves itself under ``/static/``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

from redis.exceptions import RedisError

from ticker import process
from ticker.auth import Scope, create_token
from ticker.config import DEFAULT_PREFIX, Settings
from ticker.errors import TickerError
from ticker.models import ItemCreate, ItemEdit, now, parse
from ticker.store import Store, connect

log = logging.getLogger("ticker.demo")

DEMO_PREFIX = "demo"
DEFAULT_INTERVAL = 4.0
BACKFILL = 12
BACKFILL_SPACING = timedelta(minutes=47)
FOLLOW_UP_STEPS = 3
"""How many steps after a publish its update, correction or retraction comes."""
ACTOR = "demo"
REPEAT_WINDOW = timedelta(minutes=10)
"""No headline is published twice within this long."""
SCHEDULE_DELAY = timedelta(seconds=40)
"""How long after start the scheduled sample appears."""


@dataclass(frozen=True, kw_only=True)
class Sample:
    """One sample headline and what later happens to it."""

    headline: str
    labels: tuple[str, ...] = ()
    url: str | None = None
    pinned: bool = False
    update: str | None = None
    """A later headline, published as an update ("Updated")."""
    correction: tuple[str, str] | None = None
    """A later (headline, note), published as a correction."""
    retract: bool = False
    image: dict[str, Any] | None = None
    """A photo: ``file`` (in ``web/``), ``alt``, ``caption``, ``credit``, ``width``, ``height``."""
    key_event: bool = False
    urgency: int = 5
    scheduled: bool = False
    """Scheduled at start, to appear a little later, instead of being published in turn."""


def load_samples() -> list[Sample]:
    """The sample headlines shipped in the package."""
    raw = json.loads(resources.files("ticker").joinpath("samples.json").read_text(encoding="utf-8"))
    samples = []
    for entry in raw["headlines"]:
        fix = entry.get("correction")
        samples.append(
            Sample(
                headline=entry["headline"],
                labels=tuple(entry.get("labels", ())),
                url=entry.get("url"),
                pinned=bool(entry.get("pinned", False)),
                update=entry.get("update"),
                correction=(fix["headline"], fix["note"]) if fix else None,
                retract=bool(entry.get("retract", False)),
                image=entry.get("image"),
                key_event=bool(entry.get("key_event", False)),
                urgency=int(entry.get("urgency", 5)),
                scheduled=bool(entry.get("scheduled", False)),
            )
        )
    return samples


class Producer:
    """Publishes samples into a store, with their follow-ups a few steps later."""

    def __init__(
        self,
        store: Store,
        samples: list[Sample],
        *,
        clock: Callable[[], datetime] = now,
        run_id: str | None = None,
        photos: str | None = None,
    ) -> None:
        self.store = store
        self.samples = [s for s in samples if not s.scheduled]
        self.later = [s for s in samples if s.scheduled]
        self.photos = photos
        """Base URL the sample photos are served from (``<photos>/static/<file>``); ``None``: no photos."""
        self.pace = 1
        self.clock = clock
        self.run_id = run_id or secrets.token_hex(3)
        self.count = 0
        self.next_sample = 0
        self.due: list[tuple[int, str, Sample]] = []

    def _take(self) -> Sample:
        sample = self.samples[self.next_sample % len(self.samples)]
        self.next_sample += 1
        if self.next_sample >= len(self.samples):
            self.next_sample = 1  # the pinned opener is posted once per run
        return sample

    async def publish(
        self, sample: Sample, *, published_at: datetime | None = None, publish_at: datetime | None = None
    ) -> str:
        self.count += 1
        item_id = f"demo-{self.run_id}-{self.count}"
        body: dict[str, Any] = {
            "id": item_id,
            "headline": sample.headline,
            "labels": list(sample.labels),
            "pinned": sample.pinned,
        }
        if sample.url:
            body["url"] = sample.url
        if published_at is not None:
            body["published_at"] = published_at.isoformat()
        if sample.image and self.photos:
            photo = {k: v for k, v in sample.image.items() if k != "file"}
            body["image"] = {**photo, "url": f"{self.photos}/static/{sample.image['file']}"}
        if sample.key_event:
            body["key_event"] = True
        if sample.urgency != 5:
            body["urgency"] = sample.urgency
        if publish_at is not None:
            body["publish_at"] = publish_at.isoformat()
        origins = (self.photos,) if self.photos else ()
        await self.store.publish(parse(ItemCreate, body, image_origins=origins), actor=ACTOR)
        return item_id

    async def schedule(self) -> None:
        """The scheduled samples, due a little after start: they appear while you watch."""
        for n, sample in enumerate(self.later):
            await self.publish(sample, publish_at=self.clock() + SCHEDULE_DELAY * (n + 1))

    def set_pace(self, interval: float) -> None:
        """Publish a new headline every ``pace`` steps, so the samples left last at least
        :data:`REPEAT_WINDOW` before any comes round again."""
        fresh = max(1, len(self.samples) - self.next_sample)
        self.pace = max(1, math.ceil(REPEAT_WINDOW.total_seconds() / (interval * fresh)))

    async def follow_up(self, item_id: str, sample: Sample) -> None:
        """The sample's update, correction or retraction, whichever it has."""
        if sample.retract:
            await self.store.retract(item_id, actor=ACTOR)
            return
        if sample.correction:
            headline, note = sample.correction
            body = {"kind": "correction", "headline": headline, "correction": note}
        elif sample.update:
            body = {"kind": "update", "headline": sample.update}
        else:
            return
        await self.store.edit(item_id, parse(ItemEdit, body), actor=ACTOR)

    async def backfill(self, count: int = BACKFILL) -> None:
        """Items over the last hours, oldest first, their edits already made."""
        start = self.clock() - BACKFILL_SPACING * count
        for n in range(count):
            sample = self._take()
            if sample.retract:
                sample = self._take()
            jitter = timedelta(minutes=random.randint(-9, 9)) if n else timedelta()
            item_id = await self.publish(sample, published_at=start + BACKFILL_SPACING * n + jitter)
            await self.follow_up(item_id, sample)

    async def step(self, number: int) -> None:
        """One tick: the follow-ups now due, then a fresh headline when its turn has come."""
        ready = [entry for entry in self.due if entry[0] <= number]
        self.due = [entry for entry in self.due if entry[0] > number]
        for _, item_id, sample in ready:
            await self.follow_up(item_id, sample)
        if (number - 1) % self.pace:
            return
        sample = self._take()
        item_id = await self.publish(sample)
        if sample.update or sample.correction or sample.retract:
            self.due.append((number + FOLLOW_UP_STEPS, item_id, sample))

    async def run(self, interval: float) -> None:
        """Back-fill, schedule, then a step every ``interval`` seconds until cancelled."""
        await self.backfill()
        await self.schedule()
        self.set_pace(interval)
        number = 0
        while True:
            await asyncio.sleep(interval)
            number += 1
            try:
                await self.step(number)
            except Exception as exc:  # the demo keeps going through a Redis blip
                log.warning("demo producer: %s", exc)


def demo_settings(settings: Settings) -> Settings:
    """The demo's own prefix unless another was asked for."""
    return settings if settings.prefix != DEFAULT_PREFIX else settings.with_overrides(prefix=DEMO_PREFIX)


async def prepare(settings: Settings, redis_url: str) -> tuple[Store, str]:
    """A fresh demo prefix and a staff token for the desk."""
    store = Store(
        connect(redis_url, socket_connect_timeout=5),
        prefix=settings.prefix,
        min_replicas=settings.min_replicas,
        replica_wait_ms=settings.replica_wait_ms,
    )
    try:
        await process.reach(store, redis_url)
    except TickerError:
        await store.redis.aclose()
        raise
    if settings.prefix == DEMO_PREFIX:
        await store.clear()
    token = await create_token(store, f"demo-desk-{secrets.token_hex(2)}", frozenset({Scope.ADMIN}))
    return store, token


def banner(base_url: str, token: str, interval: float) -> str:
    return "\n".join(
        [
            "",
            "Ticker demo is running.",
            f"  Reader page:  {base_url}/",
            f"  Desk:         {base_url}/desk",
            f"  Staff token:  {token}",
            "                (paste it into the desk's token field)",
            f"Sample changes every {interval:g} s; Ctrl+C stops.",
            "It starts fresh each time: the demo's items are wiped on start (ticker serve keeps its items).",
            "",
        ]
    )


def run(settings: Settings, *, interval: float = DEFAULT_INTERVAL, log_level: str = "warning") -> int:
    """Start Redis (embedded unless configured), the server and the producer; block until Ctrl+C."""
    from ticker.app import create_app

    settings = demo_settings(settings)
    sock = process.bind(settings.host, settings.port)
    with process.redis_url(settings) as url:
        settings = settings.with_overrides(redis_url=url)
        base = process.base_url(sock)
        settings = settings.with_overrides(image_origins=(*settings.image_origins, base))  # its own sample photos

        async def main() -> None:
            store, token = await prepare(settings, url)
            server = process.build_server(create_app(settings), settings, log_level=log_level)
            producer = asyncio.create_task(Producer(store, load_samples(), photos=base).run(interval))
            print(banner(base, token, interval), flush=True)
            try:
                await server.serve(sockets=[sock])
            finally:
                producer.cancel()
                await asyncio.gather(producer, return_exceptions=True)
                await store.redis.aclose()

        try:
            asyncio.run(main())
        except RedisError:
            raise process.redis_unreachable(url) from None
    return 0
