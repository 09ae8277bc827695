"""The sinks on plain values: what they hand the hub, and what they tell it back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ticker.sinks import FRAMES_EXTENSION, FrameSink, SseSink, frames_of


class Listener:
    def __init__(self) -> None:
        self.heard: list[str] = []

    def stalled(self) -> None:
        self.heard.append("stalled")

    def stopped(self) -> None:
        self.heard.append("stopped")


class Frames:
    """A connection that keeps what it is given and calls back as the seam does."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed: tuple[int, str] | None = None
        self.listener: Any = None

    def attach(self, listener: Any, *, limit: int) -> Callable[[bytes], object]:
        self.listener, self.limit = listener, limit
        return self.written.append

    def close(self, code: int, reason: str = "") -> None:
        self.closed = (code, reason)


def test_frame_sink_hands_out_the_connections_write_and_passes_its_news_on() -> None:
    frames, listener, released = Frames(), Listener(), []
    sink = FrameSink(frames, limit=1024, on_stop=lambda: released.append(True))
    write = sink.open(listener)
    write(b"\x81\x02hi")
    assert frames.written == [b"\x81\x02hi"] and frames.limit == 1024
    frames.listener.stalled()
    sink.close(1013, "too slow")
    frames.listener.stopped()
    frames.listener.stopped()  # told twice (closed, then lost): heard once
    assert listener.heard == ["stalled", "stopped"] and released == [True]
    assert frames.closed == (1013, "too slow")


def test_frames_are_found_only_where_the_server_offers_them() -> None:
    frames = Frames()
    assert frames_of({"extensions": {FRAMES_EXTENSION: {"frames": frames}}}) is frames
    assert frames_of({"extensions": {}}) is None and frames_of({}) is None


def test_a_full_queue_reports_its_client_stalled_and_closing_ends_the_stream() -> None:
    async def run() -> None:
        listener = Listener()
        sink = SseSink(limit=2)
        deliver = sink.open(listener)
        for data in (b"a", b"b", b"c"):
            deliver(data)
        assert listener.heard == ["stalled"]
        sink.close(1013)
        assert [chunk async for chunk in sink.chunks(heartbeat=60)] == []

    asyncio.run(run())
