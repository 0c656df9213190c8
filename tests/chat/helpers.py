"""Helpers for the chat tests: read stored rows through the API, parse SSE and WebSocket frames."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support.api import Account

T = TypeVar("T")
WAIT_SECONDS = 10.0
"""The longest a test waits for a condition (a finalised row) before failing."""


async def messages(client: httpx.AsyncClient, who: Account, conv: str) -> list[dict[str, Any]]:
    """The conversation's messages as the REST API returns them (oldest first)."""
    page = await client.get(f"/api/v1/conversations/{conv}/messages?limit=100", headers=who.headers)
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


async def tasks(client: httpx.AsyncClient, who: Account, query: str = "") -> list[dict[str, Any]]:
    """The user's tasks as ``GET /api/v1/tasks`` lists them (creation order)."""
    page = await client.get(f"/api/v1/tasks?limit=100{query}", headers=who.headers)
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


async def events(client: httpx.AsyncClient, who: Account, task_id: str) -> list[dict[str, Any]]:
    answer = await client.get(f"/api/v1/tasks/{task_id}/events", headers=who.headers)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()
    return found


def sse_frames(body: str) -> list[tuple[str, dict[str, Any]]]:
    """``(event, data)`` for each Server-Sent Event of a complete body."""
    frames = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        data = json.loads(lines["data"])
        assert data["type"] == lines["event"], block
        if "id" in lines:
            assert int(lines["id"]) == data["id"], block
        frames.append((lines["event"], data))
    return frames


def assert_chunks_then_done(frames: list[dict[str, Any]]) -> dict[str, Any]:
    """The frames are one turn: ids 1, 2, 3…, chunks of one reply (indexed 0, 1, …) and its
    tool steps (each ``tool_call`` before its ``tool_result``, as stored), then one ``done``;
    its message."""
    kinds = [f["type"] for f in frames]
    assert kinds[-1] == "done", kinds
    assert [f["id"] for f in frames] == list(range(1, len(frames) + 1)), frames
    assert set(kinds[:-1]) <= {"chunk", "tool_call", "tool_result"}, kinds
    chunks = [f for f in frames if f["type"] == "chunk"]
    assert chunks, kinds
    done = frames[-1]["message"]
    assert [c["index"] for c in chunks] == list(range(len(chunks)))
    assert {(c["conversation_id"], c["message_id"]) for c in frames[:-1]} == {
        (done["conversation_id"], done["id"])
    }
    assert "".join(c["delta"] for c in chunks) == done["content"]
    assert done["status"] == "complete"
    calls = [f for f in frames if f["type"] == "tool_call"]
    results = [f for f in frames if f["type"] == "tool_result"]
    stored = done["tool_calls"] or []
    assert [(c["call_id"], c["name"], c["arguments"]) for c in calls] == [
        (c["id"], c["name"], c["arguments"]) for c in stored
    ]
    outcomes = done["tool_results"] or []
    assert [(r["call_id"], r["ok"]) for r in results] == [
        (r["tool_call_id"], not r["is_error"]) for r in outcomes
    ]
    for frame in results:
        call = next(c for c in calls if c["call_id"] == frame["call_id"])
        assert call["id"] < frame["id"]
    message: dict[str, Any] = done
    return message


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str) -> T:
    """Poll ``probe`` until it returns a value (not None), for at most ``WAIT_SECONDS``."""
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                value = await probe()
                if value is not None:
                    return value
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@contextlib.asynccontextmanager
async def socket(url: str, token: str | None = None) -> AsyncIterator[ClientConnection]:
    """A chat socket, signed in with ``token`` (the first message) when given."""
    async with connect(url, open_timeout=WAIT_SECONDS, close_timeout=2) as ws:
        if token is not None:
            await ws.send(json.dumps({"type": "auth", "token": token}))
        yield ws


async def receive(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(WAIT_SECONDS):
        raw = await ws.recv()
    frame: dict[str, Any] = json.loads(raw)
    return frame


async def turn_frames(ws: ClientConnection, **message: Any) -> list[dict[str, Any]]:
    """Send one message; every frame up to and including ``done`` or ``error``."""
    await ws.send(json.dumps({"type": "message", **message}))
    frames = [await receive(ws)]
    while frames[-1]["type"] not in ("done", "error"):
        frames.append(await receive(ws))
    return frames


async def closed_code(ws: ClientConnection) -> int | None:
    """Wait for the server to close; the close code it sent."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(WAIT_SECONDS):
            await ws.recv()
    return closed.value.rcvd.code if closed.value.rcvd else None
