"""The Agents SDK session on SQLite and PostgreSQL: a scripted run replays to the model exactly
what the SDK's own ``SQLiteSession`` replays, and the behaviours the SDK tests its sessions
for (limits, pop, clear, unicode, SQL-looking text, concurrent writers, isolation)."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from agents import Agent, RunConfig, Runner, SQLiteSession, function_tool
from agents.memory import Session, SessionSettings
from agents.testing import ScriptedModel, assistant_message, function_call
from openai.types.responses import ResponseReasoningItem
from openai.types.responses.response_reasoning_item import Summary

from convstore import Store, UserScope
from convstore.errors import InvalidInput
from convstore.integrations.agents import ConvstoreSession
from tests.support.api import Account

TURNS = ["Add milk to my list", "And eggs, please", "What is on my list?"]


def _reasoning(n: int, text: str) -> ResponseReasoningItem:
    return ResponseReasoningItem(
        id=f"rs_{n}",
        type="reasoning",
        summary=[Summary(text=text, type="summary_text")],
        encrypted_content=f"opaque-{n}",
    )


def _script() -> list[Any]:
    """Two model calls a turn: reasoning and a tool call, then the answer. The assistant
    messages all carry the scripted model's one id, as models without ids do."""
    return [
        [_reasoning(1, "Add a task."), function_call("add", {"title": "milk"}, call_id="c1")],
        [assistant_message("Added **milk**.")],
        [_reasoning(2, "Another."), function_call("add", {"title": "eggs ü"}, call_id="c2")],
        [assistant_message("Added eggs.")],
        [function_call("list_tasks", {}, call_id="c3")],
        [assistant_message("milk, eggs ü")],
    ]


async def _run_script(session: Session, *, streamed: bool = False) -> tuple[list[Any], list[str]]:
    """Run the three turns; what the model received each call, and the final outputs."""
    tasks: list[str] = []

    @function_tool
    def add(title: str) -> str:
        """Add a task."""
        tasks.append(title)
        return json.dumps({"id": len(tasks), "title": title})

    @function_tool
    def list_tasks() -> list[str]:
        """The tasks."""
        return list(tasks)

    model = ScriptedModel(_script())
    agent = Agent(
        name="tasks", instructions="You keep tasks.", model=model, tools=[add, list_tasks]
    )
    outputs = []
    for turn in TURNS:
        if streamed:
            stream = Runner.run_streamed(agent, turn, session=session)
            async for _ in stream.stream_events():
                pass
            outputs.append(str(stream.final_output))
        else:
            result = await Runner.run(agent, turn, session=session)
            outputs.append(str(result.final_output))
    model.assert_complete()
    return [copy.deepcopy(call.input) for call in model.calls], outputs


def _session(scope: UserScope, **kwargs: Any) -> ConvstoreSession:
    return ConvstoreSession(f"s-{uuid.uuid4().hex}", scope, **kwargs)


def _message(text: str, role: str = "user") -> dict[str, Any]:
    return {"role": role, "content": text}


async def test_is_an_agents_session(me: UserScope) -> None:
    session = _session(me, session_settings=SessionSettings(limit=3))
    assert isinstance(session, Session)
    assert session.session_settings == SessionSettings(limit=3)


async def test_runner_replays_what_sqlite_session_replays(me: UserScope, tmp_path: Path) -> None:
    reference = SQLiteSession("same", tmp_path / "reference.db")
    try:
        expected_inputs, expected_outputs = await _run_script(reference)
        expected_items = await reference.get_items()
    finally:
        reference.close()
    session = _session(me)
    inputs, outputs = await _run_script(session)
    assert outputs == expected_outputs == ["Added **milk**.", "Added eggs.", "milk, eggs ü"]
    assert len(inputs) == 6
    assert inputs == expected_inputs
    # The third turn's first call replays both earlier turns, reasoning and calls included.
    kinds = [i.get("type", "message") for i in inputs[4]]
    assert kinds.count("reasoning") == 2
    assert kinds.count("function_call_output") == 2
    assert await session.get_items() == expected_items
    # Another session object on the same scope and id finds the same conversation.
    again = ConvstoreSession(session.session_id, me)
    assert await again.get_items(limit=2) == expected_items[-2:]
    assert again.conversation_id == session.conversation_id


