"""The API answers end to end on each backend."""

from __future__ import annotations

import httpx

from tests.support.api import Account


async def test_conversation_round_trip(client: httpx.AsyncClient, alice: Account) -> None:
    created = await client.post("/api/v1/conversations", json={"title": "t"}, headers=alice.headers)
    assert created.status_code == 201
    location = created.headers["location"]
    appended = await client.post(
        f"{location}/messages", json={"role": "user", "content": "hi"}, headers=alice.headers
    )
    assert appended.status_code == 201
    assert appended.json()["seq"] == 1
    page = await client.get(f"{location}/messages", headers=alice.headers)
    assert [m["content"] for m in page.json()["items"]] == ["hi"]
