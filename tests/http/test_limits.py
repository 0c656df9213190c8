"""Resource limits: page sizes, request body size, field sizes. Each
limit is tried exactly at the limit (accepted) and one past it (refused, nothing written)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from convstore import Store
from tests.http.helpers import (
    API,
    assert_problem,
    created,
    db_snapshot,
    error_fields,
    problem_operations,
)
from tests.support.api import Account, api_settings, client_for, register, running_app

# ---- page size -----------------------------------------------------------------------------------


async def test_page_size_default_max_and_refusals(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    conv = await created(client, alice, f"{API}/conversations", {"title": "many"})
    for i in range(21):
        await created(client, alice, f"{API}/conversations", {})
        await created(client, alice, f"{API}/tasks", {"title": f"t{i}"})
        await created(client, alice, f"{API}/api-keys", {"name": f"k{i}"})
        await created(
            client,
            alice,
            f"{API}/conversations/{conv}/messages",
            {"role": "user", "content": f"m{i}"},
        )
    lists = [
        op
        for op in problem_operations(app)
        if op.method == "GET" and "limit" in op.query_params and not op.needs_admin
    ]  # the admin list's page sizes: tests/users/test_router.py
    assert {op.path for op in lists} >= {
        f"{API}/conversations",
        f"{API}/tasks",
        f"{API}/api-keys",
        f"{API}/conversations/{{conversation_id}}/messages",
    }
    for op in lists:
        url = op.url({"conversation_id": conv})
        default = await client.get(url, headers=alice.headers)
        assert default.status_code == 200, (op.path, default.text)
        assert len(default.json()["items"]) == 20, op.path
        assert default.json()["has_more"] is True
        most = await client.get(url, params={"limit": 100}, headers=alice.headers)
        assert most.status_code == 200
        assert 21 <= len(most.json()["items"]) <= 100
        one = await client.get(url, params={"limit": 1}, headers=alice.headers)
        assert len(one.json()["items"]) == 1
        for bad in (101, 0, -1, 10**9, "1.5", ""):
            refused = await client.get(url, params={"limit": bad}, headers=alice.headers)
            assert error_fields(refused) == ["limit"], (op.path, bad, refused.text)


# ---- request body size ---------------------------------------------------------------------------

MAX_BODY = 4096


@pytest.fixture
async def small_app(database_url: str) -> AsyncIterator[FastAPI]:
    async with running_app(api_settings(database_url, max_body_bytes=MAX_BODY)) as app:
        yield app


def message_of_size(size: int) -> bytes:
    """A valid user message whose JSON encoding is exactly ``size`` bytes."""
    empty = json.dumps({"role": "user", "content": ""}).encode()
    body = json.dumps({"role": "user", "content": "x" * (size - len(empty))}).encode()
    assert len(body) == size
    return body


async def _chunks(body: bytes, size: int, sent: list[int]) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        sent.append(start)
        yield body[start : start + size]


async def test_body_size_limit(small_app: FastAPI, store: Store) -> None:
    async with client_for(small_app) as c:
        user = await register(c)
        conv = await created(c, user, f"{API}/conversations", {})
        url = f"{API}/conversations/{conv}/messages"
        headers = {**user.headers, "content-type": "application/json"}

        at_limit = await c.post(url, content=message_of_size(MAX_BODY), headers=headers)
        assert at_limit.status_code == 201, at_limit.text
        assert at_limit.request.headers["content-length"] == str(MAX_BODY)

        over = await c.post(url, content=message_of_size(MAX_BODY + 1), headers=headers)
        assert_problem(over, 413, "body_too_large")

        sent: list[int] = []
        chunked_ok = await c.post(
            url, content=_chunks(message_of_size(MAX_BODY), 1000, sent), headers=headers
        )
        assert "content-length" not in chunked_ok.request.headers
        assert chunked_ok.status_code == 201, chunked_ok.text
        before = await db_snapshot(store, user.id)  # two messages: at the limit, both ways

        sent.clear()
        chunked_over = await c.post(
            url, content=_chunks(message_of_size(MAX_BODY + 1), 1000, sent), headers=headers
        )
        assert "content-length" not in chunked_over.request.headers
        assert_problem(chunked_over, 413, "body_too_large")

        sent.clear()
        huge = message_of_size(10 * 1024 * 1024)
        chunked_huge = await c.post(url, content=_chunks(huge, 65536, sent), headers=headers)
        assert_problem(chunked_huge, 413, "body_too_large")
        assert len(sent) < len(huge) // 65536  # refused before the whole body was read

        declared_huge = await c.post(url, content=huge, headers=headers)
        assert_problem(declared_huge, 413, "body_too_large")

        assert await db_snapshot(store, user.id) == before
        page = await c.get(url, headers=user.headers)
        assert len(page.json()["items"]) == 2


# ---- field sizes ---------------------------------------------------------------------------------


def _nested(depth: int) -> Any:
    value: Any = "v"
    for _ in range(depth):
        value = [value]
    return value


FIELD_LIMITS: list[tuple[str, str, str, Any, Any, str]] = [
    # (case, method, path, body at the limit, body one past it, field named by the 422)
    (
        "conversation title",
        "POST",
        "/conversations",
        {"title": "t" * 255},
        {"title": "t" * 256},
        "title",
    ),
    (
        "conversation title",
        "PATCH",
        "/conversations/{conv}",
        {"title": "t" * 255},
        {"title": "t" * 256},
        "title",
    ),
    ("task title", "POST", "/tasks", {"title": "t" * 200}, {"title": "t" * 201}, "title"),
    ("task title", "PATCH", "/tasks/{task}", {"title": "t" * 200}, {"title": "t" * 201}, "title"),
    (
        "task description",
        "POST",
        "/tasks",
        {"title": "t", "description": "d" * 1000},
        {"title": "t", "description": "d" * 1001},
        "description",
    ),
    (
        "task description",
        "PATCH",
        "/tasks/{task}",
        {"description": "d" * 1000},
        {"description": "d" * 1001},
        "description",
    ),
    (
        "user message",
        "POST",
        "/conversations/{conv}/messages",
        {"role": "user", "content": "c" * 10_000},
        {"role": "user", "content": "c" * 10_001},
        "content",
    ),
    (
        "user message",
        "PATCH",
        "/conversations/{conv}/messages/{message}",
        {"content": "c" * 10_000},
        {"content": "c" * 10_001},
        "content",
    ),
    (
        "metadata keys",
        "POST",
        "/conversations",
        {"metadata": {f"k{i}": "v" for i in range(16)}},
        {"metadata": {f"k{i}": "v" for i in range(17)}},
        "metadata",
    ),
    (
        "metadata keys",
        "PATCH",
        "/conversations/{conv}",
        {"metadata": {f"k{i}": "v" for i in range(16)}},
        {"metadata": {f"k{i}": "v" for i in range(17)}},
        "metadata",
    ),
    (
        "metadata keys",
        "POST",
        "/conversations/{conv}/messages",
        {"role": "user", "content": "x", "metadata": {f"k{i}": "v" for i in range(16)}},
        {"role": "user", "content": "x", "metadata": {f"k{i}": "v" for i in range(17)}},
        "metadata",
    ),
    (
        "metadata key",
        "POST",
        "/conversations",
        {"metadata": {"k" * 64: "v"}},
        {"metadata": {"k" * 65: "v"}},
        "metadata",
    ),
    (
        "metadata key",
        "POST",
        "/conversations/{conv}/messages",
        {"role": "user", "content": "x", "metadata": {"k" * 64: "v"}},
        {"role": "user", "content": "x", "metadata": {"k" * 65: "v"}},
        "metadata",
    ),
    (
        "metadata value",
        "POST",
        "/conversations",
        {"metadata": {"k": "v" * 512}},
        {"metadata": {"k": "v" * 513}},
        "metadata.k",
    ),
    (
        "metadata value",
        "PATCH",
        "/conversations/{conv}",
        {"metadata": {"k": "v" * 512}},
        {"metadata": {"k": "v" * 513}},
        "metadata.k",
    ),
    (
        "metadata value",
        "POST",
        "/conversations/{conv}/messages",
        {"role": "user", "content": "x", "metadata": {"k": "v" * 512}},
        {"role": "user", "content": "x", "metadata": {"k": "v" * 513}},
        "metadata.k",
    ),
    (
        # the body, the metadata object and 62 arrays: 64 levels; one more is refused
        "JSON nesting",
        "POST",
        "/conversations",
        {"metadata": {"k": _nested(62)}},
        {"metadata": {"k": _nested(63)}},
        "body",
    ),
    (
        "JSON nesting",
        "PATCH",
        "/conversations/{conv}/messages/{message}",
        {"metadata": {"k": _nested(62)}},
        {"metadata": {"k": _nested(63)}},
        "body",
    ),
]


@pytest.mark.parametrize(
    ("case", "method", "path", "at_limit", "past_limit", "field"),
    FIELD_LIMITS,
    ids=[f"{c[0]}-{c[1]}" for c in FIELD_LIMITS],
)
async def test_field_limits(
    client: httpx.AsyncClient,
    store: Store,
    alice: Account,
    case: str,
    method: str,
    path: str,
    at_limit: Any,
    past_limit: Any,
    field: str,
) -> None:
    conv = await created(client, alice, f"{API}/conversations", {"title": "c"})
    task = await created(client, alice, f"{API}/tasks", {"title": "t"})
    message = await created(
        client, alice, f"{API}/conversations/{conv}/messages", {"role": "user", "content": "m"}
    )
    url = API + path.format(conv=conv, task=task, message=message)

    before = await db_snapshot(store, alice.id)
    refused = await client.request(method, url, json=past_limit, headers=alice.headers)
    assert field in error_fields(refused), refused.text
    assert await db_snapshot(store, alice.id) == before, "a refused write changed something"

    accepted = await client.request(method, url, json=at_limit, headers=alice.headers)
    assert accepted.status_code in (200, 201), accepted.text
    stored = accepted.json()
    for key, value in at_limit.items():
        if key != "role":
            assert stored[key] == value, key
