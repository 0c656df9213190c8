"""What the adapters share: one conversation per session id (its ``key``), found or created
for the first write, and the user a quick start names by email or id."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from convstore.errors import Conflict, NotFound
from convstore.items.schemas import ItemRead
from convstore.store import MAX_HISTORY, Store, UserScope


async def resolve_user(store: Store, user: str | uuid.UUID) -> UserScope:
    """The scope of ``user``: an id (that user must exist), else an email, whose user is
    created when there is none (concurrent callers get the same one)."""
    if isinstance(user, uuid.UUID):
        return store.for_user((await store.users.get(user)).id)
    try:
        user_id = uuid.UUID(user)
    except ValueError:
        pass
    else:
        return store.for_user((await store.users.get(user_id)).id)
    try:
        found = await store.users.get_by_email(user)
    except NotFound:
        try:
            found = await store.users.create(email=user)
        except Conflict:  # created by a concurrent caller in between
            found = await store.users.get_by_email(user)
    return store.for_user(found.id)


T = TypeVar("T")


class KeyedConversation:
    """The conversation of one session id (``key``) of one user. It is looked up when first
    needed and created only by a write (:meth:`ensure`); a conversation deleted meanwhile
    through another surface is looked up again."""

    def __init__(self, scope: UserScope, key: str) -> None:
        self.scope = scope
        self.key = key
        self._id: uuid.UUID | None = None
        self._lock = asyncio.Lock()

    async def find(self) -> uuid.UUID | None:
        """The conversation's id, or None when the session has none yet."""
        if self._id is None:
            try:
                self._id = (await self.scope.conversations.get_by_key(self.key)).id
            except NotFound:
                return None
        return self._id

    async def ensure(self) -> uuid.UUID:
        """The conversation's id, created when there is none (one even for concurrent first
        writes: :meth:`~convstore.store.Conversations.ensure`)."""
        if self._id is None:
            async with self._lock:
                if self._id is None:
                    self._id = (await self.scope.conversations.ensure(self.key)).id
        return self._id

    def forget(self) -> None:
        self._id = None

    async def read(self, read: Callable[[uuid.UUID], Awaitable[T]], default: T) -> T:
        """``read`` of the session's conversation (``default`` when it has none); a
        conversation deleted meanwhile through another surface is looked up once again."""
        for _ in range(2):
            conversation_id = await self.find()
            if conversation_id is None:
                return default
            try:
                return await read(conversation_id)
            except NotFound:
                self.forget()
        return default

    async def write(self, write: Callable[[uuid.UUID], Awaitable[object]]) -> None:
        """``write`` to the session's conversation, created for it when there is none (again
        once, if it was deleted meanwhile through another surface)."""
        for attempt in range(2):
            conversation_id = await self.ensure()
            try:
                await write(conversation_id)
            except NotFound:
                if attempt:
                    raise
                self.forget()
                continue
            return

    async def clear(self) -> None:
        """Remove every item of the session's conversation (which stays, empty)."""
        conversation_id = await self.find()
        if conversation_id is None:
            return
        try:
            await self.scope.items.clear(conversation_id)
        except NotFound:
            self.forget()


async def all_items(scope: UserScope, conversation_id: uuid.UUID) -> list[ItemRead]:
    """Every item of the conversation, oldest first (page by page)."""
    reads: list[ItemRead] = []
    after: str | None = None
    while True:
        page = await scope.items.list(conversation_id, after=after, limit=MAX_HISTORY)
        reads.extend(page.items)
        if not page.has_more:
            return reads
        after = page.last_id


async def latest_items(scope: UserScope, conversation_id: uuid.UUID, count: int) -> list[ItemRead]:
    """The newest ``count`` items (any number), oldest first."""
    if count <= MAX_HISTORY:
        return await scope.items.latest(conversation_id, count)
    reads: list[ItemRead] = []
    after: str | None = None
    while len(reads) < count:
        size = min(MAX_HISTORY, count - len(reads))
        page = await scope.items.list(conversation_id, after=after, limit=size, order="desc")
        reads.extend(page.items)
        if not page.has_more:
            break
        after = page.last_id
    return list(reversed(reads))


def stored(read: ItemRead) -> dict[str, Any]:
    """The item exactly as it was added."""
    return dict(read.item)
