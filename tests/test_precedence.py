from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ticker.hub import Hub
from ticker.precedence import AnswersFirst


def test_a_request_holds_the_hub_until_its_answer_starts_and_no_longer() -> None:
    hub = Hub()
    seen: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(hub._held)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        seen.append(hub._held)  # a streaming answer (SSE) goes on without holding it
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Any) -> None:
        pass

    asyncio.run(AnswersFirst(app, hub)({"type": "http"}, None, send))
    assert seen == [1, 0] and hub._held == 0


def test_a_failing_request_and_a_websocket_leave_the_hub_unheld() -> None:
    hub = Hub()

    async def fails(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    async def socket(scope: Any, receive: Any, send: Any) -> None:
        assert hub._held == 0  # handshakes never hold the fan-out

    with pytest.raises(RuntimeError):
        asyncio.run(AnswersFirst(fails, hub)({"type": "http"}, None, None))
    asyncio.run(AnswersFirst(socket, hub)({"type": "websocket"}, None, None))
    assert hub._held == 0
