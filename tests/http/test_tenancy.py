"""Tenant isolation: the cross-tenant matrix is built from ``app.routes``.

Every authenticated operation whose path names an object (conversation, message, task, API key) is
called by user B with user A's ids (live, soft-deleted, and mixed with B's own ids). Each answer
must be a 404 identical to the one for a random missing id, and A's data must not change.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Table, select
from starlette.websockets import WebSocketDisconnect

from convstore import Store
from convstore.app import create_app
from convstore.conversations.models import Conversation
from convstore.conversations.schemas import ConversationRead
from convstore.conversations.service import conversation as conversation_service
from convstore.errors import NotFound
from convstore.http.deps import CurrentUser, ReadConn
from tests.http.helpers import (
    API,
    DOC_PATHS,
    ID_PARAMS,
    PUBLIC_OPERATIONS,
    Operation,
    Seeded,
    api_snapshot,
    classify,
    db_snapshot,
    operations,
    other_routes,
    sample_body,
    seed,
)
from tests.support.api import Account, api_settings, client_for, register

PROBE_PATH = f"{API}/conversations/{{conversation_id}}/probe"


@dataclass
class Finding:
    op: Operation
    variant: str
    detail: str

    def __str__(self) -> str:
        return f"{self.op} [{self.variant}]: {self.detail}"


def variants(op: Operation, owner: Seeded, intruder: Seeded) -> dict[str, dict[str, str]]:
    """The id assignments to try on ``op``: each names at least one of the owner's objects."""
    params = set(op.id_params)
    unknown = set(op.path_params) - ID_PARAMS
    assert not unknown, f"{op}: teach the matrix about {unknown}"
    candidates = {
        "live": {
            "conversation_id": owner.conversation,
            "message_id": owner.message,
            "task_id": owner.task,
            "key_id": owner.api_key,
            "item_id": owner.item,
        },
        "soft-deleted": {
            "conversation_id": owner.deleted_conversation,
            "message_id": owner.deleted_message,
            "task_id": owner.deleted_task,
        },
        "owner's message in intruder's conversation": {
            "conversation_id": intruder.conversation,
            "message_id": owner.message,
        },
        "intruder's message in owner's conversation": {
            "conversation_id": owner.conversation,
            "message_id": intruder.message,
        },
        "owner's item in intruder's conversation": {
            "conversation_id": intruder.conversation,
            "item_id": owner.item,
        },
        "intruder's item in owner's conversation": {
            "conversation_id": owner.conversation,
            "item_id": intruder.item,
        },
    }
    owned = owner.ids()
    chosen = {}
    for name, values in candidates.items():
        if not params <= set(values):
            continue
        picked = {p: values[p] for p in params}
        if owned & set(picked.values()):
            chosen[name] = picked
    return chosen


def query_variants(op: Operation) -> list[dict[str, str]]:
    queries: list[dict[str, str]] = [{}]
    if "include_deleted" in op.query_params:
        queries.append({"include_deleted": "true"})
    return queries


def _comparable_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower() != "x-request-id"}


async def bola_matrix(
    client: httpx.AsyncClient,
    ops: list[Operation],
    owner: Seeded,
    intruder: Seeded,
) -> tuple[set[tuple[str, str]], list[Finding], int]:
    """Run every id-bearing operation as the intruder against the owner's ids.

    Returns the (method, path) pairs covered, the findings, and the number of calls checked.
    """
    covered: set[tuple[str, str]] = set()
    findings: list[Finding] = []
    checked = 0
    headers = intruder.account.headers
    for op in ops:
        if not op.id_params:
            continue
        body = sample_body(op.body_model)
        for name, values in variants(op, owner, intruder).items():
            for query in query_variants(op):
                label = f"{name} {query}" if query else name
                baseline = await client.request(
                    op.method, op.random_url(), json=body, params=query, headers=headers
                )
                attempt = await client.request(
                    op.method, op.url(values), json=body, params=query, headers=headers
                )
                checked += 1
                covered.add((op.method, op.path))
                if attempt.status_code != 404:
                    findings.append(Finding(op, label, f"{attempt.status_code} {attempt.text}"))
                elif baseline.status_code != 404:
                    findings.append(Finding(op, label, f"missing id gave {baseline.status_code}"))
                elif attempt.content != baseline.content:
                    findings.append(Finding(op, label, f"{attempt.text} != {baseline.text}"))
                elif _comparable_headers(attempt) != _comparable_headers(baseline):
                    findings.append(Finding(op, label, "headers differ from a missing id's"))
    return covered, findings, checked


