"""Isolation: user B holding user A's ids can neither read nor change anything of A's.

Every public method of the scoped API is listed in CASES (a meta-test fails when a method is
added without a case). Each case runs as B with A's ids — live and soft-deleted — and the test
then checks that A's whole state is exactly as before.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

import convstore
from convstore import Store, UserScope
from convstore.conversations.schemas import ConversationRead, MessageRead
from convstore.tasks.schemas import TaskRead
from tests.factories import make_conversation, make_messages, make_task, tool_turn


@dataclass
class World:
    a: UserScope
    b: UserScope
    conv: ConversationRead
    deleted_conv: ConversationRead
    messages: list[MessageRead]
    deleted_messages: list[MessageRead]
    task: TaskRead
    b_conv: ConversationRead
    a_cursor: str


async def _snapshot(me: UserScope) -> Any:
    convs = (await me.conversations.list(limit=100, include_deleted=True)).items
    history = {}
    for c in convs:
        if c.deleted_at is None:
            history[c.id] = await me.messages.history(c.id, limit=1000)
    tasks = (await me.tasks.list(limit=100)).items
    return convs, history, tasks


Case = Callable[[World], Awaitable[None]]


async def _not_found(call: Awaitable[Any]) -> None:
    with pytest.raises(convstore.NotFound):
        await call


async def _conv_list(w: World) -> None:
    for include_deleted in (False, True):
        page = await w.b.conversations.list(limit=100, include_deleted=include_deleted)
        assert {c.id for c in page.items} == {w.b_conv.id}
    page = await w.b.conversations.list(limit=100, cursor=w.a_cursor)
    assert w.conv.id not in {c.id for c in page.items}


async def _conv_get(w: World) -> None:
    await _not_found(w.b.conversations.get(w.conv.id))
    await _not_found(w.b.conversations.get(w.deleted_conv.id, include_deleted=True))


async def _conv_create(w: World) -> None:
    made = await w.b.conversations.create(title="b's own")
    await _not_found(w.a.conversations.get(made.id))
    await w.b.conversations.purge(made.id)


async def _conv_update(w: World) -> None:
    await _not_found(w.b.conversations.update(w.conv.id, title="pwned", metadata={"x": "y"}))
    await _not_found(w.b.conversations.update(w.deleted_conv.id, title="pwned"))


async def _conv_delete(w: World) -> None:
    await _not_found(w.b.conversations.delete(w.conv.id))


async def _conv_restore(w: World) -> None:
    await _not_found(w.b.conversations.restore(w.deleted_conv.id))
    await _not_found(w.b.conversations.restore(w.conv.id))


async def _conv_purge(w: World) -> None:
    await _not_found(w.b.conversations.purge(w.conv.id))
    await _not_found(w.b.conversations.purge(w.deleted_conv.id))


async def _conv_by_key(w: World) -> None:
    await _not_found(w.b.conversations.get_by_key("a-key"))


async def _conv_ensure(w: World) -> None:
    made = await w.b.conversations.ensure("a-key")
    assert made.id != w.conv.id
    await w.b.conversations.purge(made.id)


def _a_item_ids(w: World) -> list[str]:
    return [f"msg_{m.id.hex}" for m in (*w.messages, *w.deleted_messages)]


async def _items_add(w: World) -> None:
    for conv in (w.conv, w.deleted_conv):
        await _not_found(w.b.items.add(conv.id, [{"role": "user", "content": "injected"}]))


async def _items_list(w: World) -> None:
    for conv in (w.conv, w.deleted_conv):
        await _not_found(w.b.items.list(conv.id))
        await _not_found(w.b.items.latest(conv.id, 5))
    for item_id in _a_item_ids(w):  # A's items are no position in B's conversation
        with pytest.raises(convstore.InvalidInput):
            await w.b.items.list(w.b_conv.id, after=item_id)


async def _items_latest(w: World) -> None:
    for conv in (w.conv, w.deleted_conv):
        await _not_found(w.b.items.latest(conv.id, 5))


async def _items_get(w: World) -> None:
    for item_id in _a_item_ids(w):
        await _not_found(w.b.items.get(w.conv.id, item_id))
        await _not_found(w.b.items.get(w.b_conv.id, item_id))


async def _items_delete(w: World) -> None:
    for item_id in _a_item_ids(w):
        await _not_found(w.b.items.delete(w.conv.id, item_id))
        await _not_found(w.b.items.delete(w.b_conv.id, item_id))


async def _items_pop(w: World) -> None:
    for conv in (w.conv, w.deleted_conv):
        await _not_found(w.b.items.pop(conv.id))


async def _items_clear(w: World) -> None:
    for conv in (w.conv, w.deleted_conv):
        await _not_found(w.b.items.clear(conv.id))


async def _msg_append(w: World) -> None:
    for conv in (w.conv, w.deleted_conv):
        await _not_found(w.b.messages.append(conv.id, role="user", content="injected"))
    with pytest.raises(convstore.InvalidInput):  # A's message is no parent in B's conversation
        await w.b.messages.append(w.b_conv.id, role="user", content="x", parent_id=w.messages[0].id)


async def _msg_append_many(w: World) -> None:
    for conv in (w.conv, w.deleted_conv):
        await _not_found(w.b.messages.append_many(conv.id, tool_turn()))


async def _msg_history(w: World) -> None:
    for conv in (w.conv, w.deleted_conv):
        await _not_found(w.b.messages.history(conv.id))


async def _msg_list(w: World) -> None:
    for conv in (w.conv, w.deleted_conv):
        await _not_found(w.b.messages.list(conv.id))
    page = await w.a.messages.list(w.conv.id, limit=1)
    assert page.next_cursor is not None
    await _not_found(w.b.messages.list(w.conv.id, cursor=page.next_cursor))
    with pytest.raises(convstore.InvalidInput):  # bound to A's conversation, not B's
        await w.b.messages.list(w.b_conv.id, cursor=page.next_cursor)


async def _msg_get(w: World) -> None:
    for msg in (*w.messages, *w.deleted_messages):
        await _not_found(w.b.messages.get(msg.conversation_id, msg.id))
        await _not_found(w.b.messages.get(w.b_conv.id, msg.id))


async def _msg_update(w: World) -> None:
    for msg in (*w.messages, *w.deleted_messages):
        await _not_found(w.b.messages.update(msg.conversation_id, msg.id, content="pwned"))
        await _not_found(w.b.messages.update(w.b_conv.id, msg.id, content="pwned"))


async def _msg_delete(w: World) -> None:
    for msg in (*w.messages, *w.deleted_messages):
        await _not_found(w.b.messages.delete(msg.conversation_id, msg.id))
        await _not_found(w.b.messages.delete(w.b_conv.id, msg.id))


async def _task_create(w: World) -> None:
    made = await w.b.tasks.create(title="b's task")
    await _not_found(w.a.tasks.get(made.id))
    await w.b.tasks.delete(made.id)


async def _task_list(w: World) -> None:
    for filters in ({}, {"tag": "home"}, {"completed": False}, {"priority": "medium"}):
        page = await w.b.tasks.list(limit=100, **filters)
        assert w.task.id not in {t.id for t in page.items}


async def _task_get(w: World) -> None:
    await _not_found(w.b.tasks.get(w.task.id))


async def _task_update(w: World) -> None:
    await _not_found(w.b.tasks.update(w.task.id, title="pwned", completed=True))


async def _task_complete(w: World) -> None:
    await _not_found(w.b.tasks.complete(w.task.id))


async def _task_reopen(w: World) -> None:
    await _not_found(w.b.tasks.reopen(w.task.id))


async def _task_delete(w: World) -> None:
    await _not_found(w.b.tasks.delete(w.task.id))


async def _task_events(w: World) -> None:
    await _not_found(w.b.tasks.events(w.task.id))


CASES: dict[str, Case] = {
    "conversations.create": _conv_create,
    "conversations.get": _conv_get,
    "conversations.list": _conv_list,
    "conversations.update": _conv_update,
    "conversations.delete": _conv_delete,
    "conversations.restore": _conv_restore,
    "conversations.purge": _conv_purge,
    "conversations.get_by_key": _conv_by_key,
    "conversations.ensure": _conv_ensure,
    "items.add": _items_add,
    "items.list": _items_list,
    "items.latest": _items_latest,
    "items.get": _items_get,
    "items.delete": _items_delete,
    "items.pop": _items_pop,
    "items.clear": _items_clear,
    "messages.append": _msg_append,
    "messages.append_many": _msg_append_many,
    "messages.history": _msg_history,
    "messages.list": _msg_list,
    "messages.get": _msg_get,
    "messages.update": _msg_update,
    "messages.delete": _msg_delete,
    "tasks.create": _task_create,
    "tasks.get": _task_get,
    "tasks.list": _task_list,
    "tasks.update": _task_update,
    "tasks.complete": _task_complete,
    "tasks.reopen": _task_reopen,
    "tasks.delete": _task_delete,
    "tasks.events": _task_events,
}


def _public_methods() -> set[str]:
    names = set()
    for group in ("conversations", "messages", "items", "tasks"):
        cls = type(getattr(_Probe(), group))
        for name, _member in inspect.getmembers(cls, inspect.iscoroutinefunction):
            if not name.startswith("_"):
                names.add(f"{group}.{name}")
    return names


class _Probe(UserScope):
    def __init__(self) -> None:
        super().__init__(store=None, user_id=uuid.uuid4())  # type: ignore[arg-type]


def test_every_scoped_method_has_an_isolation_case() -> None:
    assert _public_methods() == set(CASES)


@pytest.fixture
async def world(me: UserScope, them: UserScope) -> World:
    conv = await me.conversations.create(key="a-key")
    stored = await make_messages(me, conv.id, 8)
    await me.messages.delete(conv.id, stored[-1].id)
    deleted_conv = await make_conversation(me)
    deleted_msgs = await make_messages(me, deleted_conv.id, 4)
    await me.conversations.delete(deleted_conv.id)
    task = await make_task(me)
    await make_conversation(me)
    page = await me.conversations.list(limit=1)
    assert page.next_cursor is not None
    return World(
        a=me,
        b=them,
        conv=conv,
        deleted_conv=deleted_conv,
        messages=stored[:-1],
        deleted_messages=[stored[-1], *deleted_msgs],
        task=task,
        b_conv=await make_conversation(them),
        a_cursor=page.next_cursor,
    )


@pytest.mark.parametrize("method", sorted(CASES))
async def test_other_user_cannot_reach_or_change_anything(world: World, method: str) -> None:
    before = await _snapshot(world.a)
    await CASES[method](world)
    assert await _snapshot(world.a) == before


async def test_database_refuses_a_message_in_another_users_conversation(
    store: Store, me: UserScope, them: UserScope
) -> None:
    conv = await make_conversation(me)
    pg = store.db.dialect == "postgresql"

    def ident(value: uuid.UUID) -> Any:
        return value if pg else value.hex

    with pytest.raises(IntegrityError):
        async with store.db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO messages (id, conversation_id, user_id, seq, role, content, "
                    "status, attributes, created_at, updated_at) VALUES (:id, :c, :u, 1, 'user', "
                    "'x', 'sent', '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"id": ident(uuid.uuid4()), "c": ident(conv.id), "u": ident(them.user_id)},
            )
