"""The OpenAPI document, built from the same models that validate requests.

It states every rule the API enforces, so a client (or a fuzzer) generating
requests from it gets what it expects: a request the document allows is
accepted, one it forbids is refused with a JSON error. Pydantic's schemas give
the shapes; this module adds what they cannot see: the plain-text rule as a
pattern (trimmed length, refused characters, derived from the models' own
validation), the URL form, the label vocabulary, which edit fields may be null,
and how ``kind`` and ``correction`` go together.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from ticker import __version__, feeds
from ticker.config import MAX_PAGE_LIMIT, Settings
from ticker.http import BEFORE
from ticker.models import (
    CHANNEL_PATTERN,
    ID_PATTERN,
    MAX_ALT,
    MAX_AUTHOR,
    MAX_CAPTION,
    MAX_CORRECTION,
    MAX_CREDIT,
    MAX_HEADLINE,
    MAX_LABELS,
    EditKind,
    Item,
    ItemCreate,
    ItemEdit,
    ScheduledEdit,
)
from ticker.text import MAX_URL

LIMIT_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_LIMIT}
IF_MATCH_PATTERN = r'^\s*(?:\*|(?:W/)?"?[0-9]{1,18}"?)\s*$'
URL_PATTERN = (
    r"^[Hh][Tt][Tt][Pp][Ss]?://(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?::[1-9][0-9]{0,3})?(?:[/?#][!#-\[\]-~]*)?$"
)
"""The links the document promises to accept: an ASCII host name, an optional port, printable ASCII after it.

The API accepts a little more (IP literals, see ``docs/api.md``); what it
refuses, the document never offers.
"""
PUBLISHED_PATTERN = r"^(?:197[1-9]|19[89][0-9]|20[01][0-9])-"
"""Back-dated times the document offers: 1971 to 2019. The API takes any time from 1970 (UTC)
to five minutes ahead of its clock, a range no static pattern can follow."""
_TEXT_SUSPECTS = ("Cc", "Cf", "Zl", "Zp", "Zs")
"""The Unicode categories whose characters the plain-text rule looks at; letters, marks,
digits, punctuation and symbols are always plain text. Lone surrogates (JSON's ``"\\ud800"``)
are refused too, but are no characters a pattern can name."""
_SUSPECT_PLANES = (range(0x10000), range(0x10000, 0x20000), range(0xE0000, 0xF0000))
"""Where Unicode puts every character of those categories: the first two planes and the tags' plane."""

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
            },
        }
    },
}
_WRITE = {
    "type": "object",
    "required": ["item", "cursor"],
    "properties": {"item": {"$ref": "#/components/schemas/Item"}, "cursor": {"type": "string"}},
}
_PAGE = {
    "type": "object",
    "required": ["items", "cursor", "next"],
    "properties": {
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
        "pinned": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
        "cursor": {"type": "string", "description": "Stream cursor the page is current as of"},
        "next": {"type": ["string", "null"], "description": "Pass as `before` for the next page"},
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): _json({"$ref": "#/components/schemas/Error"}, "Error") for s in statuses}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _param(name: str, where: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": where, "schema": schema, "description": description, "required": where == "path"}


def _plain(value: str) -> bool:
    """Whether the API takes ``value`` as plain text (asked of the models' own validation)."""
    try:
        ItemEdit.model_validate({"kind": EditKind.FIX, "author": value})
    except ValidationError:
        return False
    return True


def _class(code_points: Iterable[int], *, negate: bool) -> str:
    """A regular-expression character class of ``code_points``, in ranges."""
    ranges: list[list[int]] = []
    for code in sorted(code_points):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])

    def char(code: int) -> str:
        return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)

    body = "".join(char(a) if a == b else f"{char(a)}-{char(b)}" for a, b in ranges)
    return f"[{'^' if negate else ''}{body}]"


