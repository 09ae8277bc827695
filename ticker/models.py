"""The item, the requests that change it, and their JSON forms.

Pydantic lives here, at the edges: requests are validated into these models,
and an :class:`Item` is serialized once into the JSON string that the stream,
the state hash and every client share.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar, cast
from urllib.parse import urlsplit

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ticker.config import DEFAULT_CHANNEL, DEFAULT_LABELS
from ticker.errors import InvalidInput
from ticker.ids import new_id
from ticker.text import is_local_host, text_problem, url_problem

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
CHANNEL_PATTERN = r"^[a-z0-9-]{1,32}$"
LANG_PATTERN = r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$"
MAX_HEADLINE = 300
MAX_LABELS = 5
MAX_AUTHOR = 120
MAX_CORRECTION = 500
MAX_ALT = 300
MAX_CAPTION = 500
MAX_CREDIT = 120
MAX_IMAGE_SIDE = 10_000
MAX_SCHEDULE_AHEAD = timedelta(days=366)
"""How far ahead ``publish_at`` may be: a year (leap-proof)."""
URGENCY_FLASH = 1
DEFAULT_URGENCY = 5
FUTURE_SKEW = timedelta(minutes=5)
"""How far ahead of the server clock ``published_at`` may be (clock skew, not scheduling)."""
STREAM_SCHEMA_VERSION = "1"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_time(value: datetime) -> str:
    """UTC ISO 8601 with milliseconds and ``Z``: the one time format on the wire."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_ms(value: datetime) -> datetime:
    """Normalize to UTC and whole milliseconds, so what is stored is what is sent."""
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def now() -> datetime:
    return utc_ms(datetime.now(UTC))


Time = Annotated[datetime, PlainSerializer(format_time, return_type=str)]


class EditKind(StrEnum):
    """What an edit means to readers."""

    UPDATE = "update"
    """New information: readers see "Updated"."""
    CORRECTION = "correction"
    """A factual error fixed: readers see "Corrected" and the note."""
    FIX = "fix"
    """A typo: the version moves, readers see no badge."""


def _plain_text(value: str, *, what: str, limit: int) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{what} must not be empty")
    if len(value) > limit:
        raise ValueError(f"{what} must be at most {limit} characters (got {len(value)})")
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(f"{what} {problem}")
    return value


def _check_url(value: str | None) -> str | None:
    if value is None:
        return None
    problem = url_problem(value)
    if problem is not None:
        raise ValueError(f"url {problem}")
    return value


def _check_image_url(value: str, info: ValidationInfo) -> str:
    checked = _check_url(value)
    assert checked is not None
    parts = urlsplit(checked)
    origins: Iterable[str] = (info.context or {}).get("image_origins", ())
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    # http only from a local origin listed on purpose (the demo serves its own photos over http).
    if parts.scheme != "https" and not (origin in origins and is_local_host(parts.hostname or "")):
        raise ValueError("image url must be an absolute https URL")
    if origins and origin not in origins:
        raise ValueError(f"images may come only from {', '.join(origins)}")
    return checked


def _check_labels(value: list[str], info: ValidationInfo) -> list[str]:
    vocabulary: Iterable[str] = (info.context or {}).get("labels", DEFAULT_LABELS)
    labels = [label.strip().lower() for label in value]
    if len(labels) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels")
    if len(set(labels)) != len(labels):
        raise ValueError("labels must not repeat")
    unknown = [label for label in labels if label not in vocabulary]
    if unknown:
        raise ValueError(f"unknown label {unknown[0]!r}; allowed: {', '.join(vocabulary)}")
    return labels


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def _stored(info: ValidationInfo) -> bool:
    """Whether the data comes from our own store: it passed the rules of its day, and today's
    stricter ones must not make a stored item unreadable (every reader and consumer would fail)."""
    return bool((info.context or {}).get("stored"))


