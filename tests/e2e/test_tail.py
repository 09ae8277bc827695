"""``ticker tail`` as a real process: JSON lines, consumer groups, and bad input."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from tests.support import units, wait_for
from ticker.cli import main
from ticker.config import Settings
from ticker.models import ItemCreate, ItemEdit, parse
from ticker.store import Store, connect

T = TypeVar("T")


def with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    async def go() -> T:
        assert settings.redis_url
        client = connect(settings.redis_url)
        try:
            return await work(Store(client, prefix=settings.prefix))
        finally:
            await client.aclose()

    return asyncio.run(go())


def env(settings: Settings) -> dict[str, str]:
    assert settings.redis_url
    return {**os.environ, "TICKER_REDIS_URL": settings.redis_url, "TICKER_PREFIX": settings.prefix}


def tail(settings: Settings, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ticker.cli", "tail", *args],
        env=env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=units(30))
    return proc.returncode, out, err


def changes(settings: Settings) -> list[str]:
    """Publish, edit and retract one item; the cursors of the three changes."""

    async def go(store: Store) -> list[str]:
        made = await store.publish(parse(ItemCreate, {"id": "t1", "headline": "Dam <b>bursts</b>"}), actor="desk")
        edited = await store.edit("t1", parse(ItemEdit, {"headline": "Dam bursts upstream"}), actor="desk")
        gone = await store.retract("t1", actor="chief")
        return [made.cursor, edited.cursor, gone.cursor]

    return with_store(settings, go)


def test_tail_json_lines_parse_one_by_one(settings: Settings) -> None:
    cursors = changes(settings)
    code, out, err = finish(tail(settings, "--json", "--from", "oldest", "--count", "3"))
    assert code == 0, err
    events: list[dict[str, Any]] = [json.loads(line) for line in out.splitlines()]
    assert [e["cursor"] for e in events] == cursors
    assert [e["op"] for e in events] == ["publish", "update", "retract"]
    assert all(e["type"] == "event" and isinstance(e["ts"], int) for e in events)
    assert events[0]["item"]["headline"] == "Dam <b>bursts</b>" and events[2]["actor"] == "chief"
    assert events[1]["item"]["updated_at"] is not None and events[2]["item"]["version"] == 3


def test_tail_from_a_cursor_prints_readable_lines(settings: Settings) -> None:
    cursors = changes(settings)
    code, out, err = finish(tail(settings, "--from", cursors[0], "--count", "2"))
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    assert "update" in lines[0] and "Dam bursts upstream" in lines[0] and cursors[1] in lines[0]
    assert "retract" in lines[1] and "chief" in lines[1]


def test_tail_as_a_group_member_acknowledges_what_it_printed(settings: Settings) -> None:
    proc = tail(settings, "--group", "archive", "--consumer", "tail-1", "--json", "--count", "3")

    def members() -> dict[str, Any]:
        return with_store(settings, lambda store: store.group_consumers("archive"))

    wait_for(members, what="the tail reading as a member of the group")
    cursors = changes(settings)
    code, out, err = finish(proc)
    assert code == 0, err
    assert [json.loads(line)["cursor"] for line in out.splitlines()] == cursors
    info = with_store(settings, lambda store: store.group_info("archive"))
    assert info is not None and info["pending"] == 0 and info["last-delivered-id"] == cursors[-1]


def test_tail_group_created_at_from(settings: Settings) -> None:
    cursors = changes(settings)
    code, out, err = finish(tail(settings, "--group", "g", "--consumer", "c", "--from", cursors[1], "--count", "1"))
    assert code == 0, err
    assert "retract" in out and cursors[2] in out


def test_tail_group_stops_cleanly_on_sigterm(settings: Settings) -> None:
    proc = tail(settings, "--group", "g", "--consumer", "c")
    wait_for(lambda: with_store(settings, lambda store: store.group_consumers("g")), what="the member reading")
    proc.send_signal(signal.SIGTERM)
    code, _, err = finish(proc)
    assert code == 0, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "yesterday"], "is not a start position"),
        (["--from", "12-ab"], "is not a start position"),
        (["--group", "g"], "--group and --consumer go together"),
        (["--consumer", "c"], "--group and --consumer go together"),
        (["--group", "a b", "--consumer", "c"], "group name 'a b'"),
        (["--channel", "Not A Slug"], "is not a channel name: use 1 to 32 lowercase letters"),
        (["--count", "0"], "--count must be at least 1"),
    ],
)
def test_tail_bad_input_is_one_clear_line(settings: Settings, args: list[str], message: str) -> None:
    code, out, err = finish(tail(settings, *args))
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("ticker: error: ") and message in err, err


def test_tail_in_process(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in env(settings).items():
        monkeypatch.setenv(name, value)
    cursors = changes(settings)
    assert main(["tail", "--json", "--from", "oldest", "--count", "2"]) == 0
    assert [json.loads(line)["cursor"] for line in capsys.readouterr().out.splitlines()] == cursors[:2]
    assert main(["tail", "--group", "g", "--consumer", "c", "--from", "oldest", "--count", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    info = with_store(settings, lambda store: store.group_info("g"))
    assert info is not None and info["pending"] == 0
    assert main(["tail", "--from", "bad"]) == 2
    assert "is not a start position" in capsys.readouterr().err
