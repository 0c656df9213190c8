"""The library API: ``async with convstore.open(url) as store: …``.

Each method is one transaction. Everything below :meth:`Store.for_user` is scoped to that user:
another user's row raises :class:`~convstore.errors.NotFound`, exactly like a missing id.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.auth.passwords import Passwords
from convstore.config import Settings, get_settings
from convstore.conversations.schemas import (
    ConversationCreate,
    ConversationRead,
    ConversationUpdate,
    MessageCreate,
    MessageRead,
    MessageUpdate,
)
from convstore.conversations.service import conversation as conversation_service
from convstore.conversations.service import message as message_service
from convstore.db import Database, create_engine
from convstore.errors import DatabaseUnavailable, InvalidInput
from convstore.kit.pagination import MAX_PAGE_SIZE, Page, check_limit
from convstore.kit.validation import parse
from convstore.tasks.schemas import TaskCreate, TaskEventRead, TaskFilter, TaskRead, TaskUpdate
from convstore.tasks.service import task as task_service
from convstore.users.schemas import UserCreate, UserRead, UserUpdate
from convstore.users.service import user as user_service

MAX_HISTORY = 1_000
"""The most messages one ``history`` call returns."""


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
        async with self._store.reading() as conn:
            return await user_service.get(conn, as_uuid(user_id, "user_id"))

    async def get_by_email(self, email: str) -> UserRead:
        async with self._store.reading() as conn:
            return await user_service.get_by_email(conn, email)

    async def update(self, user_id: uuid.UUID | str, **changes: Any) -> UserRead:
        """Change ``email``, ``password``, ``name``, ``role`` or ``is_active``."""
        data = parse(UserUpdate, changes)
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
        self.tasks = Tasks(self)


class _Scoped:
    def __init__(self, scope: UserScope) -> None:
        self._store = scope.store
        self._user_id = scope.user_id

    @property
    def _limits(self) -> Any:
        return self._store.settings.limits


class Conversations(_Scoped):
    """The acting user's conversations."""

    async def create(
        self, *, title: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> ConversationRead:
        """Start a conversation. Without a title, the first user message will provide one."""
        data = parse(ConversationCreate, {"title": title, "metadata": dict(metadata or {})})
        async with self._store.writing(self._user_id) as conn:
            return await conversation_service.create(conn, self._user_id, data, self._limits)

    async def get(
        self, conversation_id: uuid.UUID | str, *, include_deleted: bool = False
    ) -> ConversationRead:
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

    async def update(self, conversation_id: uuid.UUID | str, **changes: Any) -> ConversationRead:
        """Change ``title`` (None clears it) and/or replace ``metadata``."""
        data = parse(ConversationUpdate, changes)
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
        self, conversation_id: uuid.UUID | str, *, role: str, content: str = "", **fields: Any
    ) -> MessageRead:
        """Append one message; it gets the next ``seq`` (1 for the first).

        Other fields: ``status``, ``tool_calls``, ``tool_results``, ``tool_call_id``,
        ``metadata``, ``parent_id``, ``usage``.
        """
        item = parse(MessageCreate, {"role": role, "content": content, **fields})
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
        async with self._store.reading(self._user_id) as conn:
            return await message_service.get(
                conn,
                self._user_id,
                as_uuid(conversation_id, "conversation_id"),
                as_uuid(message_id, "message_id"),
            )

    async def update(
        self, conversation_id: uuid.UUID | str, message_id: uuid.UUID | str, **changes: Any
    ) -> MessageRead:
        """Change ``content``, ``status``, ``tool_calls``, ``tool_results``, ``metadata`` or
        ``usage`` (finalising a streamed reply, editing a message). The role never changes."""
        data = parse(MessageUpdate, changes)
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

    async def update(self, task_id: uuid.UUID | str, **changes: Any) -> TaskRead:
        """Change ``title``, ``description``, ``priority``, ``tags``, ``due_at``, ``completed``."""
        data = parse(TaskUpdate, changes)
        async with self._store.writing(self._user_id) as conn:
            return await task_service.update(conn, self._user_id, as_uuid(task_id, "task_id"), data)

    async def complete(self, task_id: uuid.UUID | str) -> TaskRead:
        async with self._store.writing(self._user_id) as conn:
            return await task_service.set_completed(
                conn, self._user_id, as_uuid(task_id, "task_id"), True
            )

    async def reopen(self, task_id: uuid.UUID | str) -> TaskRead:
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
