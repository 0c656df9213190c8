"""A stateful model of the library: two users append, edit and delete messages, delete, restore
and purge conversations, and change tasks, in an order hypothesis draws; after every step the
store is compared with an in-memory model of what each user should see.

Compared each time: every conversation (live, deleted or purged; title; ``messages_count``),
its history (order and content; seqs increasing, every append took the next seq), the same
history paged with a small limit through the cursors, the conversation and task lists paged
to the end, and isolation: each of one user's ids, given to the other user, is not found.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import convstore
from convstore import Store
from convstore.errors import NotFound
from tests.conftest import fast_settings
from tests.fuzz.profiles import BUDGET, fuzz_settings

USERS = ("alice", "bob")
PAGE = 2
"""A small page size, so that every list is walked through several cursors."""

CHANGES = {
    "conversations.create",
    "conversations.update",
    "conversations.delete",
    "conversations.restore",
    "conversations.purge",
    "messages.append",
    "messages.append_many",
    "messages.update",
    "messages.delete",
    "tasks.create",
    "tasks.update",
    "tasks.complete",
    "tasks.reopen",
    "tasks.delete",
}
"""Every kind of change the model makes; each must have been tried at least once."""

_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyzéß漢🙂0123456789", min_size=1, max_size=8)
contents = st.lists(_word, min_size=1, max_size=4).map(" ".join)
"""Short, never blank; a title made from one is the same words."""
roles = st.sampled_from(["user", "assistant", "system"])
tags = st.lists(st.text(alphabet="abcdef", min_size=1, max_size=3), max_size=3)
priorities = st.sampled_from(["low", "medium", "high"])
due_dates = st.none() | st.integers(min_value=-400, max_value=400).map(
    lambda days: datetime(2027, 1, 1, 12, tzinfo=UTC) + timedelta(days=days)
)


@dataclass
class ModelMessage:
    id: uuid.UUID
    seq: int
    role: str
    content: str
    deleted: bool = False


@dataclass
class ModelConversation:
    id: uuid.UUID
    title: str | None
    messages: list[ModelMessage] = field(default_factory=list)
    deleted: bool = False
    purged: bool = False

    @property
    def live_messages(self) -> list[ModelMessage]:
        return [m for m in self.messages if not m.deleted]


@dataclass
class ModelTask:
    id: uuid.UUID
    title: str
    priority: str
    tags: list[str]
    due_at: datetime | None
    completed: bool = False


@dataclass
class ModelUser:
    id: uuid.UUID
    conversations: dict[uuid.UUID, ModelConversation] = field(default_factory=dict)
    tasks: dict[uuid.UUID, ModelTask] = field(default_factory=dict)


def normalized_tags(raw: list[str]) -> list[str]:
    return list(dict.fromkeys(raw))


class StoreModel(RuleBasedStateMachine):
    """Set up by :func:`model_run` with ``store`` and ``run`` (the event loop's runner)."""

    store: Store
    run: Callable[[Awaitable[Any]], Any]
    calls: Counter[str]
    """Library calls made, by method: the test checks that every kind of change was tried."""

    def __init__(self) -> None:
        super().__init__()
        self.users: dict[str, ModelUser] = {}

    def call(self, name: str, method: str, *args: Any, **kwargs: Any) -> Any:
        scope = self.store.for_user(self.users[name].id)
        part, verb = method.split(".")
        self.calls[method] += 1
        return self.run(getattr(getattr(scope, part), verb)(*args, **kwargs))

    def expect_not_found(self, name: str, method: str, *args: Any, **kwargs: Any) -> None:
        with pytest.raises(NotFound):
            self.call(name, method, *args, **kwargs)

    # -- the objects a rule acts on ------------------------------------------------------------

    def conversations(self, name: str) -> list[ModelConversation]:
        return list(self.users[name].conversations.values())

    def any_conversation(self, data: st.DataObject, name: str) -> ModelConversation:
        return data.draw(st.sampled_from(self.conversations(name)), label="conversation")

    def has_conversation(self) -> bool:
        return any(self.conversations(name) for name in self.users)

    def has_message(self) -> bool:
        return any(c.messages for name in self.users for c in self.conversations(name))

    def has_task(self) -> bool:
        return any(user.tasks for user in self.users.values())

    def owner_with(self, data: st.DataObject, predicate: Callable[[ModelUser], bool]) -> str:
        return data.draw(
            st.sampled_from([n for n, u in self.users.items() if predicate(u)]), label="user"
        )

    # -- rules ---------------------------------------------------------------------------------

    @initialize()
    def make_users(self) -> None:
        for name in USERS:
            email = f"model-{name}-{uuid.uuid4().hex[:10]}@example.com"
            created = self.run(self.store.users.create(email=email))
            self.users[name] = ModelUser(created.id)

    @rule(name=st.sampled_from(USERS), title=st.none() | contents)
    def create_conversation(self, name: str, title: str | None) -> None:
        created = self.call(name, "conversations.create", title=title)
        assert created.title == title
        assert created.messages_count == 0
        self.users[name].conversations[created.id] = ModelConversation(created.id, title)

    @precondition(lambda self: self.has_conversation())
    @rule(data=st.data(), role=roles, content=contents)
    def append(self, data: st.DataObject, role: str, content: str) -> None:
        name = self.owner_with(data, lambda u: bool(u.conversations))
        conversation = self.any_conversation(data, name)
        if conversation.deleted or conversation.purged:
            self.expect_not_found(
                name, "messages.append", conversation.id, role=role, content=content
            )
            return
        stored = self.call(name, "messages.append", conversation.id, role=role, content=content)
        self.appended(conversation, [stored])

    @precondition(lambda self: self.has_conversation())
    @rule(data=st.data(), items=st.lists(st.tuples(roles, contents), min_size=1, max_size=4))
    def append_many(self, data: st.DataObject, items: list[tuple[str, str]]) -> None:
        name = self.owner_with(data, lambda u: bool(u.conversations))
        conversation = self.any_conversation(data, name)
        batch = [{"role": role, "content": content} for role, content in items]
        if conversation.deleted or conversation.purged:
            self.expect_not_found(name, "messages.append_many", conversation.id, batch)
            return
        stored = self.call(name, "messages.append_many", conversation.id, batch)
        assert [(m.role, m.content) for m in stored] == items
        self.appended(conversation, stored)

    def appended(self, conversation: ModelConversation, stored: list[Any]) -> None:
        """Every append takes the next seq: no gap, no reuse, even after deletes."""
        for message in stored:
            assert message.seq == len(conversation.messages) + 1
            assert message.conversation_id == conversation.id
            conversation.messages.append(
                ModelMessage(message.id, message.seq, message.role, message.content)
            )
            if conversation.title is None and message.role == "user":
                conversation.title = " ".join(message.content.split())

    @precondition(lambda self: self.has_message())
    @rule(data=st.data(), content=contents)
    def edit_message(self, data: st.DataObject, content: str) -> None:
        name, conversation, message = self.any_message(data)
        if conversation.deleted or conversation.purged or message.deleted:
            self.expect_not_found(
                name, "messages.update", conversation.id, message.id, content=content
            )
            return
        updated = self.call(name, "messages.update", conversation.id, message.id, content=content)
        assert (updated.seq, updated.role, updated.content) == (message.seq, message.role, content)
        message.content = content

    @precondition(lambda self: self.has_message())
    @rule(data=st.data())
    def delete_message(self, data: st.DataObject) -> None:
        name, conversation, message = self.any_message(data)
        if conversation.deleted or conversation.purged or message.deleted:
            self.expect_not_found(name, "messages.delete", conversation.id, message.id)
            return
        self.call(name, "messages.delete", conversation.id, message.id)
        message.deleted = True

    def any_message(self, data: st.DataObject) -> tuple[str, ModelConversation, ModelMessage]:
        name = self.owner_with(data, lambda u: any(c.messages for c in u.conversations.values()))
        conversation = data.draw(
            st.sampled_from([c for c in self.conversations(name) if c.messages]),
            label="conversation",
        )
        message = data.draw(st.sampled_from(conversation.messages), label="message")
        return name, conversation, message

    @precondition(lambda self: self.has_conversation())
    @rule(data=st.data(), title=st.none() | contents)
    def retitle(self, data: st.DataObject, title: str | None) -> None:
        name = self.owner_with(data, lambda u: bool(u.conversations))
        conversation = self.any_conversation(data, name)
        if conversation.deleted or conversation.purged:
            self.expect_not_found(name, "conversations.update", conversation.id, title=title)
            return
        updated = self.call(name, "conversations.update", conversation.id, title=title)
        assert updated.title == title
        conversation.title = title

    @precondition(lambda self: self.has_conversation())
    @rule(data=st.data())
    def delete_conversation(self, data: st.DataObject) -> None:
        name = self.owner_with(data, lambda u: bool(u.conversations))
        conversation = self.any_conversation(data, name)
        if conversation.deleted or conversation.purged:
            self.expect_not_found(name, "conversations.delete", conversation.id)
            return
        self.call(name, "conversations.delete", conversation.id)
        conversation.deleted = True

    @precondition(lambda self: self.has_conversation())
    @rule(data=st.data())
    def restore_conversation(self, data: st.DataObject) -> None:
        name = self.owner_with(data, lambda u: bool(u.conversations))
        conversation = self.any_conversation(data, name)
        if conversation.purged:
            self.expect_not_found(name, "conversations.restore", conversation.id)
            return
        restored = self.call(name, "conversations.restore", conversation.id)
        assert restored.deleted_at is None
        conversation.deleted = False

    @precondition(lambda self: self.has_conversation())
    @rule(data=st.data())
    def purge_conversation(self, data: st.DataObject) -> None:
        name = self.owner_with(data, lambda u: bool(u.conversations))
        conversation = self.any_conversation(data, name)
        if conversation.purged:
            self.expect_not_found(name, "conversations.purge", conversation.id)
            return
        self.call(name, "conversations.purge", conversation.id)
        conversation.purged = True

    @rule(
        name=st.sampled_from(USERS),
        title=contents,
        priority=priorities,
        raw_tags=tags,
        due_at=due_dates,
    )
    def create_task(
        self, name: str, title: str, priority: str, raw_tags: list[str], due_at: datetime | None
    ) -> None:
        created = self.call(
            name, "tasks.create", title=title, priority=priority, tags=raw_tags, due_at=due_at
        )
        task = ModelTask(created.id, title, priority, normalized_tags(raw_tags), due_at)
        self.users[name].tasks[created.id] = task
        self.check_task(created, task)

    @precondition(lambda self: self.has_task())
    @rule(
        data=st.data(),
        title=st.none() | contents,
        priority=st.none() | priorities,
        raw_tags=st.none() | tags,
        completed=st.none() | st.booleans(),
    )
    def update_task(
        self,
        data: st.DataObject,
        title: str | None,
        priority: str | None,
        raw_tags: list[str] | None,
        completed: bool | None,
    ) -> None:
        name, task = self.any_task(data)
        given = {"title": title, "priority": priority, "tags": raw_tags, "completed": completed}
        changes = {key: value for key, value in given.items() if value is not None}
        updated = self.call(name, "tasks.update", task.id, **changes)
        if title is not None:
            task.title = title
        if priority is not None:
            task.priority = priority
        if raw_tags is not None:
            task.tags = normalized_tags(raw_tags)
        if completed is not None:
            task.completed = completed
        self.check_task(updated, task)

    @precondition(lambda self: self.has_task())
    @rule(data=st.data(), done=st.booleans())
    def complete_or_reopen_task(self, data: st.DataObject, done: bool) -> None:
        name, task = self.any_task(data)
        updated = self.call(name, "tasks.complete" if done else "tasks.reopen", task.id)
        task.completed = done
        self.check_task(updated, task)

    @precondition(lambda self: self.has_task())
    @rule(data=st.data())
    def delete_task(self, data: st.DataObject) -> None:
        name, task = self.any_task(data)
        self.call(name, "tasks.delete", task.id)
        del self.users[name].tasks[task.id]
        self.expect_not_found(name, "tasks.get", task.id)
        self.expect_not_found(name, "tasks.delete", task.id)

    def any_task(self, data: st.DataObject) -> tuple[str, ModelTask]:
        name = self.owner_with(data, lambda u: bool(u.tasks))
        task = data.draw(st.sampled_from(list(self.users[name].tasks.values())), label="task")
        return name, task

    @precondition(lambda self: self.has_conversation() or self.has_task())
    @rule(data=st.data(), content=contents)
    def write_as_the_other_user(self, data: st.DataObject, content: str) -> None:
        """Every write naming another user's object is not found, and changes nothing."""
        owner = self.owner_with(data, lambda u: bool(u.conversations or u.tasks))
        intruder = next(n for n in USERS if n != owner)
        user = self.users[owner]
        for conversation in user.conversations.values():
            cid = conversation.id
            self.expect_not_found(intruder, "messages.append", cid, role="user", content=content)
            self.expect_not_found(intruder, "conversations.update", cid, title=content)
            self.expect_not_found(intruder, "conversations.delete", cid)
            self.expect_not_found(intruder, "conversations.restore", cid)
            self.expect_not_found(intruder, "conversations.purge", cid)
            for message in conversation.messages:
                mid = message.id
                self.expect_not_found(intruder, "messages.update", cid, mid, content=content)
                self.expect_not_found(intruder, "messages.delete", cid, mid)
        for task in user.tasks.values():
            self.expect_not_found(intruder, "tasks.update", task.id, title=content)
            self.expect_not_found(intruder, "tasks.complete", task.id)
            self.expect_not_found(intruder, "tasks.delete", task.id)

    # -- what must hold after every step -------------------------------------------------------

    @staticmethod
    def check_task(read: Any, task: ModelTask) -> None:
        assert read.id == task.id
        assert (read.title, read.priority, read.tags) == (task.title, task.priority, task.tags)
        assert read.due_at == task.due_at
        assert read.completed is task.completed
        assert (read.completed_at is not None) is task.completed

    @invariant()
    def conversations_match(self) -> None:
        for name in self.users:
            for conversation in self.conversations(name):
                self.check_conversation(name, conversation)

    def check_conversation(self, name: str, conversation: ModelConversation) -> None:
        cid = conversation.id
        if conversation.purged:
            self.expect_not_found(name, "conversations.get", cid, include_deleted=True)
            self.expect_not_found(name, "messages.history", cid)
            return
        read = self.call(name, "conversations.get", cid, include_deleted=True)
        assert read.title == conversation.title
        assert read.messages_count == len(conversation.messages)
        assert (read.deleted_at is not None) is conversation.deleted
        if conversation.deleted:
            self.expect_not_found(name, "conversations.get", cid)
            self.expect_not_found(name, "messages.history", cid)
            self.expect_not_found(name, "messages.list", cid, limit=PAGE)
            for message in conversation.messages:
                self.expect_not_found(name, "messages.get", cid, message.id)
            return
        expected = [(m.id, m.seq, m.role, m.content) for m in conversation.live_messages]
        history = self.call(name, "messages.history", cid, limit=1_000)
        assert [(m.id, m.seq, m.role, m.content) for m in history] == expected
        seqs = [m.seq for m in history]
        assert seqs == sorted(set(seqs))
        assert all(1 <= s <= read.messages_count for s in seqs)
        assert [
            (m.id, m.seq, m.role, m.content) for m in self.paged_messages(name, cid)
        ] == expected
        for message in conversation.messages:
            if message.deleted:
                self.expect_not_found(name, "messages.get", cid, message.id)

    def paged_messages(self, name: str, cid: uuid.UUID) -> list[Any]:
        """The whole history through ``next_cursor``, newest page first, PAGE at a time."""
        pages: list[list[Any]] = []
        cursor: str | None = None
        for _ in range(10_000):
            page = self.call(name, "messages.list", cid, limit=PAGE, cursor=cursor)
            assert len(page.items) <= PAGE
            assert page.has_more is (page.next_cursor is not None)
            pages.append(page.items)
            if not page.has_more:
                break
            cursor = page.next_cursor
        return [message for items in reversed(pages) for message in items]

    @invariant()
    def lists_match(self) -> None:
        for name, user in self.users.items():
            for include_deleted in (False, True):
                listed = self.paged(
                    lambda cursor, d=include_deleted, n=name: self.call(
                        n, "conversations.list", limit=PAGE, cursor=cursor, include_deleted=d
                    )
                )
                ids = [c.id for c in listed]
                expected = {
                    c.id
                    for c in user.conversations.values()
                    if not c.purged and (include_deleted or not c.deleted)
                }
                assert len(ids) == len(set(ids))
                assert set(ids) == expected
                keys = [(c.updated_at, c.id) for c in listed]
                assert keys == sorted(keys, reverse=True)
            tasks = self.paged(
                lambda cursor, n=name: self.call(n, "tasks.list", limit=PAGE, cursor=cursor)
            )
            assert [t.id for t in tasks] == list(user.tasks)
            for read in tasks:
                self.check_task(read, user.tasks[read.id])
            for completed in (False, True):
                filtered = self.paged(
                    lambda cursor, c=completed, n=name: self.call(
                        n, "tasks.list", limit=PAGE, cursor=cursor, completed=c
                    )
                )
                assert [t.id for t in filtered] == [
                    t.id for t in user.tasks.values() if t.completed is completed
                ]

    @staticmethod
    def paged(fetch: Callable[[str | None], Any]) -> list[Any]:
        items: list[Any] = []
        cursor: str | None = None
        for _ in range(10_000):
            page = fetch(cursor)
            items += page.items
            if not page.has_more:
                return items
            cursor = page.next_cursor
        raise AssertionError("the cursors never ended")

    @invariant()
    def isolated(self) -> None:
        """Neither user reads the other's objects, by list or by id."""
        for name, user in self.users.items():
            other = next(n for n in USERS if n != name)
            for conversation in user.conversations.values():
                cid = conversation.id
                self.expect_not_found(other, "conversations.get", cid, include_deleted=True)
                self.expect_not_found(other, "messages.history", cid)
                for message in conversation.messages[-3:]:
                    self.expect_not_found(other, "messages.get", cid, message.id)
            for task in user.tasks.values():
                self.expect_not_found(other, "tasks.get", task.id)
                self.expect_not_found(other, "tasks.events", task.id)


@pytest.fixture
def model_run(database_url: str) -> Iterator[Callable[[], None]]:
    """Runs :class:`StoreModel` against a store on the backend's database, on an event loop of
    its own (hypothesis drives the machine synchronously)."""
    with asyncio.Runner() as runner:
        opened = convstore.open(database_url, settings=fast_settings())
        store = runner.run(opened.__aenter__())
        try:

            class Model(StoreModel):
                pass

            Model.store = store
            Model.calls = Counter()
            Model.run = staticmethod(runner.run)  # type: ignore[assignment]

            def go() -> None:
                run_state_machine_as_test(
                    Model,
                    settings=fuzz_settings(
                        max_examples=BUDGET.model_runs, stateful_step_count=BUDGET.model_steps
                    ),
                )
                assert CHANGES <= set(Model.calls), CHANGES - set(Model.calls)

            yield go
        finally:
            runner.run(opened.__aexit__(None, None, None))


def test_the_store_matches_its_model(model_run: Callable[[], None]) -> None:
    model_run()
