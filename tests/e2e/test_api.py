"""The HTTP API on a real server over a real socket."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from starlette.routing import Route

from tests.conftest import make_token
from tests.support import ServerThread, bound_socket
from ticker.auth import Scope
from ticker.config import Settings
from ticker.store import Store, connect


@pytest.fixture
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post(http: httpx.Client, token: str, body: object, **headers: str) -> httpx.Response:
    return http.post("/api/items", json=body, headers={**auth(token), **headers})


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code and isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fields"], list)
    return dict(error)


def stream_length(settings: Settings) -> int:
    async def count() -> int:
        assert settings.redis_url
        client = connect(settings.redis_url)
        try:
            return int(await client.xlen(Store(client, prefix=settings.prefix).stream_key))
        finally:
            await client.aclose()

    return asyncio.run(count())


def test_publish_get_edit_retract_roundtrip(http: httpx.Client, admin_token: str) -> None:
    created = post(http, admin_token, {"headline": "Quake hits", "labels": ["exclusive"], "id": "q1"})
    assert created.status_code == 201 and created.headers["location"] == "/api/items/q1"
    body = created.json()
    assert set(body) == {"item", "cursor"} and body["item"]["version"] == 1

    got = http.get("/api/items/q1")
    assert got.status_code == 200 and got.headers["etag"] == '"1"' and got.json() == body["item"]

    edited = http.patch("/api/items/q1", json={"headline": "Quake: 5 dead"}, headers=auth(admin_token))
    assert edited.status_code == 200 and edited.json()["item"]["updated_at"] is not None
    corrected = http.patch(
        "/api/items/q1",
        json={"kind": "correction", "correction": "Four died, not five", "headline": "Quake: 4 dead"},
        headers={**auth(admin_token), "If-Match": '"2"'},
    )
    assert corrected.status_code == 200 and corrected.json()["item"]["correction"] == "Four died, not five"
    fixed = http.patch("/api/items/q1", json={"kind": "fix", "headline": "Quake: 4 dead."}, headers=auth(admin_token))
    assert fixed.json()["item"]["version"] == 4

    listed = http.get("/api/items").json()
    assert [i["id"] for i in listed["items"]] == ["q1"] and listed["cursor"] == fixed.json()["cursor"]

    gone = http.delete("/api/items/q1", headers={**auth(admin_token), "If-Match": "4"})
    assert gone.status_code == 200 and gone.json()["item"]["version"] == 5
    assert http.get("/api/items").json()["items"] == []
    assert_error(http.get("/api/items/q1"), 404, "not_found")


def test_idempotent_create(http: httpx.Client, admin_token: str, settings: Settings) -> None:
    body = {"id": "wire-123", "headline": "Same story"}
    first = post(http, admin_token, body)
    again = post(http, admin_token, body)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    assert stream_length(settings) == 1
    assert_error(post(http, admin_token, {**body, "headline": "Other story"}), 409, "conflict")
    assert stream_length(settings) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"headline": ""}, "headline"),
        ({"headline": "x" * 301}, "headline"),
        ({"headline": "a\u0000b"}, "headline"),
        ({"headline": "ok", "url": "javascript:alert(1)"}, "url"),
        ({"headline": "ok", "labels": ["gossip"]}, "labels"),
        ({"headline": "ok", "labels": ["live", "live"]}, "labels"),
        ({"headline": "ok", "channel": "No Caps"}, "channel"),
        ({"headline": "ok", "published_at": "2024-11-17T16:22:00"}, "published_at"),
        ({"headline": "ok", "id": "bad id!"}, "id"),
        ({"headline": "ok", "lang": "english please"}, "lang"),
        ({"headline": "ok", "colour": "red"}, "colour"),
    ],
)
def test_each_bad_field_is_a_422_naming_it(
    http: httpx.Client, admin_token: str, settings: Settings, body: dict[str, object], field: str
) -> None:
    error = assert_error(post(http, admin_token, body), 422, "invalid")
    assert field in [f["field"] for f in error["fields"]]  # type: ignore[attr-defined]
    assert stream_length(settings) == 0


def test_bad_edits(http: httpx.Client, admin_token: str) -> None:
    post(http, admin_token, {"id": "q1", "headline": "Quake"})
    h = auth(admin_token)
    assert_error(http.patch("/api/items/q1", json={}, headers=h), 422, "invalid")
    error = assert_error(http.patch("/api/items/q1", json={"kind": "correction"}, headers=h), 422, "invalid")
    assert [f["field"] for f in error["fields"]] == ["correction"]  # type: ignore[attr-defined]
    assert_error(
        http.patch("/api/items/q1", json={"headline": "x"}, headers={**h, "If-Match": '"7"'}),
        412,
        "precondition_failed",
    )
    assert_error(
        http.patch("/api/items/q1", json={"headline": "x"}, headers={**h, "If-Match": "soon"}), 400, "bad_request"
    )
    assert_error(http.patch("/api/items/missing", json={"headline": "x"}, headers=h), 404, "not_found")
    assert_error(http.delete("/api/items/missing", headers=h), 404, "not_found")
    assert http.get("/api/items/q1").json()["version"] == 1


def test_auth(http: httpx.Client, settings: Settings) -> None:
    body = {"headline": "Quake"}
    assert_error(http.post("/api/items", json=body), 401, "unauthorized")
    assert_error(http.post("/api/items", json=body, headers={"Authorization": "Basic abc"}), 401, "unauthorized")
    assert_error(post(http, "tk_wrong", body), 401, "unauthorized")
    reader = make_token(settings, "retractor", Scope.RETRACT)
    assert_error(post(http, reader, body), 403, "forbidden")
    writer = make_token(settings, "writer", Scope.PUBLISH)
    created = post(http, writer, body)
    assert created.status_code == 201 and created.headers.get("www-authenticate") is None
    item_id = created.json()["item"]["id"]
    assert_error(http.patch(f"/api/items/{item_id}", json={"headline": "x"}, headers=auth(writer)), 403, "forbidden")
    assert_error(http.delete(f"/api/items/{item_id}", headers=auth(writer)), 403, "forbidden")
    assert created.json()["item"]["id"] in [i["id"] for i in http.get("/api/items").json()["items"]]
    # A bad body: who may not publish hears that first, whoever may hears what is wrong.
    bad = {"headline": ""}
    assert_error(http.post("/api/items", json=bad), 401, "unauthorized")
    assert_error(post(http, "tk_wrong", bad), 401, "unauthorized")
    assert_error(post(http, reader, bad), 403, "forbidden")
    assert_error(http.post("/api/items", content=b"{", headers=auth(reader)), 403, "forbidden")
    assert_error(post(http, writer, bad), 422, "invalid")


def test_revoked_token_is_refused_at_once(http: httpx.Client, settings: Settings) -> None:
    token = make_token(settings, "temp", Scope.PUBLISH)
    assert post(http, token, {"headline": "one"}).status_code == 201

    async def revoke() -> None:
        assert settings.redis_url
        client = connect(settings.redis_url)
        try:
            await Store(client, prefix=settings.prefix).revoke_token("temp")
        finally:
            await client.aclose()

    asyncio.run(revoke())
    assert_error(post(http, token, {"headline": "two"}), 401, "unauthorized")


def test_body_content_type_and_json_errors(http: httpx.Client, admin_token: str, settings: Settings) -> None:
    h = auth(admin_token)
    big = json.dumps({"headline": "x" * (settings.max_body_bytes + 10)})
    assert_error(
        http.post("/api/items", content=big, headers={**h, "Content-Type": "application/json"}), 413, "too_large"
    )
    assert_error(
        http.post("/api/items", content="headline=x", headers={**h, "Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    assert_error(
        http.post("/api/items", content="{nope", headers={**h, "Content-Type": "application/json"}), 400, "bad_request"
    )
    assert_error(
        http.post("/api/items", content="[1]", headers={**h, "Content-Type": "application/json"}), 422, "invalid"
    )
    assert_error(
        http.post("/api/items", content=b"\xff\xfe", headers={**h, "Content-Type": "application/json"}),
        400,
        "bad_request",
    )
    assert stream_length(settings) == 0


def test_list_parameters(http: httpx.Client, admin_token: str) -> None:
    for n in range(5):
        post(http, admin_token, {"id": f"n{n}", "headline": f"News {n}", "published_at": f"2024-11-17T16:2{n}:00Z"})
    post(http, admin_token, {"id": "s1", "headline": "Goal", "channel": "sport"})
    page = http.get("/api/items", params={"channel": "news", "limit": 2}).json()
    assert [i["id"] for i in page["items"]] == ["n4", "n3"] and page["next"]
    rest = http.get("/api/items", params={"channel": "news", "before": page["next"]}).json()
    assert [i["id"] for i in rest["items"]] == ["n2", "n1", "n0"] and rest["next"] is None
    assert len(http.get("/api/items").json()["items"]) == 6
    assert_error(http.get("/api/items", params={"limit": "0"}), 400, "bad_request")
    assert_error(http.get("/api/items", params={"limit": "many"}), 400, "bad_request")
    # Digits other than ASCII: str.isdigit takes them all, int() reads the last two as 3.
    for digit in ("\u00b9", "\u0663", "\uff13", "+3", "3_0", " 3"):
        assert_error(http.get("/api/items", params={"limit": digit}), 400, "bad_request")
    assert_error(http.get("/api/items", params={"before": "garbage"}), 400, "bad_request")
    assert_error(http.get("/api/items", params={"channel": "Bad Channel"}), 400, "bad_request")
    assert_error(http.get("/api/items/has%20space"), 404, "not_found")


def test_rate_limit_on_staff_writes(redis_url: str, prefix: str, tmp_path: object) -> None:
    settings = Settings(redis_url=redis_url, prefix=prefix, write_rate=0.01, write_burst=2)
    token = make_token(settings, "eager", Scope.PUBLISH)
    running = ServerThread(settings).start()
    try:
        with httpx.Client(base_url=running.url) as http:
            assert [post(http, token, {"headline": f"h{n}"}).status_code for n in range(2)] == [201, 201]
            limited = post(http, token, {"headline": "h3"})
            assert_error(limited, 429, "rate_limited")
            assert int(limited.headers["retry-after"]) >= 1
    finally:
        running.stop()


def test_failed_logins_are_limited_per_client_address(settings: Settings) -> None:
    limited = dataclasses.replace(settings, login_failure_burst=3, login_failure_rate=0.01)
    good = make_token(limited, "desk", Scope.PUBLISH)
    running = ServerThread(limited).start()
    guess = "tk_" + "A" * 43
    try:
        with httpx.Client(base_url=running.url, timeout=10) as http:
            # No token at all is not a guess: it never counts.
            assert [http.post("/api/items", json={}).status_code for _ in range(5)] == [401] * 5
            assert [post(http, guess, {"headline": "x"}).status_code for _ in range(3)] == [401] * 3
            locked = assert_error(post(http, guess, {"headline": "x"}), 429, "rate_limited")
            assert "failed logins" in str(locked["message"])
            # While locked out even the right token learns nothing.
            answer = post(http, good, {"headline": "x"})
            assert_error(answer, 429, "rate_limited")
            assert int(answer.headers["retry-after"]) >= 1
            # The loopback peer is a trusted proxy by default: another forwarded client is not locked out.
            other = {"X-Forwarded-For": "127.0.9.7"}
            assert post(http, good, {"headline": "from elsewhere"}, **other).status_code == 201
    finally:
        running.stop()


def test_tokens_of_the_wrong_shape_are_refused_without_asking_redis(settings: Settings) -> None:
    """With Redis unreachable, a token that could be real gets 503; one that could not gets 401."""
    closed = bound_socket()
    port = closed.getsockname()[1]
    closed.close()
    running = ServerThread(dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{port}/0")).start()
    try:
        with httpx.Client(base_url=running.url, timeout=30) as http:
            for wrong in ("tk_short", "tk_" + "A" * 44, "tk_" + "A" * 42 + "!", "x" * 46, "TK_" + "A" * 43):
                assert_error(post(http, wrong, {"headline": "x"}), 401, "unauthorized")
            assert_error(post(http, "tk_" + "A" * 43, {"headline": "x"}), 503, "unavailable")
    finally:
        running.stop()


def test_health_openapi_and_unknown_routes(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").json() == {"status": "ready"}
    doc = http.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.") and "/api/items/{id}" in doc["paths"]
    assert "ItemCreate" in doc["components"]["schemas"]
    assert_error(http.get("/no/such/page"), 404, "not_found")
    assert_error(http.put("/api/items"), 405, "method_not_allowed")


def test_405_allows_every_method_the_path_takes(http: httpx.Client, server: ServerThread) -> None:
    app = server.server.config.app
    taken: dict[str, set[str]] = {}
    for route in app.routes:
        if isinstance(route, Route) and route.methods:
            taken.setdefault(route.path.replace("{id}", "x1"), set()).update(route.methods)
    assert taken["/api/items"] >= {"GET", "POST"} and taken["/api/items/x1"] >= {"GET", "PATCH", "DELETE"}
    for path, methods in taken.items():
        response = http.request("PUT", path)
        assert_error(response, 405, "method_not_allowed")
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert allowed == methods, path
    assert http.get("/healthz").headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("raw", "status", "field"),
    [
        ('{"headline": "x\\ud800y"}', 422, "headline"),
        ('{"headline": "x", "author": "\\udfff"}', 422, "author"),
        ('{"headline": "nonchar a\\uffffb"}', 422, "headline"),
        ('{"headline": "x\\ufdd0"}', 422, "headline"),
        ('{"headline": "x", "url": "https://example.com/\\ud800"}', 422, "url"),
        ('{"headline": "x", "labels": ["\\ud800"]}', 422, "labels"),
        ('{"headline": "x", "published_at": "0001-01-01T00:00:00+14:00"}', 422, "published_at"),
        ('{"headline": "x", "published_at": "9999-12-31T23:59:59-14:00"}', 422, "published_at"),
        ('{"headline": "x", "published_at": 1700000000}', 422, "published_at"),
        ('{"headline": "x", "pinned": "yes"}', 422, "pinned"),
        ('{"headline": "x", "pinned": 1}', 422, "pinned"),
        ('{"headline": "x", "headline": "y"}', 400, "headline"),
        ('{"headline": "x", "labels": ' + "[" * 30_000 + "]" * 30_000 + "}", 400, None),
    ],
)
def test_hostile_bodies_get_a_clear_error_never_a_500(
    http: httpx.Client, admin_token: str, settings: Settings, raw: str, status: int, field: str | None
) -> None:
    headers = {**auth(admin_token), "Content-Type": "application/json"}
    response = http.post("/api/items", content=raw.encode(), headers=headers)
    error = assert_error(response, status, "invalid" if status == 422 else "bad_request")
    if field:
        assert field in [f["field"] for f in error["fields"]]  # type: ignore[attr-defined]
    assert stream_length(settings) == 0


def test_hostile_edits_and_parameters(http: httpx.Client, admin_token: str) -> None:
    post(http, admin_token, {"id": "q1", "headline": "Quake"})
    headers = {**auth(admin_token), "Content-Type": "application/json"}
    for raw in ('{"headline": "\\ud800"}', '{"kind": "correction", "correction": "\\ud800"}', '{"pinned": "off"}'):
        assert_error(http.patch("/api/items/q1", content=raw, headers=headers), 422, "invalid")
    assert_error(http.get("/api/items", params={"channel": "news\n"}), 400, "bad_request")
    assert_error(http.get("/api/items/q1%0A"), 404, "not_found")
    arabic_one = {**headers, "If-Match": "\u0661".encode()}  # int() would read it as version 1
    assert_error(http.patch("/api/items/q1", json={"headline": "Q"}, headers=arabic_one), 400, "bad_request")  # type: ignore[arg-type]
    assert http.get("/api/items/q1").json()["version"] == 1


def test_rate_limit_is_shared_by_every_process(redis_url: str, prefix: str) -> None:
    settings = Settings(redis_url=redis_url, prefix=prefix, write_rate=0.01, write_burst=2)
    token = make_token(settings, "eager", Scope.PUBLISH)
    servers = [ServerThread(settings).start() for _ in range(2)]
    try:
        answers = []
        for n in range(3):
            with httpx.Client(base_url=servers[n % 2].url) as http:
                answers.append(post(http, token, {"headline": f"h{n}"}))
        assert [a.status_code for a in answers[:2]] == [201, 201]
        assert_error(answers[2], 429, "rate_limited")
    finally:
        for running in servers:
            running.stop()


def test_writes_no_replica_confirms_answer_503_and_readyz_says_so(redis_url: str, prefix: str) -> None:
    settings = Settings(redis_url=redis_url, prefix=prefix, min_replicas=1, replica_wait_ms=20)
    token = make_token(settings, "desk", Scope.PUBLISH)
    running = ServerThread(settings).start()
    try:
        with httpx.Client(base_url=running.url) as http:
            answer = post(http, token, {"id": "d1", "headline": "Durable"})
            assert_error(answer, 503, "unavailable")
            assert int(answer.headers["retry-after"]) >= 1
            ready = http.get("/readyz")
            assert ready.status_code == 503 and "replicas" in ready.text
    finally:
        running.stop()


def test_new_fields_are_validated_by_the_api(http: httpx.Client, admin_token: str) -> None:
    photo = {"url": "https://photos.example/a.jpg", "alt": "A jet"}
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    for body, field in [
        ({"image": {**photo, "url": "http://photos.example/a.jpg"}}, "image.url"),
        ({"image": {"url": photo["url"]}}, "image.alt"),
        ({"urgency": 0}, "urgency"),
        ({"urgency": 10}, "urgency"),
        ({"publish_at": "2020-01-01T00:00:00Z"}, "publish_at"),
        ({"publish_at": (datetime.now(UTC) + timedelta(days=400)).isoformat()}, "publish_at"),
        ({"publish_at": later, "published_at": "2024-01-01T00:00:00Z"}, "publish_at"),
    ]:
        error = assert_error(post(http, admin_token, {"headline": "x", **body}), 422, "invalid")
        assert field in [f["field"] for f in error["fields"]], (body, error)  # type: ignore[union-attr]
    created = post(http, admin_token, {"headline": "Jet", "image": photo, "urgency": 1, "key_event": True})
    assert created.status_code == 201
    item = created.json()["item"]
    assert item["image"]["alt"] == "A jet" and item["urgency"] == 1 and item["key_event"] is True
    edited = http.patch(f"/api/items/{item['id']}", json={"key_event": False}, headers=auth(admin_token))
    assert edited.status_code == 200 and edited.json()["item"]["updated_at"] is None


def test_scheduled_items_stay_out_of_public_views_until_released(
    http: httpx.Client, admin_token: str, settings: Settings
) -> None:
    publisher = make_token(settings, "night-desk", Scope.PUBLISH)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = {"headline": "Embargoed budget", "id": "budget", "publish_at": later}
    created = post(http, publisher, body)
    assert created.status_code == 201 and created.json()["scheduled"] is True
    assert created.headers["location"] == "/api/scheduled/budget"
    assert post(http, publisher, body).status_code == 200  # the same create again
    assert_error(post(http, publisher, {**body, "headline": "Other"}), 409, "conflict")
    before = stream_length(settings)
    assert http.get("/api/items/budget").status_code == 404
    assert http.get("/api/items").json()["items"] == []
    assert "Embargoed" not in http.get("/feed.atom").text and "Embargoed" not in http.get("/items/budget").text
    assert_error(http.get("/api/scheduled"), 401, "unauthorized")
    listed = http.get("/api/scheduled", headers=auth(admin_token)).json()["items"]
    assert [i["id"] for i in listed] == ["budget"]

    moved = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    edited = http.patch(
        "/api/scheduled/budget", json={"headline": "Budget", "publish_at": moved}, headers=auth(admin_token)
    )
    assert edited.status_code == 200 and edited.json()["item"]["headline"] == "Budget"
    bad = http.patch("/api/scheduled/budget", json={"publish_at": "2020-01-01T00:00:00Z"}, headers=auth(admin_token))
    assert_error(bad, 422, "invalid")
    assert_error(http.post("/api/scheduled/budget/publish", headers=auth("tk_nobody")), 401, "unauthorized")
    now_published = http.post("/api/scheduled/budget/publish", headers=auth(publisher))
    assert now_published.status_code == 200 and now_published.json()["item"]["headline"] == "Budget"
    assert stream_length(settings) == before + 1
    assert http.get("/api/items/budget").json()["version"] == 1
    assert_error(http.post("/api/scheduled/budget/publish", headers=auth(publisher)), 404, "not_found")

    post(http, publisher, {"headline": "Never mind", "id": "scrap", "publish_at": later})
    assert http.delete("/api/scheduled/scrap", headers=auth(admin_token)).status_code == 200
    assert http.get("/api/scheduled", headers=auth(admin_token)).json()["items"] == []
    assert stream_length(settings) == before + 1
    assert_error(http.delete("/api/scheduled/scrap", headers=auth(admin_token)), 404, "not_found")


def test_history_search_whoami_and_readers(http: httpx.Client, admin_token: str) -> None:
    post(http, admin_token, {"headline": "Storm closes the coastal road", "id": "storm"})
    post(http, admin_token, {"headline": "Harbour festival opens", "id": "fest", "channel": "culture"})
    for change in [
        {"headline": "Storm closes the coastal road until Monday"},
        {"kind": "correction", "correction": "It is the A1", "headline": "Storm closes the A1"},
        {"kind": "fix", "headline": "Storm closes the A1."},
        {"pinned": True},
        {"key_event": True},
    ]:
        assert http.patch("/api/items/storm", json=change, headers=auth(admin_token)).status_code == 200
    assert http.delete("/api/items/storm", headers=auth(admin_token)).status_code == 200
    assert_error(http.get("/api/items/storm/history"), 401, "unauthorized")
    versions = http.get("/api/items/storm/history", headers=auth(admin_token)).json()["versions"]
    kinds = [v["kind"] for v in versions]
    assert kinds == ["publish", "update", "correction", "fix", "pin", "key_event", "retract"]
    assert {v["actor"] for v in versions} == {"editor"} and versions[2]["item"]["correction"] == "It is the A1"
    assert_error(http.get("/api/items/nothing/history", headers=auth(admin_token)), 404, "not_found")

    found = http.get("/api/items", params={"q": "HARB fest"}).json()
    assert [i["id"] for i in found["items"]] == ["fest"]
    assert http.get("/api/items", params={"q": "harbour", "channel": "news"}).json()["items"] == []
    assert_error(http.get("/api/items", params={"q": "x" * 201}), 400, "bad_request")

    me = http.get("/api/me", headers=auth(admin_token)).json()
    assert me == {"name": "editor", "scopes": ["admin"]}
    assert_error(http.get("/api/me", headers=auth("tk_wrong")), 401, "unauthorized")
    assert http.get("/api/readers", headers=auth(admin_token)).json()["total"] >= 0
