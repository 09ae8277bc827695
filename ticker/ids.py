"""Item ids: sortable by creation time, unique without coordination."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
"""Crockford's base32 in lower case: ascending in ASCII, so ids sort by time."""


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def new_id(at_ms: int | None = None) -> str:
    """A 26-character ULID-style id: 48 bits of milliseconds, 80 random bits."""
    ms = time.time_ns() // 1_000_000 if at_ms is None else at_ms
    return _encode(ms, 10) + _encode(int.from_bytes(os.urandom(10), "big"), 16)
