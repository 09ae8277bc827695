"""The plain redis-py consumer printed in docs/stream.md works as printed."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.support import units, wait_for
from ticker.models import ItemCreate, ItemEdit, parse
from ticker.store import Store, connect

DOC = Path(__file__).resolve().parent.parent / "docs" / "stream.md"


def doc_consumer() -> str:
    section = DOC.read_text().split("## A complete consumer in plain redis-py", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the section has a Python block"
    return match.group(1)


def test_the_documented_consumer_runs(redis_url: str, prefix: str, tmp_path: Path) -> None:
    code = doc_consumer()
    assert len(code.strip().splitlines()) <= 30, "the example stays short"
    script, out = tmp_path / "consumer.py", tmp_path / "out.txt"
    script.write_text(code)
    env = {**os.environ, "REDIS_URL": redis_url, "TICKER_PREFIX": prefix, "CONSUMER": "doc-1"}

    async def call(work: str) -> object:
        client = connect(redis_url)
        store = Store(client, prefix=prefix)
        try:
            if work == "members":
                return await store.group_consumers("push")
            made = await store.publish(parse(ItemCreate, {"id": "d1", "headline": "Doc example works"}), actor="desk")
            edited = await store.edit("d1", parse(ItemEdit, {"headline": "Doc example runs"}), actor="desk")
            gone = await store.retract("d1", actor="desk")
            return [made.cursor, edited.cursor, gone.cursor]
        finally:
            await client.aclose()

    with out.open("w") as sink:
        proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=sink, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: asyncio.run(call("members")), what="the example consumer reading")
        cursors = asyncio.run(call("publish"))
        wait_for(lambda: len(out.read_text().splitlines()) >= 3, what="three changes printed")
        lines = out.read_text().splitlines()
        assert [line.split()[0] for line in lines] == cursors
        assert [line.split()[1] for line in lines] == ["publish", "update", "retract"]
        assert lines[1].endswith("Doc example runs")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(units(10))
        assert proc.stderr is not None
        proc.stderr.close()
