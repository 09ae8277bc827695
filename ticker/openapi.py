"""The OpenAPI document, built from the same models that validate requests."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from ticker import __version__, feeds
from ticker.models import Item, ItemCreate, ItemEdit, ScheduledEdit

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


def document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document for ``/openapi.json``."""
    schemas = {
        name: model.model_json_schema(mode=mode, ref_template="#/components/schemas/{model}")
        for name, model, mode in _MODELS
    }
    for schema in list(schemas.values()):
        schemas.update(schema.pop("$defs", {}))
    item_id = _param("id", "path", {"type": "string"})
    if_match = _param("If-Match", "header", {"type": "string"}, "The version the change expects")
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
                        _param("channel", "query", {"type": "string"}),
                        _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 200}),
                        _param("before", "query", {"type": "string"}, "`next` of the previous page"),
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
                        {"name": "channel", "in": "query", "schema": {"type": "string"}},
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                        {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}},
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