@functools.cache
def _text_classes() -> tuple[str, str, str]:
    """Whitespace (what trimming removes), a character that may start or end a text, one inside it."""
    noncharacters = [
        *range(0xFDD0, 0xFDF0),
        *(plane + last for plane in range(0, 0x110000, 0x10000) for last in (0xFFFE, 0xFFFF)),
    ]
    categorized = (code for plane in _SUSPECT_PLANES for code in plane)
    suspects = sorted({*noncharacters, *(c for c in categorized if unicodedata.category(chr(c)) in _TEXT_SUSPECTS)})
    space = [code for code in suspects if chr(code).isspace()]
    end = [code for code in suspects if not chr(code).isspace() and not _plain(chr(code))]
    inside = [code for code in suspects if not _plain(f"a{chr(code)}a")]
    return _class(space, negate=False), _class(space + end, negate=True), _class(inside, negate=True)


def text_pattern(limit: int) -> str:
    """The plain-text rule as a pattern: 1 to ``limit`` characters once trimmed, none refused."""
    space, end, inside = _text_classes()
    return f"^{space}*{end}(?:{inside}{{0,{limit - 2}}}{end})?{space}*$"


def _non_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A property's schema without null: itself, or its non-null branch when it may be null."""
    for branch in schema.get("anyOf", ()):
        if branch.get("type") != "null":
            return dict(branch)
    return schema


def _tighten(
    schema: dict[str, Any], labels: Sequence[str], today: date, *, not_null: Sequence[str] = ()
) -> dict[str, Any]:
    """A request model's schema with the rules its validators enforce."""
    properties: dict[str, Any] = schema["properties"]
    for name in not_null:
        kept = {k: v for k, v in properties[name].items() if k not in ("anyOf", "default")}
        properties[name] = {**_non_null(properties[name]), **kept}
    for name, limit in (("headline", MAX_HEADLINE), ("author", MAX_AUTHOR), ("correction", MAX_CORRECTION)):
        if name in properties:
            _set_string_rule(properties[name], {"pattern": text_pattern(limit)})
    _set_string_rule(properties["url"], {"pattern": URL_PATTERN, "maxLength": MAX_URL})
    if "published_at" in properties:
        _set_string_rule(properties["published_at"], {"pattern": PUBLISHED_PATTERN})
    if "publish_at" in properties:
        _set_string_rule(properties["publish_at"], {"pattern": publish_at_pattern(today)})
    if "published_at" in properties and "publish_at" in properties:
        schema["not"] = {
            "properties": {"published_at": {"type": "string"}, "publish_at": {"type": "string"}},
            "required": ["published_at", "publish_at"],
        }
    label_list = {"enum": list(labels)}
    _set_array_rule(properties["labels"], {"items": {"type": "string", **label_list}, "maxItems": MAX_LABELS})
    return schema


def publish_at_pattern(today: date) -> str:
    """Scheduled times the document offers: the month after next, always ahead and within the year
    the API allows, whatever the time zone; the API takes any time from now to a year ahead."""
    month = today.month + 1
    year, month = today.year + month // 12, month % 12 + 1
    return f"^{year:04d}-{month:02d}-"


def _image(schema: dict[str, Any], origins: Sequence[str]) -> None:
    """The photo: an https link (from one of ``origins`` when they are set) and plain-text words."""
    properties = schema["properties"]
    for name, limit in (("alt", MAX_ALT), ("caption", MAX_CAPTION), ("credit", MAX_CREDIT)):
        _set_string_rule(properties[name], {"pattern": text_pattern(limit)})
    pattern = URL_PATTERN.replace("[Ss]?", "[Ss]", 1)
    if origins:
        listed = "|".join(origin.replace(".", "\\.") for origin in origins)
        pattern = f"^(?:{listed})(?:[/?#][!#-\\[\\]-~]*)?$"
    _set_string_rule(properties["url"], {"pattern": pattern, "maxLength": MAX_URL})


def _set_string_rule(prop: dict[str, Any], rule: dict[str, Any]) -> None:
    target = next((b for b in prop.get("anyOf", ()) if b.get("type") == "string"), prop)
    target.update(rule)


