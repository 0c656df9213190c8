"""The library API: ``async with convstore.open(url) as store: …``.

Each method is one transaction. Everything below :meth:`Store.for_user` is scoped to that user:
another user's row raises :class:`~convstore.errors.NotFound`, exactly like a missing id.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import enum
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, Never

from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.auth.passwords import Passwords
from convstore.config import Limits, Settings, get_settings
from convstore.conversations.schemas import (
    ConversationCreate,
    ConversationRead,
    ConversationUpdate,
    MessageCreate,
    MessageRead,
    MessageUpdate,
    ToolCall,
    ToolResult,
)
from convstore.conversations.service import conversation as conversation_service
from convstore.conversations.service import message as message_service
from convstore.db import Database, create_engine
from convstore.errors import DatabaseUnavailable, InvalidInput
from convstore.items.schemas import ItemPage, ItemRead
from convstore.items.service import check_items
from convstore.items.service import item as item_service
from convstore.kit.pagination import MAX_PAGE_SIZE, Page, check_limit
from convstore.kit.validation import parse
from convstore.tasks.schemas import TaskCreate, TaskEventRead, TaskFilter, TaskRead, TaskUpdate
from convstore.tasks.service import task as task_service
from convstore.users.schemas import UserCreate, UserRead, UserUpdate
from convstore.users.service import user as user_service

MAX_HISTORY = 1_000
"""The most messages one ``history`` call returns."""


class Unset(enum.Enum):
    """The default of an optional keyword argument: not given (where ``None`` means "clear")."""

    UNSET = "UNSET"


UNSET = Unset.UNSET
Json = Mapping[str, Any]
"""A JSON object given as a mapping (metadata, usage, tool call arguments)."""


def _given(values: Mapping[str, Any], unknown: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments actually given, the unknown ones included: validation refuses
    those by name, as it does over HTTP."""
    return {**{k: v for k, v in values.items() if v is not UNSET}, **unknown}


def as_uuid(value: uuid.UUID | str, field: str) -> uuid.UUID:
    """Accept a UUID or its string form; anything else is invalid input naming ``field``."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput("not a valid id", field=field) from None


class Store:
    """An open convstore: one engine and pool, shared by every call."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.passwords = Passwords(settings)
        self.users = Users(self)

    def for_user(self, user_id: uuid.UUID | str) -> UserScope:
        """Everything one user owns. Nothing reachable from here belongs to anyone else."""
        return UserScope(self, as_uuid(user_id, "user_id"))

    @contextlib.asynccontextmanager
    async def reading(self, user_id: uuid.UUID | None = None) -> AsyncIterator[AsyncConnection]:
        """A read transaction (for ``user_id``: see :class:`~convstore.db.Database`); database
        failures arrive as convstore errors."""
        async with self.db.read(user_id) as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def writing(self, user_id: uuid.UUID | None = None) -> AsyncIterator[AsyncConnection]:
        """A write transaction (for ``user_id``): all or nothing; database failures become
        convstore errors."""
        async with self.db.write(user_id) as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def writing_statement(
        self, user_id: uuid.UUID | None = None
    ) -> AsyncIterator[AsyncConnection]:
        """For a write its repository makes atomic by itself (an append: one statement on
        PostgreSQL, in autocommit mode there); otherwise the same as :meth:`writing` (see
        :meth:`~convstore.db.Database.write_statement`)."""
        async with self.db.write_statement(user_id) as conn:
            yield conn

    async def ping(self) -> bool:
        """Whether the database answers a trivial query."""
        try:
            async with self.db.read() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except DatabaseUnavailable:
            return False
        return True

    async def accepts_writes(self, within: float) -> bool:
        """Whether a write could start within ``within`` seconds (see
        :meth:`Database.accepts_writes`); False when the database is unreachable."""
        try:
            async with asyncio.timeout(within):
                return await self.db.accepts_writes()
        except (DatabaseUnavailable, TimeoutError):
            return False

    async def close(self) -> None:
        """Close the engine's pooled connections."""
        await self.db.dispose()


