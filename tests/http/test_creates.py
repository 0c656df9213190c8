"""Every create answers 201 with a ``Location`` that resolves to the same object."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from tests.http.helpers import API, created, operations
from tests.support.api import PASSWORD, Account

CREATE_BODIES: dict[str, Any] = {
    f"{API}/conversations": {"title": "located", "metadata": {"k": "v"}},
    f"{API}/conversations/{{conversation_id}}/messages": {
        "role": "assistant",
        "content": "calling",
        "tool_calls": [{"id": "c1", "name": "add_task", "arguments": {"title": "x"}}],
        "metadata": {"k": "v"},
        "usage": {"total_tokens": 3},
    },
    # A batch: its Location is the conversation's item list, which (in a fresh conversation)
    # holds exactly the batch.
    f"{API}/conversations/{{conversation_id}}/items": {
        "items": [
            {"type": "message", "role": "user", "content": "hi"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        ]
    },
    f"{API}/tasks": {
        "title": "located",
        "description": "d",
        "tags": ["#Home"],
        "due_at": "2030-01-02T03:04:05.123456+02:00",
    },
    f"{API}/api-keys": {"name": "located", "expires_at": "2999-01-02T03:04:05+00:00"},
    f"{API}/auth/register": "register",  # a fresh account, made below
    f"{API}/chat/messages": {"content": "add a task to buy milk"},
    f"{API}/chat/conversations/{{conversation_id}}/messages": {"content": "list my tasks"},
    f"{API}/chat/conversations/{{conversation_id}}/retry": "skip: needs a failed reply first",
}


async def test_creates_answer_201_with_a_location_that_resolves(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    creates = [op for op in operations(app) if op.success_status == 201]
    assert {op.path for op in creates} == set(CREATE_BODIES), "add the new create to the table"
    conv = await created(client, alice, f"{API}/conversations", {})
    for op in creates:
        owner = alice
        body = CREATE_BODIES[op.path]
        if isinstance(body, str) and body.startswith("skip"):
            continue
        if body == "register":
            body = {"email": f"loc-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}
        target = conv
        if op.path.endswith("/items"):
            target = await created(client, alice, f"{API}/conversations", {})
        response = await client.request(
            op.method, op.url({"conversation_id": target}), json=body, headers=owner.headers
        )
        assert response.status_code == 201, (op.path, response.text)
        location = response.headers["location"]
        assert location.startswith(f"{API}/"), location
        headers = owner.headers
        if op.path.endswith("/auth/register"):
            tokens = await client.post(f"{API}/auth/login", json=body)
            headers = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
        fetched = await client.get(location, headers=headers)
        assert fetched.status_code == 200, (location, fetched.text)
        expected = response.json()
        if op.path.endswith("/api-keys"):  # the key is shown once; reads show its last use
            assert expected.pop("key").startswith(expected["prefix"])
            expected["last_used_at"] = None
        assert fetched.json() == expected, op.path