async def test_streamed_runs_replay_what_sqlite_session_replays(
    me: UserScope, tmp_path: Path
) -> None:
    reference = SQLiteSession("same", tmp_path / "reference.db")
    try:
        expected = await _run_script(reference, streamed=True)
        expected_items = await reference.get_items()
    finally:
        reference.close()
    session = _session(me)
    assert await _run_script(session, streamed=True) == expected
    assert await session.get_items() == expected_items


async def test_run_config_limit_and_settings_limit(me: UserScope) -> None:
    session = _session(me, session_settings=SessionSettings(limit=2))
    items = [_message(f"m{n}") for n in range(5)]
    await session.add_items(items)
    assert await session.get_items() == items[-2:]
    assert await session.get_items(limit=4) == items[-4:]
    assert await session.get_items(limit=0) == []
    assert await session.get_items(limit=50) == items
    with pytest.raises(InvalidInput) as caught:
        await session.get_items(limit=-1)
    assert caught.value.errors[0].field == "limit"
    model = ScriptedModel([[assistant_message("ok")]])
    agent = Agent(name="a", model=model)
    await Runner.run(
        agent, "next", session=session, run_config=RunConfig(session_settings=SessionSettings(3))
    )
    assert model.calls[0].input == [*items[-3:], _message("next")]


async def test_empty_session_reads_nothing_and_writes_nothing(store: Store, me: UserScope) -> None:
    session = _session(me)
    assert await session.get_items() == []
    assert await session.pop_item() is None
    await session.clear_session()
    await session.add_items([])
    assert session.conversation_id is None
    page = await me.conversations.list(limit=100)
    assert all(c.key != session.session_id for c in page.items)


async def test_pop_and_clear(me: UserScope) -> None:
    session = _session(me)
    items = [_message("question"), _message("answer", "assistant"), _message("more")]
    await session.add_items(items)
    assert await session.pop_item() == items[2]
    assert await session.pop_item() == items[1]
    assert await session.get_items() == items[:1]
    assert await session.pop_item() == items[0]
    assert await session.pop_item() is None
    await session.add_items(items)
    await session.clear_session()
    assert await session.get_items() == []
    await session.add_items(items[:1])
    assert await session.get_items() == items[:1]


async def test_concurrent_pops_return_different_items(me: UserScope) -> None:
    session = _session(me)
    items = [_message(f"m{n}") for n in range(6)]
    await session.add_items(items)
    popped = await asyncio.gather(*(session.pop_item() for _ in range(8)))
    got = [p for p in popped if p is not None]
    assert sorted(json.dumps(p) for p in got) == sorted(json.dumps(i) for i in items)
    assert await session.get_items() == []


async def test_unicode_and_sql_looking_text(me: UserScope) -> None:
    session = _session(me)
    items = [
        _message("こんにちは 😀 — ü\u200b"),
        _message("'; DROP TABLE messages; --", "assistant"),
        _message("Robert'); DELETE FROM users WHERE ('1'='1"),
        _message('{"$ne": null} \\ % _ \\x00-ish'),
    ]
    await session.add_items(copy.deepcopy(items))
    assert await session.get_items() == items


async def test_every_kind_is_stored_as_given(me: UserScope) -> None:
    session = _session(me)
    items = [
        _message("hi"),
        {"type": "reasoning", "id": "rs_9", "summary": [], "encrypted_content": "x"},
        {"type": "function_call", "id": "fc_9", "call_id": "c", "name": "f", "arguments": "{}"},
        {
            "type": "function_call_output",
            "call_id": "c",
            "output": [{"type": "input_text", "text": "ok"}],
        },
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"q": "x"}},
        {"id": "__fake_id__", "type": "message", "role": "assistant", "content": "a"},
        {"id": "__fake_id__", "type": "message", "role": "assistant", "content": "b"},
    ]
    await session.add_items(copy.deepcopy(items))
    await session.add_items(copy.deepcopy(items[-1:]))  # an id the session has already
    assert await session.get_items() == [*items, items[-1]]


