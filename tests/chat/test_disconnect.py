"""A client that goes away in the middle of a streamed reply, with
``CONVSTORE_CHAT_CANCEL_ON_DISCONNECT=true`` (by default the turn goes on: see
test_resume.py): over SSE and over a WebSocket, on a real uvicorn server, with a slow model (a
local Chat Completions server that streams a word at a time). The rows must end consistent —
the user's message kept, the reply finalised as ``error`` with the text streamed so far, never
left ``streaming`` — and the conversation goes on.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.chat.conftest import openai_settings
from tests.chat.helpers import WAIT_SECONDS, assert_chunks_then_done, eventually, messages
from tests.support.api import Account, register, running_app
from tests.support.fake_llm import FakeModel, Step
from tests.support.live import serving

SLOW_TEXT = " ".join(f"word{n}" for n in range(60))
"""About six seconds of reply at 0.1 s a word: far longer than the client stays."""
CHAT = "/api/v1/chat"


@dataclass
class Live:
    url: str
    api: httpx.AsyncClient
    model: FakeModel
    me: Account


@pytest.fixture
async def live(database_url: str, fake_model: tuple[FakeModel, str]) -> AsyncIterator[Live]:
    """The API with the ``openai`` provider on the fake model, served by uvicorn."""
    model, base_url = fake_model
    async with (
        running_app(openai_settings(database_url, base_url, chat_cancel_on_disconnect=True)) as app,
        serving(app) as url,
        httpx.AsyncClient(base_url=url, timeout=WAIT_SECONDS) as api,
    ):
        yield Live(url, api, model, await register(api))


async def finalised(live: Live, conv: str) -> list[dict[str, Any]]:
    """The conversation's messages once no reply is ``streaming`` any more (bounded wait)."""

    async def settled() -> list[dict[str, Any]] | None:
        stored = await messages(live.api, live.me, conv)
        return None if any(m["status"] == "streaming" for m in stored) else stored

    return await eventually(settled, "the interrupted reply to be finalised")


async def provider_stream_closed(model: FakeModel) -> None:
    """The model's stream was closed early: nobody keeps paying for a reply no one reads."""

    async def closed() -> bool | None:
        return True if model.abandoned == 1 else None

    await eventually(closed, "the provider's stream to be closed")


def assert_interrupted(reply: dict[str, Any], first_delta: str) -> None:
    """Finalised as an error, keeping the text streamed before the client left (not all of it)."""
    assert reply["role"] == "assistant"
    assert reply["status"] == "error"
    assert reply["metadata"]["error"]["code"] == "provider_error"
    assert reply["content"].startswith(first_delta)
    assert SLOW_TEXT.startswith(reply["content"].strip())
    assert len(reply["content"].strip()) < len(SLOW_TEXT)


async def test_a_client_leaving_an_sse_stream_leaves_an_error_reply_and_can_retry(
    live: Live,
) -> None:
    live.model.steps = [Step(text=SLOW_TEXT, chunk_delay=0.1)]
    body = {"content": "tell me a long story", "stream": True}
    async with live.api.stream("POST", f"{CHAT}/messages", json=body, headers=live.me.headers) as r:
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                first = json.loads(line.removeprefix("data: "))
                break
    # Leaving the block closed the connection after one frame.
    assert first["type"] == "chunk"
    conv = first["conversation_id"]

    user, reply = await finalised(live, conv)
    assert (user["seq"], user["role"], user["status"], user["content"]) == (
        1,
        "user",
        "sent",
        "tell me a long story",
    )
    assert (reply["id"], reply["seq"]) == (first["message_id"], 2)
    assert_interrupted(reply, first["delta"])
    await provider_stream_closed(live.model)

    live.model.steps = [Step(text="A short one.")]
    retried = await live.api.post(f"{CHAT}/conversations/{conv}/retry", headers=live.me.headers)
    assert retried.status_code == 201, retried.text
    assert (retried.json()["status"], retried.json()["seq"]) == ("complete", 3)
    # The interrupted reply is not shown to the model again.
    assert [m["role"] for m in live.model.requests[-1]["messages"]] == ["system", "user"]
    stored = await messages(live.api, live.me, conv)
    assert [(m["role"], m["status"]) for m in stored] == [
        ("user", "sent"),
        ("assistant", "error"),
        ("assistant", "complete"),
    ]


async def test_a_websocket_closed_mid_stream_leaves_an_error_reply_and_the_chat_goes_on(
    live: Live,
) -> None:
    live.model.steps = [Step(text=SLOW_TEXT, chunk_delay=0.1)]
    ws_url = live.url.replace("http://", "ws://") + f"{CHAT}/ws"
    async with connect(ws_url, close_timeout=2) as ws:
        await ws.send(json.dumps({"type": "auth", "token": live.me.access_token}))
        await ws.send(json.dumps({"type": "message", "content": "tell me a long story"}))
        first = json.loads(await ws.recv())
    assert first["type"] == "chunk"
    conv = first["conversation_id"]

    user, reply = await finalised(live, conv)
    assert (user["role"], user["status"]) == ("user", "sent")
    assert reply["id"] == first["message_id"]
    assert_interrupted(reply, first["delta"])
    await provider_stream_closed(live.model)

    live.model.steps = [Step(text="Hello again.")]
    async with connect(ws_url, close_timeout=2) as ws:
        await ws.send(json.dumps({"type": "auth", "token": live.me.access_token}))
        await ws.send(json.dumps({"type": "message", "content": "hi", "conversation_id": conv}))
        frames = [json.loads(await ws.recv())]
        while frames[-1]["type"] not in ("done", "error"):
            frames.append(json.loads(await ws.recv()))
    done = assert_chunks_then_done(frames)
    assert (done["seq"], done["content"].strip()) == (4, "Hello again.")
    assert [m["role"] for m in live.model.requests[-1]["messages"]] == ["system", "user", "user"]
    stored = await messages(live.api, live.me, conv)
    assert [(m["role"], m["status"]) for m in stored] == [
        ("user", "sent"),
        ("assistant", "error"),
        ("user", "sent"),
        ("assistant", "complete"),
    ]
