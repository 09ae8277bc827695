"""Pure tests of the item rules: no Redis, no server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ticker.errors import InvalidInput
from ticker.ids import new_id
from ticker.models import EditKind, Item, ItemCreate, ItemEdit, apply_edit, format_time, parse

AT = datetime(2024, 11, 17, 16, 22, tzinfo=UTC)


def fields_of(exc: pytest.ExceptionInfo[InvalidInput]) -> list[str]:
    return [f["field"] for f in exc.value.fields]


def test_minimal_create_gets_defaults() -> None:
    item = parse(ItemCreate, {"headline": "  Quake hits the coast  "}).to_item(at=AT)
    assert item.headline == "Quake hits the coast"
    assert item.version == 1 and item.channel == "news" and item.labels == [] and not item.pinned
    assert item.published_at == AT and item.updated_at is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"headline": ""}, "headline"),
        ({"headline": "   "}, "headline"),
        ({"headline": "x" * 301}, "headline"),
        ({"headline": "line\nbreak"}, "headline"),
        ({"headline": "bell\x07"}, "headline"),
        ({"headline": 5}, "headline"),
        ({}, "headline"),
        ({"headline": "ok", "url": "javascript:alert(1)"}, "url"),
        ({"headline": "ok", "url": "/relative"}, "url"),
        ({"headline": "ok", "url": "ftp://example.com/x"}, "url"),
        ({"headline": "ok", "url": "https://example.com/" + "a" * 2048}, "url"),
        ({"headline": "ok", "url": "https://exa mple.com/"}, "url"),
        ({"headline": "ok", "labels": ["gossip"]}, "labels"),
        ({"headline": "ok", "labels": ["opinion", "opinion"]}, "labels"),
        ({"headline": "ok", "labels": ["breaking", "exclusive", "opinion", "interview", "review", "live"]}, "labels"),
        ({"headline": "ok", "labels": "breaking"}, "labels"),
        ({"headline": "ok", "channel": "World News"}, "channel"),
        ({"headline": "ok", "channel": "x" * 33}, "channel"),
        ({"headline": "ok", "published_at": "2024-11-17T16:22:00"}, "published_at"),
        ({"headline": "ok", "published_at": "yesterday"}, "published_at"),
        ({"headline": "ok", "published_at": "2999-01-01T00:00:00Z"}, "published_at"),
        ({"headline": "ok", "id": "has space"}, "id"),
        ({"headline": "ok", "id": "x" * 65}, "id"),
        ({"headline": "ok", "lang": "not a tag"}, "lang"),
        ({"headline": "ok", "author": "a" * 121}, "author"),
        ({"headline": "ok", "pinned": "maybe"}, "pinned"),
        ({"headline": "ok", "headlien": "typo"}, "headlien"),
        ({"headline": "ok", "version": 3}, "version"),
    ],
)
def test_every_bad_field_is_named(body: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse(ItemCreate, body)
    assert field in fields_of(exc), exc.value.fields


def test_labels_are_normalized_and_vocabulary_is_configurable() -> None:
    assert parse(ItemCreate, {"headline": "ok", "labels": ["Exclusive"]}).labels == ["exclusive"]
    assert parse(ItemCreate, {"headline": "ok", "labels": ["sport"]}, labels=["sport"]).labels == ["sport"]
    with pytest.raises(InvalidInput):
        parse(ItemCreate, {"headline": "ok", "labels": ["breaking"]}, labels=["sport"])


def test_markup_is_kept_as_typed() -> None:
    item = parse(ItemCreate, {"headline": "<b>Bold</b> & <script>x()</script>"}).to_item()
    assert item.headline == "<b>Bold</b> & <script>x()</script>"


def test_back_dating_is_kept_in_utc_milliseconds() -> None:
    create = parse(ItemCreate, {"headline": "ok", "published_at": "2024-11-17T18:22:00.123456+02:00"})
    item = create.to_item()
    assert format_time(item.published_at) == "2024-11-17T16:22:00.123Z"
    assert item.model_dump(mode="json")["published_at"] == "2024-11-17T16:22:00.123Z"


def test_fingerprint_ignores_id_but_not_content() -> None:
    a = parse(ItemCreate, {"headline": "same", "id": "a1"})
    b = parse(ItemCreate, {"headline": "same", "id": "b2"})
    c = parse(ItemCreate, {"headline": "other", "id": "a1"})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def item(**changes: object) -> Item:
    base = Item(id="a1", version=1, headline="Quake hits", published_at=AT, labels=["breaking"])
    return base.model_copy(update=changes)


def test_update_sets_updated_at_and_keeps_published_at() -> None:
    later = AT + timedelta(minutes=5)
    new = apply_edit(item(), parse(ItemEdit, {"headline": "Quake hits, 5 dead"}), at=later)
    assert new.version == 2 and new.updated_at == later and new.published_at == AT
    assert new.correction is None


def test_correction_needs_note_and_sets_it() -> None:
    with pytest.raises(InvalidInput) as exc:
        parse(ItemEdit, {"kind": "correction", "headline": "x"})
    assert fields_of(exc) == ["correction"]
    edit = parse(ItemEdit, {"kind": "correction", "correction": "The toll was 4, not 5", "headline": "4 dead"})
    new = apply_edit(item(), edit, at=AT)
    assert new.correction == "The toll was 4, not 5" and new.headline == "4 dead" and new.version == 2


def test_note_without_correction_kind_is_refused() -> None:
    with pytest.raises(InvalidInput) as exc:
        parse(ItemEdit, {"correction": "oops", "headline": "x"})
    assert fields_of(exc) == ["correction"]


def test_fix_moves_version_without_badge() -> None:
    new = apply_edit(item(), parse(ItemEdit, {"kind": "fix", "headline": "Quake hit"}), at=AT)
    assert new.version == 2 and new.updated_at is None and new.headline == "Quake hit"


def test_pinning_is_an_edit_without_badge() -> None:
    new = apply_edit(item(), parse(ItemEdit, {"pinned": True}), at=AT)
    assert new.pinned and new.version == 2 and new.updated_at is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"kind": "update"},
        {"headline": None},
        {"kind": "rewrite", "headline": "x"},
        {"published_at": "2024-01-01T00:00:00Z"},
    ],
)
def test_bad_edits_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        parse(ItemEdit, body)


def test_edit_kinds_are_the_documented_three() -> None:
    assert [k.value for k in EditKind] == ["update", "correction", "fix"]


def test_ids_sort_by_creation_and_are_valid() -> None:
    ids = [new_id(at_ms=ms) for ms in (1, 1000, 1_700_000_000_000, 1_800_000_000_000)]
    assert ids == sorted(ids)
    assert all(len(i) == 26 and parse(ItemCreate, {"headline": "x", "id": i}).id == i for i in ids)


def test_sort_key_orders_by_time_then_id() -> None:
    a, b = item(id="b"), item(id="a", published_at=AT + timedelta(seconds=1))
    assert a.sort_key < b.sort_key
    assert item(id="a").sort_key < item(id="b").sort_key


VECTORS = Path(__file__).parent / "vectors"
TEXT = json.loads((VECTORS / "text.json").read_text(encoding="utf-8"))
URLS = json.loads((VECTORS / "urls.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("text", TEXT["accept"])
def test_plain_text_rule_keeps_what_text_needs(text: str) -> None:
    create = parse(ItemCreate, {"headline": text, "author": text})
    edit = parse(ItemEdit, {"kind": "correction", "correction": text})
    assert create.headline == text and create.author == text and edit.correction == text


@pytest.mark.parametrize("text", TEXT["refuse"])
def test_plain_text_rule_refuses_bidi_controls_and_invisible_characters_in_every_field(text: str) -> None:
    for body, field in [
        ({"headline": text}, "headline"),
        ({"headline": "ok", "author": text}, "author"),
    ]:
        with pytest.raises(InvalidInput) as exc:
            parse(ItemCreate, body)
        assert fields_of(exc) == [field] and "U+" in exc.value.message
    with pytest.raises(InvalidInput) as refused:
        parse(ItemEdit, {"kind": "correction", "correction": text})
    assert fields_of(refused) == ["correction"]


@pytest.mark.parametrize("url", URLS["accept"])
def test_links_python_and_browsers_read_alike_are_accepted(url: str) -> None:
    assert parse(ItemCreate, {"headline": "x", "url": url}).url == url


@pytest.mark.parametrize("url", URLS["refuse"])
def test_links_with_userinfo_backslashes_or_ambiguous_hosts_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse(ItemCreate, {"headline": "x", "url": url})
    assert fields_of(exc) == ["url"]
    with pytest.raises(InvalidInput):
        parse(ItemEdit, {"url": url})


def test_an_item_stored_under_older_rules_stays_readable() -> None:
    """Readers, feeds and consumers parse every stored item: a stricter rule must not break them."""
    stored = {
        "id": "old",
        "version": 1,
        "headline": "Minister \u202eseingiser\u202c today",
        "url": "https://user@example.com/",
        "author": "zero\u200bwidth",
        "published_at": "2024-11-17T14:22:00.000Z",
    }
    item = Item.from_json(json.dumps(stored))
    assert (item.headline, item.url, item.author) == (stored["headline"], stored["url"], stored["author"])
    with pytest.raises(InvalidInput):
        parse(ItemCreate, {k: v for k, v in stored.items() if k in ("headline", "url")})