def _set_array_rule(prop: dict[str, Any], rule: dict[str, Any]) -> None:
    target = next((b for b in prop.get("anyOf", ()) if b.get("type") == "array"), prop)
    target.update(rule, uniqueItems=True)


def _edit_rules(schema: dict[str, Any]) -> dict[str, Any]:
    """An edit changes a field, or is a correction; a note comes with kind ``correction`` only."""
    correction = {"properties": {"kind": {"const": EditKind.CORRECTION.value}}, "required": ["kind"]}
    changes_nothing = ("kind", "correction")
    schema["properties"]["correction"] = _non_null(schema["properties"]["correction"])
    schema["allOf"] = [
        {"anyOf": [*({"required": [n]} for n in schema["properties"] if n not in changes_nothing), correction]},
        {"if": correction, "then": {"required": ["correction"]}, "else": {"not": {"required": ["correction"]}}},
    ]
    return schema


_MODELS: tuple[tuple[str, type[BaseModel], Literal["validation", "serialization"]], ...] = (
    ("Item", Item, "serialization"),
    ("ItemCreate", ItemCreate, "validation"),
    ("ItemEdit", ItemEdit, "validation"),
    ("ScheduledEdit", ScheduledEdit, "validation"),
)
_ITEMS = {"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}}}
_HISTORY = {
    "type": "object",
    "properties": {
        "versions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "cursor": {"type": "string"},
                    "kind": {"type": "string"},
                    "actor": {"type": "string"},
                    "ts": {"type": "integer"},
                    "item": {"anyOf": [{"$ref": "#/components/schemas/Item"}, {"type": "null"}]},
                },
            },
        }
    },
}


