"""Every query on conversations and messages. Each repository is bound to the acting user:
there is no statement here that reads or writes a row without ``user_id`` in it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.conversations.models import Conversation, Message

conversations = cast(Table, Conversation.__table__)
messages = cast(Table, Message.__table__)

CONVERSATION_COLUMNS = tuple(c for c in conversations.c if c.name != "user_id")
MESSAGE_COLUMNS = tuple(c for c in messages.c if c.name not in ("user_id", "deleted_at"))


class ConversationRepository:
    """Conversations of one user."""

    def __init__(self, conn: AsyncConnection, user_id: uuid.UUID) -> None:
        self.conn = conn
        self.user_id = user_id

    def get_readable_statement(self, *, include_deleted: bool = False) -> Select[Any]:
        """The starting point of every read: this user's conversations, live ones by default."""
        stmt = select(*CONVERSATION_COLUMNS).where(conversations.c.user_id == self.user_id)
        if not include_deleted:
            stmt = stmt.where(conversations.c.deleted_at.is_(None))
        return stmt

    def _owned(self, conversation_id: uuid.UUID, *, live: bool | None) -> ColumnElement[bool]:
        clause = and_(
            conversations.c.id == conversation_id, conversations.c.user_id == self.user_id
        )
        if live is True:
            clause = and_(clause, conversations.c.deleted_at.is_(None))
        elif live is False:
            clause = and_(clause, conversations.c.deleted_at.is_not(None))
        return clause

    def live_exists(self, conversation_id: uuid.UUID) -> ColumnElement[bool]:
        """An EXISTS clause: the conversation is this user's and not deleted."""
        return exists().where(self._owned(conversation_id, live=True))

    async def get(
        self, conversation_id: uuid.UUID, *, include_deleted: bool = False
    ) -> RowMapping | None:
        stmt = self.get_readable_statement(include_deleted=include_deleted).where(
            conversations.c.id == conversation_id
        )
        row: RowMapping | None = (await self.conn.execute(stmt)).mappings().one_or_none()
        return row

    async def insert(self, values: dict[str, Any]) -> RowMapping:
        stmt = (
            insert(conversations)
            .values(user_id=self.user_id, **values)
            .returning(*CONVERSATION_COLUMNS)
        )
        return (await self.conn.execute(stmt)).mappings().one()

    async def update(
        self, conversation_id: uuid.UUID, values: dict[str, Any], *, live: bool | None = True
    ) -> RowMapping | None:
        stmt = (
            update(conversations)
            .where(self._owned(conversation_id, live=live))
            .values(**values)
            .returning(*CONVERSATION_COLUMNS)
        )
        row: RowMapping | None = (await self.conn.execute(stmt)).mappings().one_or_none()
        return row

    async def purge(self, conversation_id: uuid.UUID) -> bool:
        stmt = delete(conversations).where(self._owned(conversation_id, live=None))
        return (await self.conn.execute(stmt)).rowcount == 1

    async def list_recent(
        self, *, limit: int, after: tuple[datetime, uuid.UUID] | None, include_deleted: bool
    ) -> Sequence[RowMapping]:
        """Up to ``limit`` conversations, most recent activity first, strictly after ``after``."""
        t = conversations.c
        stmt = self.get_readable_statement(include_deleted=include_deleted)
        if after is not None:
            at, last_id = after
            stmt = stmt.where(or_(t.updated_at < at, and_(t.updated_at == at, t.id < last_id)))
        stmt = stmt.order_by(t.updated_at.desc(), t.id.desc()).limit(limit)
        rows: Sequence[RowMapping] = (await self.conn.execute(stmt)).mappings().all()
        return rows

    async def reserve_seqs(
        self, conversation_id: uuid.UUID, count: int, *, now: datetime, title: str | None
    ) -> int | None:
        """Take ``count`` sequence numbers for new messages; the last one taken, or None.

        One atomic ``UPDATE … RETURNING``: concurrent appenders queue on the row lock, so no
        number is handed out twice and ``messages_count`` never loses an update. ``title``
        fills an empty title (from the first user message).
        """
        t = conversations.c
        values: dict[str, Any] = {
            "messages_count": t.messages_count + count,
            "last_message_at": now,
            "updated_at": now,
        }
        if title is not None:
            values["title"] = case((t.title.is_(None), title), else_=t.title)
        stmt = (
            update(conversations)
            .where(self._owned(conversation_id, live=True))
            .values(**values)
            .returning(t.messages_count)
        )
        last: int | None = (await self.conn.execute(stmt)).scalar_one_or_none()
        return last


