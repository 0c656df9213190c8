"""Chat turns have a budget of their own (each turn costs model tokens), per user and apart from the
ordinary request limit: every entry point of a turn counts — the JSON and streamed POST routes,
retry, and each WebSocket message — and one past the budget is refused before anything is
written."""

from __future__ import annotations

import asyncio

import httpx

from tests.chat.helpers import (
    WAIT_SECONDS,
    assert_chunks_then_done,
    messages,
    socket,
    tasks,
    turn_frames,
)
from tests.http.test_rate_limits import assert_rate_limited
from tests.support.api import Account, api_settings, client_for, register, running_app
from tests.support.live import serving

CHAT = "/api/v1/chat"
BUDGET = 4


async def turn(
    client: httpx.AsyncClient, who: Account, content: str, conv: str | None = None
) -> httpx.Response:
    path = f"{CHAT}/conversations/{conv}/messages" if conv else f"{CHAT}/messages"
    return await client.post(path, json={"content": content}, headers=who.headers)


async def test_chat_turns_past_the_budget_are_refused_on_every_entry_point(
    database_url: str,
) -> None:
    settings = api_settings(database_url, rate_limit_chat=f"{BUDGET}/minute")
    async with running_app(settings) as app, client_for(app) as client, serving(app) as url:
        alice, bob = await register(client), await register(client)
        first = await turn(client, alice, "add one")
        assert first.status_code == 201, first.text
        conv = first.json()["conversation_id"]
        assert (await turn(client, alice, "add two", conv)).status_code == 201
        streamed = await client.post(
            f"{CHAT}/conversations/{conv}/messages",
            json={"content": "add three", "stream": True},
            headers=alice.headers,
        )
        assert streamed.status_code == 200, streamed.text
        async with socket(url.replace("http://", "ws://") + f"{CHAT}/ws", alice.access_token) as ws:
            assert_chunks_then_done(await turn_frames(ws, content="add four", conversation_id=conv))
            (limited,) = await turn_frames(ws, content="add five", conversation_id=conv)
            assert (limited["type"], limited["code"], limited["retryable"]) == (
                "error",
                "rate_limited",
                True,
            )
            async with asyncio.timeout(WAIT_SECONDS):
                await (await ws.ping())  # still open

            assert_rate_limited(await turn(client, alice, "add six"))
            assert_rate_limited(await turn(client, alice, "add seven", conv))
            streamed = await client.post(
                f"{CHAT}/messages",
                json={"content": "add eight", "stream": True},
                headers=alice.headers,
            )
            assert_rate_limited(streamed)
            retry = await client.post(f"{CHAT}/conversations/{conv}/retry", headers=alice.headers)
            assert_rate_limited(retry)

            # The ordinary routes keep their own (far larger) budget…
            for _ in range(2 * BUDGET):
                assert (await client.get("/api/v1/tasks", headers=alice.headers)).status_code == 200
            created = await client.post(
                "/api/v1/tasks", json={"title": "by hand"}, headers=alice.headers
            )
            assert created.status_code == 201, created.text
            # …and another user has a whole chat budget.
            bob_first = await turn(client, bob, "add bob's")
            assert bob_first.status_code == 201, bob_first.text
            for n in range(BUDGET - 1):
                answer = await turn(client, bob, f"add b{n}", bob_first.json()["conversation_id"])
                assert answer.status_code == 201, answer.text
            assert_rate_limited(await turn(client, bob, "add one too many"))

        # Nothing of a refused turn was written.
        stored = await messages(client, alice, conv)
        assert [m["content"] for m in stored if m["role"] == "user"] == [
            "add one",
            "add two",
            "add three",
            "add four",
        ]
        listed = await client.get("/api/v1/conversations?limit=100", headers=alice.headers)
        assert [c["id"] for c in listed.json()["items"]] == [conv]
        assert [t["title"] for t in await tasks(client, alice)] == [
            "One",
            "Two",
            "Three",
            "Four",
            "by hand",
        ]