def matrix_operations(ops: list[Operation]) -> set[tuple[str, str]]:
    return {(op.method, op.path) for op in ops if op.id_params}


async def test_cross_tenant_matrix(
    app: FastAPI, client: httpx.AsyncClient, store: Store, alice: Account, bob: Account
) -> None:
    owner = await seed(client, alice)
    intruder = await seed(client, bob)
    before_api = await api_snapshot(client, alice)
    before_db = await db_snapshot(store, alice.id)
    ops = operations(app)

    covered, findings, checked = await bola_matrix(client, ops, owner, intruder)

    assert not findings, "\n".join(map(str, findings))
    assert covered == matrix_operations(ops)
    assert len(covered) >= 15  # 9 conversation/message, 5 task and 1 API key operations today
    assert checked >= 2 * len(covered)  # live + soft-deleted on most
    assert await api_snapshot(client, alice) == before_api
    assert await db_snapshot(store, alice.id) == before_db


# ---- every route is classified -----------------------------------------------------------------


def test_every_route_is_classified(app: FastAPI) -> None:
    ops = operations(app)
    kinds = {op: classify(op) for op in ops}
    unclassified = [str(op) for op, kind in kinds.items() if kind == "unclassified"]
    assert not unclassified, f"classify these routes (BOLA matrix, public, or auth): {unclassified}"
    served = {(op.method, op.path) for op in ops}
    assert PUBLIC_OPERATIONS <= served, f"stale allowlist entries: {PUBLIC_OPERATIONS - served}"
    for op, kind in kinds.items():
        if kind == "public":
            assert not op.needs_auth, f"{op} is allowlisted as public but requires a user"
    others = other_routes(app)
    assert not [path for path, kind in others.items() if kind.startswith("unclassified")], others
    hot = [(kind.split()[1], path) for path, kind in others.items() if kind.startswith("hot")]
    assert hot, "the plain routes in front of the hottest API routes"
    assert all((method, path) in served for method, path in hot), hot
    assert DOC_PATHS <= set(others)
    assert sum(kind == "matrix" for kind in kinds.values()) >= 14


# ---- admin routes --------------------------------------------------------------------------------


def admin_probes(op: Operation, target: uuid.UUID) -> list[str]:
    """The URLs to try on an admin operation: a real account's id, a missing one, not an id."""
    if not op.path_params:
        return [op.path]
    return [op.url({"user_id": value}) for value in (target, uuid.uuid4(), "not-an-id")]


async def test_admin_routes_answer_a_non_admin_as_an_unknown_path(
    app: FastAPI, client: httpx.AsyncClient, store: Store, alice: Account, bob: Account
) -> None:
    """To a signed-in non-admin (an access token or an API key) every admin operation, with any
    id and any query, is the 404 of a path that does not exist, and changes nothing."""
    await seed(client, alice)
    key = await client.post(f"{API}/api-keys", json={"name": "probe"}, headers=bob.headers)
    assert key.status_code == 201, key.text
    callers = {"token": bob.headers, "api key": {"Authorization": f"Bearer {key.json()['key']}"}}
    before = await db_snapshot(store, alice.id)
    admin_ops = [op for op in operations(app) if classify(op) == "admin"]
    assert {str(op) for op in admin_ops} == {
        f"GET {API}/admin/users",
        f"GET {API}/admin/users/{{user_id}}",
        f"POST {API}/admin/users/{{user_id}}/disable",
        f"POST {API}/admin/users/{{user_id}}/enable",
    }, "a new admin route: check that it is here, then update this list"
    findings, checked = [], 0
    for op in admin_ops:
        for caller, headers in callers.items():
            unknown = await client.request(op.method, f"{API}/no-such-path", headers=headers)
            assert unknown.status_code == 404, unknown.text
            for url in admin_probes(op, alice.id):
                for query in ({}, {"limit": "0", "email_prefix": alice.email}, {"cursor": "x"}):
                    answer = await client.request(op.method, url, params=query, headers=headers)
                    checked += 1
                    if answer.status_code != 404 or answer.content != unknown.content:
                        findings.append(f"{op} {url} {query} [{caller}]: {answer.text}")
                    elif _comparable_headers(answer) != _comparable_headers(unknown):
                        findings.append(f"{op} {url} {query} [{caller}]: headers differ")
    assert not findings, "\n".join(findings)
    assert checked == 2 * 3 * (1 + 3 * 3)
    assert await db_snapshot(store, alice.id) == before


