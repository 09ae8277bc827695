"""The rules the pages' JavaScript shares with the server, from ``tests/vectors/protocol.json``.

``tests/js/vectors.test.js`` runs the same vectors against ``web/ticker.js``
(``node --test``, in ``scripts/test``), so the two languages cannot drift apart.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ticker.models import sort_key
from ticker.protocol import cursor_key, should_reconnect

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "vectors" / "protocol.json").read_text())


@pytest.mark.parametrize("case", VECTORS["cursor_order"]["cases"], ids=lambda c: f"{c['a']}>{c['b']}")
def test_cursor_order(case: dict[str, Any]) -> None:
    assert (cursor_key(case["a"]) > cursor_key(case["b"])) is case["after"]


@pytest.mark.parametrize("case", VECTORS["sort_keys"]["cases"], ids=lambda c: c["published_at"])
def test_sort_key(case: dict[str, Any]) -> None:
    assert sort_key(datetime.fromisoformat(case["published_at"]), case["id"]) == case["key"]


def test_newest_first() -> None:
    expected = VECTORS["sort_keys"]["newest_first"]
    keyed = [(sort_key(datetime.fromisoformat(i["published_at"]), i["id"]), i) for i in reversed(expected)]
    assert [i for _, i in sorted(keyed, key=lambda pair: pair[0], reverse=True)] == expected


@pytest.mark.parametrize("case", VECTORS["close_codes"]["cases"], ids=lambda c: str(c["code"]))
def test_close_code_reconnect(case: dict[str, Any]) -> None:
    assert should_reconnect(case["code"]) is case["reconnect"]
