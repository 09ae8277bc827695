"""The OpenAPI document states the rules the models enforce: checked here without a server."""

from __future__ import annotations

import random
import re
import unicodedata
from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from ticker.config import DEFAULT_LABELS
from ticker.models import MAX_HEADLINE, EditKind, ItemEdit
from ticker.openapi import document, text_pattern


def accepted(value: str) -> bool:
    try:
        ItemEdit.model_validate({"kind": EditKind.FIX, "headline": value})
    except ValidationError:
        return False
    return True


def samples() -> list[str]:
    """Every character the rule looks at, and a random draw of all the others."""
    rng = random.Random(7)
    special = [chr(c) for c in range(0x3000) if unicodedata.category(chr(c)) in ("Cc", "Cf", "Zl", "Zp", "Zs")]
    special += ["\ufeff", "\ufffe", "\U0001fffe", "\ufdd0", "\U000e0001", "\U000e0041", "\u200c", "\u200d"]
    drawn = [chr(rng.randrange(0x110000)) for _ in range(300)]
    return [c for c in special + drawn if not 0xD800 <= ord(c) <= 0xDFFF]


@pytest.mark.parametrize("shape", ["{c}", "a{c}", "{c}a", "a{c}a", " {c} ", "a {c} a"])
def test_the_text_pattern_accepts_exactly_what_the_models_accept(shape: str) -> None:
    pattern = re.compile(text_pattern(MAX_HEADLINE))
    for c in samples():
        value = shape.format(c=c)
        assert bool(pattern.search(value)) == accepted(value), f"U+{ord(c):04X} in {value!r}"


def test_the_text_pattern_counts_length_after_trimming() -> None:
    pattern = re.compile(text_pattern(MAX_HEADLINE))
    edges = ["a" * 300, " \t" + "a" * 300 + "\n ", "a" * 301, "a" + " " * 298 + "a", "a" + " " * 299 + "a", "", " "]
    for value in edges:
        assert bool(pattern.search(value)) == accepted(value), repr(value)


def schemas() -> dict[str, Any]:
    schema: dict[str, Any] = document(DEFAULT_LABELS, (), date(2026, 11, 27))["components"]["schemas"]
    return schema


@pytest.mark.parametrize(
    ("field", "nullable"),
    [("headline", False), ("channel", False), ("pinned", False), ("labels", False), ("url", True), ("lang", True)],
)
def test_edit_fields_are_nullable_only_where_null_is_accepted(field: str, nullable: bool) -> None:
    assert ("null" in str(schemas()["ItemEdit"]["properties"][field])) is nullable
    try:
        ItemEdit.model_validate({"kind": "fix", field: None})
        took_null = True
    except ValidationError:
        took_null = False
    assert took_null is nullable


def test_labels_are_the_vocabulary_at_most_five_and_unique() -> None:
    labels = schemas()["ItemCreate"]["properties"]["labels"]
    assert labels["items"]["enum"] == list(DEFAULT_LABELS)
    assert labels["maxItems"] == 5 and labels["uniqueItems"] is True
