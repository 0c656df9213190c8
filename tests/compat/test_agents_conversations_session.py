"""The Agents SDK's own ``OpenAIConversationsSession``, unchanged, on convstore's ``/v1`` (a
live ``convstore serve``, both databases): a ``Runner`` over several turns with tool calls and
reasoning replays what the SDK's ``SQLiteSession`` replays (as OpenAI's server normalises it:
ids assigned, string content as parts), and pop/clear/limit behave as the SDK expects."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import Agent, Runner, SQLiteSession, function_tool
from agents.items import ModelResponse
from agents.memory import OpenAIConversationsSession, Session
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseReasoningItem,
)
from openai.types.responses.response_reasoning_item import Summary

from tests.compat.conftest import Program


def _text(n: int, text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id=f"msg_model_{n}",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )


def _call(n: int, name: str, arguments: dict[str, Any]) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(
        id=f"fc_model_{n}",
        type="function_call",
        call_id=f"call_{n}",
        name=name,
        arguments=json.dumps(arguments),
        status="completed",
    )


def _thought(n: int, text: str) -> ResponseReasoningItem:
    return ResponseReasoningItem(
        id=f"rs_model_{n}",
        type="reasoning",
        summary=[Summary(type="summary_text", text=text)],
    )


SCRIPT: list[list[Any]] = [
    # turn 1: think, call a tool, then answer
    [_thought(1, "the user wants a task"), _call(1, "add_task", {"title": "buy milk"})],
    [_text(2, "Added “buy milk”.")],
    # turn 2: a plain answer
    [_text(3, "Anything else? 🙂")],
    # turn 3: two tool calls in one response, then the answer
    [_call(4, "add_task", {"title": "call mum"}), _call(5, "list_tasks", {})],
    [_text(6, "You have 2 tasks.")],
]
TURNS = ["add buy milk", "thanks; '); DROP TABLE messages; --", "add call mum and list them"]


class ScriptedModel(Model):
    """Answers from :data:`SCRIPT` in order and records the input of every call."""

    def __init__(self) -> None:
        self.inputs: list[list[dict[str, Any]]] = []
        self._next = 0

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        given = [input] if isinstance(input, str) else input
        self.inputs.append([dict(i) if not isinstance(i, str) else {"content": i} for i in given])
        output = SCRIPT[self._next]
        self._next += 1
        return ModelResponse(output=output, usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError("the script is not streamed")


@function_tool
def add_task(title: str) -> str:
    """Add a task."""
    return json.dumps({"added": title})


@function_tool
def list_tasks() -> str:
    """List the tasks."""
    return json.dumps(["buy milk", "call mum"])


async def _run(session: Session) -> ScriptedModel:
    model = ScriptedModel()
    agent = Agent(
        name="tasks", instructions="Manage tasks.", model=model, tools=[add_task, list_tasks]
    )
    for text in TURNS:
        await Runner.run(agent, text, session=session)
    return model


def _as_server_stores(item: dict[str, Any]) -> dict[str, Any]:
    """An input item as OpenAI's server gives it back: without the ids and statuses the
    client drops or the server assigns, string content as one text part."""
    item = {k: v for k, v in item.items() if k not in ("id", "status", "provider_data")}
    if isinstance(item.get("content"), str):
        kind = "output_text" if item.get("role") == "assistant" else "input_text"
        part: dict[str, Any] = {"type": kind, "text": item["content"]}
        if kind == "output_text":
            part["annotations"] = []
        item["content"] = [part]
    item.setdefault("type", "message")
    return item


async def test_a_runner_replays_what_sqlite_session_replays(program: Program) -> None:
    async with program.async_client() as client:
        remote = await _run(OpenAIConversationsSession(openai_client=client))
    local = await _run(SQLiteSession("reference"))
    assert len(remote.inputs) == len(local.inputs) == len(SCRIPT)
    for theirs, ours in zip(local.inputs, remote.inputs, strict=True):
        assert [_as_server_stores(i) for i in ours] == [_as_server_stores(i) for i in theirs]
    # The last call saw the whole history: three user turns, the reasoning, every call and output.
    kinds = [i.get("type", "message") for i in remote.inputs[-1]]
    assert kinds.count("function_call") == 3
    assert kinds.count("function_call_output") == 3
    assert kinds.count("reasoning") == 1


async def test_session_calls_behave_as_the_sdk_expects(program: Program) -> None:
    async with program.async_client() as client:
        session = OpenAIConversationsSession(openai_client=client)
        assert await session.get_items() == []
        items: list[Any] = [
            {"role": "user", "content": f"message {n} — ünïcödé ✓"} for n in range(30)
        ]
        await session.add_items(items[:25])
        await session.add_items(items[25:])
        got = await session.get_items()
        assert [i["content"][0]["text"] for i in got] == [i["content"] for i in items]
        latest = await session.get_items(limit=3)
        assert [i["content"][0]["text"] for i in latest] == [i["content"] for i in items[-3:]]
        popped = await session.pop_item()
        assert popped is not None
        assert popped["content"][0]["text"] == items[-1]["content"]
        assert len(await session.get_items()) == 29
        conversation_id = await session._get_session_id()
        await session.clear_session()
        assert await session.get_items() == []
        assert await session._get_session_id() != conversation_id
        # The cleared conversation is soft-deleted: the same key no longer reads it.
        with pytest.raises(Exception, match="404|not found"):
            await client.conversations.retrieve(conversation_id)
