"""Chat turns with the ``openai`` provider (the official SDK) against a local server that speaks
the Chat Completions wire format, streamed tool-call deltas included."""

from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from convstore.assistant.external import Tool
from tests.chat.conftest import openai_settings
from tests.support.api import Account, client_for, register, running_app
from tests.support.fake_llm import FakeModel, Step


async def _messages(client: httpx.AsyncClient, who: Account, conv: str) -> list[dict[str, Any]]:
    page = await client.get(f"/api/v1/conversations/{conv}/messages?limit=100", headers=who.headers)
    items: list[dict[str, Any]] = page.json()["items"]
    return items


def _frames(body: str) -> list[tuple[str, dict[str, Any]]]:
    frames = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        frames.append((lines["event"], json.loads(lines["data"])))
    return frames


async def test_a_turn_with_a_tool_call_is_stored_whole(
    model_client: httpx.AsyncClient, fake_model: tuple[FakeModel, str]
) -> None:
    model, _ = fake_model
    me = await register(model_client)
    model.steps = [
        Step(tool_calls=[("add_task", {"title": "buy milk", "priority": "high"})]),
        Step(text="Added buy milk."),
    ]
    answer = await model_client.post(
        "/api/v1/chat/messages", json={"content": "add buy milk"}, headers=me.headers
    )
    assert answer.status_code == 201, answer.text
    reply = answer.json()
    assert reply["role"] == "assistant"
    assert reply["status"] == "complete"
    assert reply["content"].strip() == "Added buy milk."
    assert answer.headers["location"].endswith(f"/messages/{reply['id']}")
    (call,) = reply["tool_calls"]
    assert (call["name"], call["arguments"]) == (
        "add_task",
        {"title": "buy milk", "priority": "high"},
    )
    (result,) = reply["tool_results"]
    assert result["tool_call_id"] == call["id"]
    assert not result["is_error"]
    assert reply["usage"]["total_tokens"] == 38  # two streamed steps of 19
    stored = await _messages(model_client, me, reply["conversation_id"])
    assert [(m["seq"], m["role"], m["status"]) for m in stored] == [
        (1, "user", "sent"),
        (2, "assistant", "complete"),
    ]
    assert stored[1] == reply
    conv = await model_client.get(
        f"/api/v1/conversations/{reply['conversation_id']}", headers=me.headers
    )
    assert conv.json()["title"] == "add buy milk"
    task_id = result["output"]["id"]
    events = await model_client.get(f"/api/v1/tasks/{task_id}/events", headers=me.headers)
    assert events.status_code == 200, events.text
    (created,) = events.json()
    assert (created["conversation_id"], created["message_id"], created["tool_call_id"]) == (
        reply["conversation_id"],
        reply["id"],
        call["id"],
    )
    sent = model.requests[0]
    assert {t["function"]["name"] for t in sent["tools"]} == {
        "add_task",
        "list_tasks",
        "complete_task",
        "reopen_task",
        "update_task",
        "delete_task",
    }
    assert sent["messages"][-1] == {"role": "user", "content": "add buy milk"}
    assert sent["stream"] is True
    follow_up = model.requests[1]["messages"]
    assert follow_up[-2]["tool_calls"][0]["id"] == call["id"]
    assert follow_up[-1]["role"] == "tool"
    assert follow_up[-1]["tool_call_id"] == call["id"]