class _Content(_Strict):
    """Validators shared by every model that carries item content."""

    @field_validator("headline", check_fields=False)
    @classmethod
    def _headline(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or _stored(info):
            return value
        return _plain_text(value, what="headline", limit=MAX_HEADLINE)

    @field_validator("author", check_fields=False)
    @classmethod
    def _author(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or _stored(info):
            return value
        return _plain_text(value, what="author", limit=MAX_AUTHOR)

    @field_validator("url", check_fields=False)
    @classmethod
    def _url(cls, value: str | None, info: ValidationInfo) -> str | None:
        return value if _stored(info) else _check_url(value)

    @field_validator("labels", check_fields=False)
    @classmethod
    def _labels(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        return None if value is None else _check_labels(value, info)


def _whole(value: object) -> object:
    """A JSON number such as ``7.0`` is a whole number too (as JSON Schema's ``integer`` says)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Side = Annotated[int, Field(strict=True, ge=1, le=MAX_IMAGE_SIDE), BeforeValidator(_whole)]
"""A photo's width or height in pixels: a JSON integer (``640`` or ``640.0``), never a string or a boolean."""


class Image(_Strict):
    """A photo for an item: Ticker keeps its URL and description, never the bytes."""

    url: str
    alt: str
    """What the photo shows, for readers who cannot see it: required."""
    caption: str | None = None
    credit: str | None = None
    width: Side | None = None
    height: Side | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        if _stored(info):
            return value  # checked against the origins allowed when it was written
        return _check_image_url(value, info)

    @field_validator("alt")
    @classmethod
    def _alt(cls, value: str, info: ValidationInfo) -> str:
        return value if _stored(info) else _plain_text(value, what="alt", limit=MAX_ALT)

    @field_validator("caption")
    @classmethod
    def _caption(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or _stored(info):
            return value
        return _plain_text(value, what="caption", limit=MAX_CAPTION)

    @field_validator("credit")
    @classmethod
    def _credit(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or _stored(info):
            return value
        return _plain_text(value, what="credit", limit=MAX_CREDIT)


Urgency = Annotated[int, Field(strict=True, ge=1, le=9), BeforeValidator(_whole)]


class Item(_Content):
    """The latest version of one headline, exactly as stored and sent."""

    id: str = Field(pattern=ID_PATTERN)
    version: int = Field(ge=1)
    headline: str
    url: str | None = None
    labels: list[str] = Field(default_factory=list)
    channel: str = Field(default=DEFAULT_CHANNEL, pattern=CHANNEL_PATTERN)
    published_at: Time
    updated_at: Time | None = None
    correction: str | None = None
    pinned: bool = False
    lang: str | None = Field(default=None, pattern=LANG_PATTERN)
    author: str | None = None
    image: Image | None = None
    key_event: bool = False
    urgency: int = Field(default=DEFAULT_URGENCY, ge=1, le=9)

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, raw: str | bytes) -> Item:
        """Trusted JSON from our own store: labels are not checked against today's vocabulary,
        nor text and links against today's rules (an item stored under older ones stays readable)."""
        return cls.model_validate_json(raw, context={"labels": _ANY_LABEL, "stored": True})

    @property
    def sort_key(self) -> str:
        return sort_key(self.published_at, self.id)


class _AnyLabel:
    def __contains__(self, item: object) -> bool:
        return True

    def __iter__(self) -> Any:
        return iter(())


_ANY_LABEL = _AnyLabel()


def sort_key(published_at: datetime, item_id: str) -> str:
    """Orders items by (published_at, id) as plain strings, for lexicographic paging.

    The milliseconds are counted exactly (``timestamp() * 1000`` in floating point
    is one short for some times, and the browser's ``Date.parse`` is not).
    """
    return f"{epoch_ms(published_at):015d}:{item_id}"


def epoch_ms(value: datetime) -> int:
    """Milliseconds since the epoch, counted exactly (Redis scores and stream times)."""
    return (value - EPOCH) // timedelta(milliseconds=1)


def legacy_sort_key(published_at: datetime, item_id: str) -> str:
    """The key releases before the exact count indexed an item under; edits re-key such entries."""
    return f"{int(published_at.timestamp() * 1000):015d}:{item_id}"


class ItemCreate(_Content):
    """``POST /api/items``: what a producer sends to publish."""

    id: str | None = Field(default=None, pattern=ID_PATTERN)
    headline: str
    url: str | None = None
    labels: list[str] = Field(default_factory=list)
    channel: str = Field(default=DEFAULT_CHANNEL, pattern=CHANNEL_PATTERN)
    published_at: AwareDatetime | None = None
    pinned: StrictBool = False
    lang: str | None = Field(default=None, pattern=LANG_PATTERN)
    author: str | None = None
    image: Image | None = None
    key_event: StrictBool = False
    urgency: Urgency = DEFAULT_URGENCY
    publish_at: AwareDatetime | None = None
    """A future time to publish at (scheduled); until then the item is in no public view."""

    @field_validator("published_at", "publish_at", mode="before")
    @classmethod
    def _iso_text(cls, value: object, info: ValidationInfo) -> object:
        if value is not None and not isinstance(value, str | datetime):
            raise ValueError(f"{info.field_name} must be an ISO 8601 string with a time zone")
        return value

    @field_validator("publish_at")
    @classmethod
    def _ahead(cls, value: datetime | None) -> datetime | None:
        return None if value is None else check_publish_at(value)

    @model_validator(mode="after")
    def _one_time(self) -> ItemCreate:
        if self.publish_at is not None and self.published_at is not None:
            raise InvalidInput(
                "give published_at (now or earlier) or publish_at (later), not both",
                fields=[{"field": "publish_at", "message": "not together with published_at"}],
            )
        return self

    @field_validator("published_at")
    @classmethod
    def _not_future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            utc = value.astimezone(UTC)
        except (OverflowError, ValueError):
            raise ValueError("published_at is out of range") from None
        if utc > datetime.now(UTC) + FUTURE_SKEW:
            raise ValueError("published_at must not be in the future")
        if utc.year < 1970:
            raise ValueError("published_at must be after 1970")
        return utc_ms(value)

    def fingerprint(self) -> str:
        """Identifies the request's content, so a retried create is recognized as the same."""
        data = self.model_dump(mode="json", exclude={"id"})
        for name in NEWER_FIELDS:  # left out at their defaults, so older fingerprints still match
            if data[name] == ItemCreate.model_fields[name].default:
                del data[name]
        return hashlib.sha256(repr(sorted(data.items())).encode()).hexdigest()

    def to_item(self, *, at: datetime | None = None) -> Item:
        return Item(
            id=self.id or new_id(),
            version=1,
            headline=self.headline,
            url=self.url,
            labels=self.labels,
            channel=self.channel,
            published_at=self.publish_at or self.published_at or at or now(),
            pinned=self.pinned,
            lang=self.lang,
            author=self.author,
            image=self.image,
            key_event=self.key_event,
            urgency=self.urgency,
        )


NEWER_FIELDS = ("image", "key_event", "urgency", "publish_at")


def check_publish_at(value: datetime) -> datetime:
    """A schedule time: in the future, at most a year ahead; whole milliseconds, UTC."""
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("publish_at is out of range") from None
    current = datetime.now(UTC)
    if utc <= current:
        raise ValueError("publish_at must be in the future")
    if utc > current + MAX_SCHEDULE_AHEAD:
        raise ValueError("publish_at must be at most a year ahead")
    return utc_ms(utc)


CONTENT_FIELDS = ("headline", "url", "labels", "channel", "lang", "author", "image")


class _Changes(_Content):
    """The item fields an edit may set: each optional, and null only where the field takes null."""

    headline: str | None = None
    url: str | None = None
    labels: list[str] | None = None
    channel: str | None = Field(default=None, pattern=CHANNEL_PATTERN)
    pinned: StrictBool | None = None
    lang: str | None = Field(default=None, pattern=LANG_PATTERN)
    author: str | None = None
    image: Image | None = None
    key_event: StrictBool | None = None
    urgency: Urgency | None = None

    @field_validator("headline", "channel", "pinned", "labels", "key_event", "urgency")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value


class ItemEdit(_Changes):
    """``PATCH /api/items/{id}``: the changed fields and the kind of edit."""

    kind: EditKind = EditKind.UPDATE
    correction: str | None = None

    @field_validator("correction")
    @classmethod
    def _note(cls, value: str | None) -> str | None:
        return None if value is None else _plain_text(value, what="correction", limit=MAX_CORRECTION)

    @model_validator(mode="after")
    def _consistent(self) -> ItemEdit:
        if self.kind is EditKind.CORRECTION and self.correction is None:
            raise InvalidInput(
                "a correction needs a note saying what was wrong",
                fields=[{"field": "correction", "message": "required for a correction"}],
            )
        if self.kind is not EditKind.CORRECTION and "correction" in self.model_fields_set:
            raise InvalidInput(
                "a correction note needs kind 'correction'",
                fields=[{"field": "correction", "message": "only allowed with kind 'correction'"}],
            )
        if not self.changes() and self.kind is not EditKind.CORRECTION:
            raise InvalidInput("the edit changes nothing", fields=[])
        return self

    def changes(self) -> dict[str, Any]:
        """The item fields this edit sets."""
        return {name: getattr(self, name) for name in self.model_fields_set if name not in ("kind", "correction")}


def apply_edit(item: Item, edit: ItemEdit, *, at: datetime) -> Item:
    """The item after ``edit``: version + 1, and the badge the kind of edit calls for."""
    changes = edit.changes()
    update: dict[str, Any] = {**changes, "version": item.version + 1}
    content_changed = any(name in changes and changes[name] != getattr(item, name) for name in CONTENT_FIELDS)
    if edit.kind is EditKind.CORRECTION:
        update["correction"] = edit.correction
        update["updated_at"] = at
    elif edit.kind is EditKind.UPDATE and content_changed:
        update["updated_at"] = at
    return item.model_copy(update=update)


class ScheduledEdit(_Changes):
    """``PATCH /api/scheduled/{id}``: changes to an item before it is published (no badge, no version)."""

    publish_at: AwareDatetime | None = None

    @field_validator("publish_at", mode="before")
    @classmethod
    def _iso_text(cls, value: object) -> object:
        if not isinstance(value, str | datetime):
            raise ValueError("publish_at must be an ISO 8601 string with a time zone")
        return value

    @field_validator("publish_at")
    @classmethod
    def _ahead(cls, value: datetime | None) -> datetime | None:
        return None if value is None else check_publish_at(value)

    @model_validator(mode="after")
    def _something(self) -> ScheduledEdit:
        if not self.model_fields_set:
            raise InvalidInput("the edit changes nothing", fields=[])
        return self

    def apply(self, item: Item) -> Item:
        """The scheduled item with these changes; ``publish_at`` moves its time."""
        update: dict[str, Any] = {name: getattr(self, name) for name in self.model_fields_set}
        if "publish_at" in update:
            update["published_at"] = update.pop("publish_at")
        return item.model_copy(update=update)


ChangeKind = Literal["publish", "update", "correction", "fix", "pin", "unpin", "key_event", "retract"]


def change_kind(item: Item, edit: ItemEdit) -> ChangeKind:
    """What an edit was, for the item's history: the editor's kind, or pin/key event when that is all it did."""
    if edit.kind is EditKind.CORRECTION:
        return "correction"
    if edit.kind is EditKind.FIX:
        return "fix"
    changed = {name for name, value in edit.changes().items() if value != getattr(item, name)}
    if changed == {"pinned"}:
        return "pin" if edit.pinned else "unpin"
    if changed == {"key_event"}:
        return "key_event"
    return "update"


def validation_error(exc: ValidationError) -> InvalidInput:
    """One :class:`InvalidInput` naming every bad field, from a pydantic error."""
    fields = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in error["loc"]) or "body"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "string_pattern_mismatch":
            message = f"does not match {error['ctx']['pattern']}"
        fields.append({"field": loc, "message": message})
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return InvalidInput(f"invalid input: {summary}", fields=fields)


_M = TypeVar("_M", bound=BaseModel)


def parse(
    model: type[_M], data: Any, *, labels: Iterable[str] = DEFAULT_LABELS, image_origins: Iterable[str] = ()
) -> _M:
    """Validate request data into ``model``, raising :class:`InvalidInput` on any problem.

    ``image_origins`` (``https://host[:port]``): where images may come from; empty allows any https origin.
    """
    context = {"labels": tuple(labels), "image_origins": tuple(o.lower().rstrip("/") for o in image_origins)}
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise validation_error(exc) from None


WriteOp = Literal["publish", "update", "retract"]
_ID = re.compile(ID_PATTERN)
_CHANNEL = re.compile(CHANNEL_PATTERN)


def is_item_id(value: str) -> bool:
    """The whole value is an item id (``fullmatch``: a trailing newline does not pass)."""
    return _ID.fullmatch(value) is not None


def is_channel(value: str) -> bool:
    """The whole value is a channel slug, as every endpoint and the CLI check it."""
    return _CHANNEL.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Change:
    """One stream entry, as plain values for the hot path (the item stays a JSON string)."""

    cursor: str
    op: str
    id: str
    item: str
    """The item after the change, as the JSON string stored in the entry."""
    actor: str
    ts: int
    """Server time of the append, in milliseconds since the epoch."""

    @classmethod
    def from_entry(cls, cursor: str, fields: dict[str, str]) -> Change:
        ts = fields.get("ts") or cursor.split("-", 1)[0]
        return cls(cursor, fields["op"], fields["id"], fields["item"], fields.get("actor", ""), int(ts))

    def parsed(self) -> Item:
        return Item.from_json(self.item)


class Event(BaseModel):
    """One change as a typed message: the live protocol's ``event`` and what consumers receive.

    ``actor`` (the name of the token that made the change) comes from the stream
    entry; the live protocol leaves it out, stream consumers get it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["event"] = "event"
    cursor: str
    op: WriteOp
    ts: int
    """Server time of the append, in milliseconds since the epoch."""
    item: Item
    actor: str | None = None

    @classmethod
    def from_change(cls, change: Change) -> Event:
        """The typed event of a stream entry; raises ``ValidationError`` for a malformed one."""
        if change.op not in ("publish", "update", "retract"):
            raise ValueError(f"unknown op {change.op!r}")
        return cls(
            cursor=change.cursor,
            op=cast(WriteOp, change.op),
            ts=change.ts,
            item=change.parsed(),
            actor=change.actor,
        )