async def test_a_bad_batch_stores_nothing(me: UserScope) -> None:
    session = _session(me)
    await session.add_items([_message("kept")])
    with pytest.raises(InvalidInput) as caught:
        await session.add_items([_message("lost"), {"type": "function_call", "call_id": "c"}])
    assert caught.value.errors[0].field == "items.1.name"
    assert await session.get_items() == [_message("kept")]


async def test_concurrent_writers_lose_nothing(me: UserScope) -> None:
    """First writes race too: one conversation, every batch whole and in order."""
    session_id = f"s-{uuid.uuid4().hex}"
    sessions = [ConvstoreSession(session_id, me) for _ in range(4)]
    batches = [[_message(f"{b}:{n}") for n in range(5)] for b in range(12)]
    await asyncio.gather(*(sessions[b % 4].add_items(batch) for b, batch in enumerate(batches)))
    got = await sessions[0].get_items()
    assert len(got) == 60
    for b in range(12):
        texts = [i["content"] for i in got if i["content"].startswith(f"{b}:")]
        assert texts == [f"{b}:{n}" for n in range(5)]
    for b in range(12):  # each batch is contiguous: one transaction
        start = got.index(batches[b][0])
        assert got[start : start + 5] == batches[b]
    assert len({s.conversation_id for s in sessions}) == 1


async def test_two_users_one_session_id_are_separate(me: UserScope, them: UserScope) -> None:
    session_id = f"shared-{uuid.uuid4().hex}"
    mine, theirs = ConvstoreSession(session_id, me), ConvstoreSession(session_id, them)
    await mine.add_items([_message("mine")])
    assert await theirs.get_items() == []
    assert await theirs.pop_item() is None
    await theirs.clear_session()
    await theirs.add_items([_message("theirs")])
    assert await mine.get_items() == [_message("mine")]
    assert await theirs.get_items() == [_message("theirs")]
    assert mine.conversation_id != theirs.conversation_id


async def test_conversation_deleted_elsewhere_starts_afresh(me: UserScope) -> None:
    session = _session(me)
    await session.add_items([_message("old")])
    assert session.conversation_id is not None
    await me.conversations.delete(session.conversation_id)
    assert await session.get_items() == []
    await session.add_items([_message("new")])
    assert await session.get_items() == [_message("new")]


async def test_items_read_equal_through_the_library_and_the_api(
    store: Store, client: httpx.AsyncClient, alice: Account
) -> None:
    scope = store.for_user(alice.id)
    session = ConvstoreSession(f"s-{uuid.uuid4().hex}", scope)
    _, _ = await _run_script(session)
    items = await session.get_items()
    assert session.conversation_id is not None
    page = await scope.items.list(session.conversation_id, limit=100)
    assert [i.item for i in page.items] == items
    conv = await client.get(
        "/api/v1/conversations", params={"key": session.session_id}, headers=alice.headers
    )
    assert conv.status_code == 200, conv.text
    assert [c["id"] for c in conv.json()["items"]] == [str(session.conversation_id)]
    listed = await client.get(
        f"/api/v1/conversations/{session.conversation_id}/items?limit=100", headers=alice.headers
    )
    assert listed.status_code == 200, listed.text
    assert [i["item"] for i in listed.json()["items"]] == items


async def test_from_url_opens_and_closes_its_store(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'quick.db'}"
    async with await ConvstoreSession.from_url(
        "chat-1", url=url, user="ada@example.com", migrate=True
    ) as session:
        await session.add_items([_message("hello")])
        user_id = session.scope.user_id
    async with await ConvstoreSession.from_url("chat-1", url=url, user="ADA@example.com") as again:
        assert again.scope.user_id == user_id
        assert await again.get_items() == [_message("hello")]
    by_id = await ConvstoreSession.from_url("chat-1", url=url, user=str(user_id))
    try:
        assert await by_id.get_items() == [_message("hello")]
    finally:
        await by_id.close()


async def test_histories_longer_than_a_page(me: UserScope) -> None:
    session = _session(me)
    items = [_message(f"m{n}") for n in range(1_150)]
    await session.add_items(items[:1_000])
    await session.add_items(items[1_000:])
    assert await session.get_items() == items
    assert await session.get_items(limit=1_020) == items[-1_020:]
    assert await session.get_items(limit=5_000) == items
