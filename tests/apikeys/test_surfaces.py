"""An API key on every surface that takes an access token, on a live server: /mcp with the
official ``mcp`` client (streamable HTTP) and the chat WebSocket (header and first message)."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect

from tests.apikeys.test_api_keys import KEYS, bearer, create_key
from tests.chat.helpers import closed_code, receive, socket, turn_frames
from tests.mcp.helpers import STEP_TIMEOUT, call, structured
from tests.mcp.test_http import INITIALIZE, MCP_HEADERS, Live
from tests.mcp.test_http import connect as mcp_connect
from tests.mcp.test_http import live as live  # the fixture: the API served live
from tests.support.api import register


async def test_mcp_with_an_api_key(live: Live) -> None:
    alice, bob = await register(live.api), await register(live.api)
    created = await create_key(live.api, alice, name="mcp client")
    async with asyncio.timeout(STEP_TIMEOUT), mcp_connect(live, created["key"]) as client:
        task = structured(await call(client, "add_task", {"title": "via a key"}))
        listed = structured(await call(client, "list_tasks", {"status": "all"}))["tasks"]
    assert [t["id"] for t in listed] == [task["id"]]
    mine = await live.api.get("/api/v1/tasks", headers=alice.headers)
    assert [t["title"] for t in mine.json()["items"]] == ["via a key"]
    assert (await live.api.get("/api/v1/tasks", headers=bob.headers)).json()["items"] == []
    [key] = (await live.api.get(KEYS, headers=alice.headers)).json()["items"]
    assert key["last_used_at"] is not None

    revoked = await live.api.delete(f"{KEYS}/{created['id']}", headers=alice.headers)
    assert revoked.status_code == 204
    headers = {**MCP_HEADERS, **bearer(created["key"])}
    answer = await live.api.post("/mcp", json=INITIALIZE, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")


def ws_url(live: Live) -> str:
    return live.url.replace("http://", "ws://") + "/api/v1/chat/ws"


@pytest.mark.parametrize("how", ["header", "first-message"])
async def test_the_chat_socket_with_an_api_key(live: Live, how: str) -> None:
    alice = await register(live.api)
    created = await create_key(live.api, alice, name="socket")
    conv = await live.api.post("/api/v1/conversations", json={}, headers=alice.headers)
    conv_id = conv.json()["id"]
    if how == "header":
        opened = connect(ws_url(live), additional_headers=bearer(created["key"]), close_timeout=2)
    else:
        opened = socket(ws_url(live), created["key"])
    async with opened as ws:
        frames = await turn_frames(
            ws, content="add a task: water the plants", conversation_id=conv_id
        )
        assert frames[-1]["type"] == "done", frames
        revoked = await live.api.delete(f"{KEYS}/{created['id']}", headers=alice.headers)
        assert revoked.status_code == 204
        refused = await turn_frames(ws, content="list my tasks", conversation_id=conv_id)
        assert [(f["type"], f["code"]) for f in refused] == [("error", "invalid_credentials")]
        assert await closed_code(ws) == 4401
    tasks = await live.api.get("/api/v1/tasks", headers=alice.headers)
    assert [t["title"] for t in tasks.json()["items"]] == ["Water the plants"]


async def test_a_revoked_key_cannot_open_a_socket(live: Live) -> None:
    alice = await register(live.api)
    created = await create_key(live.api, alice)
    await live.api.delete(f"{KEYS}/{created['id']}", headers=alice.headers)
    async with socket(ws_url(live), created["key"]) as ws:
        frame = await receive(ws)
        assert (frame["type"], frame["code"]) == ("error", "invalid_credentials")
        assert await closed_code(ws) == 4401
