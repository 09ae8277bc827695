"""The hub on plain values: connection starts, fan-out, slow clients, history; no Redis, no server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.support import units
from ticker.hub import Hub
from ticker.models import Change


def item(item_id: str, channel: str = "news", pinned: bool = False, minute: int = 0) -> str:
    return json.dumps(
        {
            "id": item_id,
            "version": 1,
            "headline": item_id,
            "channel": channel,
            "pinned": pinned,
            "published_at": f"2024-11-17T16:{minute:02d}:00.000Z",
        },
        separators=(",", ":"),
    )


def change(n: int, item_id: str, op: str = "publish", **kw: Any) -> Change:
    return Change(f"{n}-0", op, item_id, item(item_id, **kw), "desk", n)


class Sink:
    """Keeps what it is given; past ``room`` bytes it tells the hub it is stalled, as flow control does."""

    def __init__(self, kind: str = "ws", room: int = 1_000_000) -> None:
        self.kind = kind
        self.room = room
        self.got: list[Any] = []
        self.closed: tuple[int, str] | None = None
        self.listener: Any = None

    def open(self, listener: Any) -> Any:
        self.listener = listener
        return self.deliver

    def deliver(self, data: Any) -> None:
        self.got.append(data)
        self.room -= len(data) if isinstance(data, bytes) else sum(map(len, data))
        if self.room < 0:
            self.listener.stalled()

    def close(self, code: int, reason: str = "") -> None:
        self.closed = (code, reason)

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(line) for data in self.got for payload in data for line in payload.split("\n")]


def loaded(n: int = 3, history_size: int = 100) -> Hub:
    hub = Hub(history_size=history_size)
    changes = [change(i, f"i{i}", minute=i) for i in range(1, n + 1)]
    hub.load(changes[-1].cursor, [c.item for c in changes], changes, complete=True)
    return hub


def test_snapshot_then_live_events_in_order() -> None:
    hub = loaded()
    sink = Sink("text")
    hub.join(sink, channel=None, cursor=None)
    hub.apply([change(4, "i4", minute=4), change(5, "i5", minute=5)])
    snapshot, *events = sink.messages()
    assert snapshot["type"] == "snapshot" and snapshot["cursor"] == "3-0"
    assert [i["id"] for i in snapshot["items"]] == ["i3", "i2", "i1"]
    assert [(e["cursor"], e["item"]["id"]) for e in events] == [("4-0", "i4"), ("5-0", "i5")]
    assert len(sink.got[1]) == 1  # both events due at once: one frame


def test_replay_from_a_known_cursor_and_reset_for_others() -> None:
    hub = loaded()
    replay = Sink("text")
    hub.join(replay, channel=None, cursor="1-0")
    assert [m["cursor"] for m in replay.messages()] == ["2-0", "3-0"]
    for cursor in ["2-5", "bad"]:
        reset = Sink("text")
        hub.join(reset, channel=None, cursor=cursor)
        assert [m["type"] for m in reset.messages()] == ["reset", "snapshot"]


def test_every_subscriber_gets_the_same_bytes() -> None:
    hub = loaded()
    sinks = [Sink() for _ in range(3)]
    for sink in sinks:
        hub.join(sink, channel=None, cursor="3-0")
    hub.apply([change(4, "i4")])
    assert sinks[0].got[0] is sinks[1].got[0] is sinks[2].got[0]
    assert sinks[0].got[0].startswith(b"\x81")


def test_a_change_read_twice_is_sent_once() -> None:
    hub = loaded()
    sink = Sink("text")
    hub.join(sink, channel=None, cursor="3-0")
    hub.apply([change(4, "i4")])
    hub.apply([change(4, "i4"), change(5, "i5")])
    assert [m["cursor"] for m in sink.messages()] == ["4-0", "5-0"]


def test_channel_filter_and_moves() -> None:
    hub = loaded()
    sport = Sink("text")
    hub.join(sport, channel="sport", cursor="3-0")
    hub.apply([change(4, "s1", channel="sport"), change(5, "i4")])
    moved = Change("6-0", "update", "s1", item("s1", channel="news"), "desk", 6)
    hub.apply([moved])
    assert [m["cursor"] for m in sport.messages()] == ["4-0", "6-0"]
    news = Sink("text")
    hub.join(news, channel="news", cursor=None)
    assert "s1" in [i["id"] for i in news.messages()[0]["items"]]


def test_slow_subscriber_is_closed_and_others_continue() -> None:
    hub = loaded()
    slow, fast = Sink(room=10), Sink()
    hub.join(slow, channel=None, cursor="3-0")
    hub.join(fast, channel=None, cursor="3-0")
    hub.apply([change(4, "i4")])
    hub.apply([change(5, "i5")])
    assert slow.closed is not None and slow.closed[0] == 1013 and len(slow.got) == 1
    assert len(fast.got) == 2 and len(hub.subscribers()) == 1


def test_cursor_ahead_of_the_hub_skips_what_the_client_has() -> None:
    hub = loaded()
    sink = Sink("text")
    hub.join(sink, channel=None, cursor=f"{5}-0")  # another process already sent 4-0 and 5-0
    assert sink.got == []
    hub.apply([change(4, "i4"), change(5, "i5"), change(6, "i6")])
    hub.apply([change(7, "i7")])
    assert [m["cursor"] for m in sink.messages()] == ["6-0", "7-0"]


def test_cursor_ahead_that_the_stream_never_had_resets() -> None:
    hub = loaded()
    sink = Sink("text")
    hub.join(sink, channel=None, cursor="5-1")  # seen elsewhere, then lost in a failover
    hub.apply([change(4, "i4")])
    assert sink.got == []
    hub.apply([change(5, "i5"), change(6, "i6")])  # the stream went past 5-1 without it
    assert [m["type"] for m in sink.messages()] == ["reset", "snapshot"]
    assert sink.messages()[1]["cursor"] == "6-0"
    hub.apply([change(7, "i7")])
    assert [m.get("cursor") for m in sink.messages()[2:]] == ["7-0"]


def test_retract_removes_from_snapshot_and_pinned_are_listed() -> None:
    hub = loaded()
    hub.apply([change(4, "p", pinned=True), change(5, "i2", op="retract")])
    sink = Sink("text")
    hub.join(sink, channel=None, cursor=None)
    snapshot = sink.messages()[0]
    assert [i["id"] for i in snapshot["items"]] == ["i3", "i1", "p"]
    assert [i["id"] for i in snapshot["pinned"]] == ["p"]


def test_history_trims_and_older_cursors_reset() -> None:
    hub = Hub(history_size=2)
    hub.load("0-0", [], [], complete=True)
    hub.apply([change(n, f"i{n}") for n in range(1, 6)])
    assert hub.history.base != "0-0" and not hub.history.known("1-0") and hub.history.known("5-0")
    sink = Sink("text")
    hub.join(sink, channel=None, cursor="1-0")
    assert [m["type"] for m in sink.messages()] == ["reset", "snapshot"]
    assert len(hub.history) <= 3


def test_resume_from_the_oldest_held_change_does_not_repeat_it() -> None:
    hub = Hub(history_size=2)
    changes = [change(n, f"i{n}") for n in (1, 2)]
    hub.load("2-0", [c.item for c in changes], changes, complete=False)
    assert hub.history.base == "1-0"
    sink = Sink("text")
    hub.join(sink, channel=None, cursor="1-0")
    assert [m["cursor"] for m in sink.messages()] == ["2-0"]


def test_reload_resets_every_subscriber() -> None:
    hub = loaded()
    sink = Sink("text")
    hub.join(sink, channel=None, cursor="3-0")
    hub.load("9-0", [item("x")], [], complete=False)
    assert [m["type"] for m in sink.messages()] == ["reset", "snapshot"]
    assert sink.messages()[1]["cursor"] == "9-0"


def test_sse_encoding_has_ids() -> None:
    hub = loaded()
    sink = Sink("sse")
    hub.join(sink, channel=None, cursor="2-0")
    assert sink.got[0] == b"id: 3-0\ndata: " + hub.history.after("2-0")[0].message.data + b"\n\n"


def test_snapshot_next_is_the_page_token_of_the_oldest_item_shown() -> None:
    hub = Hub(snapshot_limit=2)
    changes = [change(i, f"i{i}", minute=i) for i in range(1, 4)]
    hub.load("3-0", [c.item for c in changes], changes, complete=True)
    snapshot = json.loads(hub.snapshot(None).data)
    assert [i["id"] for i in snapshot["items"]] == ["i3", "i2"]
    assert snapshot["next"] == f"{1731859320000:015d}:i2"  # 2024-11-17T16:02:00Z


def test_a_large_fan_out_runs_in_slices_and_lets_the_loop_serve_others() -> None:
    async def run() -> None:
        hub = loaded()
        hub.fanout_slice_ms, hub.fanout_clock_every = 0, 1  # one write per slice
        sinks = [Sink() for _ in range(5)]
        for sink in sinks:
            hub.join(sink, channel=None, cursor="3-0")
        served: list[int] = []
        asyncio.get_running_loop().call_soon(lambda: served.append(sum(len(s.got) for s in sinks)))
        hub.apply([change(4, "i4")])
        assert sum(len(s.got) for s in sinks) == 1  # the first slice only
        late = Sink("text")
        hub.join(late, channel=None, cursor="3-0")  # its replay already has 4-0
        hub.leave(hub.subscribers()[-2])
        await hub.fanned_out()
        assert served == [1]  # another callback ran between slices
        assert [len(s.got) for s in sinks].count(1) == 4 and len(late.got) == 1
        hub.apply([change(5, "i5")])
        hub.apply([change(6, "i6")])  # the fan-out of 5-0 is finished first: order holds
        await hub.fanned_out()
        assert [m["cursor"] for m in late.messages() if m["type"] == "event"] == ["4-0", "5-0", "6-0"]

    asyncio.run(run())


def test_a_request_waiting_for_its_answer_pauses_the_fan_out_until_answered() -> None:
    async def run() -> None:
        hub = loaded()
        hub.fanout_slice_ms, hub.fanout_clock_every = 0, 1  # one write per slice
        hub.fanout_yield_ms = 60_000  # only the answer resumes it here
        sinks = [Sink() for _ in range(3)]
        for sink in sinks:
            hub.join(sink, channel=None, cursor="3-0")
        hub.hold()
        hub.apply([change(4, "i4")])
        for _ in range(5):
            await asyncio.sleep(0)
        assert sum(len(s.got) for s in sinks) == 1  # paused after the first slice
        hub.release()
        await hub.fanned_out()
        assert [len(s.got) for s in sinks] == [1, 1, 1]

    asyncio.run(run())


def test_a_fan_out_paused_for_requests_goes_on_after_its_yield_time() -> None:
    async def run() -> None:
        hub = loaded()
        hub.fanout_slice_ms = 0
        hub.fanout_yield_ms = 1
        sinks = [Sink() for _ in range(3)]
        for sink in sinks:
            hub.join(sink, channel=None, cursor="3-0")
        hub.hold()  # a request that never gets its answer does not stop the readers
        hub.apply([change(4, "i4")])
        await asyncio.wait_for(hub.fanned_out(), units(10))
        assert [len(s.got) for s in sinks] == [1, 1, 1]

    asyncio.run(run())


def test_who_joins_after_close_all_is_closed_at_once() -> None:
    hub = loaded()
    early, late = Sink(), Sink("sse")
    hub.join(early, channel=None, cursor=None)
    hub.close_all(1001, "server shutting down")
    hub.join(late, channel=None, cursor=None)
    assert early.closed == late.closed == (1001, "server shutting down")
    assert late.got == [] and hub.subscribers() == []