def test_an_unauthenticated_route_fails_classification(tmp_path: Path) -> None:
    extended = create_app(api_settings(f"sqlite:///{tmp_path / 'unused.db'}"))

    @extended.get(f"{API}/debug/dump")
    async def dump() -> dict[str, str]:
        return {}

    @extended.get(f"{API}/debug/{{conversation_id}}")
    async def peek(conversation_id: uuid.UUID) -> dict[str, str]:
        return {}

    added = {
        str(op): classify(op) for op in operations(extended) if op.path.startswith(f"{API}/debug")
    }
    assert added == {
        f"GET {API}/debug/dump": "unclassified",
        f"GET {API}/debug/{{conversation_id}}": "unclassified",
    }


async def leaky_probe(conversation_id: uuid.UUID, user: CurrentUser, conn: ReadConn) -> Any:
    """Deliberately broken: finds the owner from the id instead of using the caller."""
    table: Table = Conversation.__table__  # type: ignore[assignment]
    owner = (
        await conn.execute(select(table.c.user_id).where(table.c.id == conversation_id))
    ).scalar_one_or_none()
    if owner is None:
        raise NotFound("conversation not found")
    return await conversation_service.get(conn, owner, conversation_id, include_deleted=True)


async def telling_probe(conversation_id: uuid.UUID, user: CurrentUser, conn: ReadConn) -> Any:
    """Deliberately broken: a foreign id gets a 404 that differs from a missing one's."""
    table: Table = Conversation.__table__  # type: ignore[assignment]
    owner = (
        await conn.execute(select(table.c.user_id).where(table.c.id == conversation_id))
    ).scalar_one_or_none()
    if owner is None:
        raise NotFound("conversation not found")
    if owner != user.id:
        raise NotFound("this conversation belongs to another user")
    return await conversation_service.get(conn, user.id, conversation_id)


async def scoped_probe(
    conversation_id: uuid.UUID, user: CurrentUser, conn: ReadConn
) -> ConversationRead:
    """Correct: scoped to the caller."""
    return await conversation_service.get(conn, user.id, conversation_id)


async def _matrix_with_probe(database_url: str, probe: Any) -> tuple[set[Any], list[Finding]]:
    app = create_app(api_settings(database_url))
    app.add_api_route(PROBE_PATH, probe, methods=["GET"], summary="probe")
    async with app.router.lifespan_context(app), client_for(app) as client:
        owner = await seed(client, await register(client))
        intruder = await seed(client, await register(client))
        ops = operations(app)
        assert (("GET", PROBE_PATH)) in matrix_operations(ops)
        covered, findings, _ = await bola_matrix(
            client, [op for op in ops if op.path == PROBE_PATH], owner, intruder
        )
        return covered, findings


async def test_the_matrix_covers_a_new_route_and_catches_a_leak(database_url: str) -> None:
    covered, findings = await _matrix_with_probe(database_url, leaky_probe)
    assert covered == {("GET", PROBE_PATH)}
    leaked = {f.variant for f in findings}
    assert {"live", "soft-deleted"} <= leaked, findings
    assert all("200" in f.detail for f in findings)

    covered, findings = await _matrix_with_probe(database_url, telling_probe)
    assert {f.variant for f in findings} >= {"live", "soft-deleted"}, findings
    assert all("another user" in f.detail for f in findings)

    covered, findings = await _matrix_with_probe(database_url, scoped_probe)
    assert covered == {("GET", PROBE_PATH)}
    assert not findings, findings


# ---- lists ---------------------------------------------------------------------------------------


