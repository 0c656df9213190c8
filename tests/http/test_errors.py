"""Errors are RFC 9457 problems that name the offending field and never show internals."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Table, func, select

from convstore import Store
from convstore.app import create_app
from convstore.users.models import User
from tests.http.helpers import (
    API,
    SAMPLE_BODIES,
    Seeded,
    api_snapshot,
    assert_no_internals,
    assert_problem,
    created,
    db_snapshot,
    error_fields,
    problem_operations,
    sample_body,
    seed,
)
from tests.support.api import Account, api_settings

SERVER_OWNED = {
    "id": str(uuid.uuid4()),
    "user_id": str(uuid.uuid4()),
    "owner_id": str(uuid.uuid4()),
    "conversation_id": str(uuid.uuid4()),
    "seq": 7,
    "messages_count": 99,
    "created_at": "2000-01-01T00:00:00Z",
    "updated_at": "2000-01-01T00:00:00Z",
    "deleted_at": "2000-01-01T00:00:00Z",
    "is_admin": True,
    "role": "admin",
    "hashed_password": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
    "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
    "key": "csk_" + "k" * 43,
    "key_hash": "0" * 64,
    "prefix": "csk_kkkkkkkk",
    "last_used_at": "2000-01-01T00:00:00Z",
}
"""Fields a client must never be able to set (B1), with plausible values."""


def _accepted_names(model: Any) -> set[str]:
    names = set()
    for name, info in model.model_fields.items():
        names.add(name)
        alias = info.validation_alias
        names.update(getattr(alias, "choices", []) if alias is not None else [])
    return {n for n in names if isinstance(n, str)}


async def test_problem_documents(client: httpx.AsyncClient, alice: Account) -> None:
    h = alice.headers
    assert_problem(await client.get(f"{API}/conversations"), 401, "invalid_credentials")
    missing = assert_problem(
        await client.get(f"{API}/conversations/{uuid.uuid4()}", headers=h), 404, "not_found"
    )
    assert missing["type"].startswith("urn:convstore:problem:")
    assert_problem(await client.get("/no/such/route"), 404, "not_found")
    not_allowed = await client.put(f"{API}/conversations", headers=h)
    assert_problem(not_allowed, 405, "method_not_allowed")
    assert set(not_allowed.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    invalid = assert_problem(
        await client.get(f"{API}/tasks", params={"limit": 0}, headers=h), 422, "invalid_input"
    )
    assert invalid["errors"][0] == {
        "field": "limit",
        "message": invalid["errors"][0]["message"],
        "type": invalid["errors"][0]["type"],
    }
    assert "limit" in invalid["detail"]
    conv = await created(client, alice, f"{API}/conversations", {})
    call = {
        "role": "assistant",
        "tool_calls": [{"id": "c1", "name": "f", "arguments": {}}],
    }
    await created(client, alice, f"{API}/conversations/{conv}/messages", call)
    answer = {"role": "tool", "tool_call_id": "c1", "content": "ok"}
    await created(client, alice, f"{API}/conversations/{conv}/messages", answer)
    again = await client.post(f"{API}/conversations/{conv}/messages", json=answer, headers=h)
    assert_problem(again, 409, "conflict")
    assert_no_internals(again)


FIELD_CASES: list[tuple[str, str, dict[str, Any], str]] = [
    # (method, path with {conv}, request kwargs, field expected in errors[].field)
    ("POST", "/conversations", {"json": {"title": "x" * 256}}, "title"),
    ("POST", "/conversations", {"json": {"title": 5}}, "title"),
    ("POST", "/conversations", {"json": {"metadata": []}}, "metadata"),
    (
        "POST",
        "/conversations",
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
        "body",
    ),
    ("POST", "/conversations", {"json": []}, "body"),
    ("POST", "/tasks", {"json": {}}, "title"),
    ("POST", "/tasks", {"json": {"title": "x", "priority": "urgent"}}, "priority"),
    ("POST", "/tasks", {"json": {"title": "x", "tags": ["two words"]}}, "tags.0"),
    ("POST", "/tasks", {"json": {"title": "x", "due_at": "2030-01-01T00:00:00"}}, "due_at"),
    ("PATCH", "/tasks/{task}", {"json": {"priority": "urgent"}}, "priority"),
    ("POST", "/conversations/{conv}/messages", {"json": {"role": "robot", "content": "x"}}, "role"),
    (
        "POST",
        "/conversations/{conv}/messages",
        {"json": {"role": "user", "content": "  "}},
        "content",
    ),
    (
        "POST",
        "/conversations/{conv}/messages",
        {
            "json": {
                "role": "user",
                "content": "x",
                "tool_calls": [{"id": "a", "name": "f", "arguments": {}}],
            }
        },
        "tool_calls",
    ),
    (
        "POST",
        "/conversations/{conv}/messages",
        {
            "json": {
                "role": "assistant",
                "tool_calls": [{"id": "a", "name": "no spaces", "arguments": {}}],
            }
        },
        "tool_calls.0.name",
    ),
    (
        "POST",
        "/conversations/{conv}/messages",
        {"json": {"role": "user", "content": "x", "parent_id": str(uuid.uuid4())}},
        "parent_id",
    ),
    ("PATCH", "/conversations/{conv}", {"json": {"metadata": {"": "empty key"}}}, "metadata"),
    *[
        (
            "POST",
            "/conversations/{conv}/messages",
            {
                "json": {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "a",
                            "type": "function",
                            "function": {
                                "name": "f",
                                "arguments": '{"a": ' + "[" * depth + "]" * depth + "}",
                            },
                        }
                    ],
                }
            },
            "tool_calls.0.arguments",
        )
        for depth in (64, 3_000)  # with the object: 65 levels, and far more
    ],
    ("GET", "/conversations", {"params": {"limit": 0}}, "limit"),
    ("GET", "/conversations", {"params": {"limit": "ten"}}, "limit"),
    ("GET", "/conversations", {"params": {"cursor": "!!!"}}, "cursor"),
    ("GET", "/conversations", {"params": {"include_deleted": "perhaps"}}, "include_deleted"),
    ("GET", "/conversations/not-a-uuid", {}, "conversation_id"),
    ("GET", "/conversations/{conv}/messages/42", {}, "message_id"),
    ("GET", "/conversations/{conv}/messages", {"params": {"after": -1}}, "after"),
    ("GET", "/conversations/{conv}/messages", {"params": {"before": 2**40}}, "before"),
    ("GET", "/tasks/123", {}, "task_id"),
    ("GET", "/tasks", {"params": {"due_before": "yesterday"}}, "due_before"),
    ("GET", "/tasks", {"params": {"priority": "urgent"}}, "priority"),
    ("GET", "/tasks", {"params": {"completed": "maybe"}}, "completed"),
    ("GET", "/tasks", {"params": {"tag": "x" * 33}}, "tag"),
    ("POST", "/tasks", {"json": {"title": "x", "tags": ["ok", "a\u0000b"]}}, "tags.1"),
    ("POST", "/tasks", {"json": {"title": "x", "tags": ["a\u007fb"]}}, "tags.0"),
    ("PATCH", "/tasks/{task}", {"json": {"tags": ["a\u0000b"]}}, "tags.0"),
    ("PATCH", "/tasks/{task}", {"json": {"tags": ["a\u001bb"]}}, "tags.0"),
    ("GET", "/tasks", {"params": {"tag": "a\u0000b"}}, "tag"),
    ("GET", "/tasks", {"params": {"tag": "\u001b[31m"}}, "tag"),
]


async def test_422_names_the_field(client: httpx.AsyncClient, store: Store, alice: Account) -> None:
    """Each bad input is a 422 naming its field, and none of them writes anything."""
    conv = await created(client, alice, f"{API}/conversations", {})
    task = await created(client, alice, f"{API}/tasks", {"title": "t"})
    before = await db_snapshot(store, alice.id)
    failures = []
    for method, path, kwargs, field in FIELD_CASES:
        kwargs = {**kwargs, "headers": {**alice.headers, **kwargs.get("headers", {})}}
        url = API + path.format(conv=conv, task=task)
        response = await client.request(method, url, **kwargs)
        try:
            fields = error_fields(response)
            assert field in fields, fields
            assert_no_internals(response)
        except AssertionError as exc:
            failures.append(f"{method} {path} {kwargs.get('json', kwargs.get('params'))}: {exc}")
    assert not failures, "\n".join(failures)
    assert await db_snapshot(store, alice.id) == before


UNDECODABLE_BODIES: dict[str, tuple[bytes, str]] = {
    # name: (body, what the problem's message says)
    "unclosed-10000": (b'{"email": ' + b"[" * 10_000, "nested deeper than 64 levels"),
    "closed-3000": (b'{"x": ' + b"[" * 3_000 + b"]" * 3_000 + b"}", "nested deeper than 64 levels"),
    "valid-65-levels": (b'{"x": ' + b"[" * 64 + b"]" * 64 + b"}", "nested deeper than 64 levels"),
    "not-utf8": (b'{"title": "caf\xe9"}', "not valid UTF-8"),
    "utf16": ('{"title": "x"}'.encode("utf-16"), "not valid UTF-8"),
    "integer-of-5000-digits": (b'{"x": ' + b"7" * 5_000 + b"}", "4300 digits"),
}
"""JSON bodies the decoder refuses before any validation: too deep, or not UTF-8."""


async def test_undecodable_bodies_are_422_naming_body_on_every_route(
    app: FastAPI, client: httpx.AsyncClient, store: Store, alice: Account
) -> None:
    """Every route that reads a JSON body (login included, which reads its own) answers a body
    nested too deep or not in UTF-8 with a 422 naming ``body``: never a 500, never a bare 400,
    and nothing is written."""
    mine = await seed(client, alice)
    values = {
        "conversation_id": mine.conversation,
        "message_id": mine.message,
        "task_id": mine.task,
    }
    targets = [
        (op.method, op.url(values)) for op in problem_operations(app) if op.body_model is not None
    ]
    targets.append(("POST", f"{API}/auth/login"))
    assert len(targets) >= 12
    before = await db_snapshot(store, alice.id)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    headers = {**alice.headers, "content-type": "application/json"}
    failures = []
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        for method, url in targets:
            for name, (body, message) in UNDECODABLE_BODIES.items():
                response = await c.request(method, url, content=body, headers=headers)
                try:
                    assert error_fields(response) == ["body"]
                    assert message in response.json()["errors"][0]["message"], response.text
                    assert_no_internals(response)
                except AssertionError as exc:
                    failures.append(f"{method} {url} {name}: {response.status_code} {exc}")
    assert not failures, "\n".join(failures)
    assert await db_snapshot(store, alice.id) == before


async def test_server_owned_fields_are_refused(
    app: FastAPI, client: httpx.AsyncClient, store: Store, alice: Account, bob: Account
) -> None:
    """B1: every body-taking operation refuses server-owned fields, and nothing is written."""
    mine = await seed(client, alice)
    theirs = await seed(client, bob)
    server_owned = {**SERVER_OWNED, "conversation_id": theirs.conversation}  # a foreign id
    values = {
        "conversation_id": mine.conversation,
        "message_id": mine.message,
        "task_id": mine.task,
    }
    before_api = await api_snapshot(client, alice)
    before_db = await db_snapshot(store, alice.id)
    body_ops = [op for op in problem_operations(app) if op.body_model is not None]
    assert len(body_ops) >= 10
    failures = []
    tried = 0
    for op in body_ops:
        base = sample_body(op.body_model)
        assert base is not None
        allowed = _accepted_names(op.body_model)
        for name, value in server_owned.items():
            if name in allowed:
                continue
            tried += 1
            response = await client.request(
                op.method, op.url(values), json={**base, name: value}, headers=alice.headers
            )
            try:
                assert name in error_fields(response)
            except AssertionError as exc:
                failures.append(f"{op} +{name}: {exc}")
    assert not failures, "\n".join(failures)
    assert tried >= 100
    assert await api_snapshot(client, alice) == before_api
    assert await db_snapshot(store, alice.id) == before_db
    users: Table = User.__table__  # type: ignore[assignment]
    registered = SAMPLE_BODIES["RegisterRequest"]
    async with store.db.engine.connect() as conn:
        count = await conn.scalar(select(func.count()).where(users.c.email == registered["email"]))
    assert count == 0


async def test_no_internals_in_error_bodies(client: httpx.AsyncClient, alice: Account) -> None:
    mine: Seeded = await seed(client, alice)
    h = alice.headers
    json_headers = {**h, "content-type": "application/json"}
    conv = f"{API}/conversations/{mine.conversation}"
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", f"{API}/conversations", {"content": b'{"title": "x"', "headers": json_headers}),
        ("POST", f"{API}/conversations", {"content": b"\xff\xfe", "headers": json_headers}),
        (
            "POST",
            f"{API}/conversations",
            {
                "content": b"title=x",
                "headers": {**h, "content-type": "application/x-www-form-urlencoded"},
            },
        ),
        (
            "GET",
            f"{API}/conversations",
            {"params": {"cursor": "eyJzIjoieCIsImsiOlsxXX0"}, "headers": h},
        ),
        (
            "GET",
            f"{API}/tasks",
            {"params": {"cursor": "eyJzIjoidGFza3MiLCJrIjpbIngiLCJ5Il19"}, "headers": h},
        ),
        ("GET", f"{API}/conversations/{uuid.uuid4()}", {"headers": h}),
        ("GET", f"{API}/conversations/{mine.deleted_conversation}/messages", {"headers": h}),
        (
            "POST",
            f"{API}/conversations/{mine.deleted_conversation}/messages",
            {"json": {"role": "user", "content": "x"}, "headers": h},
        ),
        (
            "POST",
            f"{conv}/messages",
            {"json": {"role": "tool", "tool_call_id": "call_1", "content": "dup"}, "headers": h},
        ),
        (
            "PATCH",
            f"{conv}/messages/{mine.message}",
            {"json": {"content": None, "status": None}, "headers": h},
        ),
        (
            "POST",
            f"{conv}/messages",
            {"json": {"role": "user", "content": "a\u0000b"}, "headers": h},
        ),
        (
            "POST",
            f"{conv}/messages",
            {"content": b'{"role": "user", "content": "\\ud800"}', "headers": json_headers},
        ),
        ("POST", f"{API}/conversations", {"json": {"metadata": {"k\u0000": 1}}, "headers": h}),
        ("POST", f"{API}/tasks", {"json": {"title": "x", "tags": ["a"] * 17}, "headers": h}),
        ("PATCH", f"{API}/tasks/{mine.deleted_task}", {"json": {"title": "x"}, "headers": h}),
        ("GET", f"{API}/conversations", {"headers": {"Authorization": "Bearer a.b.c"}}),
        ("POST", f"{API}/auth/login", {"json": {"email": alice.email, "password": "wrong!"}}),
        ("POST", f"{API}/auth/refresh", {"json": {"refresh_token": "y" * 43}}),
        ("DELETE", f"{API}/conversations", {"headers": h}),
    ]
    statuses = []
    for method, url, kwargs in requests:
        response = await client.request(method, url, **kwargs)
        statuses.append(response.status_code)
        assert 400 <= response.status_code < 500, (method, url, response.text)
        assert_problem(response, response.status_code)
        assert_no_internals(response)
    assert {401, 404, 405, 409, 422} <= set(statuses)


async def test_an_unexpected_exception_is_a_bare_500(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(api_settings(f"sqlite:///{tmp_path / 'unused.db'}"))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="convstore.http"):
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            response = await c.get("/boom")
    body = assert_problem(response, 500, "internal_error")
    assert "secret detail" not in response.text
    assert "RuntimeError" not in response.text
    assert set(body) == {"type", "title", "status", "detail", "code"}
    assert_no_internals(response)
    logged = [r for r in caplog.records if r.exc_info and "secret detail" in str(r.exc_info[1])]
    assert logged, "the error is logged server side"


# ---- values the database cannot hold ----------------------------------------------------------


@pytest.mark.parametrize("number", [b"1e999", b"-1e999", b"NaN", b"Infinity"])
async def test_non_finite_numbers_in_json_are_refused(
    client: httpx.AsyncClient, store: Store, alice: Account, number: bytes
) -> None:
    before = await db_snapshot(store, alice.id)
    response = await client.post(
        f"{API}/conversations",
        content=b'{"metadata": {"n": ' + number + b"}}",
        headers={**alice.headers, "content-type": "application/json"},
    )
    assert_no_internals(response)
    assert response.status_code == 422, response.text
    assert await db_snapshot(store, alice.id) == before


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/tasks", {"json": {"title": "x", "due_at": "0001-01-01T00:00:00+01:00"}}),
        ("POST", "/tasks", {"json": {"title": "x", "due_at": "9999-12-31T23:59:59-01:00"}}),
        ("GET", "/tasks", {"params": {"due_before": "0001-01-01T00:00:00+01:00"}}),
    ],
)
async def test_out_of_range_datetimes_are_422(
    app: FastAPI, alice: Account, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        response = await c.request(method, API + path, headers=alice.headers, **kwargs)
    assert_no_internals(response)  # even the 500 is bare
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/conversations", ["0001-01-01T00:00:00+01:00", str(uuid.UUID(int=1))]),
        ("/conversations", ["9999-12-31T23:59:59-01:00", str(uuid.UUID(int=1))]),
        ("/tasks", ["0001-01-01T00:00:00+01:00", str(uuid.UUID(int=1))]),
        ("/tasks", ["9999-12-31T23:59:59-01:00", str(uuid.UUID(int=1))]),
        ("/conversations/{conv}/messages", ["after", 2**31]),
        ("/conversations/{conv}/messages", ["before", 2**63]),
        ("/conversations/{conv}/messages", ["after", -1]),
    ],
)
async def test_forged_cursors_out_of_range_are_422(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, path: str, key: list[Any]
) -> None:
    """A real cursor whose position is replaced by one no row can have (a seq past the
    ``integer`` column, a time off the calendar in UTC) is a forgery like any other: a 422
    naming it."""
    conv = await created(client, alice, f"{API}/conversations", {})
    for _ in range(2):
        await created(client, alice, f"{API}/conversations", {})
        await created(client, alice, f"{API}/tasks", {"title": "t"})
        await created(
            client, alice, f"{API}/conversations/{conv}/messages", {"role": "user", "content": "m"}
        )
    url = API + path.format(conv=conv)
    first = await client.get(url, params={"limit": 1}, headers=alice.headers)
    cursor = first.json()["next_cursor"]
    data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**data, "k": key}).encode()).decode()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        response = await c.get(url, params={"cursor": forged.rstrip("=")}, headers=alice.headers)
    assert_no_internals(response)
    assert error_fields(response) == ["cursor"]


async def test_405_lists_every_method_of_the_path(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    by_path: dict[str, set[str]] = {}
    for op in problem_operations(app):
        by_path.setdefault(op.path, set()).add(op.method)
    for path, methods in by_path.items():
        unsupported = next(m for m in ("PUT", "PATCH", "DELETE", "POST") if m not in methods)
        op = next(op for op in problem_operations(app) if op.path == path)
        response = await client.request(unsupported, op.random_url(), headers=alice.headers)
        assert_problem(response, 405, "method_not_allowed")
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert allowed == methods, (path, allowed)


@pytest.mark.parametrize("key", ["nul\x00here", "bell\x07", "line\nbreak"])
async def test_a_key_no_conversation_can_have_is_a_422_naming_it(
    client: httpx.AsyncClient, alice: Account, key: str
) -> None:
    """``GET /api/v1/conversations?key=`` with a key convstore refuses to store is refused
    like the body's key (found by the long fuzz profile: PostgreSQL refused the NUL, a 500)."""
    headers = alice.headers
    made = await client.post("/api/v1/conversations", json={"key": "real-key"}, headers=headers)
    assert made.status_code == 201, made.text
    found = await client.get("/api/v1/conversations", params={"key": "real-key"}, headers=headers)
    assert [c["id"] for c in found.json()["items"]] == [made.json()["id"]]
    refused = await client.get("/api/v1/conversations", params={"key": key}, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert "key" in refused.text