@functools.cache
def document(labels: tuple[str, ...], image_origins: tuple[str, ...], today: date) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document for ``/openapi.json``: the deployment's label vocabulary and
    image origins; scheduled times are offered relative to ``today``."""
    schemas = {
        name: model.model_json_schema(mode=mode, ref_template="#/components/schemas/{model}")
        for name, model, mode in _MODELS
    }
    for schema in list(schemas.values()):
        schemas.update(schema.pop("$defs", {}))
    never_null = ("headline", "channel", "pinned", "labels", "key_event", "urgency")
    _tighten(schemas["ItemCreate"], labels, today)
    _edit_rules(_tighten(schemas["ItemEdit"], labels, today, not_null=never_null))
    _tighten(schemas["ScheduledEdit"], labels, today, not_null=(*never_null, "publish_at"))["minProperties"] = 1
    _image(schemas["Image"], [origin.lower().rstrip("/") for origin in image_origins])
    item_id = _param("id", "path", {"type": "string", "pattern": ID_PATTERN})
    before = {"type": "string", "pattern": f"^(?:{BEFORE.pattern[1:-1]})?$"}
    if_match = _param(
        "If-Match", "header", {"type": "string", "pattern": IF_MATCH_PATTERN}, "The version the change expects"
    )
    channel = _param(
        "channel",
        "query",
        {"type": "string", "pattern": f"^(?:{CHANNEL_PATTERN[1:-1]})?$"},
        "One channel; all if empty",
    )
    secured: list[dict[str, list[str]]] = [{"bearer": []}]
    writes = _errors(400, 401, 403, 404, 413, 415, 422, 429, 503)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Ticker", "version": __version__},
        "components": {
            "schemas": {**schemas, "Error": _ERROR, "Write": _WRITE, "Page": _PAGE},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/api/items": {
                "get": {
                    "summary": "Latest items, newest first",
                    "parameters": [
                        channel,
                        _param("limit", "query", LIMIT_SCHEMA),
                        _param("before", "query", before, "`next` of the previous page"),
                        _param("q", "query", {"type": "string", "maxLength": 200}, "Words the headline must have"),
                    ],
                    "responses": {"200": _json(_ref("Page"), "A page"), **_errors(400, 503)},
                },
                "post": {
                    "summary": "Publish an item",
                    "security": secured,
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ItemCreate")}}},
                    "responses": {
                        "201": _json(_ref("Write"), "Published"),
                        "200": _json(_ref("Write"), "Already published with the same content"),
                        **writes,
                        **_errors(409),
                    },
                },
            },
            "/api/items/{id}": {
                "get": {
                    "summary": "One item (ETag: its version)",
                    "parameters": [item_id],
                    "responses": {"200": _json(_ref("Item"), "The item"), **_errors(404, 503)},
                },
                "patch": {
                    "summary": "Edit: update, correction or fix",
                    "security": secured,
                    "parameters": [item_id, if_match],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ItemEdit")}}},
                    "responses": {"200": _json(_ref("Write"), "Edited"), **writes, **_errors(409, 412)},
                },
                "delete": {
                    "summary": "Retract",
                    "security": secured,
                    "parameters": [item_id, if_match],
                    "responses": {"200": _json(_ref("Write"), "Retracted"), **writes, **_errors(412)},
                },
            },
            "/api/items/{id}/history": {
                "get": {
                    "summary": "Every change of the item with its kind, actor and time (staff)",
                    "security": secured,
                    "parameters": [item_id],
                    "responses": {"200": _json(_HISTORY, "The history"), **_errors(401, 404, 503)},
                }
            },
            "/api/scheduled": {
                "get": {
                    "summary": "Scheduled items, soonest first (staff)",
                    "security": secured,
                    "responses": {"200": _json(_ITEMS, "Scheduled items"), **_errors(401, 503)},
                }
            },
            "/api/scheduled/{id}": {
                "patch": {
                    "summary": "Change a scheduled item or its time",
                    "security": secured,
                    "parameters": [item_id],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("ScheduledEdit")}},
                    },
                    "responses": {"200": _json(_ITEMS, "Changed"), **writes},
                },
                "delete": {
                    "summary": "Cancel a scheduled item (nothing is appended)",
                    "security": secured,
                    "parameters": [item_id],
                    "responses": {"200": {"description": "Cancelled"}, **writes},
                },
            },
            "/api/scheduled/{id}/publish": {
                "post": {
                    "summary": "Publish a scheduled item now",
                    "security": secured,
                    "parameters": [item_id],
                    "responses": {"200": _json(_ref("Write"), "Published"), **writes},
                }
            },
            "/api/me": {
                "get": {
                    "summary": "Who a staff token is: its name and scopes",
                    "security": secured,
                    "responses": {"200": {"description": "name and scopes"}, **_errors(401, 503)},
                }
            },
            "/api/readers": {
                "get": {
                    "summary": "Live readers per channel, summed over every server process (staff)",
                    "security": secured,
                    "responses": {"200": {"description": "channels and total"}, **_errors(401, 503)},
                }
            },
            "/healthz": {"get": {"summary": "Process alive", "responses": {"200": {"description": "OK"}}}},
            "/readyz": {
                "get": {
                    "summary": "Ready to serve: Redis reachable and the stream reader not lagging",
                    "responses": {"200": {"description": "Ready"}, "503": {"description": "Not ready"}},
                }
            },
            "/api/events": {
                "get": {
                    "summary": "Live changes as Server-Sent Events (see docs/protocol.md); resumes by Last-Event-ID",
                    "parameters": [
                        channel,
                        _param("cursor", "query", {"type": "string"}, "Resume after it; an unknown one resets"),
                        _param("Last-Event-ID", "header", {"type": "string"}, "Wins over `cursor`"),
                    ],
                    "responses": {
                        "200": {"description": "An event stream", "content": {"text/event-stream": {}}},
                        **_errors(400, 503),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics of this process (docs/operations.md)",
                    "responses": {"200": {"description": "Text exposition format"}},
                }
            },
            **feeds.openapi_paths(),
        },
    }


def today_document(settings: Settings) -> dict[str, Any]:
    """The document for ``settings``, as of today (built once a day)."""
    return document(settings.labels, settings.image_origins, datetime.now(UTC).date())