async def _ids_seen(
    client: httpx.AsyncClient, account: Account, path: str, **params: Any
) -> set[str]:
    seen: set[str] = set()
    query: dict[str, Any] = {"limit": 100, **params}
    for _ in range(100):
        response = await client.get(path, params=query, headers=account.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        for item in page["items"]:
            seen.add(item["id"])
            seen.update(v for k, v in item.items() if k.endswith("_id") and isinstance(v, str))
        if not page["has_more"]:
            return seen
        query["cursor"] = page["next_cursor"]
    raise AssertionError("the list never ended")


async def test_lists_never_show_another_users_rows(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    owner = await seed(client, alice)
    await seed(client, bob)
    owner_ids = owner.ids()
    listings = [
        (f"{API}/conversations", {}),
        (f"{API}/conversations", {"include_deleted": "true"}),
        (f"{API}/tasks", {}),
        (f"{API}/tasks", {"completed": "true"}),
        (f"{API}/tasks", {"tag": owner.tag}),
        (f"{API}/tasks", {"priority": "high"}),
    ]
    for path, params in listings:
        mine = await _ids_seen(client, alice, path, **params)
        assert mine & owner_ids, (path, params)  # the listing does show the owner's rows
        theirs = await _ids_seen(client, bob, path, **params)
        assert not theirs & owner_ids, (path, params)
        assert not theirs & mine, (path, params)


async def test_another_users_cursor_never_yields_their_rows(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    owner = await seed(client, alice)
    await seed(client, bob)
    owner_ids = owner.ids()
    for path, params in [
        (f"{API}/conversations", {}),
        (f"{API}/conversations", {"include_deleted": "true"}),
        (f"{API}/tasks", {}),
    ]:
        first = await client.get(path, params={"limit": 1, **params}, headers=alice.headers)
        assert first.status_code == 200
        cursor = first.json()["next_cursor"]
        assert cursor, first.text
        response = await client.get(
            path, params={"limit": 100, "cursor": cursor, **params}, headers=bob.headers
        )
        assert response.status_code in (200, 400, 404, 422), response.text
        if response.status_code == 200:
            ids = {item["id"] for item in response.json()["items"]}
            assert not ids & owner_ids

    messages = f"{API}/conversations/{owner.conversation}/messages"
    first = await client.get(messages, params={"limit": 1}, headers=alice.headers)
    cursor = first.json()["next_cursor"]
    assert cursor
    foreign = await client.get(messages, params={"cursor": cursor}, headers=bob.headers)
    missing = await client.get(
        f"{API}/conversations/{uuid.uuid4()}/messages", params={"limit": 1}, headers=bob.headers
    )
    assert foreign.status_code == 404
    assert foreign.content == missing.content


# ---- websockets ----------------------------------------------------------------------------------


def _socket_frames(database_url: str, token: str | None, messages: list[Any]) -> list[Any]:
    """Talk to the chat socket of a fresh app (the test client runs it in its own loop)."""
    frames: list[Any] = []
    with TestClient(create_app(api_settings(database_url))) as tc:
        with tc.websocket_connect(f"{API}/chat/ws") as ws:
            if token is not None:
                ws.send_json({"type": "auth", "token": token})
            for message in messages:
                ws.send_json(message)
                frames.append(ws.receive_json())
            if token is None:
                with pytest.raises(WebSocketDisconnect) as closed:
                    ws.receive_json()
                frames.append({"closed": closed.value.code})
    return frames


async def test_websockets_are_classified_and_isolated(
    app: FastAPI,
    database_url: str,
    client: httpx.AsyncClient,
    store: Store,
    alice: Account,
    bob: Account,
) -> None:
    sockets = [path for path, kind in other_routes(app).items() if kind == "websocket"]
    assert sockets == [f"{API}/chat/ws"], "probe each new websocket here"
    owner = await seed(client, alice)
    before = await db_snapshot(store, alice.id)
    probes = [
        {"type": "message", "content": "hi", "conversation_id": owner.conversation},
        {"type": "message", "content": "hi", "conversation_id": owner.deleted_conversation},
        {"type": "message", "content": "hi", "conversation_id": str(uuid.uuid4())},
    ]
    frames = await asyncio.to_thread(_socket_frames, database_url, bob.access_token, probes)
    live, deleted, missing = frames
    assert missing["type"] == "error", missing
    assert missing["code"] == "not_found", missing
    assert live == missing
    assert deleted == missing

    anonymous = await asyncio.to_thread(
        _socket_frames, database_url, None, [{"type": "message", "content": "hi"}]
    )
    assert anonymous[0]["type"] == "error", anonymous
    assert anonymous[0]["code"] == "invalid_credentials", anonymous
    assert anonymous[1] == {"closed": 4401}
    assert await db_snapshot(store, alice.id) == before
