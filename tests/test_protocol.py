"""The live protocol's pure rules, without a server."""

from __future__ import annotations

import json
import struct

from ticker.protocol import (
    CloseCode,
    Message,
    cursor_key,
    event_message,
    origin_allowed,
    pack,
    parse_cursor,
    passes,
    plan,
    reset_message,
    should_reconnect,
    snapshot_message,
    sse_text,
    text_frame,
    ws_frames,
)

NOW = 1_732_000_000_000


def test_cursors_parse_and_order_numerically() -> None:
    assert parse_cursor("1732000000000-3") == (1732000000000, 3)
    for bad in [None, "", "abc", "1-", "-1", "1-2-3", "1.5-0", " 1-0", "1-0 ", "1" * 16 + "-0"]:
        assert parse_cursor(bad) is None, bad
    assert cursor_key("9-0") < cursor_key("10-0") < cursor_key("10-1")


def test_plan_without_cursor_is_a_snapshot() -> None:
    assert plan(None, known=False, base="0-0", head="5-0", now_ms=NOW).kind == "snapshot"


def test_plan_known_cursor_replays_after_it() -> None:
    start = plan("3-0", known=True, base="1-0", head="5-0", now_ms=NOW)
    assert (start.kind, start.after) == ("replay", "3-0")


def test_plan_resets_old_unknown_and_malformed_cursors() -> None:
    assert plan("0-5", known=False, base="1-0", head="5-0", now_ms=NOW).reason == "cursor too old"
    assert plan("3-7", known=False, base="1-0", head="5-0", now_ms=NOW).reason == "unknown cursor"
    assert plan("nope", known=False, base="1-0", head="5-0", now_ms=NOW).reason == "malformed cursor"
    for cursor in ["0-5", "3-7", "nope"]:
        assert plan(cursor, known=False, base="1-0", head="5-0", now_ms=NOW).kind == "reset"


def test_plan_cursor_slightly_ahead_waits_for_it_but_far_future_resets() -> None:
    head = f"{NOW - 10}-0"
    ahead = plan(f"{NOW}-0", known=False, base="1-0", head=head, now_ms=NOW)
    assert (ahead.kind, ahead.after) == ("replay", f"{NOW}-0")
    assert plan(f"{NOW + 3_600_000}-0", known=False, base="1-0", head=head, now_ms=NOW).kind == "reset"


def test_channel_filter_passes_moves_to_both_channels() -> None:
    assert passes(None, "news")
    assert passes("news", "news") and not passes("sport", "news")
    assert passes("sport", "news", previous_channel="sport")


def test_event_wraps_the_stored_item_json_verbatim() -> None:
    item = '{"id":"a","headline":"He said \\"hi\\""}'
    message = event_message("5-1", "update", 123, item)
    assert message.cursor == "5-1"
    assert json.loads(message.data) == {
        "type": "event",
        "cursor": "5-1",
        "op": "update",
        "ts": 123,
        "item": json.loads(item),
    }


def test_snapshot_and_reset_messages_are_json() -> None:
    snap = json.loads(snapshot_message("7-0", ['{"id":"a"}', '{"id":"b"}'], ['{"id":"b"}']).data)
    assert snap == {
        "type": "snapshot",
        "cursor": "7-0",
        "items": [{"id": "a"}, {"id": "b"}],
        "pinned": [{"id": "b"}],
        "next": None,
    }
    paged = snapshot_message("7-0", [], [], "001732000000000:a")
    assert json.loads(paged.data)["next"] == "001732000000000:a"
    assert json.loads(reset_message("cursor too old").data) == {
        "type": "reset",
        "reason": "cursor too old",
    }


def test_pack_keeps_order_and_the_size_limit() -> None:
    messages = [Message(b"x" * n) for n in (10, 10, 10, 50, 5)]
    payloads = pack(messages, limit=32)
    assert b"\n".join(payloads).split(b"\n") == [m.data for m in messages]
    assert payloads[0] == b"\n".join([b"x" * 10] * 3)  # 32 bytes: three share a frame
    assert payloads[1] == b"x" * 50  # too big for any frame: alone
    assert pack([], limit=10) == []


def test_text_frames_have_the_rfc6455_length_forms() -> None:
    assert text_frame(b"hi") == b"\x81\x02hi"
    assert text_frame(b"a" * 200)[:4] == b"\x81\x7e" + struct.pack("!H", 200)
    assert text_frame(b"a" * 70000)[:10] == b"\x81\x7f" + struct.pack("!Q", 70000)
    frames = ws_frames([Message(b"a"), Message(b"b")], limit=100)
    assert frames == b"\x81\x03a\nb"


def test_sse_text_carries_cursor_ids() -> None:
    text = sse_text([Message(b'{"a":1}', "5-0"), Message(b'{"type":"reset"}')])
    assert text == b'id: 5-0\ndata: {"a":1}\n\ndata: {"type":"reset"}\n\n'


def test_close_codes_say_whether_to_reconnect() -> None:
    assert should_reconnect(CloseCode.GOING_AWAY) and should_reconnect(1012) and should_reconnect(1013)
    assert should_reconnect(4429) and should_reconnect(1011)
    for code in (1000, 1003, 1008, 1009, 4400):
        assert not should_reconnect(code)
    assert should_reconnect(4999)


def test_origin_allow_list() -> None:
    assert origin_allowed(None, "news.example:8000", ())
    assert origin_allowed("https://news.example:8000", "news.example:8000", ())
    assert not origin_allowed("https://evil.example", "news.example:8000", ())
    assert origin_allowed("https://partner.example", "news.example", ("https://partner.example",))
    assert origin_allowed("https://any.example", "news.example", ("*",))
    assert not origin_allowed("null", "news.example", ())


def test_origin_is_checked_against_the_public_url_not_the_host() -> None:
    public = "https://news.example/live"
    # Whoever forges Origin forges Host to match: with a public URL the Host says nothing.
    assert not origin_allowed("https://evil.example", "evil.example", (), public_url=public)
    assert not origin_allowed("http://news.example", "news.example", (), public_url=public)
    assert not origin_allowed("https://news.example:8443", "news.example:8443", (), public_url=public)
    assert origin_allowed("https://news.example", "127.0.0.1:8000", (), public_url=public)
    assert origin_allowed("https://NEWS.example:443", "evil.example", (), public_url=public)
    assert origin_allowed("https://partner.example", "evil.example", ("https://partner.example",), public_url=public)
    assert origin_allowed(None, "evil.example", (), public_url=public)
    assert not origin_allowed("null", "evil.example", (), public_url=public)