@contextlib.asynccontextmanager
async def open(
    url: str | None = None, *, settings: Settings | None = None, migrate: bool = False
) -> AsyncIterator[Store]:
    """Open a store on ``url`` (default: ``CONVSTORE_DATABASE_URL``, else ``./convstore.db``).

    Args:
        url: a database URL; ``sqlite:///path`` and ``postgresql://…`` pick their own drivers.
        settings: pool sizes and limits; default: from the environment.
        migrate: upgrade the schema to the latest migration first (Alembic).
    """
    settings = settings or get_settings()
    engine = create_engine(settings, url=url)
    if migrate:
        from convstore.migrate import upgrade

        await upgrade(engine, "head")
    store = Store(Database(engine), settings)
    try:
        yield store
    finally:
        await store.close()


class Users:
    """Accounts. Users are the root of ownership, so these take a user id directly."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(
        self,
        *,
        email: str,
        password: str | None = None,
        name: str | None = None,
        role: str = "user",
        auth_provider: str | None = None,
        auth_subject: str | None = None,
    ) -> UserRead:
        """Create a user. Raises Conflict when the email is taken (case-insensitively)."""
        data = parse(
            UserCreate,
            {
                "email": email,
                "password": password,
                "name": name,
                "role": role,
                "auth_provider": auth_provider,
                "auth_subject": auth_subject,
            },
        )
        hashed = await self._store.passwords.hash(data.password) if data.password else None
        async with self._store.writing() as conn:
            return await user_service.create(conn, data, hashed)

    async def get(self, user_id: uuid.UUID | str) -> UserRead:
        """The user with this id; NotFound when there is none."""
        async with self._store.reading() as conn:
            return await user_service.get(conn, as_uuid(user_id, "user_id"))

    async def get_by_email(self, email: str) -> UserRead:
        """The user with this email (compared case-insensitively); NotFound when none."""
        async with self._store.reading() as conn:
            return await user_service.get_by_email(conn, email)

    async def update(
        self,
        user_id: uuid.UUID | str,
        *,
        email: str | Unset = UNSET,
        password: str | Unset = UNSET,
        name: str | None | Unset = UNSET,
        role: Literal["user", "admin"] | Unset = UNSET,
        is_active: bool | Unset = UNSET,
        **unknown: Never,
    ) -> UserRead:
        """Change the fields given (``name=None`` clears the name); a new password is hashed
        first, outside the transaction."""
        given = {"email": email, "password": password, "name": name, "role": role}
        data = parse(UserUpdate, _given({**given, "is_active": is_active}, unknown))
        hashed = await self._store.passwords.hash(data.password) if data.password else None
        async with self._store.writing() as conn:
            return await user_service.update(conn, as_uuid(user_id, "user_id"), data, hashed)

    async def delete(self, user_id: uuid.UUID | str) -> None:
        """Delete the user with every conversation, message, task and token they own."""
        async with self._store.writing() as conn:
            await user_service.delete(conn, as_uuid(user_id, "user_id"))


class UserScope:
    """The acting user's view of the store."""

    def __init__(self, store: Store, user_id: uuid.UUID) -> None:
        self.store = store
        self.user_id = user_id
        self.conversations = Conversations(self)
        self.messages = Messages(self)
        self.items = Items(self)
        self.tasks = Tasks(self)


class _Scoped:
    def __init__(self, scope: UserScope) -> None:
        self._store = scope.store
        self._user_id = scope.user_id

    @property
    def _limits(self) -> Limits:
        return self._store.settings.limits


