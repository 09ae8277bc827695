"""A server stops within seconds whatever it holds: an SSE stream, a live WebSocket, a
scheduled item and background tasks busy with Redis (tests/test_tasks.py covers the lost
cancellation itself, which is too rare to hit here every time)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import httpx
from websockets.sync.client import connect as ws_connect

from tests.conftest import make_token
from tests.support import ServerThread, units
from ticker.auth import Scope
from ticker.config import Settings


def test_a_server_with_live_clients_and_a_busy_schedule_stops_within_seconds(settings: Settings) -> None:
    token = make_token(settings, "editor", Scope.ADMIN)
    busy = settings.with_overrides(scheduler_interval=0.001, audience_interval=0.001)
    for _ in range(3):
        server = ServerThread(busy).start()
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        staff = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, timeout=units(10)) as http:
            answer = http.post("/api/items", json={"headline": "Later", "publish_at": later}, headers=staff)
            assert answer.status_code == 201, answer.text
            with http.stream("GET", "/api/events") as events, ws_connect(server.ws_url + "/ws") as ws:
                assert next(events.iter_bytes()).startswith(b"retry:")
                assert '"snapshot"' in str(ws.recv(timeout=units(10)))
                stopping = threading.Thread(target=server.stop)
                stopping.start()
                stopping.join(units(5))
                assert not stopping.is_alive(), "the server did not stop within 5 s"
