"""An OpenAI Agents SDK ``Session`` kept in convstore.

``ConvstoreSession(session_id, scope)`` keeps one session as the acting user's conversation
whose ``key`` is ``session_id``: the runner's items (messages, ``function_call``,
``function_call_output``, ``reasoning``, any other typed item) are stored as given and replayed
JSON-equal, in order, and every other surface (the library's ``items``, the API, the chat
page) reads the same conversation. Two users' sessions of one ``session_id`` are two
conversations. docs/integrations.md.
"""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Any, Self, cast

from convstore.extras import require

require("agents", "convstore.integrations.agents")

from agents.items import TResponseInputItem  # noqa: E402
from agents.memory.session_settings import SessionSettings, resolve_session_limit  # noqa: E402

from convstore.config import Settings, get_settings  # noqa: E402
from convstore.db import Database, create_engine  # noqa: E402
from convstore.errors import InvalidInput, NotFound  # noqa: E402
from convstore.integrations.common import (  # noqa: E402
    KeyedConversation,
    all_items,
    latest_items,
    resolve_user,
    stored,
)
from convstore.items.schemas import ItemRead  # noqa: E402
from convstore.store import Store, UserScope  # noqa: E402


class ConvstoreSession:
    """The Agents SDK ``Session`` protocol over one user's conversation named ``session_id``.

    The conversation is created by the first ``add_items`` (concurrent first writes create
    one); reads of a session never written return nothing. Items are stored under ids of
    convstore's (``ItemRead.id``), each keeping its own ``id`` key as the runner gave it: a
    model's ids may repeat within a session (the Chat Completions path gives every item the
    same one). ``add_items`` is one transaction; ``pop_item`` removes the newest item
    atomically.
    """

    def __init__(
        self,
        session_id: str,
        scope: UserScope,
        *,
        session_settings: SessionSettings | None = None,
    ) -> None:
        self.session_id = session_id
        self.session_settings: SessionSettings | None = session_settings
        self.scope = scope
        self._conversation = KeyedConversation(scope, session_id)
        self._owned: Store | None = None

    @classmethod
    async def from_url(
        cls,
        session_id: str,
        *,
        url: str,
        user: str | uuid.UUID,
        migrate: bool = False,
        settings: Settings | None = None,
        session_settings: SessionSettings | None = None,
    ) -> Self:
        """Open a store on ``url`` for this session, which closes it (:meth:`close`, or
        ``async with``). ``user`` is a user's id, or an email whose user is created when there
        is none; ``migrate`` first upgrades the schema (a new database needs it)."""
        settings = settings or get_settings()
        engine = create_engine(settings, url=url)
        store = Store(Database(engine), settings)
        try:
            if migrate:
                from convstore.migrate import upgrade

                await upgrade(engine, "head")
            scope = await resolve_user(store, user)
        except BaseException:
            await store.close()
            raise
        session = cls(session_id, scope, session_settings=session_settings)
        session._owned = store
        return session

    async def close(self) -> None:
        """Close the store :meth:`from_url` opened (nothing for a session given a scope)."""
        if self._owned is not None:
            await self._owned.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def conversation_id(self) -> uuid.UUID | None:
        """The conversation's id once this session has looked it up or created it."""
        return self._conversation._id

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The session's items, oldest first; with ``limit`` (default: the session settings'
        limit) the newest ``limit`` of them; ``0`` gives none."""
        count = resolve_session_limit(limit, self.session_settings)
        if count is not None and count < 0:
            raise InvalidInput("must be 0 or more", field="limit")
        if count == 0:
            return []

        async def read(conversation_id: uuid.UUID) -> list[ItemRead]:
            if count is None:
                return await all_items(self.scope, conversation_id)
            return await latest_items(self.scope, conversation_id, count)

        reads: list[ItemRead] = await self._conversation.read(read, [])
        return [cast(TResponseInputItem, stored(r)) for r in reads]

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` in order, all or none; ``[]`` does nothing."""
        if not items:
            return
        given = [cast(dict[str, Any], item) for item in items]
        await self._conversation.write(
            lambda conversation_id: self.scope.items.add(conversation_id, given, keep_ids=False)
        )

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the newest item; None when the session has none."""
        conversation_id = await self._conversation.find()
        if conversation_id is None:
            return None
        try:
            read = await self.scope.items.pop(conversation_id)
        except NotFound:
            self._conversation.forget()
            return None
        return None if read is None else cast(TResponseInputItem, stored(read))

    async def clear_session(self) -> None:
        """Remove every item of the session (its conversation stays, empty)."""
        await self._conversation.clear()


__all__ = ["ConvstoreSession"]
