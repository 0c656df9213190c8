"""``Idempotency-Key`` on creates: replay, mismatch, concurrent
duplicates, per-user keys, and invalid keys."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from convstore import Store
from tests.http.helpers import (
    API,
    count_rows,
    created,
    error_fields,
    problem_operations,
)
from tests.support.api import Account

KINDS: dict[str, tuple[str, str, dict[str, Any], dict[str, Any]]] = {
    # kind: (path, table, body, another body)
    "conversation": (
        f"{API}/conversations",
        "conversations",
        {"title": "idem", "metadata": {"a": "1"}},
        {"title": "idem", "metadata": {"a": "2"}},
    ),
    "message": (
        f"{API}/conversations/{{conversation_id}}/messages",
        "messages",
        {"role": "user", "content": "once"},
        {"role": "user", "content": "twice"},
    ),
    "task": (
        f"{API}/tasks",
        "tasks",
        {"title": "idem", "tags": ["a"]},
        {"title": "idem", "tags": ["b"]},
    ),
    "items": (
        f"{API}/conversations/{{conversation_id}}/items",
        "messages",
        {"items": [{"type": "message", "role": "user", "content": "once"}]},
        {"items": [{"type": "message", "role": "user", "content": "twice"}]},
    ),
    "api key": (
        f"{API}/api-keys",
        "api_keys",
        {"name": "idem"},
        {"name": "idem", "expires_at": "2999-01-01T00:00:00Z"},
    ),
}


CHAT_TURNS = {
    f"{API}/chat/messages",
    f"{API}/chat/conversations/{{conversation_id}}/messages",
    f"{API}/chat/conversations/{{conversation_id}}/retry",
}
"""Chat turns take a key too; one turn writes two rows and may stream, so they have tests of
their own (tests/chat/test_resume.py, test_an_idempotency_key_never_runs_a_second_turn)."""


def test_every_idempotent_route_is_tested(app: FastAPI) -> None:
    idempotent = {
        op.path for op in problem_operations(app) if "idempotency-key" in op.header_params
    }
    assert idempotent == {path for path, *_ in KINDS.values()} | CHAT_TURNS


async def _target(client: httpx.AsyncClient, account: Account, kind: str) -> tuple[str, str]:
    path, table, *_ = KINDS[kind]
    if "{conversation_id}" in path:
        conv = await created(client, account, f"{API}/conversations", {})
        path = path.format(conversation_id=conv)
    return path, table


def _id(response: httpx.Response) -> str:
    """The created object's id (a batch of items: its first item's)."""
    body = response.json()
    return str(body["items"][0]["id"] if "items" in body else body["id"])


def _key() -> str:
    return f"key-{uuid.uuid4()}"


@pytest.fixture(params=list(KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_same_key_same_body_replays(
    client: httpx.AsyncClient, store: Store, alice: Account, kind: str
) -> None:
    url, table = await _target(client, alice, kind)
    body = KINDS[kind][2]
    before = await count_rows(store, table, alice.id)
    headers = {**alice.headers, "Idempotency-Key": _key()}
    first = await client.post(url, json=body, headers=headers)
    second = await client.post(url, json=body, headers=headers)
    assert first.status_code == second.status_code == 201, second.text
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["content-type"] == first.headers["content-type"]
    assert await count_rows(store, table, alice.id) == before + 1
    fresh = await client.post(url, json=body, headers={**alice.headers, "Idempotency-Key": _key()})
    assert fresh.status_code == 201
    assert _id(fresh) != _id(first)
    assert await count_rows(store, table, alice.id) == before + 2


async def test_same_key_other_body_is_422(
    client: httpx.AsyncClient, store: Store, alice: Account, kind: str
) -> None:
    url, table = await _target(client, alice, kind)
    _, _, body, other = KINDS[kind]
    headers = {**alice.headers, "Idempotency-Key": _key()}
    assert (await client.post(url, json=body, headers=headers)).status_code == 201
    before = await count_rows(store, table, alice.id)
    mismatch = await client.post(url, json=other, headers=headers)
    assert [f.lower() for f in error_fields(mismatch)] == ["idempotency-key"]
    assert await count_rows(store, table, alice.id) == before


async def test_concurrent_duplicates_make_one_row(
    client: httpx.AsyncClient, store: Store, alice: Account, kind: str
) -> None:
    url, table = await _target(client, alice, kind)
    body = KINDS[kind][2]
    before = await count_rows(store, table, alice.id)
    headers = {**alice.headers, "Idempotency-Key": _key()}
    responses = await asyncio.gather(
        *(client.post(url, json=body, headers=headers) for _ in range(20))
    )
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, [(r.status_code, r.text) for r in responses]
    assert 201 in statuses
    bodies = {r.text for r in responses if r.status_code == 201}
    ids = {_id(r) for r in responses if r.status_code == 201}
    assert len(ids) == 1, bodies
    assert sum("idempotent-replayed" not in r.headers for r in responses) == 1
    for r in responses:
        if r.status_code == 409:
            assert r.headers["content-type"].startswith("application/problem+json")
    assert await count_rows(store, table, alice.id) == before + 1
    if kind == "message":
        conv = await client.get(url.removesuffix("/messages"), headers=alice.headers)
        assert conv.json()["messages_count"] == 1


async def test_keys_are_per_user(
    client: httpx.AsyncClient, store: Store, alice: Account, bob: Account, kind: str
) -> None:
    a_url, table = await _target(client, alice, kind)
    b_url, _ = await _target(client, bob, kind)
    _, _, body, other = KINDS[kind]
    key = _key()
    a_headers = {**alice.headers, "Idempotency-Key": key}
    b_headers = {**bob.headers, "Idempotency-Key": key}
    theirs = await client.post(a_url, json=body, headers=a_headers)
    assert theirs.status_code == 201
    a_rows = await count_rows(store, table, alice.id)
    b_rows = await count_rows(store, table, bob.id)

    same = await client.post(b_url, json=body, headers=b_headers)  # A's key, A's body
    assert same.status_code == 201, same.text
    assert "idempotent-replayed" not in same.headers
    assert _id(same) != _id(theirs)
    assert (await client.get(same.headers["location"], headers=bob.headers)).status_code == 200
    assert (await client.get(theirs.headers["location"], headers=bob.headers)).status_code == 404

    again = await client.post(b_url, json=body, headers=b_headers)  # now B's own key
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == same.json()
    differs = await client.post(b_url, json=other, headers=b_headers)
    assert [f.lower() for f in error_fields(differs)] == ["idempotency-key"]

    mine = await client.post(a_url, json=body, headers=a_headers)  # A still gets A's answer
    assert mine.headers["idempotent-replayed"] == "true"
    assert mine.json() == theirs.json()
    assert await count_rows(store, table, alice.id) == a_rows
    assert await count_rows(store, table, bob.id) == b_rows + 1


@pytest.mark.parametrize(
    "key",
    [b"", b"x" * 256, b"x" * 300, "clé".encode(), b"two words", b"tab\there"],
    ids=["empty", "256", "300", "non-ascii", "space", "tab"],
)
async def test_invalid_keys_are_422(
    client: httpx.AsyncClient, store: Store, alice: Account, key: bytes
) -> None:
    before = await count_rows(store, "conversations", alice.id)
    response = await client.post(
        f"{API}/conversations", json={}, headers={**alice.headers, "Idempotency-Key": key}
    )
    assert [f.lower() for f in error_fields(response)] == ["idempotency-key"]
    assert await count_rows(store, "conversations", alice.id) == before


async def test_longest_key_is_accepted(client: httpx.AsyncClient, alice: Account) -> None:
    headers = {**alice.headers, "Idempotency-Key": "~" * 255}
    first = await client.post(f"{API}/conversations", json={}, headers=headers)
    second = await client.post(f"{API}/conversations", json={}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"


async def test_a_key_does_not_replay_on_another_route(
    client: httpx.AsyncClient, store: Store, alice: Account
) -> None:
    headers = {**alice.headers, "Idempotency-Key": _key()}
    conv = await client.post(f"{API}/conversations", json={"title": "x"}, headers=headers)
    assert conv.status_code == 201
    tasks = await count_rows(store, "tasks", alice.id)
    task = await client.post(f"{API}/tasks", json={"title": "x"}, headers=headers)
    assert [f.lower() for f in error_fields(task)] == ["idempotency-key"]
    assert await count_rows(store, "tasks", alice.id) == tasks


async def test_a_failed_create_does_not_burn_the_key(
    client: httpx.AsyncClient, store: Store, alice: Account
) -> None:
    headers = {**alice.headers, "Idempotency-Key": _key()}
    missing = f"{API}/conversations/{uuid.uuid4()}/messages"
    body = {"role": "user", "content": "x"}
    assert (await client.post(missing, json=body, headers=headers)).status_code == 404
    conv = await created(client, alice, f"{API}/conversations", {})
    retry = await client.post(f"{API}/conversations/{conv}/messages", json=body, headers=headers)
    assert retry.status_code == 201, retry.text
    assert "idempotent-replayed" not in retry.headers
