"""The uvicorn seam's pure parts: the receive inbox, the writable flag, the version check."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest
import uvicorn
import websockets

from tests.support import bound_socket, units
from ticker.config import Settings
from ticker.errors import ConfigError
from ticker.server import Flag, FrameProtocol, Inbox, Server, check_versions, uvicorn_config


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


def test_untested_uvicorn_or_websockets_releases_are_refused_by_name() -> None:
    check_versions({"uvicorn": "0.54.0", "websockets": "17.4"})
    with pytest.raises(ConfigError, match=r"uvicorn 0\.55\.0 is installed.*uvicorn>=0\.54,<0\.55"):
        check_versions({"uvicorn": "0.55.0", "websockets": "17.4"})
    with pytest.raises(ConfigError, match=r"websockets 13\.1 is installed"):
        check_versions({"uvicorn": "0.54.1", "websockets": "13.1"})


def test_the_app_loads_no_server_internals() -> None:
    probe = "import sys, ticker.app; print(sorted(m for m in sys.modules if m.split('.')[0] in ('uvicorn', 'h11')))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_main_loop_sleeps_between_ticks_and_a_stop_from_another_thread_wakes_it() -> None:
    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("no request comes")

    server = Server(uvicorn.Config(app))
    server.tick = 3600.0  # without the wake, the loop would sleep an hour
    ticks: list[int] = []

    async def run() -> None:
        ticked = asyncio.Event()

        async def on_tick(counter: int) -> bool:
            ticks.append(counter)
            ticked.set()
            return bool(server.should_exit)

        server.on_tick = on_tick  # type: ignore[method-assign]
        looping = asyncio.create_task(server.main_loop())
        await ticked.wait()
        await asyncio.to_thread(setattr, server, "should_exit", True)  # as a signal or a test thread does
        async with asyncio.timeout(units(30)):
            await looping

    asyncio.run(run())
    assert ticks == [0, 10], "one tick at start, one when woken (uvicorn refreshes its Date header every 10th)"


def test_a_client_closing_in_the_same_turn_as_the_server_stops_gets_no_second_close() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async def run() -> None:
        sock = bound_socket()
        server = Server(uvicorn_config(app, Settings(), log_level="warning"))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            # The socket listens already: the handshake completes once the server serves.
            async with websockets.connect(f"ws://127.0.0.1:{sock.getsockname()[1]}/") as client:
                protocol = next(c for c in server.server_state.connections if isinstance(c, FrameProtocol))
                protocol.data_received(b"\x88\x82\x00\x00\x00\x00\x03\xe8")  # the client's close (1000) arrives...
                protocol.shutdown()  # ...and the server stops before the connection is gone: no InvalidState
                await client.wait_closed()
        finally:
            server.should_exit = True
            async with asyncio.timeout(units(20)):
                await serving
            sock.close()

    asyncio.run(run())
