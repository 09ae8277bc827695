"""The rules of the live protocol, free of I/O: cursors, connection starts, packing, close codes.

Nothing here imports asyncio, Redis or Starlette; the hub, the WebSocket
endpoint and the SSE endpoint apply these rules to plain values. See
``docs/protocol.md`` for the wire contract these functions implement.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from urllib.parse import urlsplit

_CURSOR = re.compile(r"^([0-9]{1,15})-([0-9]{1,19})$")
CURSOR_FUTURE_SKEW_MS = 60_000
"""How far a cursor may be ahead of the newest change a process knows (another read it first)."""


def parse_cursor(raw: str | None) -> tuple[int, int] | None:
    """``"1732000000000-3"`` as ``(ms, seq)``; ``None`` for anything that is not a stream ID."""
    if raw is None:
        return None
    match = _CURSOR.fullmatch(raw)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2))


def cursor_key(cursor: str) -> tuple[int, int]:
    """The sort key of a cursor known to be well formed."""
    ms, _, seq = cursor.partition("-")
    return int(ms), int(seq)


class CloseCode(IntEnum):
    """WebSocket close codes the server sends, as documented in ``docs/protocol.md``."""

    NORMAL = 1000
    GOING_AWAY = 1001
    UNSUPPORTED = 1003
    POLICY = 1008
    TOO_BIG = 1009
    SERVER_ERROR = 1011
    RESTART = 1012
    TRY_AGAIN = 1013
    BAD_REQUEST = 4400
    TOO_MANY = 4429


RECONNECT = {
    CloseCode.NORMAL: False,
    CloseCode.GOING_AWAY: True,
    CloseCode.UNSUPPORTED: False,
    CloseCode.POLICY: False,
    CloseCode.TOO_BIG: False,
    CloseCode.SERVER_ERROR: True,
    CloseCode.RESTART: True,
    CloseCode.TRY_AGAIN: True,
    CloseCode.BAD_REQUEST: False,
    CloseCode.TOO_MANY: True,
}
"""Whether a client should reconnect (with jittered backoff and its cursor) after each code."""


def should_reconnect(code: int) -> bool:
    """Unknown codes: reconnect, with backoff (a server in trouble should not lose its readers)."""
    for known, reconnect in RECONNECT.items():
        if known == code:
            return reconnect
    return True


# --- where a connection starts ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    """How a connection begins: ``snapshot``, ``replay`` (events after ``after``) or ``reset``."""

    kind: str
    after: str | None = None
    """For ``replay``: the cursor the client already has; later events follow."""
    reason: str = ""


def plan(cursor: str | None, *, known: bool, base: str, head: str, now_ms: int) -> Start:
    """Decide how a connection starts from the client's cursor and what the history holds.

    ``base`` is the cursor after which the history holds every change, ``head``
    the newest change applied, ``known`` whether ``cursor`` is ``base`` or a
    change in the history. A well-formed cursor just ahead of ``head`` (another
    process read the change first) is a replay of nothing: later events follow.
    """
    if cursor is None:
        return Start("snapshot")
    parsed = parse_cursor(cursor)
    if parsed is None:
        return Start("reset", reason="malformed cursor")
    if known:
        return Start("replay", after=cursor)
    if parsed > cursor_key(head):
        if parsed[0] > max(now_ms, cursor_key(head)[0]) + CURSOR_FUTURE_SKEW_MS:
            return Start("reset", reason="unknown cursor")
        return Start("replay", after=cursor)
    if parsed < cursor_key(base):
        return Start("reset", reason="cursor too old")
    return Start("reset", reason="unknown cursor")


def passes(channel: str | None, item_channel: str, previous_channel: str | None = None) -> bool:
    """Whether a subscriber filtering on ``channel`` sees a change.

    An item moved to another channel is sent to both, so the old channel's
    readers learn that it left.
    """
    return channel is None or channel in (item_channel, previous_channel)


# --- messages ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """One server-to-client message, serialized once; ``cursor`` is its SSE id (if any)."""

    data: bytes
    cursor: str | None = None


def event_message(cursor: str, op: str, ts: int, item_json: str) -> Message:
    """An ``event`` built around the item JSON string from the stream entry, never re-parsed."""
    head = f'{{"type":"event","cursor":"{cursor}","op":"{op}","ts":{ts},"item":'
    return Message((head + item_json + "}").encode(), cursor)


def snapshot_message(cursor: str, items: Iterable[str], pinned: Iterable[str], next_page: str | None = None) -> Message:
    """A ``snapshot``; ``next_page`` is the ``before`` token for older items (``GET /api/items``)."""
    after = "null" if next_page is None else json.dumps(next_page)
    body = (
        f'{{"type":"snapshot","cursor":"{cursor}",'
        f'"items":[{",".join(items)}],"pinned":[{",".join(pinned)}],"next":{after}}}'
    )
    return Message(body.encode(), cursor)


def reset_message(reason: str) -> Message:
    return Message(json.dumps({"type": "reset", "reason": reason}).encode())


def pack(messages: Sequence[Message], limit: int) -> list[bytes]:
    """Pack messages into newline-separated payloads of at most ``limit`` bytes each.

    A single message longer than ``limit`` gets a payload of its own.
    """
    payloads: list[bytes] = []
    batch: list[bytes] = []
    size = 0
    for message in messages:
        extra = len(message.data) + (1 if batch else 0)
        if batch and size + extra > limit:
            payloads.append(b"\n".join(batch))
            batch, size, extra = [], 0, len(message.data)
        batch.append(message.data)
        size += extra
    if batch:
        payloads.append(b"\n".join(batch))
    return payloads


def text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented, uncompressed server-to-client text frame (RFC 6455 §5.2)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + payload


def ws_frames(messages: Sequence[Message], limit: int) -> bytes:
    """The messages as ready-to-write WebSocket frames, several messages per frame."""
    return b"".join(text_frame(payload) for payload in pack(messages, limit))


def sse_text(messages: Sequence[Message]) -> bytes:
    """The messages as Server-Sent Events; each one's ``id:`` is its cursor."""
    out = []
    for message in messages:
        if message.cursor is not None:
            out.append(b"id: " + message.cursor.encode() + b"\n")
        out.append(b"data: " + message.data + b"\n\n")
    return b"".join(out)


SSE_HEARTBEAT = b": keep-alive\n\n"


def origin_of(url: str) -> str | None:
    """The browser origin of an absolute http(s) URL (scheme, host, non-default port), or None."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    default = {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(parts.scheme.lower())
    if default is None or not parts.hostname or "@" in parts.netloc:
        return None
    suffix = "" if port in (None, default) else f":{port}"
    return f"{parts.scheme.lower()}://{parts.hostname.lower()}{suffix}"


def origin_allowed(
    origin: str | None, host: str | None, allowed: Sequence[str], *, public_url: str | None = None
) -> bool:
    """Whether a browser's ``Origin`` may open a live connection (``/ws``, ``/api/events``).

    No ``Origin`` is a non-browser client: allowed. A browser origin must be on
    ``allowed`` (``*`` allows any) or be the server's own: the origin of
    ``public_url`` when that is set (``TICKER_PUBLIC_URL``; the ``Host`` header
    is then ignored, since whoever sends the Origin can send a matching Host),
    else the one whose host and port equal the ``Host`` header.
    """
    if origin is None:
        return True
    if "*" in allowed or origin in allowed:
        return True
    if public_url is not None:
        own = origin_of(public_url)
        return own is not None and origin_of(origin) == own
    netloc = urlsplit(origin).netloc.lower()
    return bool(netloc) and host is not None and netloc == host.lower()
