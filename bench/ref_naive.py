"""Reference server: naive Starlette fan-out (one task and one ``send_text`` per client per event).

Run under uvicorn with the same WebSocket implementation as Ticker's server
(``websockets-sansio``), so the difference measured is the fan-out itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bench.refstream import StreamTail, arguments, banner, connect, listen, snapshot_frame


def create_app(redis_url: str, prefix: str) -> Starlette:
    clients: set[WebSocket] = set()
    tasks: set[asyncio.Task[None]] = set()

    async def send(ws: WebSocket, frame: str) -> None:
        with contextlib.suppress(Exception):
            await ws.send_text(frame)

    def on_event(frame: str) -> None:
        for ws in clients:
            task = asyncio.create_task(send(ws, frame))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    redis = connect(redis_url)
    tail = StreamTail(redis, prefix, on_event)

    async def live(ws: WebSocket) -> None:
        await ws.accept()
        cursor = ws.query_params.get("cursor")
        if not cursor:
            cursor = tail.position
            await ws.send_text(snapshot_frame(cursor))
        await tail.catch_up(cursor, ws.send_text)
        clients.add(ws)
        try:
            while True:
                await ws.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            clients.discard(ws)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await tail.start()
        reader = asyncio.create_task(tail.run())
        yield
        reader.cancel()
        await redis.aclose()

    return Starlette(routes=[WebSocketRoute("/ws", live)], lifespan=lifespan)


def main() -> None:
    args = arguments(__doc__ or "")
    sock = listen(args.host, args.port)
    banner(sock)
    app = create_app(args.redis_url, args.prefix)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="websockets-sansio")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
