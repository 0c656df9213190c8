"""Group commit: appends that wait for another (SQLite's one writer; on PostgreSQL another
append to the same conversation) are committed together, each still all or none by itself
(convstore.db.Grouping, docs/performance.md sixth round)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import pytest
from sqlalchemy import text

import convstore
from convstore import Store, UserScope
from convstore.conversations.schemas import MessageRead
from tests.factories import make_conversation, make_messages, tool_turn


@contextlib.asynccontextmanager
async def _writes_held(store: Store, conversation_id: uuid.UUID) -> AsyncIterator[None]:
    """Make appends to the conversation wait until the block ends: on SQLite the process's
    write lock is held, on PostgreSQL the conversation's row."""
    async with store.db.write() as conn:
        if store.db.dialect == "postgresql":
            await conn.execute(
                text("SELECT 1 FROM conversations WHERE id = :id FOR UPDATE"),
                {"id": conversation_id},
            )
        yield


async def _queued(
    store: Store, conversation_id: uuid.UUID, appends: list[Coroutine[Any, Any, MessageRead]]
) -> list[asyncio.Task[MessageRead]]:
    """Start ``appends`` one after the other while writes are held; they all wait."""
    tasks = []
    for append in appends:
        tasks.append(asyncio.create_task(append))
        await asyncio.sleep(0.05)  # each in its place in the queue
    return tasks


def _grouped(store: Store) -> tuple[int, int]:
    turns = store.db.grouping.turns
    return turns.groups, turns.units


async def test_appends_that_waited_are_committed_together_in_order(
    store: Store, me: UserScope
) -> None:
    conv = await make_conversation(me)
    groups, units = _grouped(store)
    async with _writes_held(store, conv.id):
        tasks = await _queued(
            store,
            conv.id,
            [me.messages.append(conv.id, role="user", content=f"m{i}") for i in range(6)],
        )
        assert not any(task.done() for task in tasks)
    stored = [await task for task in tasks]
    assert [m.seq for m in stored] == [1, 2, 3, 4, 5, 6], "arrival order"
    history = await me.messages.history(conv.id)
    assert [(m.seq, m.content) for m in history] == [(i + 1, f"m{i}") for i in range(6)]
    assert (await me.conversations.get(conv.id)).messages_count == 6
    groups_now, units_now = _grouped(store)
    assert units_now - units == 6
    assert groups_now - groups < 6, "some appends shared a commit"


async def test_an_append_refused_in_a_group_is_refused_alone(store: Store, me: UserScope) -> None:
    conv = await make_conversation(me)
    await me.messages.append_many(conv.id, tool_turn("call_1"))  # seqs 1-4
    other = await make_conversation(me)
    (stranger,) = await make_messages(me, other.id, 1)
    async with _writes_held(store, conv.id):
        good = [me.messages.append(conv.id, role="user", content=f"ok{i}") for i in range(3)]
        tasks = await _queued(
            store,
            conv.id,
            [
                good[0],
                good[1],
                me.messages.append(conv.id, role="tool", tool_call_id="call_1", content="again"),
                me.messages.append(conv.id, role="user", content="x", parent_id=stranger.id),
                me.messages.append(uuid.uuid4(), role="user", content="nowhere"),
                good[2],
            ],
        )
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[2], convstore.Conflict)
    assert isinstance(results[3], convstore.InvalidInput)
    assert results[3].fields == ["parent_id"]
    assert isinstance(results[4], convstore.NotFound)
    stored = [results[i] for i in (0, 1, 5)]
    assert all(isinstance(m, MessageRead) for m in stored), results
    assert [m.seq for m in stored if isinstance(m, MessageRead)] == [5, 6, 7]
    history = await me.messages.history(conv.id)
    assert [m.content for m in history[4:]] == ["ok0", "ok1", "ok2"]
    assert (await me.conversations.get(conv.id)).messages_count == 7


async def test_a_batch_in_a_group_stays_whole(store: Store, me: UserScope) -> None:
    conv = await make_conversation(me)
    async with _writes_held(store, conv.id):
        tasks = await _queued(
            store,
            conv.id,
            [
                me.messages.append(conv.id, role="user", content="first"),
                me.messages.append_many(  # type: ignore[list-item]
                    conv.id, [{"role": "user", "content": f"b{i}"} for i in range(3)]
                ),
                me.messages.append(conv.id, role="user", content="last"),
            ],
        )
    first, batch, last = await asyncio.gather(*tasks)
    assert isinstance(batch, list)
    assert (first.seq, [m.seq for m in batch], last.seq) == (1, [2, 3, 4], 5)


async def test_a_cancelled_append_that_waited_is_not_made(store: Store, me: UserScope) -> None:
    conv = await make_conversation(me)
    async with _writes_held(store, conv.id):
        tasks = await _queued(
            store,
            conv.id,
            [me.messages.append(conv.id, role="user", content=n) for n in ("a", "b", "c")],
        )
        tasks[1].cancel()
        await asyncio.sleep(0.05)
    with pytest.raises(asyncio.CancelledError):
        await tasks[1]
    a, c = await tasks[0], await tasks[2]
    assert (a.seq, c.seq) == (1, 2)
    assert [m.content for m in await me.messages.history(conv.id)] == ["a", "c"]
    assert (await me.conversations.get(conv.id)).messages_count == 2


async def test_users_appending_at_once_each_get_their_own(
    store: Store, me: UserScope, them: UserScope
) -> None:
    mine, theirs = await make_conversation(me), await make_conversation(them)

    async def writer(scope: UserScope, conv_id: uuid.UUID, name: str) -> list[int]:
        return [
            (await scope.messages.append(conv_id, role="user", content=f"{name}{i}")).seq
            for i in range(20)
        ]

    results = await asyncio.gather(
        *(writer(me, mine.id, f"me{w}-") for w in range(4)),
        *(writer(them, theirs.id, f"them{w}-") for w in range(4)),
    )
    for seqs in results:
        assert seqs == sorted(seqs), "a writer's own order"
    for scope, conv_id in ((me, mine.id), (them, theirs.id)):
        history = await scope.messages.history(conv_id, limit=100)
        assert [m.seq for m in history] == list(range(1, 81))
    with pytest.raises(convstore.NotFound):  # a conversation id alone groups nothing across users
        await them.messages.append(mine.id, role="user", content="not yours")
