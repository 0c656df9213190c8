"""The LangChain chat message history on SQLite and PostgreSQL: messages round-trip equal
(tool calls, tool results, ids, metadata), are items every surface reads, and a
``RunnableWithMessageHistory`` gives the model what LangChain's in-memory history gives it,
through the async methods and the sync ones (from plain code and from a running loop)."""

from __future__ import annotations

import asyncio
import copy
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from langchain_core._api.deprecation import LangChainDeprecationWarning
from langchain_core.chat_history import BaseChatMessageHistory, InMemoryChatMessageHistory
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_chunk_to_message,
)
from langchain_core.messages.tool import tool_call
from langchain_core.outputs import ChatResult
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory
from pydantic import Field

from convstore import Store, UserScope
from convstore.integrations.langchain import ConvstoreChatMessageHistory, from_items
from tests.support.api import Account

MESSAGES: list[BaseMessage] = [
    SystemMessage(content="You keep tasks.", id="sys-1"),
    HumanMessage(content="Add milk, ü 😀", id="h-1", name="ada", additional_kwargs={"k": [1]}),
    AIMessage(
        content="",
        id="ai-1",
        tool_calls=[tool_call(name="add", args={"title": "milk", "n": 2}, id="call_1")],
        response_metadata={"model_name": "fake", "finish_reason": "tool_calls"},
        usage_metadata={"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
    ),
    ToolMessage(content='{"id": 1}', tool_call_id="call_1", name="add", id="t-1"),
    AIMessage(
        content="Adding two more.",
        tool_calls=[
            tool_call(name="add", args={"title": "eggs"}, id="call_2"),
            tool_call(name="add", args={}, id="call_3"),
        ],
    ),
    ToolMessage(content="ok", tool_call_id="call_2"),
    ToolMessage(content="no", tool_call_id="call_3", status="error", artifact={"code": 7}),
    AIMessage(content="Added **milk** and eggs."),
    HumanMessage(
        content=[{"type": "text", "text": "and"}, {"type": "image_url", "image_url": "x"}]
    ),
    HumanMessage(content=["a plain string part", {"type": "text", "text": "b"}]),
    ChatMessage(role="critic", content="'; DROP TABLE messages; --"),
    AIMessage(content=""),
]


def _history(scope: UserScope, **kwargs: Any) -> ConvstoreChatMessageHistory:
    return ConvstoreChatMessageHistory(f"lc-{uuid.uuid4().hex}", scope, **kwargs)


async def test_messages_round_trip_equal(me: UserScope) -> None:
    history = _history(me)
    assert await history.aget_messages() == []
    await history.aadd_messages(copy.deepcopy(MESSAGES[:5]))
    await history.aadd_messages(copy.deepcopy(MESSAGES[5:]))
    assert await history.aget_messages() == MESSAGES
    again = ConvstoreChatMessageHistory(history.session_id, me)
    assert await again.aget_messages() == MESSAGES
    await history.aclear()
    assert await history.aget_messages() == []
    assert await again.aget_messages() == []


async def test_messages_are_items_other_surfaces_read(
    store: Store, client: httpx.AsyncClient, alice: Account
) -> None:
    scope = store.for_user(alice.id)
    history = _history(scope)
    await history.aadd_messages(copy.deepcopy(MESSAGES[:8]))
    conv = await scope.conversations.get_by_key(history.session_id)
    page = await scope.items.list(conv.id, limit=100)
    plain = [{k: v for k, v in i.item.items() if k != "langchain"} for i in page.items]
    assert plain == [
        {"type": "message", "role": "system", "content": "You keep tasks."},
        {"type": "message", "role": "user", "content": "Add milk, ü 😀"},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "add",
            "arguments": '{"title": "milk", "n": 2}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": '{"id": 1}'},
        {"type": "message", "role": "assistant", "content": "Adding two more."},
        {
            "type": "function_call",
            "call_id": "call_2",
            "name": "add",
            "arguments": '{"title": "eggs"}',
        },
        {"type": "function_call", "call_id": "call_3", "name": "add", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_2", "output": "ok"},
        {"type": "function_call_output", "call_id": "call_3", "output": "no"},
        {"type": "message", "role": "assistant", "content": "Added **milk** and eggs."},
    ]
    listed = await client.get(
        f"/api/v1/conversations/{conv.id}/items?limit=100", headers=alice.headers
    )
    assert [i["item"] for i in listed.json()["items"]] == [i.item for i in page.items]
    # The native message view shows the same turn.
    messages = await scope.messages.list(conv.id, limit=100)
    assert [m.role for m in messages.items][:4] == ["system", "user", "assistant", "tool"]


async def test_items_from_other_surfaces_read_as_messages(me: UserScope) -> None:
    conv = await me.conversations.create(key=f"lc-{uuid.uuid4().hex}")
    assert conv.key is not None
    await me.items.add(
        conv.id,
        [
            {"role": "developer", "content": "Be brief."},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
            {"type": "reasoning", "summary": []},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Sure", "annotations": []}],
            },
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a": 1}'},
            {"type": "function_call_output", "call_id": "c1", "output": "done"},
            {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "not json"},
        ],
    )
    await me.messages.append(conv.id, role="assistant", content="A native reply")
    history = ConvstoreChatMessageHistory(conv.key, me)
    assert await history.aget_messages() == [
        SystemMessage(content="Be brief."),
        HumanMessage(content="Hi"),
        AIMessage(content="Sure", tool_calls=[tool_call(name="f", args={"a": 1}, id="c1")]),
        ToolMessage(content="done", tool_call_id="c1"),
        AIMessage(content="", tool_calls=[tool_call(name="g", args={}, id="c2")]),
        AIMessage(content="A native reply"),
    ]


def test_from_items_keeps_a_group_cut_short() -> None:
    first = {
        "type": "message",
        "role": "assistant",
        "content": "x",
        "langchain": {"type": "ai", "items": 3},
    }
    call = {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}
    after = {"type": "message", "role": "user", "content": "next"}
    assert from_items([first, call, after]) == [
        AIMessage(content="x", tool_calls=[tool_call(name="f", args={}, id="c")]),
        HumanMessage(content="next"),
    ]


def test_from_items_reads_a_broken_langchain_key_as_a_plain_item() -> None:
    items = [
        {
            "type": "message",
            "role": "user",
            "content": "hi",
            "langchain": {"type": "human", "additional_kwargs": "x"},
        },
        {"type": "message", "role": "assistant", "content": "yo", "langchain": "not an object"},
        {
            "type": "function_call_output",
            "call_id": "c",
            "output": "x",
            "langchain": {"type": "tool", "status": 3},
        },
        {"type": "langchain.message", "message": {"type": "nonsense"}},
    ]
    assert from_items(items) == [
        HumanMessage(content="hi"),
        AIMessage(content="yo"),
        ToolMessage(content="x", tool_call_id="c"),
    ]


async def test_two_users_one_session_id_are_separate(me: UserScope, them: UserScope) -> None:
    session_id = f"shared-{uuid.uuid4().hex}"
    mine = ConvstoreChatMessageHistory(session_id, me)
    theirs = ConvstoreChatMessageHistory(session_id, them)
    await mine.aadd_messages([HumanMessage(content="mine")])
    assert await theirs.aget_messages() == []
    await theirs.aclear()
    assert await mine.aget_messages() == [HumanMessage(content="mine")]


async def test_concurrent_writers_lose_nothing(me: UserScope) -> None:
    session_id = f"lc-{uuid.uuid4().hex}"
    batches = [[HumanMessage(content=f"{b}:{n}") for n in range(3)] for b in range(8)]
    await asyncio.gather(
        *(ConvstoreChatMessageHistory(session_id, me).aadd_messages(b) for b in batches)
    )
    got = await ConvstoreChatMessageHistory(session_id, me).aget_messages()
    assert len(got) == 24
    for batch in batches:
        start = got.index(batch[0])
        assert got[start : start + 3] == batch


class RecordingFakeChatModel(GenericFakeChatModel):
    """LangChain's scripted chat model, recording the messages it is given."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        self.seen.append(copy.deepcopy(messages))
        return super()._generate(messages, *args, **kwargs)


TURNS: list[list[BaseMessage]] = [
    [HumanMessage(content="Add milk")],
    [ToolMessage(content='{"id": 1}', tool_call_id="call_1", name="add")],
    [HumanMessage(content="And eggs and bread?")],
    [
        ToolMessage(content="ok", tool_call_id="call_2"),
        ToolMessage(content="failed", tool_call_id="call_3", status="error"),
    ],
    [HumanMessage(content="Thanks")],
]


def _replies() -> list[AIMessage]:
    return [
        AIMessage(
            content="",
            tool_calls=[tool_call(name="add", args={"title": "milk"}, id="call_1")],
            response_metadata={"model_name": "fake"},
        ),
        AIMessage(content="Added milk."),
        AIMessage(
            content="Adding both.",
            tool_calls=[
                tool_call(name="add", args={"title": "eggs"}, id="call_2"),
                tool_call(name="add", args={"title": "bread"}, id="call_3"),
            ],
        ),
        AIMessage(content="Eggs added; bread failed."),
        AIMessage(content="You're welcome."),
    ]


def _chain(
    get_history: Callable[[str], BaseChatMessageHistory],
    replies: list[AIMessage] | None = None,
) -> tuple[RunnableWithMessageHistory, RecordingFakeChatModel]:
    model = RecordingFakeChatModel(messages=iter(replies or _replies()))
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "You keep tasks."),
            MessagesPlaceholder("history"),
            MessagesPlaceholder("input"),
        ]
    )
    with warnings.catch_warnings():  # deprecated for LangGraph's persistence, until 2.0
        warnings.simplefilter("ignore", LangChainDeprecationWarning)
        chain = RunnableWithMessageHistory(
            prompt | model,
            get_history,
            input_messages_key="input",
            history_messages_key="history",
        )
    return chain, model


def _without_ids(messages: list[BaseMessage]) -> list[BaseMessage]:
    """Messages with the run ids LangChain gives model outputs taken out (they differ by run),
    a streamed reply's chunks added up as the message they make."""
    return [message_chunk_to_message(m).model_copy(update={"id": None}) for m in messages]


def _reference(
    replies: list[AIMessage] | None = None, *, stream: bool = False
) -> tuple[list[list[BaseMessage]], list[BaseMessage]]:
    """The script through LangChain's own in-memory history (deprecated since 1.6.4, like the
    base class, which keeps working until 2.0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LangChainDeprecationWarning)
        memory = InMemoryChatMessageHistory()
    chain, model = _chain(lambda _: memory, replies)
    for turn in TURNS:
        given = {"input": turn}
        config: Any = {"configurable": {"session_id": "x"}}
        if stream:
            list(chain.stream(given, config=config))
        else:
            chain.invoke(given, config=config)
    return [_without_ids(s) for s in model.seen], _without_ids(memory.messages)


async def test_runnable_async_matches_in_memory_history(me: UserScope) -> None:
    expected_seen, expected_history = _reference()
    session_id = f"lc-{uuid.uuid4().hex}"
    chain, model = _chain(lambda sid: ConvstoreChatMessageHistory(sid, me))
    for turn in TURNS:
        await chain.ainvoke({"input": turn}, config={"configurable": {"session_id": session_id}})
    assert [_without_ids(s) for s in model.seen] == expected_seen
    stored = await ConvstoreChatMessageHistory(session_id, me).aget_messages()
    assert _without_ids(stored) == expected_history
    assert len(stored) == 11
    assert all(m.id is not None for m in stored if isinstance(m, AIMessage))


async def test_runnable_streamed_stores_the_whole_reply(me: UserScope) -> None:
    """Streaming hands the history the reply's chunks added up: stored as the message."""
    replies = _replies()
    replies[0].content = "Adding milk."  # the scripted model streams no reply without text
    expected_seen, expected_history = _reference(copy.deepcopy(replies), stream=True)
    session_id = f"lc-{uuid.uuid4().hex}"
    chain, model = _chain(lambda sid: ConvstoreChatMessageHistory(sid, me), replies)
    for turn in TURNS:
        config: Any = {"configurable": {"session_id": session_id}}
        chunks = [c async for c in chain.astream({"input": turn}, config=config)]
        assert chunks
    assert [_without_ids(s) for s in model.seen] == expected_seen
    stored = await ConvstoreChatMessageHistory(session_id, me).aget_messages()
    assert stored[-1].content == "You're welcome."
    # In memory the history keeps the chunks the stream added up; convstore the message.
    assert _without_ids(stored) == expected_history


async def test_runnable_sync_from_a_worker_thread_matches(me: UserScope) -> None:
    """Sync ``invoke`` in plain code (no loop in its thread), the store on the test's loop."""
    expected_seen, expected_history = _reference()
    session_id = f"lc-{uuid.uuid4().hex}"
    loop = asyncio.get_running_loop()
    chain, model = _chain(lambda sid: ConvstoreChatMessageHistory(sid, me, loop=loop))

    def run() -> None:
        for turn in TURNS:
            chain.invoke({"input": turn}, config={"configurable": {"session_id": session_id}})

    await asyncio.to_thread(run)
    assert [_without_ids(s) for s in model.seen] == expected_seen
    history = ConvstoreChatMessageHistory(session_id, me)
    assert _without_ids(await history.aget_messages()) == expected_history


async def test_sync_methods_on_the_stores_own_loop_refuse(me: UserScope) -> None:
    history = _history(me)
    with pytest.raises(RuntimeError, match="aget_messages"):
        history.add_messages([HumanMessage(content="x")])
    with pytest.raises(RuntimeError, match="from_url"):
        _ = history.messages
    assert await history.aget_messages() == []


def test_from_url_in_plain_sync_code(database_url: str) -> None:
    session_id = f"lc-{uuid.uuid4().hex}"
    email = f"lc-{uuid.uuid4().hex[:8]}@example.com"
    with ConvstoreChatMessageHistory.from_url(session_id, url=database_url, user=email) as history:
        history.add_messages(copy.deepcopy(MESSAGES))
        assert history.messages == MESSAGES
        chain, model = _chain(
            lambda sid: ConvstoreChatMessageHistory(sid, history.scope, loop=history.loop)
        )
        history.clear()
        for turn in TURNS:
            chain.invoke({"input": turn}, config={"configurable": {"session_id": session_id}})
        assert len(history.messages) == 11
    with ConvstoreChatMessageHistory.from_url(
        session_id, url=database_url, user=email.upper()
    ) as again:
        assert again.scope.user_id == history.scope.user_id
        assert len(again.messages) == 11
        again.clear()
        assert again.messages == []


async def test_from_url_inside_a_running_loop(database_url: str) -> None:
    """Its store runs on its own thread: sync and async calls both work on any loop."""
    email = f"lc-{uuid.uuid4().hex[:8]}@example.com"
    history = ConvstoreChatMessageHistory.from_url("chat", url=database_url, user=email)
    try:
        history.add_messages([HumanMessage(content="sync")])
        await history.aadd_messages([AIMessage(content="async")])
        assert history.messages == await history.aget_messages()
        assert [m.content for m in history.messages] == ["sync", "async"]
        await history.aclear()
        assert history.messages == []
    finally:
        history.close()
    with pytest.raises(RuntimeError, match="closed"):
        _ = history.messages
    with pytest.raises(RuntimeError, match="closed"):
        await history.aadd_messages([HumanMessage(content="late")])
