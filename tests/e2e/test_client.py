"""The Python client against a real server: the server's errors come back as the same classes."""

from __future__ import annotations

import socket

import pytest

from tests.support import ServerThread
from ticker import errors
from ticker.client import Client, ServerUnreachable


def test_publish_edit_retract_and_read(server: ServerThread, admin_token: str) -> None:
    with Client(server.url, token=admin_token) as desk:
        answer = desk.publish("Bridge reopens after repairs", labels=["breaking"], id="bridge-1")
        assert answer["item"]["version"] == 1 and answer["cursor"]
        assert desk.publish("Bridge reopens after repairs", labels=["breaking"], id="bridge-1")["item"]["version"] == 1
        edited = desk.edit("bridge-1", kind="fix", headline="Bridge reopens after the repairs", if_match=1)
        assert edited["item"]["version"] == 2
        assert desk.get("bridge-1")["headline"] == "Bridge reopens after the repairs"
        assert [i["id"] for i in desk.items(limit=5)["items"]] == ["bridge-1"]
        with pytest.raises(errors.PreconditionFailed):
            desk.edit("bridge-1", headline="Stale edit", if_match=1)
        desk.retract("bridge-1")
        with pytest.raises(errors.NotFound, match="retracted"):
            desk.get("bridge-1")


def test_errors_keep_their_class_and_fields(server: ServerThread, admin_token: str) -> None:
    with Client(server.url, token=admin_token) as desk:
        with pytest.raises(errors.InvalidInput) as caught:
            desk.publish("   ")
        assert any(f["field"] == "headline" for f in caught.value.fields)
        desk.publish("First", id="same-id")
        with pytest.raises(errors.Conflict):
            desk.publish("Other content", id="same-id")
    with Client(server.url, token="tk_wrong") as stranger, pytest.raises(errors.Unauthorized):
        stranger.publish("Nope")


def test_an_unreachable_server_is_named() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        url = f"http://127.0.0.1:{port}"
        with Client(url, timeout=5) as client, pytest.raises(ServerUnreachable) as caught:
            client.items()
    assert url in str(caught.value)