class MessageRepository:
    """Messages of one user; every statement also requires the conversation to be live."""

    def __init__(self, conn: AsyncConnection, user_id: uuid.UUID) -> None:
        self.conn = conn
        self.user_id = user_id
        self.conversations = ConversationRepository(conn, user_id)

    def get_readable_statement(self, conversation_id: uuid.UUID) -> Select[Any]:
        """This user's live messages of one conversation (the conversation's liveness is
        checked separately by the caller, or with :meth:`_visible`)."""
        m = messages.c
        return select(*MESSAGE_COLUMNS).where(
            m.conversation_id == conversation_id,
            m.user_id == self.user_id,
            m.deleted_at.is_(None),
        )

    def _visible(self, conversation_id: uuid.UUID, message_id: uuid.UUID) -> ColumnElement[bool]:
        m = messages.c
        return and_(
            m.id == message_id,
            m.conversation_id == conversation_id,
            m.user_id == self.user_id,
            m.deleted_at.is_(None),
            self.conversations.live_exists(conversation_id),
        )

    async def insert_many(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            row["user_id"] = self.user_id
        await self.conn.execute(insert(messages), rows)

    async def latest(self, conversation_id: uuid.UUID, limit: int) -> list[RowMapping]:
        """The newest ``limit`` messages, oldest first."""
        stmt = (
            self.get_readable_statement(conversation_id)
            .order_by(messages.c.seq.desc())
            .limit(limit)
        )
        rows = (await self.conn.execute(stmt)).mappings().all()
        return list(reversed(rows))

    async def after(self, conversation_id: uuid.UUID, seq: int, limit: int) -> list[RowMapping]:
        """Up to ``limit`` messages with a seq above ``seq``, oldest first."""
        stmt = (
            self.get_readable_statement(conversation_id)
            .where(messages.c.seq > seq)
            .order_by(messages.c.seq.asc())
            .limit(limit)
        )
        return list((await self.conn.execute(stmt)).mappings().all())

    async def before(self, conversation_id: uuid.UUID, seq: int, limit: int) -> list[RowMapping]:
        """Up to ``limit`` messages just below ``seq``, oldest first."""
        stmt = (
            self.get_readable_statement(conversation_id)
            .where(messages.c.seq < seq)
            .order_by(messages.c.seq.desc())
            .limit(limit)
        )
        return list(reversed((await self.conn.execute(stmt)).mappings().all()))

    async def get(self, conversation_id: uuid.UUID, message_id: uuid.UUID) -> RowMapping | None:
        stmt = select(*MESSAGE_COLUMNS).where(self._visible(conversation_id, message_id))
        row: RowMapping | None = (await self.conn.execute(stmt)).mappings().one_or_none()
        return row

    async def get_role(self, conversation_id: uuid.UUID, message_id: uuid.UUID) -> str | None:
        stmt = select(messages.c.role).where(self._visible(conversation_id, message_id))
        role: str | None = (await self.conn.execute(stmt)).scalar_one_or_none()
        return role

    async def update(
        self, conversation_id: uuid.UUID, message_id: uuid.UUID, values: dict[str, Any]
    ) -> RowMapping | None:
        stmt = (
            update(messages)
            .where(self._visible(conversation_id, message_id))
            .values(**values)
            .returning(*MESSAGE_COLUMNS)
        )
        row: RowMapping | None = (await self.conn.execute(stmt)).mappings().one_or_none()
        return row

    async def exists(self, conversation_id: uuid.UUID, message_id: uuid.UUID) -> bool:
        stmt = select(func.count()).where(self._visible(conversation_id, message_id))
        return bool((await self.conn.execute(stmt)).scalar_one())
