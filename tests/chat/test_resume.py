"""Resumable chat streams: a turn's frames are stored and can be followed from any server.

The main test drops an SSE stream mid-turn against a real ``convstore serve`` with two
workers (the ``openai`` provider on a local Chat Completions server that streams slowly),
reconnects with ``Last-Event-ID`` and must receive exactly the frames it missed, then the end
(no duplicate, no gap), while the stored reply is complete. Then a cancel request stops a
running turn, wherever it runs. Both databases.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chat.conftest import openai_settings
from tests.chat.helpers import (
    WAIT_SECONDS,
    assert_chunks_then_done,
    eventually,
    messages,
    receive,
    socket,
)
from tests.http.test_serve import start_serve, stop
from tests.support.api import PASSWORD, Account, client_for, register, running_app
from tests.support.databases import fresh_database
from tests.support.fake_llm import FakeModel, Step
from tests.support.live import serving

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
SLOW_TEXT = " ".join(f"word{n}" for n in range(40))
CHAT = "/api/v1/chat"


async def sse_blocks(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The frames of an SSE response as they arrive (the ``id:`` field checked against the
    frame's ``id``)."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line:
            key, _, value = line.partition(": ")
            fields[key] = value
            continue
        if "data" in fields:
            frame: dict[str, Any] = json.loads(fields["data"])
            assert frame["type"] == fields["event"]
            if "id" in fields:
                assert int(fields["id"]) == frame["id"]
            yield frame
        fields = {}


async def read_all(response: httpx.Response) -> list[dict[str, Any]]:
    return [frame async for frame in sse_blocks(response)]


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database(request.param, tmp_path) as url:
        yield url


async def _up(client: httpx.AsyncClient, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if (await client.get("/healthz", timeout=1)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    output = await asyncio.to_thread(log.read_text)
    raise AssertionError(f"serve did not start:\n{output}")


async def _sign_in(client: httpx.AsyncClient) -> dict[str, str]:
    creds = {"email": f"resume-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}
    assert (await client.post("/api/v1/auth/register", json=creds)).status_code == 201
    login = await client.post("/api/v1/auth/login", json=creds)
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def test_a_dropped_stream_resumes_with_last_event_id_on_a_live_server(
    database: str, tmp_path: Path
) -> None:
    model = FakeModel()
    async with serving(model.app()) as model_url:
        log = tmp_path / "serve.log"
        proc, port = start_serve(
            tmp_path,
            log,
            "--workers",
            "2",
            CONVSTORE_DATABASE_URL=database,
            CONVSTORE_RATE_LIMIT_ENABLED="false",
            CONVSTORE_ASSISTANT_PROVIDER="openai",
            CONVSTORE_OPENAI_BASE_URL=f"{model_url}/v1",
            CONVSTORE_OPENAI_API_KEY="test",
            CONVSTORE_OPENAI_MODEL="fake-model",
            CONVSTORE_OPENAI_MAX_RETRIES="0",
        )
        try:
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, timeout=WAIT_SECONDS) as client:
                await _up(client, log)
                headers = await _sign_in(client)
                await _resume_after_a_drop(base, headers, model)
                await _cancel_a_running_turn(base, headers, model)
        finally:
            stop(proc)
    output = await asyncio.to_thread(log.read_text)
    assert "Traceback" not in output, output


async def _resume_after_a_drop(base: str, headers: dict[str, str], model: FakeModel) -> None:
    model.steps = [Step(text=SLOW_TEXT, chunk_delay=0.05)]
    body = {"content": "tell me a long story", "stream": True}
    seen: list[dict[str, Any]] = []
    async with (
        httpx.AsyncClient(base_url=base, timeout=WAIT_SECONDS) as first,
        first.stream("POST", f"{CHAT}/messages", json=body, headers=headers) as answer,
    ):
        assert answer.status_code == 200
        async for frame in sse_blocks(answer):
            seen.append(frame)
            if len(seen) == 3:
                break  # the connection is dropped here, mid-turn
    conv, reply_id = seen[0]["conversation_id"], seen[0]["message_id"]
    stream_url = f"{CHAT}/conversations/{conv}/messages/{reply_id}/stream"
    # A second tab follows the same turn from its first frame, on a connection of its own.
    async with httpx.AsyncClient(base_url=base, timeout=WAIT_SECONDS) as tab:
        tab_task = asyncio.create_task(_follow_all(tab, stream_url, headers))
        # The client comes back on a new connection (possibly the other worker).
        async with (
            httpx.AsyncClient(base_url=base, timeout=WAIT_SECONDS) as again,
            again.stream(
                "GET", stream_url, headers={**headers, "Last-Event-ID": str(seen[-1]["id"])}
            ) as resumed,
        ):
            assert resumed.status_code == 200
            assert resumed.headers["content-type"].startswith("text/event-stream")
            rest = await read_all(resumed)
        followed = await tab_task
    frames = seen + rest
    assert [f["id"] for f in rest][0] == seen[-1]["id"] + 1  # no duplicate
    done = assert_chunks_then_done(frames)  # ids 1, 2, 3… without a gap, up to done
    assert done["content"].strip() == SLOW_TEXT
    assert followed == frames
    async with httpx.AsyncClient(base_url=base, timeout=WAIT_SECONDS) as client:
        stored = await client.get(f"/api/v1/conversations/{conv}/messages", headers=headers)
        reply = stored.json()["items"][-1]
        assert (reply["id"], reply["status"]) == (reply_id, "complete")
        assert reply["content"] == done["content"]
        # Once ended, the stream still replays from the store, from any id.
        tail = await client.get(stream_url, headers={**headers, "Last-Event-ID": "0"})
        assert [f["id"] for f in await _parse(tail)] == [f["id"] for f in frames]


async def _follow_all(
    client: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> list[dict[str, Any]]:
    async with client.stream("GET", url, headers=headers) as answer:
        assert answer.status_code == 200
        return await read_all(answer)


async def _parse(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return [json.loads(b.split("data: ", 1)[1]) for b in response.text.strip().split("\n\n")]


async def _cancel_a_running_turn(base: str, headers: dict[str, str], model: FakeModel) -> None:
    model.steps = [Step(text=SLOW_TEXT, chunk_delay=0.1)]
    body = {"content": "another long one", "stream": True}
    async with (
        httpx.AsyncClient(base_url=base, timeout=WAIT_SECONDS) as client,
        client.stream("POST", f"{CHAT}/messages", json=body, headers=headers) as answer,
    ):
        frames: list[dict[str, Any]] = []
        async for frame in sse_blocks(answer):
            frames.append(frame)
            if len(frames) == 2:
                conv, reply_id = frame["conversation_id"], frame["message_id"]
                async with httpx.AsyncClient(base_url=base, timeout=WAIT_SECONDS) as other:
                    cancel = await other.post(
                        f"{CHAT}/conversations/{conv}/messages/{reply_id}/cancel",
                        headers=headers,
                    )
                    assert cancel.status_code == 202, cancel.text
    last = frames[-1]
    assert (last["type"], last["code"]) == ("error", "interrupted")
    assert [f["id"] for f in frames] == list(range(1, len(frames) + 1))
    async with httpx.AsyncClient(base_url=base, timeout=WAIT_SECONDS) as client:
        stored = await client.get(f"/api/v1/conversations/{conv}/messages", headers=headers)
        reply = stored.json()["items"][-1]
        assert reply["status"] == "error"
        assert len(reply["content"]) < len(SLOW_TEXT)
        again = await client.post(
            f"{CHAT}/conversations/{conv}/messages/{reply_id}/cancel", headers=headers
        )
        assert again.status_code == 409


async def test_a_websocket_resumes_a_turn_it_lost(
    database_url: str, fake_model: tuple[FakeModel, str]
) -> None:
    model, base_url = fake_model
    model.steps = [Step(text=SLOW_TEXT, chunk_delay=0.02)]
    async with (
        running_app(openai_settings(database_url, base_url)) as app,
        serving(app) as url,
        httpx.AsyncClient(base_url=url, timeout=WAIT_SECONDS) as api,
    ):
        me = await register(api)
        ws_url = url.replace("http://", "ws://") + f"{CHAT}/ws"
        async with socket(ws_url, me.access_token) as ws:
            await ws.send(json.dumps({"type": "message", "content": "a long story"}))
            seen = [await receive(ws), await receive(ws)]
        ref = {"conversation_id": seen[0]["conversation_id"], "message_id": seen[0]["message_id"]}
        async with socket(ws_url, me.access_token) as ws:
            await ws.send(json.dumps({"type": "resume", **ref, "last_id": seen[-1]["id"]}))
            rest = [await receive(ws)]
            while rest[-1]["type"] not in ("done", "error"):
                rest.append(await receive(ws))
            done = assert_chunks_then_done(seen + rest)
            assert done["content"].strip() == SLOW_TEXT
            # Someone else's reply is not found, exactly as a missing one.
            other = await register(api)
            async with socket(ws_url, other.access_token) as theirs:
                await theirs.send(json.dumps({"type": "resume", **ref, "last_id": 0}))
                refused = await receive(theirs)
                assert (refused["type"], refused["code"]) == ("error", "not_found")


async def test_streams_of_others_and_bad_ids_are_refused(
    model_client: httpx.AsyncClient, fake_model: tuple[FakeModel, str]
) -> None:
    model, _ = fake_model
    me, other = await register(model_client), await register(model_client)
    model.steps = [Step(text="Hi there.")]
    answer = await model_client.post(f"{CHAT}/messages", json={"content": "hi"}, headers=me.headers)
    assert answer.status_code == 201
    reply = answer.json()
    url = f"{CHAT}/conversations/{reply['conversation_id']}/messages/{reply['id']}/stream"
    mine = await model_client.get(url, headers=me.headers)
    frames = await _parse(mine)
    assert frames[-1]["type"] == "done"
    assert frames[-1]["message"]["id"] == reply["id"]
    theirs = await model_client.get(url, headers=other.headers)
    missing = await model_client.get(
        f"{CHAT}/conversations/{reply['conversation_id']}/messages/{uuid.uuid4()}/stream",
        headers=me.headers,
    )
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["detail"] == missing.json()["detail"]
    bad = await model_client.get(url, headers={**me.headers, "Last-Event-ID": "x"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "Last-Event-ID"
    cancel = f"{CHAT}/conversations/{reply['conversation_id']}/messages/{reply['id']}/cancel"
    assert (await model_client.post(cancel, headers=other.headers)).status_code == 404
    assert (await model_client.post(cancel, headers=me.headers)).status_code == 409


async def test_frames_are_pruned_after_the_retention_period(
    database_url: str, fake_model: tuple[FakeModel, str]
) -> None:
    model, base_url = fake_model
    settings = openai_settings(database_url, base_url, chat_frames_retention_hours=1e-7)
    async with running_app(settings) as app, client_for(app) as client:
        me = await register(client)
        model.steps = [Step(text="Hi."), Step(text="Again.")]
        answer = await client.post(f"{CHAT}/messages", json={"content": "hi"}, headers=me.headers)
        reply = answer.json()
        url = f"{CHAT}/conversations/{reply['conversation_id']}/messages/{reply['id']}/stream"
        # A turn prunes its user's frames older than the retention when it ends: the next turn,
        # a moment later, finds the first one's frames old enough whatever the clock's grain.
        await asyncio.sleep(0.05)
        later = await client.post(
            f"{CHAT}/conversations/{reply['conversation_id']}/messages",
            json={"content": "again"},
            headers=me.headers,
        )
        assert later.status_code == 201, later.text

        async def pruned() -> bool | None:
            return True if (await client.get(url, headers=me.headers)).status_code == 404 else None

        await eventually(pruned, "the frames to be pruned")
        stored = await messages(client, me, reply["conversation_id"])
        assert [m["content"].strip() for m in stored if m["role"] == "assistant"] == [
            "Hi.",
            "Again.",
        ]


async def _turn_count(client: httpx.AsyncClient, who: Account, conv: str) -> int:
    return sum(m["role"] == "assistant" for m in await messages(client, who, conv))


async def test_an_idempotency_key_never_runs_a_second_turn(
    model_client: httpx.AsyncClient, fake_model: tuple[FakeModel, str]
) -> None:
    model, _ = fake_model
    me = await register(model_client)
    model.steps = [Step(text="Once."), Step(text="Twice.")]
    key = {**me.headers, "Idempotency-Key": f"chat-{uuid.uuid4()}"}
    first = await model_client.post(f"{CHAT}/messages", json={"content": "hi"}, headers=key)
    second = await model_client.post(f"{CHAT}/messages", json={"content": "hi"}, headers=key)
    assert first.status_code == second.status_code == 201, second.text
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    conv = first.json()["conversation_id"]
    assert await _turn_count(model_client, me, conv) == 1
    assert len(model.requests) == 1
    other = await model_client.post(f"{CHAT}/messages", json={"content": "ho"}, headers=key)
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"

    # Streamed: the repeat replays the first turn's frames from the store.
    model.steps = [Step(text="Streamed once.")]
    skey = {**me.headers, "Idempotency-Key": f"chat-{uuid.uuid4()}"}
    path = f"{CHAT}/conversations/{conv}/messages"
    body = {"content": "again", "stream": True}
    streamed = await model_client.post(path, json=body, headers=skey)
    replayed = await model_client.post(path, json=body, headers=skey)
    assert replayed.status_code == 200
    assert replayed.headers["idempotent-replayed"] == "true"
    assert await _parse(replayed) == await _parse(streamed)
    assert await _turn_count(model_client, me, conv) == 2
    assert len(model.requests) == 2

    # Retry is keyed too.
    model.steps = [Step(status=500)]
    failed = await model_client.post(path, json={"content": "fail"}, headers=me.headers)
    assert failed.status_code == 502
    model.steps = [Step(text="Recovered.")]
    rkey = {**me.headers, "Idempotency-Key": f"chat-{uuid.uuid4()}"}
    retry = f"{CHAT}/conversations/{conv}/retry"
    retried = await model_client.post(retry, headers=rkey)
    again = await model_client.post(retry, headers=rkey)
    assert retried.status_code == again.status_code == 201, again.text
    assert again.json()["id"] == retried.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert await _turn_count(model_client, me, conv) == 4