async def test_the_next_turn_sends_the_stored_history_back(
    model_client: httpx.AsyncClient, fake_model: tuple[FakeModel, str]
) -> None:
    model, _ = fake_model
    me = await register(model_client)
    model.steps = [
        Step(tool_calls=[("add_task", {"title": "a"})]),
        Step(text="ok"),
        Step(text="You have one task."),
    ]
    first = (
        await model_client.post(
            "/api/v1/chat/messages", json={"content": "add a"}, headers=me.headers
        )
    ).json()
    conv = first["conversation_id"]
    await model_client.post(
        f"/api/v1/chat/conversations/{conv}/messages",
        json={"content": "what is left?"},
        headers=me.headers,
    )
    roles = [m["role"] for m in model.requests[2]["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]


async def test_the_model_is_told_the_users_local_time(
    model_client: httpx.AsyncClient, fake_model: tuple[FakeModel, str]
) -> None:
    model, _ = fake_model
    me = await register(model_client)
    conv = await model_client.post(
        "/api/v1/conversations", json={"metadata": {"timezone": "Asia/Tokyo"}}, headers=me.headers
    )
    model.steps = [Step(text="ok")]
    before = datetime.now(ZoneInfo("Asia/Tokyo"))
    answer = await model_client.post(
        f"/api/v1/chat/conversations/{conv.json()['id']}/messages",
        json={"content": "add a task for tomorrow"},
        headers=me.headers,
    )
    after = datetime.now(ZoneInfo("Asia/Tokyo"))
    assert answer.status_code == 201, answer.text
    system = model.requests[-1]["messages"][0]
    assert system["role"] == "system"
    assert "(Asia/Tokyo, UTC+0900)" in system["content"]
    assert any(f"{day:%A %Y-%m-%d}" in system["content"] for day in (before, after))


async def test_streamed_turn_sends_chunks_then_done(
    model_client: httpx.AsyncClient, fake_model: tuple[FakeModel, str]
) -> None:
    model, _ = fake_model
    me = await register(model_client)
    model.steps = [Step(text="one two three four")]
    answer = await model_client.post(
        "/api/v1/chat/messages", json={"content": "count", "stream": True}, headers=me.headers
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    frames = _frames(answer.text)
    kinds = [kind for kind, _ in frames]
    assert kinds[-1] == "done"
    assert set(kinds[:-1]) == {"chunk"}
    assert len(kinds) == 5
    chunks = [data for kind, data in frames if kind == "chunk"]
    assert [c["index"] for c in chunks] == [0, 1, 2, 3]
    done = frames[-1][1]["message"]
    assert "".join(c["delta"] for c in chunks) == done["content"]
    stored = await _messages(model_client, me, done["conversation_id"])
    assert stored[-1] == done


async def test_provider_failure_keeps_the_user_message_and_can_be_retried(
    model_client: httpx.AsyncClient, fake_model: tuple[FakeModel, str]
) -> None:
    model, _ = fake_model
    me = await register(model_client)
    model.steps = [Step(status=500)]
    failed = await model_client.post(
        "/api/v1/chat/messages", json={"content": "hello"}, headers=me.headers
    )
    assert failed.status_code == 502
    assert failed.headers["content-type"] == "application/problem+json"
    assert failed.json()["code"] == "provider_error"
    assert failed.json()["title"] == "Bad gateway"
    conv = (await model_client.get("/api/v1/conversations", headers=me.headers)).json()
    conv_id = conv["items"][0]["id"]
    stored = await _messages(model_client, me, conv_id)
    assert [(m["role"], m["status"]) for m in stored] == [("user", "sent"), ("assistant", "error")]
    assert stored[1]["metadata"]["error"]["code"] == "provider_error"
    model.steps = [Step(text="Hi!")]
    retried = await model_client.post(
        f"/api/v1/chat/conversations/{conv_id}/retry", headers=me.headers
    )
    assert retried.status_code == 201
    assert retried.json()["status"] == "complete"
    assert [m["role"] for m in model.requests[-1]["messages"]] == ["system", "user"]
    again = await model_client.post(
        f"/api/v1/chat/conversations/{conv_id}/retry", headers=me.headers
    )
    assert again.status_code == 422


async def test_streamed_failure_ends_with_an_error_frame(
    model_client: httpx.AsyncClient, fake_model: tuple[FakeModel, str]
) -> None:
    model, _ = fake_model
    me = await register(model_client)
    model.steps = [Step(status=503)]
    answer = await model_client.post(
        "/api/v1/chat/messages", json={"content": "hi", "stream": True}, headers=me.headers
    )
    ((kind, frame),) = _frames(answer.text)
    assert kind == "error"
    assert frame["code"] == "provider_error"
    assert frame["retryable"]
    stored = await _messages(model_client, me, frame["conversation_id"])
    assert stored[-1]["id"] == frame["message_id"]
    assert stored[-1]["status"] == "error"


async def test_a_slow_provider_times_out_with_504(
    database_url: str, fake_model: tuple[FakeModel, str]
) -> None:
    model, base_url = fake_model
    settings = openai_settings(database_url, base_url, openai_timeout_seconds=0.5)
    async with running_app(settings) as app, client_for(app) as client:
        me = await register(client)
        model.steps = [Step(text="late", delay=3)]
        answer = await client.post(
            "/api/v1/chat/messages", json={"content": "hi"}, headers=me.headers
        )
        assert answer.status_code == 504
        assert answer.json()["code"] == "provider_timeout"
        assert answer.json()["title"] == "Gateway timeout"


async def test_bad_tool_arguments_come_back_to_the_model_as_errors(
    model_client: httpx.AsyncClient, fake_model: tuple[FakeModel, str]
) -> None:
    model, _ = fake_model
    me = await register(model_client)
    model.steps = [
        Step(tool_calls=[("add_task", {"title": "  "}), ("no_such_tool", {})]),
        Step(text="Sorry."),
    ]
    answer = await model_client.post(
        "/api/v1/chat/messages", json={"content": "x"}, headers=me.headers
    )
    assert answer.status_code == 201
    results = answer.json()["tool_results"]
    assert [r["is_error"] for r in results] == [True, True]
    assert "title" in results[0]["output"]["error"]
    assert "unknown tool" in results[1]["output"]["error"]
    tool_messages = [m for m in model.requests[1]["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 2
    tasks = await model_client.get("/api/v1/tasks", headers=me.headers)
    assert tasks.json()["items"] == []


async def test_a_model_cannot_reach_another_users_tasks(
    model_client: httpx.AsyncClient, fake_model: tuple[FakeModel, str]
) -> None:
    model, _ = fake_model
    alice, bob = await register(model_client), await register(model_client)
    task = (
        await model_client.post("/api/v1/tasks", json={"title": "alice's"}, headers=alice.headers)
    ).json()
    model.steps = [
        Step(
            tool_calls=[
                ("complete_task", {"task_id": task["id"]}),
                ("update_task", {"task_id": task["id"], "title": "pwned"}),
                ("delete_task", {"task_id": task["id"]}),
                ("complete_task", {"task_id": task["id"], "user_id": str(alice.id)}),
            ]
        ),
        Step(text="done"),
    ]
    answer = await model_client.post(
        "/api/v1/chat/messages", json={"content": "steal"}, headers=bob.headers
    )
    outputs = [r["output"]["error"] for r in answer.json()["tool_results"]]
    assert outputs[:3] == ["task not found"] * 3
    assert "user_id" in outputs[3]
    after = await model_client.get(f"/api/v1/tasks/{task['id']}", headers=alice.headers)
    assert after.json() == task


async def test_chatting_in_another_users_conversation_is_404(
    model_client: httpx.AsyncClient, fake_model: tuple[FakeModel, str]
) -> None:
    alice, bob = await register(model_client), await register(model_client)
    conv = await model_client.post("/api/v1/conversations", json={}, headers=alice.headers)
    conv_id = conv.json()["id"]
    for path in (
        f"/api/v1/chat/conversations/{conv_id}/messages",
        f"/api/v1/chat/conversations/{conv_id}/retry",
    ):
        answer = await model_client.post(path, json={"content": "hi"}, headers=bob.headers)
        assert answer.status_code in (404, 422)
        if "retry" not in path:
            assert answer.status_code == 404
    missing = await model_client.post(
        f"/api/v1/chat/conversations/{uuid.uuid4()}/retry", headers=bob.headers
    )
    assert missing.status_code == 404
    assert fake_model[0].requests == []


@pytest.mark.parametrize(
    "body",
    [
        {"content": ""},
        {"content": "x" * 10_001},
        {"content": "a\x00b"},
        {"content": "hi", "role": "system"},
    ],
)
async def test_bad_chat_input_is_422_and_writes_nothing(
    model_client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    me = await register(model_client)
    answer = await model_client.post("/api/v1/chat/messages", json=body, headers=me.headers)
    assert answer.status_code == 422
    convs = await model_client.get("/api/v1/conversations", headers=me.headers)
    assert convs.json()["items"] == []


async def test_item_rows_in_the_history_read_as_chat_completions_messages(
    model_client: httpx.AsyncClient, fake_model: tuple[FakeModel, str]
) -> None:
    model, _ = fake_model
    me = await register(model_client)
    conv = await model_client.post("/api/v1/conversations", json={}, headers=me.headers)
    conv_id = conv.json()["id"]
    items = [
        {"type": "message", "role": "user", "content": "what is the weather?"},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "look it up"}]},
        {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": '{"at": 1}'},
        {"type": "reasoning", "summary": []},
        {"type": "function_call", "call_id": "c2", "name": "clock", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        {
            "type": "function_call_output",
            "call_id": "c2",
            "output": [{"type": "input_text", "text": "9:00"}],
        },
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        {"type": "message", "role": "assistant", "content": "Sunny at nine."},
    ]
    added = await model_client.post(
        f"/api/v1/conversations/{conv_id}/items", json={"items": items}, headers=me.headers
    )
    assert added.status_code == 201, added.text
    model.steps = [Step(text="Anything else?")]
    answer = await model_client.post(
        f"/api/v1/chat/conversations/{conv_id}/messages",
        json={"content": "thanks"},
        headers=me.headers,
    )
    assert answer.status_code == 201, answer.text
    sent = model.requests[-1]["messages"]
    assert [m["role"] for m in sent] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
        "user",
    ]
    calls = sent[2]["tool_calls"]
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("c1", "weather", '{"at": 1}'),
        ("c2", "clock", "{}"),
    ]
    assert sent[3] == {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
    assert sent[4]["tool_call_id"] == "c2"
    assert json.loads(sent[4]["content"]) == [{"type": "input_text", "text": "9:00"}]
    assert sent[5] == {"role": "assistant", "content": "Sunny at nine."}


SECRET = "sk-live-4f2a9c"


async def test_provider_errors_reach_clients_generic_and_the_log_in_full(
    model_client: httpx.AsyncClient,
    fake_model: tuple[FakeModel, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    model, base_url = fake_model
    me = await register(model_client)
    leak = f"invalid key {SECRET} for https://internal.example/v1"
    model.steps = [Step(status=500, error_message=leak)]
    with caplog.at_level("WARNING", logger="convstore.assistant"):
        failed = await model_client.post(
            "/api/v1/chat/messages", json={"content": "hello"}, headers=me.headers
        )
    assert failed.status_code == 502
    assert failed.json()["detail"] == "the assistant provider failed; retry"
    assert SECRET not in failed.text
    assert base_url not in failed.text
    assert SECRET in caplog.text
    conv_id = (
        failed.json().get("conversation_id")
        or (await model_client.get("/api/v1/conversations", headers=me.headers)).json()["items"][0][
            "id"
        ]
    )
    stored = await _messages(model_client, me, conv_id)
    assert SECRET not in json.dumps(stored)
    model.steps = [Step(status=401, error_message=leak)]
    streamed = await model_client.post(
        "/api/v1/chat/messages", json={"content": "hi", "stream": True}, headers=me.headers
    )
    ((kind, frame),) = _frames(streamed.text)
    assert kind == "error"
    assert frame["detail"] == "the assistant provider failed; retry"
    assert SECRET not in streamed.text
    assert "127.0.0.1" not in streamed.text


async def test_an_unreachable_provider_is_not_named_to_clients(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = openai_settings(database_url, "http://127.0.0.1:9/v1")
    async with running_app(settings) as app, client_for(app) as client:
        me = await register(client)
        with caplog.at_level("WARNING", logger="convstore.assistant"):
            answer = await client.post(
                "/api/v1/chat/messages", json={"content": "hi"}, headers=me.headers
            )
        assert answer.status_code == 502
        assert answer.json()["detail"] == "the assistant provider failed; retry"
        assert "127.0.0.1:9" not in answer.text
        assert "127.0.0.1:9" in caplog.text


async def test_metadata_model_picks_among_the_allowed_models(
    database_url: str, fake_model: tuple[FakeModel, str]
) -> None:
    model, base_url = fake_model
    models = {
        "big": {"provider": "openai", "model": "fake-big"},
        "offline": {"provider": "builtin"},
    }
    settings = openai_settings(
        database_url, base_url, assistant_provider="builtin", chat_models=models
    )
    async with running_app(settings) as app, client_for(app) as client:
        me = await register(client)

        async def conversation(metadata: dict[str, Any]) -> str:
            made = await client.post(
                "/api/v1/conversations", json={"metadata": metadata}, headers=me.headers
            )
            assert made.status_code == 201, made.text
            return str(made.json()["id"])

        big = await conversation({"model": "big"})
        model.steps = [Step(text="From the big one.")]
        answer = await client.post(
            f"/api/v1/chat/conversations/{big}/messages", json={"content": "hi"}, headers=me.headers
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["usage"]["model"] == "fake-big"
        assert model.requests[-1]["model"] == "fake-big"

        offline = await conversation({"model": "offline"})
        answer = await client.post(
            f"/api/v1/chat/conversations/{offline}/messages",
            json={"content": "add buy milk"},
            headers=me.headers,
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["usage"]["model"] == "builtin"
        assert len(model.requests) == 1

        default = await conversation({})
        answer = await client.post(
            f"/api/v1/chat/conversations/{default}/messages",
            json={"content": "what's left?"},
            headers=me.headers,
        )
        assert answer.json()["usage"]["model"] == "builtin"

        unknown = await conversation({"model": "gpt-9"})
        refused = await client.post(
            f"/api/v1/chat/conversations/{unknown}/messages",
            json={"content": "hi"},
            headers=me.headers,
        )
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["field"] == "metadata.model"
        assert "big, offline" in refused.json()["errors"][0]["message"]
        stored = await client.get(f"/api/v1/conversations/{unknown}/messages", headers=me.headers)
        assert stored.json()["items"] == []  # nothing half-written

    # Without a list of models, metadata.model is the application's own: the provider answers.
    plain = openai_settings(database_url, base_url, assistant_provider="builtin")
    async with running_app(plain) as app, client_for(app) as client:
        me = await register(client)
        made = await client.post(
            "/api/v1/conversations", json={"metadata": {"model": "gpt-4o-mini"}}, headers=me.headers
        )
        answer = await client.post(
            f"/api/v1/chat/conversations/{made.json()['id']}/messages",
            json={"content": "what's left?"},
            headers=me.headers,
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["usage"]["model"] == "builtin"


WEATHER_SERVER = Path(__file__).resolve().parents[1] / "support" / "mcp_weather.py"


async def test_the_model_calls_a_tool_of_a_configured_mcp_server(
    database_url: str, fake_model: tuple[FakeModel, str]
) -> None:
    model, base_url = fake_model
    server = {"name": "weather", "command": sys.executable, "args": [str(WEATHER_SERVER)]}
    settings = openai_settings(database_url, base_url, mcp_servers=[server])
    async with running_app(settings) as app, client_for(app) as client:
        me = await register(client)
        model.steps = [
            Step(tool_calls=[("weather__forecast", {"city": "Paris"})]),
            Step(tool_calls=[("weather__forecast", {"city": "Atlantis"})]),
            Step(text="Sunny in Paris."),
        ]
        answer = await client.post(
            "/api/v1/chat/messages",
            json={"content": "weather in Paris?", "stream": True},
            headers=me.headers,
        )
        assert answer.status_code == 200, answer.text
        frames = [data for _, data in _frames(answer.text)]
        reply = frames[-1]["message"]
        assert reply["status"] == "complete", reply
        offered = {t["function"]["name"] for t in model.requests[0]["tools"]}
        assert {"weather__forecast", "add_task"} <= offered
        assert [c["name"] for c in reply["tool_calls"]] == ["weather__forecast"] * 2
        ok, failed = reply["tool_results"]
        assert (ok["is_error"], ok["output"]) == (False, {"city": "Paris", "sky": "sunny"})
        assert failed["is_error"]
        assert "no forecast under the sea" in failed["output"]["error"]
        results = [f for f in frames if f["type"] == "tool_result"]
        assert [(r["ok"], r["name"]) for r in results] == [
            (True, "weather__forecast"),
            (False, "weather__forecast"),
        ]
        sent = model.requests[1]["messages"][-1]
        assert sent["role"] == "tool"
        assert json.loads(sent["content"]) == {"city": "Paris", "sky": "sunny"}


async def test_library_tools_are_offered_to_the_model(
    database_url: str, fake_model: tuple[FakeModel, str]
) -> None:
    model, base_url = fake_model
    seen: list[dict[str, Any]] = []

    async def lookup(arguments: dict[str, Any]) -> Any:
        seen.append(arguments)
        return {"stock": 3}

    tool = Tool(
        name="stock",
        description="How many of an item are in stock.",
        parameters={"type": "object", "properties": {"item": {"type": "string"}}},
        call=lookup,
    )
    async with (
        running_app(openai_settings(database_url, base_url), tools=[tool]) as app,
        client_for(app) as client,
    ):
        me = await register(client)
        model.steps = [Step(tool_calls=[("stock", {"item": "milk"})]), Step(text="Three left.")]
        answer = await client.post(
            "/api/v1/chat/messages", json={"content": "milk?"}, headers=me.headers
        )
        assert answer.status_code == 201, answer.text
        assert seen == [{"item": "milk"}]
        assert answer.json()["tool_results"][0]["output"] == {"stock": 3}
