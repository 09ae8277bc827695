"""The small pieces Ticker's uvicorn protocol swaps in: the receive inbox and the writable flag."""

from __future__ import annotations

import asyncio

from ticker.server import Flag, Inbox


def test_inbox_hands_items_over_in_order_and_wakes_the_reader() -> None:
    async def run() -> None:
        inbox = Inbox()
        assert inbox.empty()
        waiting = asyncio.create_task(inbox.get())
        await asyncio.sleep(0)
        inbox.put_nowait({"type": "websocket.connect"})
        inbox.put_nowait({"type": "websocket.disconnect"})
        assert await waiting == {"type": "websocket.connect"}
        assert not inbox.empty()
        assert await inbox.get() == {"type": "websocket.disconnect"}
        assert inbox.empty()

    asyncio.run(run())


def test_flag_blocks_writers_while_cleared() -> None:
    async def run() -> None:
        flag = Flag()
        assert flag.is_set() and await flag.wait()
        flag.clear()
        writers = [asyncio.create_task(flag.wait()) for _ in range(2)]
        await asyncio.sleep(0)
        assert not any(w.done() for w in writers)
        flag.set()
        assert await asyncio.gather(*writers) == [True, True]

    asyncio.run(run())