class Conversations(_Scoped):
    """The acting user's conversations."""

    async def create(
        self,
        *,
        title: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        key: str | None = None,
        messages: Sequence[MessageCreate | Mapping[str, Any]] = (),
    ) -> ConversationRead:
        """Start a conversation. Without a title, the first user message will provide one;
        ``key`` is your own unique name for it (Conflict when a live one has it).

        ``messages`` (at most 1,000, each as :meth:`Messages.append` takes it, without a
        ``parent_id``) are its first ones, seq 1, 2, …: the conversation and all of them are
        stored in one unit, or nothing (a system prompt and the first user message cost one
        round trip, not three)."""
        first = [
            parse(
                MessageCreate,
                item if isinstance(item, MessageCreate) else dict(item),
                prefix=f"messages.{i}",
            )
            for i, item in enumerate(messages)
        ]
        data = parse(
            ConversationCreate,
            {"title": title, "metadata": dict(metadata or {}), "key": key, "messages": first},
        )
        async with self._store.writing_statement(self._user_id) as conn:
            return await conversation_service.create(conn, self._user_id, data, self._limits)

    async def get_by_key(self, key: str) -> ConversationRead:
        """The live conversation you named ``key``; NotFound when there is none."""
        data = parse(ConversationCreate, {"key": key})
        assert data.key is not None
        async with self._store.reading(self._user_id) as conn:
            return await conversation_service.get_by_key(conn, self._user_id, data.key)

    async def ensure(
        self, key: str, *, title: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> ConversationRead:
        """The live conversation named ``key``, created (with ``title`` and ``metadata``) when
        there is none; concurrent callers get the same conversation."""
        data = parse(
            ConversationCreate, {"title": title, "metadata": dict(metadata or {}), "key": key}
        )
        async with self._store.writing(self._user_id) as conn:
            return await conversation_service.ensure(conn, self._user_id, data, self._limits)

    async def get(
        self, conversation_id: uuid.UUID | str, *, include_deleted: bool = False
    ) -> ConversationRead:
        """One of the user's conversations (a soft-deleted one only with
        ``include_deleted``); NotFound otherwise, as for another user's."""
        async with self._store.reading(self._user_id) as conn:
            return await conversation_service.get(
                conn,
                self._user_id,
                as_uuid(conversation_id, "conversation_id"),
                include_deleted=include_deleted,
            )

    async def list(
        self, *, limit: int = 20, cursor: str | None = None, include_deleted: bool = False
    ) -> Page[ConversationRead]:
        """Most recent activity first; pass ``next_cursor`` back as ``cursor`` for more."""
        check_limit(limit)
        async with self._store.reading(self._user_id) as conn:
            return await conversation_service.list(
                conn, self._user_id, limit=limit, cursor=cursor, include_deleted=include_deleted
            )

    async def update(
        self,
        conversation_id: uuid.UUID | str,
        *,
        title: str | None | Unset = UNSET,
        metadata: Json | Unset = UNSET,
        **unknown: Never,
    ) -> ConversationRead:
        """Change ``title`` (None clears it) and/or replace ``metadata``."""
        data = parse(ConversationUpdate, _given({"title": title, "metadata": metadata}, unknown))
        async with self._store.writing(self._user_id) as conn:
            return await conversation_service.update(
                conn,
                self._user_id,
                as_uuid(conversation_id, "conversation_id"),
                data,
                self._limits,
            )

    async def delete(self, conversation_id: uuid.UUID | str) -> None:
        """Soft delete (restorable): the conversation and its messages vanish from all reads."""
        async with self._store.writing(self._user_id) as conn:
            await conversation_service.delete(
                conn, self._user_id, as_uuid(conversation_id, "conversation_id")
            )

    async def restore(self, conversation_id: uuid.UUID | str) -> ConversationRead:
        """Bring back a soft-deleted conversation with its messages (a live one is returned
        as it is)."""
        async with self._store.writing(self._user_id) as conn:
            return await conversation_service.restore(
                conn, self._user_id, as_uuid(conversation_id, "conversation_id")
            )

    async def purge(self, conversation_id: uuid.UUID | str) -> None:
        """Delete for good, with all messages; works on live and soft-deleted conversations."""
        async with self._store.writing(self._user_id) as conn:
            await conversation_service.purge(
                conn, self._user_id, as_uuid(conversation_id, "conversation_id")
            )


class Messages(_Scoped):
    """The messages of the acting user's conversations."""

    async def append(
        self,
        conversation_id: uuid.UUID | str,
        *,
        role: Literal["user", "assistant", "system", "tool"],
        content: str = "",
        status: Literal["sent", "streaming", "complete", "error"] | None | Unset = UNSET,
        tool_calls: Sequence[ToolCall | Json] | None | Unset = UNSET,
        tool_results: Sequence[ToolResult | Json] | None | Unset = UNSET,
        tool_call_id: str | None | Unset = UNSET,
        metadata: Json | Unset = UNSET,
        parent_id: uuid.UUID | str | None | Unset = UNSET,
        usage: Json | None | Unset = UNSET,
        **unknown: Never,
    ) -> MessageRead:
        """Append one message; it gets the next ``seq`` (1 for the first).

        ``status`` defaults to ``sent`` for user and system messages, ``complete`` otherwise;
        only assistant messages carry ``tool_calls``, and a tool message names the
        ``tool_call_id`` it answers; ``parent_id`` is a message of the same conversation.
        """
        fields = {
            "status": status,
            "tool_calls": tool_calls,
            "tool_results": tool_results,
            "tool_call_id": tool_call_id,
            "metadata": metadata,
            "parent_id": parent_id,
            "usage": usage,
        }
        item = parse(MessageCreate, {"role": role, "content": content, **_given(fields, unknown)})
        async with self._store.writing_statement(self._user_id) as conn:
            (stored,) = await message_service.append_many(
                conn,
                self._user_id,
                as_uuid(conversation_id, "conversation_id"),
                [item],
                self._limits,
                prefixed=False,
            )
        return stored

    async def append_many(
        self,
        conversation_id: uuid.UUID | str,
        items: Sequence[MessageCreate | Mapping[str, Any]],
    ) -> list[MessageRead]:
        """Append several messages in order, in one transaction: all are stored or none."""
        parsed = [
            parse(
                MessageCreate,
                item if isinstance(item, MessageCreate) else dict(item),
                prefix=str(i),
            )
            for i, item in enumerate(items)
        ]
        async with self._store.writing_statement(self._user_id) as conn:
            return await message_service.append_many(
                conn,
                self._user_id,
                as_uuid(conversation_id, "conversation_id"),
                parsed,
                self._limits,
            )

    async def history(
        self, conversation_id: uuid.UUID | str, *, limit: int = 50
    ) -> list[MessageRead]:
        """The last ``limit`` messages (at most 1,000), oldest first: what a model is fed."""
        check_limit(limit, maximum=MAX_HISTORY)
        page = await self._page(conversation_id, limit=limit, after=None, before=None, cursor=None)
        return page.items

    async def list(
        self,
        conversation_id: uuid.UUID | str,
        *,
        limit: int = 20,
        after: int | None = None,
        before: int | None = None,
        cursor: str | None = None,
    ) -> Page[MessageRead]:
        """One page, oldest first within the page (see ``MessageService.page``).

        No position: the newest ``limit``; ``before``/``after``: a seq to page from;
        ``cursor``: a ``next_cursor`` from an earlier page.
        """
        check_limit(limit, maximum=MAX_PAGE_SIZE)
        return await self._page(
            conversation_id, limit=limit, after=after, before=before, cursor=cursor
        )

    async def _page(
        self,
        conversation_id: uuid.UUID | str,
        *,
        limit: int,
        after: int | None,
        before: int | None,
        cursor: str | None,
    ) -> Page[MessageRead]:
        async with self._store.reading(self._user_id) as conn:
            return await message_service.page(
                conn,
                self._user_id,
                as_uuid(conversation_id, "conversation_id"),
                limit=limit,
                after=after,
                before=before,
                cursor=cursor,
            )

    async def get(
        self, conversation_id: uuid.UUID | str, message_id: uuid.UUID | str
    ) -> MessageRead:
        """One visible message of one of the user's live conversations; NotFound otherwise."""
        async with self._store.reading(self._user_id) as conn:
            return await message_service.get(
                conn,
                self._user_id,
                as_uuid(conversation_id, "conversation_id"),
                as_uuid(message_id, "message_id"),
            )

    async def update(
        self,
        conversation_id: uuid.UUID | str,
        message_id: uuid.UUID | str,
        *,
        content: str | Unset = UNSET,
        status: Literal["sent", "streaming", "complete", "error"] | Unset = UNSET,
        tool_calls: Sequence[ToolCall | Json] | None | Unset = UNSET,
        tool_results: Sequence[ToolResult | Json] | None | Unset = UNSET,
        metadata: Json | Unset = UNSET,
        usage: Json | None | Unset = UNSET,
        **unknown: Never,
    ) -> MessageRead:
        """Change the fields given (finalising a streamed reply, editing a message); ``None``
        clears ``tool_calls``, ``tool_results`` or ``usage``. The role never changes."""
        fields = {
            "content": content,
            "status": status,
            "tool_calls": tool_calls,
            "tool_results": tool_results,
            "metadata": metadata,
            "usage": usage,
        }
        data = parse(MessageUpdate, _given(fields, unknown))
        async with self._store.writing(self._user_id) as conn:
            return await message_service.update(
                conn,
                self._user_id,
                as_uuid(conversation_id, "conversation_id"),
                as_uuid(message_id, "message_id"),
                data,
                self._limits,
            )

    async def delete(self, conversation_id: uuid.UUID | str, message_id: uuid.UUID | str) -> None:
        """Soft delete one message; the others keep their seq."""
        async with self._store.writing(self._user_id) as conn:
            await message_service.delete(
                conn,
                self._user_id,
                as_uuid(conversation_id, "conversation_id"),
                as_uuid(message_id, "message_id"),
            )


class Items(_Scoped):
    """The items of the acting user's conversations: what agents produce, in the OpenAI
    Responses item model (``message``, ``function_call``, ``function_call_output``,
    ``reasoning``, any other typed item), stored as given, in one order with the messages."""

    async def add(
        self,
        conversation_id: uuid.UUID | str,
        items: Sequence[Mapping[str, Any]],
        *,
        keep_ids: bool = True,
    ) -> list[ItemRead]:
        """Append ``items`` in order (at most 1,000), in one transaction: all or none. An item
        without an ``id`` gets one (``ItemRead.id``); an id already in the conversation is a
        Conflict. With ``keep_ids=False`` every item gets an id of convstore's and keeps its
        own ``id`` key only inside ``ItemRead.item`` (for producers whose ids repeat)."""
        checked = check_items(
            [dict(i) if isinstance(i, Mapping) else i for i in items],
            self._limits,
            keep_ids=keep_ids,
        )
        target = as_uuid(conversation_id, "conversation_id")
        async with self._store.writing_statement(self._user_id) as conn:
            return await item_service.add(conn, self._user_id, target, checked)

    async def list(
        self,
        conversation_id: uuid.UUID | str,
        *,
        after: str | None = None,
        limit: int = 20,
        order: Literal["asc", "desc"] = "asc",
    ) -> ItemPage:
        """Up to ``limit`` items (at most 1,000) in ``order``, strictly after item ``after`` in
        that order; continue with ``after=page.last_id`` while ``page.has_more``."""
        check_limit(limit, maximum=MAX_HISTORY)
        if order not in ("asc", "desc"):
            raise InvalidInput("must be 'asc' or 'desc'", field="order")
        async with self._store.reading(self._user_id) as conn:
            return await item_service.page(
                conn,
                self._user_id,
                as_uuid(conversation_id, "conversation_id"),
                after=after,
                limit=limit,
                order=order,
            )

    async def latest(self, conversation_id: uuid.UUID | str, count: int) -> builtins.list[ItemRead]:
        """The newest ``count`` items (at most 1,000), oldest first; ``0`` gives none."""
        if count != 0:
            check_limit(count, maximum=MAX_HISTORY)
        async with self._store.reading(self._user_id) as conn:
            return await item_service.latest(
                conn, self._user_id, as_uuid(conversation_id, "conversation_id"), count
            )

    async def get(self, conversation_id: uuid.UUID | str, item_id: str) -> ItemRead:
        """One item of one of the user's live conversations; NotFound otherwise."""
        async with self._store.reading(self._user_id) as conn:
            return await item_service.get(
                conn, self._user_id, as_uuid(conversation_id, "conversation_id"), item_id
            )

    async def delete(self, conversation_id: uuid.UUID | str, item_id: str) -> None:
        """Remove one item for good (an item of a native message goes with that message)."""
        async with self._store.writing(self._user_id) as conn:
            await item_service.delete(
                conn, self._user_id, as_uuid(conversation_id, "conversation_id"), item_id
            )

    async def pop(self, conversation_id: uuid.UUID | str) -> ItemRead | None:
        """Remove and return the newest item; None when the conversation has none."""
        async with self._store.writing(self._user_id) as conn:
            return await item_service.pop(
                conn, self._user_id, as_uuid(conversation_id, "conversation_id")
            )

    async def clear(self, conversation_id: uuid.UUID | str) -> int:
        """Remove every item and message of the conversation for good (the conversation
        stays); how many rows went."""
        async with self._store.writing(self._user_id) as conn:
            return await item_service.clear(
                conn, self._user_id, as_uuid(conversation_id, "conversation_id")
            )


class Tasks(_Scoped):
    """The acting user's todo tasks."""

    async def create(
        self,
        *,
        title: str,
        description: str | None = None,
        priority: str = "medium",
        tags: Sequence[str] = (),
        due_at: datetime | None = None,
    ) -> TaskRead:
        """Create a task (``due_at`` must carry a UTC offset); its creation is its first
        event."""
        data = parse(
            TaskCreate,
            {
                "title": title,
                "description": description,
                "priority": priority,
                "tags": list(tags),
                "due_at": due_at,
            },
        )
        async with self._store.writing(self._user_id) as conn:
            return await task_service.create(conn, self._user_id, data)

    async def get(self, task_id: uuid.UUID | str) -> TaskRead:
        """One of the user's tasks; NotFound otherwise, as for another user's."""
        async with self._store.reading(self._user_id) as conn:
            return await task_service.get(conn, self._user_id, as_uuid(task_id, "task_id"))

    async def list(
        self,
        *,
        limit: int = 20,
        cursor: str | None = None,
        completed: bool | None = None,
        priority: str | None = None,
        tag: str | None = None,
        due_before: datetime | None = None,
    ) -> Page[TaskRead]:
        """Oldest first, filtered; a cursor continues only a list with the same filters."""
        check_limit(limit)
        filters = parse(
            TaskFilter,
            {"completed": completed, "priority": priority, "tag": tag, "due_before": due_before},
        )
        async with self._store.reading(self._user_id) as conn:
            return await task_service.list(conn, self._user_id, filters, limit=limit, cursor=cursor)

    async def update(
        self,
        task_id: uuid.UUID | str,
        *,
        title: str | Unset = UNSET,
        description: str | None | Unset = UNSET,
        priority: Literal["low", "medium", "high"] | Unset = UNSET,
        tags: Sequence[str] | Unset = UNSET,
        due_at: datetime | None | Unset = UNSET,
        completed: bool | Unset = UNSET,
        **unknown: Never,
    ) -> TaskRead:
        """Change the fields given; ``None`` clears ``description`` or ``due_at``."""
        fields = {
            "title": title,
            "description": description,
            "priority": priority,
            "tags": tags,
            "due_at": due_at,
            "completed": completed,
        }
        data = parse(TaskUpdate, _given(fields, unknown))
        async with self._store.writing(self._user_id) as conn:
            return await task_service.update(conn, self._user_id, as_uuid(task_id, "task_id"), data)

    async def complete(self, task_id: uuid.UUID | str) -> TaskRead:
        """Mark the task done (recording when); a done task stays as it is."""
        async with self._store.writing(self._user_id) as conn:
            return await task_service.set_completed(
                conn, self._user_id, as_uuid(task_id, "task_id"), True
            )

    async def reopen(self, task_id: uuid.UUID | str) -> TaskRead:
        """Mark the task not done again."""
        async with self._store.writing(self._user_id) as conn:
            return await task_service.set_completed(
                conn, self._user_id, as_uuid(task_id, "task_id"), False
            )

    async def events(self, task_id: uuid.UUID | str) -> builtins.list[TaskEventRead]:
        """Every change of the task, oldest first, with the conversation and tool call of
        changes the assistant made (kept after the task is deleted)."""
        async with self._store.reading(self._user_id) as conn:
            return await task_service.events(conn, self._user_id, as_uuid(task_id, "task_id"))

    async def delete(self, task_id: uuid.UUID | str) -> None:
        """Delete for good (tasks have no soft delete; the event log keeps the deletion)."""
        async with self._store.writing(self._user_id) as conn:
            await task_service.delete(conn, self._user_id, as_uuid(task_id, "task_id"))
