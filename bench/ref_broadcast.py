"""Reference server: the ``websockets`` library's own asyncio server with ``broadcast()``.

Each event's frame is built once and handed to ``websockets.asyncio.server.broadcast``,
which writes it to every open connection without awaiting any of them.
Permessage-deflate is the library's default: accepted when a client offers it
(the benchmark's readers offer it only with ``--deflate``).
"""

from __future__ import annotations

import asyncio
import signal
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench.refstream import BACKLOG, StreamTail, arguments, banner, connect, listen, snapshot_frame


async def run(redis_url: str, prefix: str, host: str, port: int) -> None:
    clients: set[ServerConnection] = set()
    redis = connect(redis_url)
    tail = StreamTail(redis, prefix, lambda frame: broadcast(clients, frame))
    await tail.start()

    async def live(ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path if ws.request else "").query)
        cursor = (query.get("cursor") or [""])[0]
        if not cursor:
            cursor = tail.position
            await ws.send(snapshot_frame(cursor))
        await tail.catch_up(cursor, ws.send)
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    sock = listen(host, port)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(live, sock=sock, backlog=BACKLOG):
        banner(sock)
        reader = asyncio.create_task(tail.run())
        await stop
        reader.cancel()
    await redis.aclose()


def main() -> None:
    args = arguments(__doc__ or "")
    asyncio.run(run(args.redis_url, args.prefix, args.host, args.port))


if __name__ == "__main__":
    main()
