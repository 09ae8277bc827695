"""Pure tests of the item rules: no Redis, no server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ticker.errors import InvalidInput
from ticker.ids import new_id
from ticker.models import (
    EditKind,
    Item,
    ItemCreate,
    ItemEdit,
    ScheduledEdit,
    apply_edit,
    change_kind,
    format_time,
    parse,
)
from ticker.text import scan

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


PHOTO = {"url": "https://photos.example/f16.jpg", "alt": "An F-16 over the sea", "caption": "Illustrative photo"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"image": {"url": "http://photos.example/f16.jpg", "alt": "A jet"}}, "image.url"),
        ({"image": {"url": "/f16.jpg", "alt": "A jet"}}, "image.url"),
        ({"image": {"url": "javascript:alert(1)", "alt": "A jet"}}, "image.url"),
        ({"image": {"url": "https://photos.example/f16.jpg"}}, "image.alt"),
        ({"image": {"url": "https://photos.example/f16.jpg", "alt": "   "}}, "image.alt"),
        ({"image": {"url": "https://photos.example/f16.jpg", "alt": "bell\x07"}}, "image.alt"),
        ({"image": {"url": "https://photos.example/f16.jpg", "alt": "A", "width": 0}}, "image.width"),
        ({"image": {"url": "https://photos.example/f16.jpg", "alt": "A", "height": "9"}}, "image.height"),
        ({"image": {"url": "https://photos.example/f16.jpg", "alt": "A", "src": "x"}}, "image.src"),
        ({"image": "https://photos.example/f16.jpg"}, "image"),
        ({"urgency": 0}, "urgency"),
        ({"urgency": 10}, "urgency"),
        ({"urgency": "1"}, "urgency"),
        ({"urgency": 1.5}, "urgency"),
        ({"key_event": "yes"}, "key_event"),
        ({"publish_at": "2020-01-01T00:00:00Z"}, "publish_at"),
        ({"publish_at": (datetime.now(UTC) + timedelta(days=367)).isoformat()}, "publish_at"),
        ({"publish_at": "2030-01-01T00:00:00"}, "publish_at"),
        ({"publish_at": 1893456000}, "publish_at"),
        (
            {
                "publish_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
                "published_at": "2024-01-01T00:00:00Z",
            },
            "publish_at",
        ),
    ],
)
def test_new_fields_reject_bad_values(body: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse(ItemCreate, {"headline": "ok", **body})
    assert field in fields_of(exc)


def test_image_origins_limit_where_photos_come_from() -> None:
    origins = ["https://photos.example"]
    ok = parse(ItemCreate, {"headline": "ok", "image": PHOTO}, image_origins=origins)
    assert ok.image is not None and ok.image.alt == "An F-16 over the sea"
    with pytest.raises(InvalidInput) as exc:
        parse(
            ItemCreate,
            {"headline": "ok", "image": {**PHOTO, "url": "https://evil.example/x.jpg"}},
            image_origins=origins,
        )
    assert fields_of(exc) == ["image.url"]


def test_photo_key_event_urgency_and_schedule_reach_the_item() -> None:
    at = datetime.now(UTC) + timedelta(minutes=10)
    create = parse(
        ItemCreate, {"headline": "ok", "image": PHOTO, "key_event": True, "urgency": 1, "publish_at": at.isoformat()}
    )
    item = create.to_item(at=AT)
    assert item.key_event and item.urgency == 1 and item.image == create.image
    assert abs(item.published_at - at) < timedelta(milliseconds=1)
    assert parse(ItemCreate, {"headline": "ok"}).to_item().urgency == 5


def test_fingerprint_of_an_old_style_create_is_unchanged_by_the_new_fields() -> None:
    plain = parse(ItemCreate, {"headline": "ok", "id": "a"})
    assert "image" not in repr(plain.fingerprint())
    assert plain.fingerprint() != parse(ItemCreate, {"headline": "ok", "urgency": 2}).fingerprint()


@pytest.mark.parametrize(
    ("changes", "kind", "badge"),
    [
        ({"key_event": True}, "key_event", False),
        ({"pinned": True}, "pin", False),
        ({"urgency": 1}, "update", False),
        ({"image": PHOTO}, "update", True),
        ({"headline": "new", "kind": "fix"}, "fix", False),
    ],
)
def test_key_events_pins_and_urgency_are_edits_without_the_updated_badge(
    changes: dict[str, object], kind: str, badge: bool
) -> None:
    item = parse(ItemCreate, {"headline": "ok"}).to_item(at=AT)
    edit = parse(ItemEdit, changes)
    after = apply_edit(item, edit, at=AT + timedelta(minutes=1))
    assert change_kind(item, edit) == kind
    assert (after.updated_at is not None) is badge and after.version == 2


@pytest.mark.parametrize("body", [{"urgency": None}, {"key_event": None}, {"urgency": 0}])
def test_edits_reject_bad_new_fields(body: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        parse(ItemEdit, body)


def test_a_scheduled_edit_moves_the_time_and_checks_it() -> None:
    item = parse(ItemCreate, {"headline": "ok"}).to_item(at=AT)
    later = datetime.now(UTC) + timedelta(hours=2)
    moved = parse(ScheduledEdit, {"publish_at": later.isoformat(), "headline": "new"}).apply(item)
    assert moved.headline == "new" and abs(moved.published_at - later) < timedelta(milliseconds=1)
    for bad in ({}, {"publish_at": "2020-01-01T00:00:00Z"}, {"urgency": 10}, {"publish_at": None}):
        with pytest.raises(InvalidInput):
            parse(ScheduledEdit, bad)


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


@pytest.mark.parametrize(("value", "taken"), [(7, 7), (7.0, 7), (7.5, None), ("7", None), (True, None), (1e308, None)])
def test_whole_numbers_are_json_integers_with_or_without_a_point(value: object, taken: int | None) -> None:
    """JSON Schema's ``integer`` (what the OpenAPI document says) includes ``7.0``; strings and booleans are not."""
    if taken is None:
        with pytest.raises(InvalidInput):
            parse(ItemCreate, {"headline": "Quake", "urgency": value})
    else:
        assert parse(ItemCreate, {"headline": "Quake", "urgency": value}).urgency == taken


def test_the_text_rule_takes_its_shortcut_only_for_text_it_accepts() -> None:
    # text_problem skips the scan for printable text: every character the scan refuses,
    # anywhere in a string, must be unprintable, or the shortcut would let it through.
    slipping = [
        f"U+{code:04X}"
        for code in range(0x110000)
        if chr(code).isprintable() and (scan(chr(code)) or scan(f"a{chr(code)}a"))
    ]
    assert slipping == []
