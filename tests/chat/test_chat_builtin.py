"""Chat turns end to end with the default ``builtin`` assistant, on each backend: as JSON, as
Server-Sent Events and over a WebSocket (a real uvicorn server and the ``websockets`` client).

Each turn is checked where it lands: the stored messages (roles, ``seq``, tool calls and their
results, usage, status), the tasks, and the task events that name the tool call behind them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import connect

from tests.chat.helpers import (
    WAIT_SECONDS,
    assert_chunks_then_done,
    closed_code,
    events,
    messages,
    receive,
    socket,
    sse_frames,
    tasks,
    turn_frames,
)
from tests.support.api import Account, api_settings, client_for, register, running_app
from tests.support.live import serving

CHAT = "/api/v1/chat"


async def say(
    client: httpx.AsyncClient, who: Account, content: str, conv: str | None = None
) -> dict[str, Any]:
    """One JSON turn (in a new conversation when ``conv`` is None); the stored reply."""
    path = f"{CHAT}/conversations/{conv}/messages" if conv else f"{CHAT}/messages"
    answer = await client.post(path, json={"content": content}, headers=who.headers)
    assert answer.status_code == 201, answer.text
    reply: dict[str, Any] = answer.json()
    return reply


def calls(reply: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(c["name"], c["arguments"]) for c in reply["tool_calls"] or ()]


def outputs(reply: dict[str, Any]) -> dict[str, Any]:
    """Tool results by tool call id, each checked to answer a call of this reply."""
    ids = [c["id"] for c in reply["tool_calls"] or ()]
    results = {r["tool_call_id"]: r for r in reply["tool_results"] or ()}
    assert list(results) == ids
    return results


# ---- JSON ------------------------------------------------------------------------------------


async def test_a_json_turn_stores_the_message_and_the_reply_with_its_tool_call(
    client: httpx.AsyncClient, alice: Account
) -> None:
    answer = await client.post(
        f"{CHAT}/messages", json={"content": "add buy milk tomorrow"}, headers=alice.headers
    )
    assert answer.status_code == 201, answer.text
    reply = answer.json()
    conv = reply["conversation_id"]
    assert answer.headers["location"] == f"/api/v1/conversations/{conv}/messages/{reply['id']}"
    assert (reply["role"], reply["status"], reply["seq"]) == ("assistant", "complete", 2)
    assert "Buy milk" in reply["content"]

    (call,) = reply["tool_calls"]
    assert call["id"].startswith("call_")
    assert (call["type"], call["name"]) == ("function", "add_task")
    args = call["arguments"]
    assert isinstance(args, dict)
    assert (args["title"], args["priority"], args["tags"]) == ("Buy milk", "medium", [])
    assert datetime.fromisoformat(args["due_at"]).utcoffset() is not None
    result = outputs(reply)[call["id"]]
    assert result["is_error"] is False
    task = result["output"]
    assert (task["title"], task["completed"]) == ("Buy milk", False)
    assert datetime.fromisoformat(task["due_at"]) == datetime.fromisoformat(args["due_at"])
    assert reply["usage"]["model"] == "builtin"
    assert reply["usage"]["tool_calls"] == 1
    assert reply["usage"]["output_chars"] == len(reply["content"])

    stored = await messages(client, alice, conv)
    assert [(m["seq"], m["role"], m["status"], m["content"]) for m in stored] == [
        (1, "user", "sent", "add buy milk tomorrow"),
        (2, "assistant", "complete", reply["content"]),
    ]
    assert stored[0]["tool_calls"] is None
    assert stored[1] == reply
    one = await client.get(answer.headers["location"], headers=alice.headers)
    assert one.json() == reply

    conversation = await client.get(f"/api/v1/conversations/{conv}", headers=alice.headers)
    assert conversation.json()["title"] == "add buy milk tomorrow"
    assert conversation.json()["messages_count"] == 2

    (listed,) = await tasks(client, alice)
    assert listed == task
    (created,) = await events(client, alice, task["id"])
    assert created["action"] == "created"
    assert (created["conversation_id"], created["message_id"], created["tool_call_id"]) == (
        conv,
        reply["id"],
        call["id"],
    )


async def test_a_new_conversation_is_titled_from_the_first_message(
    client: httpx.AsyncClient, alice: Account
) -> None:
    long = "hello there, " + "what can you do for me " * 20
    reply = await say(client, alice, long.strip())
    assert reply["tool_calls"] is None
    assert reply["content"]
    convs = (await client.get("/api/v1/conversations", headers=alice.headers)).json()["items"]
    (conv,) = convs
    assert conv["id"] == reply["conversation_id"]
    assert conv["title"]
    assert long.startswith(conv["title"].rstrip("…").rstrip())
    assert len(conv["title"]) < len(long)
    # The next turn goes to the same conversation, not a new one.
    await say(client, alice, "what is left?", conv["id"])
    again = (await client.get("/api/v1/conversations", headers=alice.headers)).json()["items"]
    assert [c["id"] for c in again] == [conv["id"]]
    assert again[0]["messages_count"] == 4


async def test_add_list_and_complete_the_second_one_over_several_turns(
    client: httpx.AsyncClient, alice: Account
) -> None:
    first = await say(client, alice, "add buy milk tomorrow")
    conv = first["conversation_id"]
    second = await say(client, alice, "add call mom, walk the dog", conv)
    assert [(n, a["title"]) for n, a in calls(second)] == [
        ("add_task", "Call mom"),
        ("add_task", "Walk the dog"),
    ]
    listing = await say(client, alice, "list", conv)
    assert calls(listing) == [("list_tasks", {"status": "pending"})]
    shown = next(iter(outputs(listing).values()))["output"]
    assert [t["title"] for t in shown] == ["Buy milk", "Call mom", "Walk the dog"]
    assert "2. Call mom" in listing["content"]

    done = await say(client, alice, "complete the second one", conv)
    ((name, args),) = calls(done)
    assert (name, args) == ("complete_task", {"task_id": shown[1]["id"]})
    (result,) = outputs(done).values()
    assert (result["output"]["title"], result["output"]["completed"]) == ("Call mom", True)
    assert "Call mom" in done["content"]

    left = await say(client, alice, "what is left?", conv)
    assert [t["title"] for t in next(iter(outputs(left).values()))["output"]] == [
        "Buy milk",
        "Walk the dog",
    ]

    stored = await messages(client, alice, conv)
    assert [m["seq"] for m in stored] == list(range(1, 11))
    assert [m["role"] for m in stored] == ["user", "assistant"] * 5
    assert [m["content"] for m in stored[::2]] == [
        "add buy milk tomorrow",
        "add call mom, walk the dog",
        "list",
        "complete the second one",
        "what is left?",
    ]
    assert all(m["status"] == "complete" for m in stored[1::2])
    assert stored[1::2] == [first, second, listing, done, left]

    everything = await tasks(client, alice)
    assert [(t["title"], t["completed"]) for t in everything] == [
        ("Buy milk", False),
        ("Call mom", True),
        ("Walk the dog", False),
    ]
    completed = await tasks(client, alice, "&completed=true")
    assert [t["id"] for t in completed] == [shown[1]["id"]]
    history = await events(client, alice, shown[1]["id"])
    assert [e["action"] for e in history] == ["created", "completed"]
    add_call = second["tool_calls"][0]
    complete_call = done["tool_calls"][0]
    assert [(e["conversation_id"], e["message_id"], e["tool_call_id"]) for e in history] == [
        (conv, second["id"], add_call["id"]),
        (conv, done["id"], complete_call["id"]),
    ]
    # Listing changes nothing, so it records nothing.
    assert [e["action"] for e in await events(client, alice, shown[0]["id"])] == ["created"]


async def test_there_is_nothing_to_retry_after_a_reply_that_completed(
    client: httpx.AsyncClient, alice: Account
) -> None:
    reply = await say(client, alice, "add water the plants")
    conv = reply["conversation_id"]
    answer = await client.post(f"{CHAT}/conversations/{conv}/retry", headers=alice.headers)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert len(await messages(client, alice, conv)) == 2
    assert len(await tasks(client, alice)) == 1


# ---- Server-Sent Events ------------------------------------------------------------------------


async def test_a_streamed_turn_sends_chunks_then_done_matching_the_stored_rows(
    client: httpx.AsyncClient, alice: Account
) -> None:
    first = await say(client, alice, "add buy milk")
    conv = first["conversation_id"]
    answer = await client.post(
        f"{CHAT}/conversations/{conv}/messages",
        json={"content": "add pay rent, call the bank", "stream": True},
        headers=alice.headers,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.headers["cache-control"] == "no-cache"
    frames = sse_frames(answer.text)
    done = assert_chunks_then_done([data for _, data in frames])
    assert len(frames) > 2  # the reply streams in several pieces
    assert done["seq"] == 4
    assert [a["title"] for _, a in calls(done)] == ["Pay rent", "Call the bank"]
    results = outputs(done)
    assert all(not r["is_error"] for r in results.values())

    stored = await messages(client, alice, conv)
    assert [(m["seq"], m["role"]) for m in stored] == [
        (1, "user"),
        (2, "assistant"),
        (3, "user"),
        (4, "assistant"),
    ]
    assert stored[2]["content"] == "add pay rent, call the bank"
    assert stored[3] == done
    titles = {t["title"]: t["id"] for t in await tasks(client, alice)}
    assert list(titles) == ["Buy milk", "Pay rent", "Call the bank"]
    for call in done["tool_calls"]:
        task_id = results[call["id"]]["output"]["id"]
        (created,) = await events(client, alice, task_id)
        assert (created["message_id"], created["tool_call_id"]) == (done["id"], call["id"])


async def test_a_streamed_turn_can_start_a_conversation(
    client: httpx.AsyncClient, alice: Account
) -> None:
    answer = await client.post(
        f"{CHAT}/messages",
        json={"content": "what's on my list?", "stream": True},
        headers=alice.headers,
    )
    assert answer.status_code == 200, answer.text
    done = assert_chunks_then_done([data for _, data in sse_frames(answer.text)])
    assert calls(done) == [("list_tasks", {"status": "pending"})]
    conv = await client.get(
        f"/api/v1/conversations/{done['conversation_id']}", headers=alice.headers
    )
    assert conv.json()["title"] == "what's on my list?"
    assert [m["id"] for m in await messages(client, alice, done["conversation_id"])][-1] == done[
        "id"
    ]


# ---- WebSocket -------------------------------------------------------------------------------


@pytest.fixture
async def ws_url(app: FastAPI) -> AsyncIterator[str]:
    """The session's app (its lifespan already entered) served live; the chat socket's URL."""
    async with serving(app) as url:
        yield url.replace("http://", "ws://") + f"{CHAT}/ws"


async def test_a_websocket_chat_streams_turns_and_stores_them(
    ws_url: str, client: httpx.AsyncClient, alice: Account
) -> None:
    async with socket(ws_url, alice.access_token) as ws:
        first = assert_chunks_then_done(await turn_frames(ws, content="add buy milk tomorrow"))
        conv = first["conversation_id"]
        second = assert_chunks_then_done(
            await turn_frames(ws, content="add call mom", conversation_id=conv)
        )
        listing = assert_chunks_then_done(
            await turn_frames(ws, content="what is left?", conversation_id=conv)
        )
        done = assert_chunks_then_done(
            await turn_frames(ws, content="mark 2 done", conversation_id=conv)
        )
    assert [a["title"] for _, a in calls(first) + calls(second)] == ["Buy milk", "Call mom"]
    shown = next(iter(outputs(listing).values()))["output"]
    assert [t["title"] for t in shown] == ["Buy milk", "Call mom"]
    assert calls(done) == [("complete_task", {"task_id": shown[1]["id"]})]

    stored = await messages(client, alice, conv)
    assert [(m["seq"], m["role"]) for m in stored] == [
        (n, "user" if n % 2 else "assistant") for n in range(1, 9)
    ]
    assert stored[1::2] == [first, second, listing, done]
    conversation = await client.get(f"/api/v1/conversations/{conv}", headers=alice.headers)
    assert conversation.json()["title"] == "add buy milk tomorrow"
    assert [(t["title"], t["completed"]) for t in await tasks(client, alice)] == [
        ("Buy milk", False),
        ("Call mom", True),
    ]
    history = await events(client, alice, shown[1]["id"])
    assert [(e["action"], e["message_id"], e["tool_call_id"]) for e in history] == [
        ("created", second["id"], second["tool_calls"][0]["id"]),
        ("completed", done["id"], done["tool_calls"][0]["id"]),
    ]


async def test_a_websocket_can_sign_in_with_the_authorization_header(
    ws_url: str, client: httpx.AsyncClient, alice: Account
) -> None:
    async with connect(ws_url, additional_headers=alice.headers, close_timeout=2) as ws:
        done = assert_chunks_then_done(await turn_frames(ws, content="add read a book"))
    assert [t["title"] for t in await tasks(client, alice)] == ["Read a book"]
    assert (await messages(client, alice, done["conversation_id"]))[-1] == done


@pytest.mark.parametrize(
    "first",
    [
        {"type": "message", "content": "add buy milk"},
        {"type": "auth", "token": "not-a-token"},
        {"type": "auth"},
        ["auth"],
    ],
    ids=["message-first", "bad-token", "no-token", "not-an-object"],
)
async def test_a_websocket_without_valid_auth_gets_an_error_frame_and_4401(
    ws_url: str, first: Any
) -> None:
    async with socket(ws_url) as ws:
        await ws.send(json.dumps(first))
        frame = await receive(ws)
        assert frame["type"] == "error"
        assert frame["code"] == "invalid_credentials"
        assert frame["retryable"] is False
        assert await closed_code(ws) == 4401


async def test_a_websocket_first_frame_that_is_not_json_is_refused(ws_url: str) -> None:
    async with socket(ws_url) as ws:
        await ws.send("hello")
        frame = await receive(ws)
        assert (frame["type"], frame["code"]) == ("error", "invalid_credentials")
        assert await closed_code(ws) == 4401


async def test_a_bad_websocket_message_is_an_error_frame_and_the_socket_stays_open(
    ws_url: str, client: httpx.AsyncClient, alice: Account
) -> None:
    async with socket(ws_url, alice.access_token) as ws:
        for bad in (
            json.dumps({"type": "message", "content": ""}),
            json.dumps({"type": "message", "content": "hi", "role": "system"}),
            json.dumps({"type": "message", "content": "hi", "conversation_id": "nope"}),
            "not json",
        ):
            await ws.send(bad)
            frame = await receive(ws)
            assert (frame["type"], frame["code"], frame["retryable"]) == (
                "error",
                "invalid_input",
                False,
            ), bad
        missing = await turn_frames(ws, content="hi", conversation_id=str(uuid.uuid4()))
        assert [(f["type"], f["code"]) for f in missing] == [("error", "not_found")]
        done = assert_chunks_then_done(await turn_frames(ws, content="add fix the bike"))
    assert (await client.get("/api/v1/conversations", headers=alice.headers)).json()["items"][0][
        "id"
    ] == done["conversation_id"]
    assert [t["title"] for t in await tasks(client, alice)] == ["Fix the bike"]


async def test_a_deeply_nested_websocket_frame_is_an_error_frame_and_the_socket_stays_open(
    ws_url: str, client: httpx.AsyncClient, alice: Account
) -> None:
    """A frame nested past 64 levels (or too deep for the decoder at all) is answered with an
    error frame naming the limit; the socket goes on serving turns."""
    async with socket(ws_url, alice.access_token) as ws:
        for deep in (
            '{"type": "message", "content": ' + "[" * 3_000 + "]" * 3_000 + "}",
            "[" * 10_000,
            '{"type": "message", "content": "hi", "x": ' + "[" * 64 + "]" * 64 + "}",
        ):
            await ws.send(deep)
            frame = await receive(ws)
            assert (frame["type"], frame["code"], frame["retryable"]) == (
                "error",
                "invalid_input",
                False,
            ), frame
            assert "nested deeper than 64 levels" in frame["detail"], frame
        done = assert_chunks_then_done(await turn_frames(ws, content="add water the plants"))
    assert [t["title"] for t in await tasks(client, alice)] == ["Water the plants"]
    assert (await messages(client, alice, done["conversation_id"]))[-1] == done


async def test_a_deeply_nested_first_frame_is_refused_like_any_non_auth_frame(
    ws_url: str,
) -> None:
    async with socket(ws_url) as ws:
        await ws.send("[" * 10_000)
        frame = await receive(ws)
        assert (frame["type"], frame["code"]) == ("error", "invalid_credentials")
        assert await closed_code(ws) == 4401


# ---- isolation -------------------------------------------------------------------------------


async def test_another_user_cannot_chat_in_a_conversation_or_reach_its_tasks(
    ws_url: str, client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    first = await say(client, alice, "add buy milk, call mom and pay rent")
    conv = first["conversation_id"]
    await say(client, alice, "list", conv)
    before_tasks = await tasks(client, alice)
    before_messages = await messages(client, alice, conv)
    assert len(before_tasks) == 3

    for path, body in [
        (f"{CHAT}/conversations/{conv}/messages", {"content": "complete 1"}),
        (f"{CHAT}/conversations/{conv}/messages", {"content": "complete 2", "stream": True}),
        (f"{CHAT}/conversations/{conv}/retry", {}),
    ]:
        answer = await client.post(path, json=body, headers=bob.headers)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["code"] == "not_found"
    async with socket(ws_url, bob.access_token) as ws:
        refused = await turn_frames(ws, content="mark 2 done", conversation_id=conv)
        assert [(f["type"], f["code"]) for f in refused] == [("error", "not_found")]

    # Whatever bob says in his own conversation acts on his own list only: with none of his own
    # tasks there is nothing to act on, and with a namesake of alice's task it is his that changes.
    alice_ids = [t["id"] for t in before_tasks]
    reply = await say(client, bob, "list everything")
    bob_conv = reply["conversation_id"]
    assert next(iter(outputs(reply).values()))["output"] == []
    for utterance in [
        "complete 1",
        "mark buy milk done",
        "delete call mom",
        "rename pay rent to hacked",
        f"complete {alice_ids[0]}",
        f"delete task {alice_ids[1]}",
    ]:
        reply = await say(client, bob, utterance, bob_conv)
        assert calls(reply) == [], utterance
    own = await say(client, bob, "add buy milk", bob_conv)
    own_id = next(iter(outputs(own).values()))["output"]["id"]
    for utterance in ["mark buy milk done", "reopen it", "delete it"]:
        reply = await say(client, bob, utterance, bob_conv)
        assert [a["task_id"] for _, a in calls(reply)] == [own_id], utterance
    assert await tasks(client, bob) == []
    assert await tasks(client, alice) == before_tasks
    assert await messages(client, alice, conv) == before_messages
    for task_id in alice_ids:
        assert [e["action"] for e in await events(client, alice, task_id)] == ["created"]
        assert (
            await client.get(f"/api/v1/tasks/{task_id}", headers=bob.headers)
        ).status_code == 404
    assert await messages(client, bob, bob_conv)
    assert (
        await client.get(f"/api/v1/conversations/{conv}/messages", headers=bob.headers)
    ).status_code == 404


async def test_a_websocket_over_the_rate_limit_gets_an_error_frame_and_stays_open(
    database_url: str,
) -> None:
    settings = api_settings(database_url, rate_limit_user="2/minute")
    async with running_app(settings) as app, client_for(app) as client, serving(app) as url:
        alice = await register(client)
        async with socket(url.replace("http://", "ws://") + f"{CHAT}/ws", alice.access_token) as ws:
            first = assert_chunks_then_done(await turn_frames(ws, content="add one"))
            conv = first["conversation_id"]
            assert_chunks_then_done(await turn_frames(ws, content="add two", conversation_id=conv))
            (limited,) = await turn_frames(ws, content="add three", conversation_id=conv)
            assert (limited["type"], limited["code"], limited["retryable"]) == (
                "error",
                "rate_limited",
                True,
            )
            assert "retry in" in limited["detail"]
            async with asyncio.timeout(WAIT_SECONDS):
                await (await ws.ping())  # still open
        # Read through the library: every API request of alice's would count against the limit.
        stored = await app.state.store.for_user(alice.id).messages.history(conv)
        assert [(m.role, m.content) for m in stored][::2] == [
            ("user", "add one"),
            ("user", "add two"),
        ]
